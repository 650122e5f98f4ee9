"""rxcql.execute against Simulacron: chosen latencies, errors, timeouts and closed connections.

Every statement is ``SELECT k FROM faults WHERE k = ?`` bound to its input position ``k`` and
primed (by its binding) with what the simulated node answers: the row ``k`` after a chosen delay,
or an error. The driver's retry policy is ``FallthroughRetryPolicy`` (see conftest), so what a
statement gets is what Simulacron answered, deterministically.

Simulacron's delays run on a 100 ms timer wheel: a delay of 1-99 ms answers after about 100 ms,
100-199 ms after about 200 ms, and so on (0 is immediate). Random latencies are therefore drawn
from 0-450 ms, which spreads answers over five distinct ticks.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from cassandra import (
    AlreadyExists,
    FunctionFailure,
    InvalidRequest,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unauthorized,
    Unavailable,
    WriteFailure,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable, Session
from cassandra.connection import ConnectionException
from cassandra.protocol import (
    ConfigurationException,
    IsBootstrappingErrorMessage,
    OverloadedErrorMessage,
    ServerError,
    SyntaxException,
    TruncateError,
)
from rxcql_dev import simulacron as sim

import rxcql
from rxcql.testing import RecordingObserver

from .conftest import SHORT_TIMEOUT, SHORT_TIMEOUT_PROFILE
from .support import CountingSession, failures, fault_after, run

pytestmark = pytest.mark.faults

QUERY = "SELECT k FROM faults WHERE k = ?"
PARAM_TYPES = {"k": "int"}
#: What the driver raises when a connection goes away under a request, or none is left.
CONNECTION_ERRORS = (ConnectionException, NoHostAvailable, OperationTimedOut)


def row(k: int, delay_ms: int = 0) -> dict[str, Any]:
    return sim.success(rows=[{"k": k}], column_types={"k": "int"}, delay_ms=delay_ms)


def prime(cluster: sim.SimCluster, answers: Mapping[int, Mapping[str, Any]]) -> None:
    for k, then in answers.items():
        cluster.prime(QUERY, then, params={"k": k}, param_types=PARAM_TYPES)


def statements(session: Session, count: int) -> list[tuple[Any, tuple[int]]]:
    prepared = session.prepare(QUERY)
    return [(prepared, (k,)) for k in range(count)]


def random_rows(count: int, max_delay_ms: int = 450, seed: int = 0) -> dict[int, dict[str, Any]]:
    rng = random.Random(seed)
    return {k: row(k, rng.randint(0, max_delay_ms)) for k in range(count)}


def keys_of(observer: RecordingObserver) -> list[int]:
    return [r.result_or_exc.one().k for r in observer.items]


# --------------------------------------------------------------------------------------------
# Ordering and demand under random latencies


def test_results_come_in_input_order_under_random_latencies(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, concurrency = 300, 32
    prime(sim_cluster, random_rows(count, seed=1))
    counting = CountingSession(sim_session)

    observer = run(counting, statements(sim_session, count), concurrency=concurrency)

    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(count))
    assert keys_of(observer) == list(range(count))
    assert (counting.executed, counting.max_in_flight <= concurrency) == (count, True)


def test_unordered_results_carry_their_index_one_per_input(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count = 300
    prime(sim_cluster, random_rows(count, seed=2))

    observer = run(sim_session, statements(sim_session, count), concurrency=32, ordered=False)

    assert observer.completed, observer.error
    indexes = [r.index for r in observer.items]
    assert sorted(indexes) == list(range(count))
    assert indexes != sorted(indexes)  # random latencies really reordered completions
    assert [r.result_or_exc.one().k for r in observer.items] == indexes


def test_each_statement_reaches_the_server_exactly_once(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count = 200
    prime(sim_cluster, random_rows(count, seed=3))
    items = statements(sim_session, count)
    sim_cluster.clear_log()

    observer = run(sim_session, items, concurrency=32)

    assert observer.completed, observer.error
    executed = sim_cluster.query_log(types=("EXECUTE",))
    assert (len(executed), all(q.primed for q in executed)) == (count, True)


class DemandObserver(RecordingObserver):
    """Asks for one more statement per result delivered (reactive-streams style demand)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._owed = 0
        self.handle: Any = None

    def on_next(self, value: Any) -> None:
        super().on_next(value)
        with self._lock:
            handle = self.handle
            if handle is None:  # delivered inside subscribe_with_demand, before attach
                self._owed += 1
                return
        handle.request(1)

    def attach(self, handle: Any) -> None:
        with self._lock:
            self.handle = handle
            owed, self._owed = self._owed, 0
        if owed:
            handle.request(owed)


