"""Grouped batching on the fake session: grouping, collisions, refused batches, demand, threads.

Statements are real driver ``PreparedStatement`` objects (built without a cluster), so the
driver's own ``bind``, routing keys and ``BatchStatement`` are exercised; the token map is a fake
with a Murmur3 ring whose ranges belong to a few replica sets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import reactivex
from cassandra import ConsistencyLevel, InvalidRequest, Unavailable, WriteTimeout, WriteType
from cassandra.cqltypes import CounterColumnType, LongType, UTF8Type
from cassandra.metadata import Murmur3Token
from cassandra.murmur3 import murmur3
from cassandra.protocol import ColumnMetadata
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement
from hypothesis import given, settings
from hypothesis import strategies as st

import rxcql
from rxcql import operators as cql_ops
from rxcql._batching import BATCH_MODES, BatchMode
from rxcql.testing import FakeSession, Mode, RecordingObserver

from . import peak_memory


def prepared(query: str, columns: list[tuple[str, Any]], routing: list[int]) -> PreparedStatement:
    metadata = [ColumnMetadata("ks", "t", name, kind) for name, kind in columns]
    return PreparedStatement(metadata, query.encode(), routing, query, "ks", 5, None, None)


INSERT = prepared(
    "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)",
    [("k", LongType), ("c", LongType), ("v", UTF8Type)],
    [0],
)
DELETE_PARTITION = prepared("DELETE FROM ks.t WHERE k = ?", [("k", LongType)], [0])
CONDITIONAL = prepared(
    "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS",
    [("k", LongType), ("c", LongType), ("v", UTF8Type)],
    [0],
)
COUNT = prepared(
    "UPDATE ks.counts SET n = n + ? WHERE k = ?",
    [("n", CounterColumnType), ("k", LongType)],
    [1],
)


class FakeTokenMap:
    """A Murmur3 ring of 12 ranges, owned round-robin by ``nodes`` replica sets."""

    token_class = Murmur3Token

    def __init__(self, nodes: int = 3) -> None:
        step = 2**64 // 12
        self.ring = [Murmur3Token(-(2**63) + step * (i + 1)) for i in range(12)]
        self._owner = {token: f"node{i % nodes}" for i, token in enumerate(self.ring)}

    def get_replicas(self, keyspace: str, token: Murmur3Token) -> list[str]:
        return [self._owner[token]]

    def replica_of(self, key: int) -> str:
        value = murmur3(LongType.serialize(key, 5))
        for token in self.ring:
            if value <= token.value:
                return self._owner[token]
        return self._owner[self.ring[0]]


def cluster_metadata(token_map: FakeTokenMap | None) -> Any:
    table = SimpleNamespace(primary_key=[SimpleNamespace(name="k"), SimpleNamespace(name="c")])
    keyspace = SimpleNamespace(tables={"t": table})
    return SimpleNamespace(
        metadata=SimpleNamespace(token_map=token_map, keyspaces={"ks": keyspace})
    )


class Recorder:
    """``fail=`` for the fake: records every request and fails the ones the test scripts.

    A request with a statement whose key is in ``bad`` is refused (InvalidRequest), as the
    server refuses a whole batch for one bad row; one with a key in ``slow`` times out."""

    def __init__(self, bad: Iterable[int] = (), slow: Iterable[int] = ()) -> None:
        self.bad = set(bad)
        self.slow = set(slow)
        self.requests: list[list[tuple[int, ...]]] = []
        self.batch_types: list[Any] = []

    def __call__(self, index: int, statement: Any, parameters: Any) -> BaseException | None:
        rows = statement_rows(statement)
        self.requests.append(rows)
        if isinstance(statement, BatchStatement):
            self.batch_types.append(statement.batch_type)
        keys = {row[1] for row in rows}
        if keys & self.bad:
            refused: BaseException = InvalidRequest(f"Key refused ({len(rows)} statements)")
            return refused
        if keys & self.slow:
            timeout: BaseException = WriteTimeout("timed out", write_type=WriteType.UNLOGGED_BATCH)
            return timeout
        return None


def statement_rows(statement: Any) -> list[tuple[int, ...]]:
    """(statement kind, k, c) of each statement of a request; c is -1 for a partition delete."""
    if isinstance(statement, BatchStatement):
        return [
            decode(query_id, values) for _, query_id, values in statement._statements_and_parameters
        ]
    if isinstance(statement, BoundStatement):
        return [decode(statement.prepared_statement.query_id, statement.values)]
    return [(4, -1, -1)]  # an unprepared statement (a string)


def decode(query_id: bytes, values: list[Any]) -> tuple[int, ...]:
    if query_id == COUNT.query_id:
        return (3, LongType.deserialize(values[1], 5), -1)
    k = LongType.deserialize(values[0], 5)
    if query_id == DELETE_PARTITION.query_id:
        return (2, k, -1)
    return (0 if query_id == INSERT.query_id else 1, k, LongType.deserialize(values[1], 5))


def fake(
    mode: Mode = "thread", token_map: FakeTokenMap | None = None, **kwargs: Any
) -> FakeSession:
    session = FakeSession(mode, **kwargs)
    session.cluster = cluster_metadata(token_map)  # type: ignore[attr-defined]
    return session


def inserts(n: int, partitions: int = 10**9) -> Iterator[tuple[Any, tuple[int, int, str]]]:
    return ((INSERT, (i % partitions, i, f"v{i}")) for i in range(n))


def test_replica_mode_groups_by_replica_set_and_gives_every_statement_its_place() -> None:
    token_map = FakeTokenMap(nodes=3)
    recorder = Recorder()
    with fake("thread", token_map, order="random", fail=recorder) as session:
        results = rxcql.execute_concurrent(session, inserts(3_000), batch="replica", batch_size=16)
    assert len(results) == 3_000
    assert all(ok for ok, _ in results)
    assert len(recorder.requests) <= 3_000 // 16 + 3 * 16  # full batches, and a tail per set
    for rows in recorder.requests:
        assert len(rows) <= 16
        assert len({token_map.replica_of(k) for _, k, _ in rows}) == 1
    assert sorted(c for rows in recorder.requests for _, _, c in rows) == list(range(3_000))
    assert set(recorder.batch_types) == {BatchType.UNLOGGED}


def test_partition_mode_groups_rows_of_one_partition() -> None:
    recorder = Recorder()
    with fake("thread", fail=recorder) as session:
        results = rxcql.execute_concurrent(
            session, inserts(2_000, partitions=5), batch="partition", batch_size=32
        )
    assert [ok for ok, _ in results] == [True] * 2_000
    for rows in recorder.requests:
        assert len({k for _, k, _ in rows}) == 1
    assert len(recorder.requests) <= 2_000 // 32 + 5


def test_without_a_token_map_replica_mode_groups_by_partition_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, "rxcql"), fake("sync", fail=recorder) as session:
        results = rxcql.execute_concurrent(session, inserts(300, partitions=3), batch="replica")
    assert all(ok for ok, _ in results)
    assert all(len({k for _, k, _ in rows}) == 1 for rows in recorder.requests)
    assert [r.message for r in caplog.records].count(
        "rxcql: batch='replica' without the driver's token map (token metadata disabled, or not "
        "known yet): grouping by partition instead, as batch='partition'"
    ) == 1


def test_a_refused_batch_is_run_again_one_by_one_and_only_the_bad_row_fails() -> None:
    recorder = Recorder(bad={7})
    with fake("thread", FakeTokenMap(1), fail=recorder) as session:
        results = rxcql.execute_concurrent(
            session, inserts(1_000), batch="replica", raise_on_first_error=False
        )
    failed = [i for i, (ok, _) in enumerate(results) if not ok]
    assert failed == [7]
    assert isinstance(results[7][1], InvalidRequest)
    # the refused batch of 32, then its 32 statements alone
    assert sum(1 for rows in recorder.requests if len(rows) == 1) >= 32


def test_a_timed_out_batch_gives_each_of_its_statements_that_error() -> None:
    recorder = Recorder(slow={5})
    with fake("sync", FakeTokenMap(1), fail=recorder) as session:
        results = rxcql.execute_concurrent(
            session, inserts(64), batch="replica", raise_on_first_error=False
        )
    failed = [i for i, (ok, _) in enumerate(results) if not ok]
    assert failed == list(range(32))  # the whole first batch: it may have been applied
    assert all(isinstance(results[i][1], WriteTimeout) for i in failed)
    assert len(recorder.requests) == 2  # not re-run


def test_colliding_writes_never_share_a_batch() -> None:
    recorder = Recorder()
    items: list[tuple[Any, Any]] = []
    for i in range(400):
        k, c = i % 3, i % 5
        if i % 17 == 0:
            items.append((DELETE_PARTITION, (k,)))
        else:
            items.append((INSERT, (k, c, f"v{i}")))
    with fake("sync", FakeTokenMap(1), fail=recorder) as session:
        results = rxcql.execute_concurrent(session, items, batch="replica")
    assert all(ok for ok, _ in results)
    for rows in recorder.requests:
        # No row twice in one batch, and a partition delete alone with its partition.
        keys = [(k, c) for kind, k, c in rows if kind != 2]
        assert len(keys) == len(set(keys)), rows
        for kind, k, _ in rows:
            if kind == 2:
                assert [row for row in rows if row[1] == k] == [(2, k, -1)], rows
    # Every statement was sent once, and the writes to each row went out in input order.
    sent = [(kind, k, c) for rows in recorder.requests for kind, k, c in rows]
    assert len(sent) == 400
    expected = [
        (2, k, -1) if kind is DELETE_PARTITION else (0, k, c)
        for kind, (k, c, *_) in ((statement, (*parameters, -1)) for statement, parameters in items)
    ]
    for partition in range(3):
        assert [row for row in sent if row[1] == partition] == [
            row for row in expected if row[1] == partition
        ]


def test_conditional_writes_and_selects_run_alone_counters_batch_together() -> None:
    recorder = Recorder()
    items: list[tuple[Any, Any]] = []
    for i in range(60):
        items.append((INSERT, (i, i, "x")))
        if i % 10 == 0:
            items.append((CONDITIONAL, (i, i, "y")))
            items.append(("SELECT * FROM ks.t", None))
        items.append((COUNT, (1, i % 4)))
    with fake("sync", FakeTokenMap(1), fail=recorder) as session:
        results = rxcql.execute_concurrent(session, items, batch="replica")
    assert len(results) == len(items)
    assert all(ok for ok, _ in results)
    for rows in recorder.requests:
        kinds = {kind for kind, _, _ in rows}
        assert kinds <= {0, 2} or kinds == {3} or len(rows) == 1
    assert BatchType.COUNTER in recorder.batch_types


def test_statements_that_cannot_be_batched_keep_the_run_going() -> None:
    # A plain string statement, and a bind error, among batched ones.
    items: list[Any] = [*inserts(50), ("INSERT INTO ks.t (k) VALUES (1)", None), (INSERT, ("x",))]
    items += list(inserts(50))
    with fake("thread", FakeTokenMap(1)) as session:
        results = rxcql.execute_concurrent(
            session, items, batch="replica", raise_on_first_error=False
        )
    assert len(results) == 102
    assert [i for i, (ok, _) in enumerate(results) if not ok] == [51]


def test_raise_on_first_error_stops_issuing_and_raises_the_first_failure_in_order() -> None:
    recorder = Recorder(slow={40})
    with fake("sync", FakeTokenMap(1), fail=recorder) as session:
        with pytest.raises(WriteTimeout):
            rxcql.execute_concurrent(session, inserts(10_000), batch="replica")
        assert session.executed < 10_000 // 32


def test_every_consumer_gets_one_result_per_statement_in_order() -> None:
    with fake("thread", FakeTokenMap(3), order="reversed") as session:
        observable = rxcql.execute(session, list(inserts(2_000)), batch="replica", batch_size=8)
        observer = RecordingObserver()
        observable.subscribe(observer)
        observer.wait(30)
        assert [r.index for r in observer.items] == list(range(2_000))
        assert [r.index for r in rxcql.iterate(observable)] == list(range(2_000))
        collected = asyncio.run(rxcql.collect(observable))
        assert [r.index for r in collected] == list(range(2_000))
        generated = rxcql.execute_concurrent(
            session, inserts(2_000), batch="replica", results_generator=True
        )
        assert sum(1 for ok, _ in generated if ok) == 2_000
        assert (
            len(rxcql.execute_concurrent_async(session, inserts(500), batch="partition").result(30))
            == 500
        )


def test_the_window_counts_statements_and_bounds_what_is_pulled() -> None:
    with fake("manual", FakeTokenMap(1)) as session:
        results = rxcql.iterate(
            rxcql.execute(session, inserts(100_000), concurrency=4, batch="replica", batch_size=8)
        )
        run = results.run
        assert run is not None
        stats = run.statistics()
        assert stats.issued == 2 * 4 * 8  # the default window with batching
        assert stats.in_flight == 4  # requests
        assert session.executed == 4
        results.close()


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"batch": "rows"}, ValueError, 'batch must be None, "partition" or "replica"'),
        ({"batch": "replica", "batch_size": 0}, ValueError, "batch_size must be greater than 0"),
        ({"batch": "replica", "batch_bytes": "1k"}, TypeError, "batch_bytes must be an int"),
        ({"batch_size": 70_000}, ValueError, "batch_size must be at most 65535"),
    ],
)
def test_bad_batching_knobs_are_clear_errors(
    keywords: dict[str, Any], error: type[Exception], message: str
) -> None:
    with fake("sync") as session:
        with pytest.raises(error, match=message):
            rxcql.execute(session, inserts(1), **keywords)
        with pytest.raises(error, match=message):
            rxcql.execute_concurrent(session, inserts(1), **keywords)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    keys=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3)), min_size=0, max_size=120),
    bad=st.sets(st.integers(0, 6), max_size=2),
    batch_size=st.integers(1, 12),
    mode=st.sampled_from(BATCH_MODES),
    concurrency=st.integers(1, 8),
    ordered=st.booleans(),
)
def test_property_one_result_per_statement_in_place(
    keys: list[tuple[int, int]],
    bad: set[int],
    batch_size: int,
    mode: BatchMode,
    concurrency: int,
    ordered: bool,
) -> None:
    recorder = Recorder(bad=bad)
    items = [(INSERT, (k, c, "v")) for k, c in keys]
    with fake("thread", FakeTokenMap(2), order="random", fail=recorder) as session:
        observer = RecordingObserver()
        rxcql.execute(
            session,
            items,
            batch=mode,
            batch_size=batch_size,
            concurrency=concurrency,
            ordered=ordered,
            raise_on_first_error=False,
        ).subscribe(observer)
        observer.wait(30)
    assert observer.completed, observer.error
    indexes = [r.index for r in observer.items]
    assert sorted(indexes) == list(range(len(items)))
    if ordered:
        assert indexes == list(range(len(items)))
    for result in observer.items:
        key = keys[result.index][0]
        assert result.success == (key not in bad)
    for rows in recorder.requests:
        assert len(rows) <= batch_size
        pairs = [(k, c) for _, k, c in rows]
        assert len(pairs) == len(set(pairs))


def test_memory_does_not_grow_with_the_input_length_when_batching() -> None:
    def peak(n: int) -> int:
        with fake("sync", FakeTokenMap(3)) as session:
            return peak_memory.peak(
                n,
                lambda observer: rxcql.execute(
                    session, inserts(n), concurrency=8, batch="replica"
                ).subscribe(observer),
            )

    # Measured: 4.47 MB for 10,000 statements, 4.56 MB for 60,000 and 200,000. A leak of 16
    # bytes per statement would show as 800 KB here.
    small, large = peak(10_000), peak(60_000)
    assert large < small + 512 * 1024, (small, large)


def test_a_paused_consumer_holds_the_pulling_of_a_million_statements_at_the_window() -> None:
    with fake("thread", FakeTokenMap(3)) as session:
        statements = inserts(1_000_000)
        results = rxcql.iterate(
            rxcql.execute(session, statements, concurrency=8, batch="replica", batch_size=16)
        )
        taken = [next(results) for _ in range(100)]  # then the consumer pauses
        assert session.wait_idle(timeout=10)
        run = results.run
        assert run is not None
        stats = run.statistics()
        window = 2 * 8 * 16
        assert stats.issued <= window + len(taken)
        assert stats.ahead <= window
        assert stats.max_ahead <= window
        results.close()
    remaining = sum(1 for _ in statements)
    assert remaining >= 1_000_000 - window - len(taken)


def test_the_operator_batches_what_an_observable_pushes() -> None:
    # A push source has "no further item ready" after every push, so what is grouped is what
    # arrives while the one slot is busy: the first item goes alone, the rest in batches.
    recorder = Recorder()
    with fake("manual", FakeTokenMap(1), fail=recorder) as session:
        observer = RecordingObserver()
        reactivex.from_iterable([(k, k, "v") for k in range(500)]).pipe(
            cql_ops.execute(session, INSERT, batch="replica", batch_size=25, concurrency=1)
        ).subscribe(observer)
        while session.complete():
            pass
        observer.wait(30)
    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(500))
    assert all(r.success for r in observer.items)
    assert [len(rows) for rows in recorder.requests] == [1] + [25] * 19 + [24]


def test_a_retried_batch_keeps_its_statements_in_place() -> None:
    unavailable: BaseException = Unavailable(
        "no replicas", consistency=ConsistencyLevel.ONE, required_replicas=1
    )
    failed: set[tuple[tuple[int, ...], ...]] = set()

    def fail_once(index: int, statement: Any, parameters: Any) -> BaseException | None:
        rows = tuple(statement_rows(statement))
        if rows in failed or rows[0][1] % 20:  # every other batch of ten fails once
            return None
        failed.add(rows)
        return unavailable

    idempotent = prepared(
        INSERT.query_string, [(c.name, c.type) for c in INSERT.column_metadata], [0]
    )
    idempotent.is_idempotent = True
    with fake("sync", FakeTokenMap(1), fail=fail_once, clock="manual") as session:
        observer = RecordingObserver()
        rxcql.execute(
            session,
            [(idempotent, (i, i, "v")) for i in range(100)],
            retry=3,
            batch="replica",
            batch_size=10,
        ).subscribe(observer)
        for _ in range(1_000):
            if observer.completed or observer.error is not None:
                break
            session.advance(0.05)
    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(100))
    assert all(r.success for r in observer.items)
    assert failed  # some batches were retried


def test_with_a_rate_limit_a_push_sources_partial_batch_is_not_held_back() -> None:
    # The source has nothing more ready: the open batch goes, though the upstream never ends.
    from reactivex.subject import Subject

    with fake("thread", FakeTokenMap(1)) as session:
        upstream: Subject[Any] = Subject()
        five = threading.Event()
        observer = RecordingObserver(on_item=lambda _: five.set() if observer.count >= 5 else None)
        upstream.pipe(cql_ops.execute(session, INSERT, batch="replica", max_rate=10_000)).subscribe(
            observer
        )
        for k in range(5):
            upstream.on_next((k, k, "v"))
        assert five.wait(10), observer.count
        assert [r.index for r in observer.items] == list(range(5))
        upstream.on_completed()
