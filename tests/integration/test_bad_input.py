"""The bad-input matrix against the real node: clear errors, and the session stays usable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra.cluster import Session

import rxcql
from rxcql.testing import RecordingObserver

pytestmark = pytest.mark.integration


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"bad_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def assert_usable(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, v) VALUES (?, ?)")
    results = rxcql.execute_concurrent_with_args(session, insert, [(i, "ok") for i in range(100)])
    assert all(ok for ok, _ in results)
    assert session.execute(f"SELECT v FROM {table} WHERE id = 99").one().v == "ok"


@pytest.mark.parametrize(
    ("params", "message"),
    [((1, "a", "extra"), "Too many arguments"), (("one", "a"), "Received an argument of invalid")],
)
def test_wrong_parameters_for_a_prepared_statement(
    session: Session, table: str, params: tuple[Any, ...], message: str
) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, v) VALUES (?, ?)")
    items: list[Any] = [(insert, (0, "a")), (insert, params), (insert, (2, "c"))]
    results = rxcql.execute_concurrent(session, items, raise_on_first_error=False)
    assert [ok for ok, _ in results] == [True, False, True]
    assert message in str(results[1].result_or_exc)
    with pytest.raises(Exception, match=message):
        rxcql.execute_concurrent(session, items)
    assert_usable(session, table)


def test_a_shut_down_session(session: Session, table: str) -> None:
    other = session.cluster.connect()
    other.shutdown()
    with pytest.raises(rxcql.SessionClosedError):
        rxcql.execute_concurrent(other, [("SELECT now() FROM system.local", None)])
    with pytest.raises(rxcql.SessionClosedError):
        list(rxcql.iterate(rxcql.stream_rows(other, "SELECT * FROM system.local")))
    assert_usable(session, table)


def test_an_input_iterator_that_raises(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, v) VALUES (?, ?)")

    def broken() -> Iterator[Any]:
        for i in range(500):
            yield (insert, (i, "x"))
        raise ConnectionResetError("source database went away")

    with pytest.raises(ConnectionResetError, match="source database went away") as raised:
        rxcql.execute_concurrent(session, broken())
    assert "rxcql had pulled 500 statements" in raised.value.__notes__[0]
    # Every statement pulled before the failure ran and was reported, none was lost.
    assert session.execute(f"SELECT count(*) FROM {table}").one()[0] == 500
    assert_usable(session, table)


def test_an_observer_that_raises_on_the_io_thread(session: Session, table: str) -> None:
    def explode(result: Any) -> None:
        raise LookupError("observer bug")

    observer = RecordingObserver(on_item=explode)
    rxcql.execute(session, [("SELECT now() FROM system.local", None)] * 50).subscribe(observer)
    observer.wait(30)
    assert isinstance(observer.error, rxcql.ObserverError)
    assert isinstance(observer.error.__cause__, LookupError)
    # The driver's IO thread was not wedged: the session still answers.
    assert_usable(session, table)


def test_a_consumer_that_abandons_the_run(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, v) VALUES (?, ?)")
    results = rxcql.execute_concurrent_with_args(
        session, insert, ((i, "x") for i in range(1_000_000)), results_generator=True
    )
    for count, _ in enumerate(results, 1):
        if count == 100:
            break
    results.close()
    # At most the window (2 x 100) past the consumer was ever issued.
    assert session.execute(f"SELECT count(*) FROM {table}").one()[0] <= 100 + 200
    assert_usable(session, table)


def test_malformed_items(session: Session, table: str) -> None:
    with pytest.raises(rxcql.InvalidItemError, match="item 1"):
        rxcql.execute_concurrent(session, [("SELECT now() FROM system.local", None), "oops"])
    assert_usable(session, table)