def test_demand_bounds_hold_when_the_first_statement_is_slow(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, concurrency, window = 400, 8, 24
    answers = random_rows(count, max_delay_ms=0)
    answers[0] = row(0, delay_ms=600)  # head-of-line blocking: the window must fill, not grow
    prime(sim_cluster, answers)
    observable = rxcql.execute(
        sim_session, statements(sim_session, count), concurrency=concurrency, window=window
    )
    observer = DemandObserver()

    handle = observable.subscribe_with_demand(observer)
    assert handle is not None
    observer.attach(handle)
    observer.wait(60)

    assert observer.completed, observer.error
    assert keys_of(observer) == list(range(count))
    assert handle.max_in_flight <= concurrency
    assert handle.max_buffered == window  # reached while statement 0 was slow, never passed


# --------------------------------------------------------------------------------------------
# Server errors, in place


SERVER_ERRORS: list[tuple[dict[str, Any], type[BaseException]]] = [
    (sim.result("read_timeout"), ReadTimeout),
    (sim.result("write_timeout"), WriteTimeout),
    (sim.result("unavailable"), Unavailable),
    (sim.result("overloaded"), OverloadedErrorMessage),
    (sim.result("server_error"), ServerError),
    (sim.result("is_bootstrapping"), IsBootstrappingErrorMessage),
    (sim.result("read_failure"), ReadFailure),
    (sim.result("write_failure"), WriteFailure),
    (sim.result("truncate_error", message="truncate failed"), TruncateError),
    (sim.result("invalid", message="invalid"), InvalidRequest),
    (sim.result("syntax_error", message="syntax"), SyntaxException),
    (sim.result("unauthorized", message="no"), Unauthorized),
    (sim.result("config_error", message="config"), ConfigurationException),
    (sim.result("already_exists", message="exists", keyspace="ks", table="t"), AlreadyExists),
    (
        sim.result(
            "function_failure", function="f", arg_types=["int"], detail="failed", keyspace="ks"
        ),
        FunctionFailure,
    ),
]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
def test_every_server_error_surfaces_as_the_driver_exception_in_place(
    sim_cluster: sim.SimCluster, sim_session: Session, ordered: bool
) -> None:
    count = 20 * len(SERVER_ERRORS)
    answers = random_rows(count, seed=5)
    expected: dict[int, type[BaseException]] = {}
    rng = random.Random(6)
    for n, (then, exc_type) in enumerate(SERVER_ERRORS):
        k = 20 * n + 7
        answers[k] = {**then, "delay_in_ms": rng.randint(0, 450)}
        expected[k] = exc_type
    prime(sim_cluster, answers)

    observer = run(
        sim_session,
        statements(sim_session, count),
        concurrency=32,
        raise_on_first_error=False,
        ordered=ordered,
    )

    assert observer.completed, observer.error
    assert sorted(r.index for r in observer.items) == list(range(count))
    got = {k: type(exc) for k, exc in failures(observer).items()}
    assert got == expected
    good = [r for r in observer.items if r.success]
    assert all(r.result_or_exc.one().k == r.index for r in good)


def test_first_error_ends_the_stream_after_the_results_before_it(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, concurrency, failing = 300, 10, 137
    answers = random_rows(count, max_delay_ms=0)
    answers[failing] = sim.result("write_timeout", delay_ms=50)
    prime(sim_cluster, answers)
    counting = CountingSession(sim_session)

    observer = run(
        counting, statements(sim_session, count), concurrency=concurrency, window=2 * concurrency
    )

    assert isinstance(observer.error, WriteTimeout)
    assert keys_of(observer) == list(range(failing))
    # Nothing new is issued once the failure is known: at most a window past it ran.
    assert counting.executed <= failing + 1 + 2 * concurrency


def test_first_error_in_input_order_wins_over_an_earlier_completing_later_one(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count = 40
    answers = {k: row(k, delay_ms=100) for k in range(count)}
    answers[10] = sim.result("write_timeout", delay_ms=300)
    answers[30] = sim.result("read_timeout", delay_ms=0)  # fails first in time, later in the input
    prime(sim_cluster, answers)

    observer = run(sim_session, statements(sim_session, count), concurrency=count)

    assert isinstance(observer.error, WriteTimeout)
    assert keys_of(observer) == list(range(10))


# --------------------------------------------------------------------------------------------
# Client-side timeouts


def test_client_timeouts_surface_as_operation_timed_out_in_place(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, run_timeout = 120, 30.0
    # The slow answers come long after the run may last: a run that waited for them instead of
    # its 0.5 s request timeout could not end in time (run() raises TimeoutError).
    slow_ms = int(2 * run_timeout * 1000)
    answers = random_rows(count, max_delay_ms=150, seed=8)
    answers[7] = row(7, delay_ms=slow_ms)
    answers[63] = row(63, delay_ms=slow_ms)
    answers[100] = sim.result("no_result")  # never answered
    prime(sim_cluster, answers)
    items = statements(sim_session, count)
    sim_cluster.clear_log()
    counting = CountingSession(sim_session)

    observer = run(
        counting,
        items,
        timeout=run_timeout,
        concurrency=12,
        raise_on_first_error=False,
        execution_profile=SHORT_TIMEOUT_PROFILE,
    )

    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(count))
    assert {k: type(e) for k, e in failures(observer).items()} == dict.fromkeys(
        (7, 63, 100), OperationTimedOut
    )
    # Every statement was sent once, none again after its timeout: the run went on past the
    # slow ones instead of waiting for (or re-sending) them.
    executed = sim_cluster.query_log(types=("EXECUTE",))
    assert (counting.executed, len(executed)) == (count, count)


# --------------------------------------------------------------------------------------------
# Connections closed under the run


def assert_one_result_each_and_only_connection_errors(
    observer: RecordingObserver, count: int
) -> dict[int, BaseException]:
    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(count))
    failed = failures(observer)
    unexpected = {k: e for k, e in failed.items() if not isinstance(e, CONNECTION_ERRORS)}
    assert unexpected == {}
    good = [r for r in observer.items if r.success]
    assert all(r.result_or_exc.one().k == r.index for r in good)
    return failed


def test_a_statement_that_closes_its_connection_fails_and_the_run_ends(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, concurrency, closing = 300, 10, 150
    answers = {k: row(k, delay_ms=0) for k in range(count)}
    answers[closing] = sim.result("close_connection", delay_ms=50)
    prime(sim_cluster, answers)

    observer = run(
        sim_session,
        statements(sim_session, count),
        concurrency=concurrency,
        raise_on_first_error=False,
        timeout=60,
    )

    failed = assert_one_result_each_and_only_connection_errors(observer, count)
    assert closing in failed
    assert min(failed) > closing - concurrency  # only statements in flight with it, and after


def test_connections_closed_mid_run_by_the_server_end_the_run_cleanly(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, trigger = 3_000, 1_000
    prime(sim_cluster, {k: row(k) for k in range(count)})
    closed: list[str] = []

    def close(_: RecordingObserver) -> None:
        closed.extend(sim_cluster.close_connections())

    with fault_after(trigger, close) as observer:
        run(
            sim_session,
            statements(sim_session, count),
            observer=observer,
            concurrency=20,
            raise_on_first_error=False,
        )

    assert closed  # the connections really were closed under the run
    failed = assert_one_result_each_and_only_connection_errors(observer, count)
    assert failed  # and the run felt it
    assert min(failed) > trigger


def test_reads_paused_mid_run_time_out_in_place_and_the_run_recovers(
    sim_cluster: sim.SimCluster, sim_session: Session
) -> None:
    count, trigger = 3_000, 300
    prime(sim_cluster, {k: row(k) for k in range(count)})

    def pause_reads(_: RecordingObserver) -> None:
        sim_cluster.pause_reads()
        time.sleep(3 * SHORT_TIMEOUT)  # the fault lasts this long
        sim_cluster.resume_reads()

    with fault_after(trigger, pause_reads) as observer:
        run(
            sim_session,
            statements(sim_session, count),
            observer=observer,
            timeout=90,
            concurrency=20,
            raise_on_first_error=False,
            execution_profile=SHORT_TIMEOUT_PROFILE,
        )

    failed = assert_one_result_each_and_only_connection_errors(observer, count)
    assert failed  # the pause was felt
    assert min(failed) > trigger
    assert observer.items[-1].success  # and the run recovered after it
