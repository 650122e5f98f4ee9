"""A real node that cannot keep up: Cassandra's native-transport rate limit
(``native_transport_rate_limiting_enabled: true``, 1,000 requests per second) on a scratch node
of its own (127.0.0.7, CQL port 19144). Over the limit the node stops reading requests
(``native_transport_throw_on_overload`` is false by default), so a client that keeps 1,024
requests in flight sees them queue: about a second each. ``concurrency="auto"`` must finish the
same load with no failures and a p99 latency well under that.

Latency is measured here, not by rxcql: a thin wrapper of the session times each request from
``execute_async`` to its callback.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra.cluster import Cluster, Session
from rxcql_dev import cassandra_cluster, cassandra_server
from rxcql_dev.cassandra_server import NodeSpec

import rxcql

pytestmark = pytest.mark.faults

HOST, PORT, STORAGE_PORT = "127.0.0.7", 19144, 17102
RATE = 1_000
ROWS = 5_000


@pytest.fixture(scope="module")
def limited_node() -> Iterator[NodeSpec]:
    spec = cassandra_cluster.single_node_spec(
        "overload",
        HOST,
        PORT,
        STORAGE_PORT,
        heap="1g",
        extra_yaml=(
            "native_transport_rate_limiting_enabled: true\n"
            f"native_transport_max_requests_per_second: {RATE}\n"
        ),
    )
    try:
        info = cassandra_server.start_node(spec, echo=lambda line: None)
    except Exception as error:
        pytest.fail(f"the rate-limited node on {HOST}:{PORT} did not start: {error}", pytrace=False)
    try:
        yield spec
    finally:
        if info.started:
            cassandra_server.stop_node(spec)


@pytest.fixture(scope="module")
def limited_session(limited_node: NodeSpec) -> Iterator[Session]:
    cluster = Cluster(contact_points=[limited_node.contact_point], protocol_version=5)
    session = cluster.connect()
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS overload "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        timeout=30,
    )
    session.execute("DROP TABLE IF EXISTS overload.rows", timeout=30)
    session.execute("CREATE TABLE overload.rows (id int PRIMARY KEY, v text)", timeout=30)
    session.set_keyspace("overload")
    try:
        yield session
    finally:
        cluster.shutdown()


class Timed:
    """The session, timing every request it sends (``latencies``, in seconds)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._lock = threading.Lock()
        self.latencies: list[float] = []
        self._in_flight = 0
        #: The most requests in flight at once.
        self.peak = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        sent = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        future = self._session.execute_async(*args, **kwargs)

        def done(_: Any) -> None:
            with self._lock:
                self._in_flight -= 1
                self.latencies.append(time.monotonic() - sent)

        future.add_callbacks(done, done)
        return future

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * share)]

    def p99(self) -> float:
        return self.percentile(0.99)

    def __str__(self) -> str:
        return (
            f"p50 {self.percentile(0.5):.3f} s, p90 {self.percentile(0.9):.3f} s, "
            f"p99 {self.p99():.3f} s, at most {self.peak} in flight"
        )


def load(session: Session, concurrency: Any, offset: int) -> tuple[Timed, list[Any]]:
    insert = session.prepare("INSERT INTO rows (id, v) VALUES (?, ?)")
    timed = Timed(session)
    results = rxcql.execute_concurrent_with_args(
        timed,
        insert,
        [(offset + i, f"value {i}") for i in range(ROWS)],
        concurrency=concurrency,
        raise_on_first_error=False,
    )
    return timed, results


def test_auto_keeps_latency_low_where_a_fixed_1024_queues(limited_session: Session) -> None:
    # The latencies are the client's too: a full collection of this test process's heap (large
    # after hundreds of tests and Ray's import) stalls every request in flight at once, which
    # at 64 in flight is more than 1% of them. Measure the limiter, not the collector.
    gc.collect()
    gc.disable()
    try:
        fixed, fixed_results = load(limited_session, 1024, 0)
        auto, auto_results = load(limited_session, "auto", ROWS)
    finally:
        gc.enable()
    assert all(ok for ok, _ in auto_results), [r for ok, r in auto_results if not ok][:3]
    assert len(auto.latencies) == ROWS
    count = limited_session.execute(
        "SELECT count(*) FROM rows WHERE id >= %s AND id < %s ALLOW FILTERING", (ROWS, 2 * ROWS)
    ).one()[0]
    assert count == ROWS
    # The fixed run queued about a second's worth of requests; auto kept p99 a third of it or less.
    assert fixed.p99() > 0.5, f"the node did not queue: fixed {fixed}"
    assert auto.p99() < fixed.p99() / 3, f"auto {auto}; fixed {fixed}"
    assert len(fixed_results) == ROWS
