"""Grouped batching against the real node: every row lands, every result in its place, refused
batches, big rows, the last write in input order, conditional writes, counters, reads, and the
server's warnings."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType, SimpleStatement

import rxcql
from rxcql._batching import BatchMode
from rxcql.testing import RecordingObserver

pytestmark = pytest.mark.integration

MODES: list[BatchMode] = ["replica", "partition"]


class Counting:
    """The session, counting its requests (``execute_async`` calls) and their statements."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.cluster = session.cluster
        self.requests = 0
        self.batches: list[int] = []

    @property
    def is_shutdown(self) -> bool:
        return bool(self._session.is_shutdown)

    def execute_async(self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        if isinstance(query, BatchStatement):
            self.batches.append(len(query))
        return self._session.execute_async(query, parameters, *args, **kwargs)


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"kv_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k bigint, c int, v text, PRIMARY KEY (k, c))")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def stored(session: Session, table: str) -> dict[tuple[int, int], str]:
    select = SimpleStatement(f"SELECT k, c, v FROM {table}", fetch_size=5_000)
    return {(row.k, row.c): row.v for row in session.execute(select)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("consumer", ["list", "generator", "observable", "asyncio"])
def test_every_row_lands_and_every_result_is_in_place(
    session: Session, table: str, mode: BatchMode, consumer: str
) -> None:
    n = 30_000 if consumer == "list" and mode == "replica" else 6_000
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    counting = Counting(session)
    # "partition" needs rows that share partitions to batch: 200 rows a partition.
    spread = n if mode == "replica" else n // 200
    params = [(i % spread, i, f"v{i}") for i in range(n)]
    items = [(insert, p) for p in params]
    if consumer == "list":
        results: list[Any] = rxcql.execute_concurrent(counting, items, batch=mode, concurrency=32)
    elif consumer == "generator":
        results = list(
            rxcql.execute_concurrent_with_args(
                counting, insert, iter(params), batch=mode, results_generator=True
            )
        )
    elif consumer == "observable":
        observer = RecordingObserver()
        rxcql.execute(counting, items, batch=mode, concurrency=32).subscribe(observer)
        observer.wait(300)
        assert observer.completed, observer.error
        assert [r.index for r in observer.items] == list(range(n))
        results = observer.items
    else:
        results = asyncio.run(rxcql.collect(rxcql.execute(counting, items, batch=mode)))
    assert len(results) == n
    assert all(ok for ok, _ in results)
    assert stored(session, table) == {(k, c): v for k, c, v in params}
    if mode == "replica" and n == 30_000:
        assert counting.requests <= 30_000 // 16
    assert counting.requests < n // 8  # grouped, in both modes
    assert max(counting.batches) <= 32


def test_a_bad_row_fails_alone_and_the_rest_land(session: Session) -> None:
    name = f"blobs_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k blob PRIMARY KEY, v int)")
    insert = session.prepare(f"INSERT INTO {name} (k, v) VALUES (?, ?)")
    bad = 437
    keys = [b"k%d" % i for i in range(1_000)]
    keys[bad] = b"x" * 70_000  # over the 65,535-byte key limit: the server refuses it
    results = rxcql.execute_concurrent_with_args(
        session,
        insert,
        [(k, i) for i, k in enumerate(keys)],
        batch="replica",
        raise_on_first_error=False,
    )
    failed = [i for i, (ok, _) in enumerate(results) if not ok]
    assert failed == [bad]
    assert isinstance(results[bad][1], InvalidRequest)
    assert "Key length of 70000" in str(results[bad][1])
    count = session.execute(f"SELECT count(*) FROM {name}").one()[0]
    assert count == 999


