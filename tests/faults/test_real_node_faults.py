"""A real Cassandra node freezes (SIGSTOP) in the middle of a 100,000-insert run.

The node is a scratch one of its own (127.0.0.5, CQL port 19142, storage port 17100, its own
directory, started with ``rxcql_dev.cassandra_server``), never the shared node on
9042, so freezing it hurts nobody else's tests. With a 2 s client request timeout the statements
caught by the pause time out in their place (``OperationTimedOut``, or ``WriteTimeout`` if the
node answers late); the run must still end with exactly one result per statement, and every
statement reported successful must be readable afterwards. The JVM is resumed in ``finally``
blocks whatever happens.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import pytest
from cassandra import OperationTimedOut, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import SimpleStatement
from rxcql_dev import cassandra_cluster, cassandra_server
from rxcql_dev.cassandra_server import NodeSpec

import rxcql
from rxcql.testing import RecordingObserver

from .support import failures, fault_after, inserts, payload, run

pytestmark = pytest.mark.faults

HOST, PORT, STORAGE_PORT = "127.0.0.5", 19142, 17100
ROWS = 40_000
PAUSE_AFTER = 12_000
PAUSE_SECONDS = 5.0
REQUEST_TIMEOUT = 2.0
RETRIED_PAUSE_SECONDS = 3.0


@pytest.fixture(scope="module")
def scratch_node() -> Iterator[NodeSpec]:
    spec = cassandra_cluster.single_node_spec("faults", HOST, PORT, STORAGE_PORT, heap="1g")
    try:
        info = cassandra_server.start_node(spec, echo=lambda line: None)
    except Exception as error:
        pytest.fail(f"the scratch node on {HOST}:{PORT} did not start: {error}", pytrace=False)
    try:
        yield spec
    finally:
        cassandra_server.resume_node(spec)
        if info.started:
            cassandra_server.stop_node(spec)


@pytest.fixture
def scratch_session(scratch_node: NodeSpec) -> Iterator[Session]:
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), request_timeout=REQUEST_TIMEOUT
    )
    cluster = Cluster(
        contact_points=[scratch_node.contact_point],
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    session = cluster.connect()
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS faults "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        timeout=30,
    )
    session.execute("DROP TABLE IF EXISTS faults.rows", timeout=30)
    session.execute("CREATE TABLE faults.rows (id int PRIMARY KEY, payload text)", timeout=30)
    session.set_keyspace("faults")
    try:
        yield session
    finally:
        cluster.shutdown()


def pausing(
    node: NodeSpec, seconds: float, paused: dict[str, float]
) -> Callable[[RecordingObserver], None]:
    """The fault: freeze ``node`` (SIGSTOP) for ``seconds``, noting in ``paused`` how many
    results had arrived when it froze (``at``) and when it was resumed (``resumed_at``)."""

    def pause_then_resume(observer: RecordingObserver) -> None:
        try:
            cassandra_server.pause_node(node)
            paused["at"] = observer.count
            time.sleep(seconds)  # the fault lasts this long
        finally:
            cassandra_server.resume_node(node)
            paused["resumed_at"] = observer.count

    return pause_then_resume


@pytest.mark.timeout(900)
def test_a_paused_node_gives_timeouts_in_place_and_every_success_is_stored(
    scratch_node: NodeSpec, scratch_session: Session
) -> None:
    session = scratch_session
    insert = session.prepare("INSERT INTO rows (id, payload) VALUES (?, ?)")
    paused: dict[str, float] = {}
    pause_then_resume = pausing(scratch_node, PAUSE_SECONDS, paused)

    began = time.monotonic()
    try:
        with fault_after(PAUSE_AFTER, pause_then_resume, join=60) as observer:
            run(
                session,
                inserts(insert, ROWS),
                observer=observer,
                timeout=600,
                concurrency=100,
                raise_on_first_error=False,
            )
    finally:
        cassandra_server.resume_node(scratch_node)
    run_seconds = time.monotonic() - began

    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(ROWS))
    failed = failures(observer)
    kinds = {type(e).__name__ for e in failed.values()}
    print(
        f"\npaused node: {ROWS} inserts in {run_seconds:.1f} s; paused after {paused.get('at')} "
        f"results for {PAUSE_SECONDS:.0f} s; {len(failed)} failed ({', '.join(sorted(kinds))})"
    )
    assert all(isinstance(e, OperationTimedOut | WriteTimeout) for e in failed.values()), kinds
    assert failed  # the pause was felt
    assert min(failed) >= PAUSE_AFTER - 100

    select = SimpleStatement("SELECT id, payload FROM rows", fetch_size=5_000)
    stored = {row.id: row.payload for row in session.execute(select, timeout=120)}
    succeeded = [r.index for r in observer.items if r.success]
    assert set(succeeded) <= set(stored)
    assert all(value == payload(i) for i, value in stored.items())
    sample = random.Random(9).sample(succeeded, 200)
    lookup = session.prepare("SELECT payload FROM rows WHERE id = ?")
    assert [session.execute(lookup, (i,)).one().payload for i in sample] == [
        payload(i) for i in sample
    ]


@pytest.mark.timeout(900)
def test_with_retries_a_paused_node_costs_time_and_no_row(
    scratch_node: NodeSpec, scratch_session: Session
) -> None:
    session = scratch_session
    insert = session.prepare("INSERT INTO rows (id, payload) VALUES (?, ?)")
    insert.is_idempotent = True
    paused: dict[str, float] = {}
    pause_then_resume = pausing(scratch_node, RETRIED_PAUSE_SECONDS, paused)

    reports: list[rxcql.Progress] = []
    began = time.monotonic()
    try:
        with fault_after(PAUSE_AFTER, pause_then_resume, join=60) as observer:
            run(
                session,
                inserts(insert, ROWS),
                observer=observer,
                timeout=600,
                concurrency=100,
                raise_on_first_error=False,
                retry=rxcql.Retry(attempts=8),
                progress=reports.append,
            )
    finally:
        cassandra_server.resume_node(scratch_node)
    run_seconds = time.monotonic() - began

    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(ROWS))
    print(
        f"\npaused node with retries: {ROWS} inserts in {run_seconds:.1f} s; paused after "
        f"{paused.get('at')} results for {RETRIED_PAUSE_SECONDS:.0f} s; "
        f"{reports[-1].retries} retries"
    )
    assert failures(observer) == {}
    assert reports[-1].retries > 0  # the pause was felt, and retried
    select = SimpleStatement("SELECT id, payload FROM rows", fetch_size=5_000)
    stored = {row.id: row.payload for row in session.execute(select, timeout=120)}
    assert stored == {i: payload(i) for i in range(ROWS)}
