"""rxcql.execute end to end against the real Cassandra node."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from cassandra import InvalidRequest
from cassandra.cluster import Session
from cassandra.query import SimpleStatement
from reactivex import operators as ops

import rxcql
from rxcql import operators as cql_ops
from rxcql.testing import RecordingObserver

pytestmark = pytest.mark.integration

ROWS = 10_000


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"engine_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, payload text)")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def run(observable: reactivex.Observable[Any], timeout: float = 120) -> RecordingObserver:
    observer = RecordingObserver()
    observable.subscribe(observer)
    return observer.wait(timeout)


def load(session: Session, table: str, rows: int = ROWS) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    observer = run(rxcql.execute(session, ((insert, (i, f"p{i}")) for i in range(rows))))
    assert observer.completed, observer.error
    assert len(observer.items) == rows
    assert all(r.success for r in observer.items)


def test_inserts_then_reads_of_10k_rows_come_back_in_input_order(
    session: Session, table: str
) -> None:
    load(session, table)
    select = session.prepare(f"SELECT id, payload FROM {table} WHERE id = ?")
    # Read in a shuffled key order: the results must follow the input, not the key order.
    keys = [(i * 7919) % ROWS for i in range(ROWS)]
    observer = run(rxcql.execute(session, ((select, (k,)) for k in keys), concurrency=64))
    assert observer.completed
    rows = [r.result_or_exc.one() for r in observer.items]
    assert [(row.id, row.payload) for row in rows] == [(k, f"p{k}") for k in keys]


def test_a_failing_statement_in_the_middle_stays_in_place(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    bad = SimpleStatement("INSERT INTO no_such_table (id) VALUES (1)")
    items: list[Any] = [(insert, (i, "x")) for i in range(1_000)]
    items[500] = (bad, None)
    observer = run(rxcql.execute(session, items, raise_on_first_error=False))
    assert observer.completed
    assert [r.success for r in observer.items] == [i != 500 for i in range(1_000)]
    assert isinstance(observer.items[500].result_or_exc, InvalidRequest)


def test_a_failing_statement_ends_the_stream_after_the_results_before_it(
    session: Session, table: str
) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    items: list[Any] = [(insert, (i, "x")) for i in range(1_000)]
    items[500] = (SimpleStatement("INSERT INTO no_such_table (id) VALUES (1)"), None)
    observer = run(rxcql.execute(session, items, concurrency=50))
    assert isinstance(observer.error, InvalidRequest)
    assert [r.index for r in observer.items] == list(range(500))
    # Nothing new was issued once the failure was known: at most a window past it ran.
    count = session.execute(f"SELECT count(*) FROM {table}").one()[0]
    assert 500 <= count < 500 + 2 * 50


def test_unordered_results_each_carry_their_input_position(session: Session, table: str) -> None:
    load(session, table)
    select = session.prepare(f"SELECT id, payload FROM {table} WHERE id = ?")
    observer = run(rxcql.execute(session, ((select, (k,)) for k in range(ROWS)), ordered=False))
    assert observer.completed
    assert sorted(r.index for r in observer.items) == list(range(ROWS))
    for result in observer.items:
        assert result.result_or_exc.one().id == result.index


def test_a_bind_error_is_that_statements_failure(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    # Protocol v4+ leaves missing trailing values unset, so too many is the arity error.
    items: list[Any] = [(insert, (1, "a")), (insert, (2, "b", "extra")), (insert, (3, "c"))]
    observer = run(rxcql.execute(session, items, raise_on_first_error=False))
    assert [r.success for r in observer.items] == [True, False, True]
    assert "Too many arguments" in str(observer.items[1].result_or_exc)


def test_the_operator_composes_with_rx_pipelines(session: Session, table: str) -> None:
    load(session, table, 2_000)
    select = session.prepare(f"SELECT payload FROM {table} WHERE id = ?")

    def even(i: int) -> bool:
        return i % 2 == 0

    def params(i: int) -> tuple[int]:
        return (i,)

    def payload(result: rxcql.ExecutionResult) -> str:
        return str(result.result_or_exc.one().payload)

    observer = run(
        reactivex.range(0, 2_000).pipe(
            ops.filter(even),
            ops.map(params),
            cql_ops.execute(session, select, concurrency=32),
            ops.map(payload),
            ops.to_list(),
        )
    )
    assert observer.items == [[f"p{i}" for i in range(0, 2_000, 2)]]


def test_from_response_future_against_the_node(session: Session) -> None:
    observer = run(
        rxcql.from_response_future(
            session.execute_async("SELECT release_version FROM system.local")
        )
    )
    assert observer.items[0].one().release_version.startswith("5.0")


def test_a_shut_down_session_is_a_clear_error(session: Session) -> None:
    other = session.cluster.connect()
    other.shutdown()
    observer = run(rxcql.execute(other, [("SELECT now() FROM system.local", None)]))
    assert isinstance(observer.error, rxcql.SessionClosedError)


def _future_refs(session: Session, table: str, how: str) -> list[weakref.ref[Any]]:
    """Run 2,000 INSERTs one way and return weak references to their finished futures, with
    every result dropped by the time this returns."""
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    items = [(insert, (i, "x")) for i in range(2000)]
    refs: list[weakref.ref[Any]] = []

    def keep(result: Any) -> None:
        refs.append(weakref.ref(result.result_or_exc.response_future))

    if how == "generator":
        with rxcql.execute_concurrent(session, items, results_generator=True) as results:
            for result in results:
                keep(result)
    elif how == "list":
        for result in rxcql.execute_concurrent(session, items):
            keep(result)
    else:
        observer = RecordingObserver(on_item=keep, keep=False)
        rxcql.execute(session, items).subscribe(observer)
        assert observer.wait(60).completed
    return refs


@pytest.mark.parametrize("how", ["generator", "list", "subscribe"])
def test_finished_futures_are_freed_without_the_garbage_collector(
    session: Session, table: str, how: str
) -> None:
    # The driver's ResponseFuture is in a reference cycle with its cancelled timer; rxcql breaks
    # it, so that a long run does not leave every future to the collector's full collections.
    gc.collect()
    gc.disable()
    try:
        refs = _future_refs(session, table, how)
        alive = sum(ref() is not None for ref in refs)
    finally:
        gc.enable()
    assert len(refs) == 2000
    assert alive == 0