def test_big_rows_are_split_by_bytes(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    big = "x" * 6_000
    counting = Counting(session)
    results = rxcql.execute_concurrent_with_args(
        counting, insert, [(i, 0, big) for i in range(2_000)], batch="replica"
    )
    assert all(ok for ok, _ in results)
    assert len(stored(session, table)) == 2_000
    assert max(counting.batches) * 6_000 <= 32 * 1024  # the default batch_bytes


@pytest.mark.parametrize("mode", [None, *MODES])
def test_the_last_write_in_input_order_wins(
    session: Session, table: str, mode: BatchMode | None
) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    delete_row = session.prepare(f"DELETE FROM {table} WHERE k = ? AND c = ?")
    delete_partition = session.prepare(f"DELETE FROM {table} WHERE k = ?")
    rng = random.Random(20261202)
    model: dict[tuple[int, int], str] = {}
    items: list[tuple[Any, Any]] = []
    for i in range(3_000):
        k, c = rng.randrange(4), rng.randrange(10)
        roll = rng.random()
        if roll < 0.08:
            items.append((delete_partition, (k,)))
            model = {key: v for key, v in model.items() if key[0] != k}
        elif roll < 0.25:
            items.append((delete_row, (k, c)))
            model.pop((k, c), None)
        else:
            value = f"v{i}"
            items.append((insert, (k, c, value)))
            model[(k, c)] = value
    keywords: dict[str, Any] = {} if mode is None else {"batch": mode}
    results = rxcql.execute_concurrent(session, items, concurrency=100, **keywords)
    assert all(ok for ok, _ in results)
    assert stored(session, table) == model


def test_conditional_writes_counters_and_reads_in_batch_mode(session: Session) -> None:
    suffix = uuid.uuid4().hex[:8]
    session.execute(f"CREATE TABLE cond_{suffix} (k int PRIMARY KEY, v text)")
    session.execute(f"CREATE TABLE counts_{suffix} (k int PRIMARY KEY, n counter)")
    insert = session.prepare(f"INSERT INTO cond_{suffix} (k, v) VALUES (?, ?)")
    if_absent = session.prepare(f"INSERT INTO cond_{suffix} (k, v) VALUES (?, ?) IF NOT EXISTS")
    bump = session.prepare(f"UPDATE counts_{suffix} SET n = n + ? WHERE k = ?")
    select = session.prepare(f"SELECT v FROM cond_{suffix} WHERE k = ?")
    items: list[tuple[Any, Any]] = []
    for i in range(200):
        items.append((insert, (i, "plain")))
        items.append((bump, (1, i % 7)))
    for i in range(190, 210):  # 190..199 exist already: not applied; 200..209 applied
        items.append((if_absent, (i, "conditional")))
    items.append((select, (3,)))
    counting = Counting(session)
    results = rxcql.execute_concurrent(counting, items, batch="replica")
    assert all(ok for ok, _ in results)
    applied = [r.result_or_exc.one()[0] for r in results[400:420]]
    assert applied == [False] * 10 + [True] * 10
    assert results[420].result_or_exc.one() == ("plain",)
    counts = dict(session.execute(f"SELECT k, n FROM counts_{suffix}").all())
    assert counts == {k: len(range(k, 200, 7)) for k in range(7)}
    assert counting.requests < len(items) // 4


def test_a_refused_batchs_statements_keep_their_place_in_the_order_of_writes(
    session: Session,
) -> None:
    name = f"ts_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k blob PRIMARY KEY, v text)")
    insert = session.prepare(f"INSERT INTO {name} (k, v) VALUES (?, ?)")
    # Statement 0 shares its batch with a refused row and is sent again alone; statement 300
    # writes the same row later in input order (in a later batch, sent meanwhile). The re-sent
    # statement 0 keeps its batch's timestamp, so statement 300's value stays.
    params: list[tuple[bytes, str]] = [(b"row", "first"), (b"x" * 70_000, "bad")]
    params += [(b"k%d" % i, "filler") for i in range(2, 300)]
    params.append((b"row", "last"))
    # (The real session, not a counting wrapper: the timestamp is set through the driver's own
    # Session, which a wrapper is not.)
    results = rxcql.execute_concurrent_with_args(
        session,
        insert,
        params,
        batch="replica",
        batch_bytes=100_000,  # room for the bad row: its batch is refused, not sent alone
        concurrency=64,
        raise_on_first_error=False,
    )
    assert [i for i, (ok, _) in enumerate(results) if not ok] == [1]
    assert session.execute(f"SELECT v FROM {name} WHERE k = %s", (b"row",)).one()[0] == "last"


def test_the_server_warnings_of_rxcqls_batches_are_one_record_and_the_users_stay(
    session: Session, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    with caplog.at_level(logging.WARNING):
        results = rxcql.execute_concurrent_with_args(
            session, insert, [(i, 0, "v") for i in range(3_200)], batch="replica"
        )
        # The user's own multi-partition batch, outside rxcql: its warning must stay.
        own = BatchStatement(BatchType.UNLOGGED)
        for i in range(20):
            own.add(insert, (10_000 + i, 0, "own"))
        session.execute(own)
    assert all(ok for ok, _ in results)
    driver = [r.getMessage() for r in caplog.records if r.name == "cassandra.protocol"]
    ours = [r.getMessage() for r in caplog.records if r.name == "rxcql"]
    assert sum("Unlogged batch covering 20 partitions" in m for m in driver) == 1
    assert not any("covering 32 partitions" in m for m in driver)
    assert len(ours) == 1
    assert "the server warned about 100 of this run's batches" in ours[0]
    assert any("covering 32 partitions" in w for w in results[0][1].response_future.warnings)
