"""The drop-in blocking calls end to end against the real Cassandra node."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import concurrent as driver
from cassandra.cluster import Session
from cassandra.query import SimpleStatement

import rxcql

pytestmark = pytest.mark.integration

ROWS = 5_000


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"compat_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (pk int, ck int, v text, PRIMARY KEY (pk, ck))")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def fill(session: Session, table: str, partitions: int, per_partition: int) -> None:
    insert = session.prepare(f"INSERT INTO {table} (pk, ck, v) VALUES (?, ?, ?)")
    params = ((p, c, f"{p}:{c}") for p in range(partitions) for c in range(per_partition))
    results = rxcql.execute_concurrent_with_args(session, insert, params, concurrency=100)
    assert len(results) == partitions * per_partition
    assert all(ok for ok, _ in results)


@pytest.mark.parametrize("impl", [driver, rxcql], ids=["driver", "rxcql"])
def test_the_same_calls_give_the_same_results(session: Session, table: str, impl: Any) -> None:
    fill(session, table, 50, 100)
    select = session.prepare(f"SELECT ck, v FROM {table} WHERE pk = ? AND ck = ?")
    keys = [(p, c) for c in range(0, 100, 3) for p in range(50)]
    listed = impl.execute_concurrent_with_args(session, select, keys, concurrency=64)
    generated = list(
        impl.execute_concurrent_with_args(session, select, keys, results_generator=True)
    )
    future = impl.execute_concurrent_async(session, [(select, k) for k in keys])
    expected = [(True, [(c, f"{p}:{c}")]) for p, c in keys]
    for results in (listed, generated, future.result(timeout=120)):
        assert [(ok, [tuple(row) for row in rs]) for ok, rs in results] == expected


def test_paged_results_are_read_in_the_consumers_thread(session: Session, table: str) -> None:
    fill(session, table, 20, 250)
    select = SimpleStatement(f"SELECT ck FROM {table} WHERE pk = %s", fetch_size=40)
    consumer = threading.current_thread()
    counts = []
    for ok, result_set in rxcql.execute_concurrent_with_args(
        session, select, [(p,) for p in range(20)], concurrency=8, results_generator=True
    ):
        assert ok
        assert result_set.has_more_pages  # 250 rows, 40 per page
        # Iterating fetches the remaining pages synchronously, here, on the consumer's thread.
        counts.append([row.ck for row in result_set])
        assert threading.current_thread() is consumer
    assert counts == [list(range(250))] * 20


def test_list_mode_paged_results_can_be_read_after_return(session: Session, table: str) -> None:
    fill(session, table, 5, 300)
    select = SimpleStatement(f"SELECT ck FROM {table} WHERE pk = %s", fetch_size=50)
    results = rxcql.execute_concurrent_with_args(session, select, [(p,) for p in range(5)])
    assert [len(list(rs)) for _, rs in results] == [300] * 5


def test_the_generator_loop_may_query_the_same_session(session: Session, table: str) -> None:
    fill(session, table, 1, ROWS)
    select = session.prepare(f"SELECT v FROM {table} WHERE pk = 0 AND ck = ?")
    seen = 0
    for ok, result_set in rxcql.execute_concurrent_with_args(
        session, select, ((c,) for c in range(ROWS)), results_generator=True
    ):
        assert ok
        value = result_set.one().v
        # A synchronous query from inside the loop, on the same session: no deadlock.
        again = session.execute(select, (int(value.split(":")[1]),)).one().v
        assert again == value
        seen += 1
    assert seen == ROWS


def test_a_blocking_call_inside_a_driver_callback_raises_instead_of_deadlocking(
    session: Session,
) -> None:
    outcome: list[BaseException | object] = []
    done = threading.Event()

    def callback(_: Any) -> None:
        try:
            outcome.append(
                rxcql.execute_concurrent(session, [("SELECT now() FROM system.local", None)])
            )
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    future = session.execute_async("SELECT release_version FROM system.local")
    future.add_callback(callback)
    assert done.wait(30)
    # Either the callback ran on the IO thread (refused) or synchronously here (it worked).
    assert isinstance(outcome[0], rxcql.IOThreadBlockingError | list)
    # The session is still alive either way.
    assert session.execute("SELECT release_version FROM system.local").one() is not None


def test_execute_concurrent_async_inside_a_driver_callback(session: Session) -> None:
    futures: list[Any] = []
    done = threading.Event()

    def callback(_: Any) -> None:
        futures.append(
            rxcql.execute_concurrent_async(session, [("SELECT now() FROM system.local", None)] * 10)
        )
        done.set()

    session.execute_async("SELECT release_version FROM system.local").add_callback(callback)
    assert done.wait(30)
    assert len(futures[0].result(timeout=30)) == 10
