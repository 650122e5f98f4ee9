"""``rxcql.ProcessPool`` on the real node: 200,000 inserts through two workers with every
result in place and flat memory, read back once each through ``pool.scan_table``; the last
write in input order wins across workers; the first error stops every worker; unordered runs;
a SIGKILLed worker."""

from __future__ import annotations

import functools
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra.cluster import Cluster, Session

import rxcql
from rxcql import ProcessPool, WorkerError

from .pool_connect import connect, connect_jittery

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pool(cluster: Cluster, keyspace: str) -> Iterator[ProcessPool]:
    with ProcessPool(
        functools.partial(connect, list(cluster.contact_points), keyspace), processes=2
    ) as started:
        yield started


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"pool_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v text)")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_200k_inserts_through_two_workers(pool: ProcessPool, session: Session, table: str) -> None:
    n = 200_000
    insert = f"INSERT INTO {table} (k, v) VALUES (?, ?)"
    pids = [os.getpid(), *pool.pids]
    memory: dict[int, list[float]] = {pid: [] for pid in pids}
    expected = 0
    with rxcql.iterate(
        pool.execute(
            ((insert, (k, f"v{k}")) for k in range(n)),
            batch="replica",
            retry=rxcql.Retry(attempts=3, idempotent_only=False),
        )
    ) as results:
        for result in results:
            assert result.index == expected
            assert result.success, result.result_or_exc
            assert result.result_or_exc == []
            expected += 1
            if expected in (50_000, n):
                for pid in pids:
                    memory[pid].append(rss_mib(pid))
    assert expected == n
    for pid, (early, late) in memory.items():
        assert late - early < 40, f"process {pid} grew from {early:.0f} to {late:.0f} MiB"
    seen = list(rxcql.iterate(pool.scan_table(f"{session.keyspace}.{table}", splits=64)))
    assert len(seen) == n
    assert sorted(seen) == [(k, f"v{k}") for k in range(n)]


def test_the_last_write_in_input_order_wins_across_workers(
    cluster: Cluster, keyspace: str, session: Session
) -> None:
    name = f"pool_lww_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v int)")
    insert = f"INSERT INTO {name} (k, v) VALUES (?, ?)"
    keys, size = 10_000, 5

    def items() -> Iterator[tuple[str, tuple[int, int]]]:
        # Chunks in pairs: one writes v=0 to five keys, the next v=1 to the same keys. The two
        # chunks of a pair go to different workers at once, whose sends pause now and then (one
        # lags behind the other): every key is a race that input order must win.
        for block in range(0, keys, size):
            for v in (0, 1):
                for k in range(block, block + size):
                    yield insert, (k, v)

    with ProcessPool(
        functools.partial(connect_jittery, list(cluster.contact_points), keyspace),
        processes=2,
        chunk_size=size,
        chunks_per_worker=4,
    ) as pool:
        results = list(rxcql.iterate(pool.execute(items(), concurrency=100)))
    assert len(results) == 2 * keys
    assert all(r.success for r in results)
    final = dict(session.execute(f"SELECT k, v FROM {name}"))
    lost = sorted(k for k in range(keys) if final.get(k) != 1)
    assert not lost, f"{len(lost)} keys kept the earlier write, e.g. {lost[:5]}"


def test_the_first_error_stops_every_worker(
    pool: ProcessPool, session: Session, table: str
) -> None:
    insert = f"INSERT INTO {table} (k, v) VALUES (?, ?)"

    def items() -> Iterator[tuple[str, Any]]:
        for k in range(100_000):
            # An int for a text column: the worker's bind fails, a failure of that statement.
            yield insert, (k, 5 if k == 3_000 else f"v{k}")

    with pytest.raises(Exception, match="encode") as raised:
        list(rxcql.iterate(pool.execute(items())))
    assert not isinstance(raised.value, WorkerError)
    written = rxcql.count_table(session, f"{session.keyspace}.{table}")
    # What was out when the error was known: the parent's window of chunks (4 out, 8 ahead).
    assert 3_000 <= written < 3_000 + 12 * pool.chunk_size, written


def test_unordered_every_statement_once(pool: ProcessPool, table: str) -> None:
    insert = f"INSERT INTO {table} (k, v) VALUES (?, ?)"
    results = list(
        rxcql.iterate(pool.execute(((insert, (k, "x")) for k in range(20_000)), ordered=False))
    )
    assert sorted(r.index for r in results) == list(range(20_000))
    assert all(r.success for r in results)


def test_a_killed_worker_is_named(cluster: Cluster, keyspace: str, table: str) -> None:
    insert = f"INSERT INTO {table} (k, v) VALUES (?, ?)"
    with ProcessPool(
        functools.partial(connect, list(cluster.contact_points), keyspace), processes=2
    ) as pool:
        victim = pool.pids[0]

        def items() -> Iterator[tuple[str, Any]]:
            for k in range(1_000_000):
                if k == 5_000:
                    os.kill(victim, signal.SIGKILL)
                yield insert, (k, "x")

        with pytest.raises(
            WorkerError, match=rf"pid {victim}\) died \(signal SIGKILL\); lost chunk"
        ):
            list(rxcql.iterate(pool.execute(items())))
