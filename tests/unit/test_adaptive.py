"""``concurrency="auto"``: the adaptive limit on requests in flight.

The cluster is :mod:`queue_model`: ``servers`` parallel servers taking ``service`` seconds each,
so latency is flat up to ``servers`` requests in flight and throughput flat above (the knee),
and optionally ``Overloaded`` above a capacity. It runs on a manual clock: a simulated minute
takes a second or two of the test's time, and nothing sleeps.
"""

from __future__ import annotations

import math
import statistics
import threading
from typing import Any

import pytest
from cassandra.protocol import OverloadedErrorMessage

import rxcql
from rxcql._adaptive import AdaptiveConcurrency, AdaptiveLimit
from rxcql.testing import FakeSession

from .queue_model import QueueModelSession, simulate


def statements(n: int) -> list[tuple[str, tuple[int]]]:
    return [("INSERT", (i,)) for i in range(n)]


def limit_at(changes: list[tuple[float, int, str]], initial: int, when: float) -> int:
    """The limit in force at simulated time ``when``."""
    limit = initial
    for at, new, _ in changes:
        if at > when:
            break
        limit = new
    return limit


def limits_between(
    changes: list[tuple[float, int, str]], initial: int, start: float, end: float
) -> list[int]:
    """The limit sampled every 10 ms of simulated time in [start, end)."""
    steps = int((end - start) / 0.01)
    return [limit_at(changes, initial, start + k * 0.01) for k in range(steps)]


def check_one_result_each(observer: Any, n: int) -> None:
    assert observer.error is None, observer.error
    assert [r.index for r in observer.items] == list(range(n))


@pytest.mark.parametrize(("servers", "service"), [(16, 0.02), (64, 0.05), (200, 0.1)])
def test_the_limit_settles_near_the_knee(servers: int, service: float) -> None:
    session = QueueModelSession(servers=servers, service=service)
    throughput = servers / service
    n = int(throughput * 15)  # 15 simulated seconds
    observer = simulate(session, rxcql.execute(session, statements(n), concurrency="auto"))
    check_one_result_each(observer, n)
    changes = observer.run.limit_changes
    assert any(reason == "slow start" for _, _, reason in changes)
    settled = limits_between(changes, 32, 5.0, session.now)
    # Most of the time at or just above the knee (steps of 25% probe both ways around it).
    assert servers * 0.75 <= statistics.median(settled) <= servers * 2, settled[::50]
    # ... and the run got the cluster's throughput: within 10% of what its capacity allows.
    assert n / session.now >= 0.9 * throughput


class ClientBoundSession(QueueModelSession):
    """A client that is its own bottleneck: one server (the client's thread) whose time per
    request falls with the requests in flight (the driver reads more responses per wake-up),
    ``base * (1 + 2 / sqrt(n))``, times ``1 + n / peak`` with a ``peak`` (a node that suffers
    from too many requests in flight). Its CPU clock runs with the clock when ``busy`` (one
    core, all the time), else stands still."""

    def __init__(self, base: float, peak: float | None = None, busy: bool = True) -> None:
        super().__init__(servers=1, service=base)
        self.base = base
        self.peak = peak
        self.busy = busy
        #: The run's limit changes (set by run_client_bound).
        self.limit_changes: list[tuple[float, int, str]] = []

    def per_request(self, n: int) -> float:
        return self.base * (1 + 2 / math.sqrt(n)) * (1 + n / self.peak if self.peak else 1.0)

    def cpu_clock(self) -> float:
        return self.now if self.busy else 0.0

    def _start(self, future: Any) -> None:
        self.service = self.per_request(self._busy + len(self._queue) + 1)
        super()._start(future)


def run_client_bound(session: ClientBoundSession, seconds: float) -> tuple[float, float, int]:
    """Run ``seconds`` of simulated time at about the best rate; (statements per second over the
    second half, the best fixed rate of the model, the median limit over the second half)."""
    best = max(1 / session.per_request(n) for n in (8, 32, 128, 512, 2048))
    n = int(best * seconds)
    observer = simulate(session, rxcql.execute(session, statements(n), concurrency="auto"))
    check_one_result_each(observer, n)
    half = session.now / 2
    done_at = sorted(session.finished)
    second_half = sum(1 for at in done_at if at >= half) / (session.now - half)
    session.limit_changes = observer.run.limit_changes
    settled = limits_between(session.limit_changes, 32, half, session.now)
    return second_half, best, int(statistics.median(settled))


def test_a_bound_client_climbs_to_where_its_throughput_is() -> None:
    # 1,478 statements/s at 32 in flight, 1,700 at 128, 1,838 at 512, 1,915 at 2,048: latency
    # doubles with each doubling of the limit, throughput gains 2-8%.
    rate, best, limit = run_client_bound(ClientBoundSession(base=0.0005), 20.0)
    assert rate >= 0.9 * best, (rate, best, limit)
    assert limit >= 256, limit


def test_a_client_that_is_not_bound_keeps_the_latency_brake() -> None:
    # The same curve, the process idle: the limit stays low (the gain per doubling is below
    # what a doubling of latency asks for), as on a cluster that is the bottleneck.
    _, _, limit = run_client_bound(ClientBoundSession(base=0.0005, busy=False), 20.0)
    assert limit <= 128, limit


class BusyQueueModelSession(QueueModelSession):
    """The knee model of a saturated cluster, with a client process busy all the same (a
    consumer or parser of its own using 0.8 of a core)."""

    def cpu_clock(self) -> float:
        return 0.8 * self.now


def test_a_busy_client_does_not_climb_past_a_saturated_cluster() -> None:
    # Throughput is flat past 16 in flight: however busy the client, a doubling that gains
    # nothing does not pay, and the limit comes down to the knee as for an idle client.
    session = BusyQueueModelSession(servers=16, service=0.02)
    n = int(16 / 0.02 * 15)
    observer = simulate(session, rxcql.execute(session, statements(n), concurrency="auto"))
    check_one_result_each(observer, n)
    changes = observer.run.limit_changes
    assert max(limit for _, limit, _ in changes) <= 64, changes[:10]
    settled = limits_between(changes, 32, 5.0, session.now)
    assert statistics.median(settled) <= 32, settled[::50]


def test_a_bound_client_stops_where_throughput_falls() -> None:
    # A node that suffers from many requests in flight: 358 statements/s at 32, 377 at 128
    # (the best), 304 at 512, 157 at 2,048.
    session = ClientBoundSession(base=0.002, peak=1000.0)
    rate, best, limit = run_client_bound(session, 30.0)
    assert rate >= 0.9 * best, (rate, best, limit)
    assert 16 <= limit <= 256, limit
    # Slow start turned back where a doubling stopped paying: never near 2,048.
    assert max(new for _, new, _ in session.limit_changes) <= 256


def test_the_limit_shrinks_on_overload_and_recovers_after() -> None:
    # Capacity 100 in flight, then Overloaded above 20 from t=6 s to t=12 s, then healthy again.
    def reject_above(now: float) -> int | None:
        return 20 if 6.0 <= now < 12.0 else None

    session = QueueModelSession(servers=100, service=0.05, reject_above=reject_above)
    n = 2000 * 20
    retry = rxcql.Retry(attempts=30, base_delay=0.01, max_delay=0.2, idempotent_only=False)
    observable = rxcql.execute(session, statements(n), concurrency="auto", retry=retry)
    observer = simulate(session, observable)
    check_one_result_each(observer, n)
    assert all(r.success for r in observer.items)  # every Overloaded was retried to success
    assert session.overloaded > 0
    changes = observer.run.limit_changes
    assert statistics.median(limits_between(changes, 32, 3.0, 6.0)) >= 75
    assert any(reason == "overload" and 6.0 <= at < 12.0 for at, _, reason in changes)
    assert statistics.median(limits_between(changes, 32, 8.0, 12.0)) <= 25
    assert statistics.median(limits_between(changes, 32, 17.0, session.now)) >= 75


def test_without_retries_overloaded_statements_are_reported_in_place() -> None:
    session = QueueModelSession(servers=100, service=0.05, reject_above=20)
    n = 4000
    observable = rxcql.execute(
        session, statements(n), concurrency="auto", raise_on_first_error=False
    )
    observer = simulate(session, observable)
    check_one_result_each(observer, n)
    failed = [r for r in observer.items if not r.success]
    assert len(failed) == session.overloaded > 0
    assert all(isinstance(r.result_or_exc, OverloadedErrorMessage) for r in failed)
    # After the first losses the limit stays near the capacity (no more than a few rounds of
    # losses): far fewer failures than statements.
    assert len(failed) < n / 10


def test_the_window_follows_the_limit() -> None:
    session = QueueModelSession(servers=8, service=0.01)
    bounds = AdaptiveConcurrency(initial=4, min=2, max=64)
    n = 20_000
    observable = rxcql.execute(session, statements(n), concurrency=bounds)
    assert observable.options.window == 128  # sized for the max...
    observer = simulate(session, observable)
    check_one_result_each(observer, n)
    changes = observer.run.limit_changes
    highest = max([4, *(limit for _, limit, _ in changes)])
    stats = observer.run.statistics()
    # ... but what is issued ahead of delivery follows the limit.
    assert stats.max_in_flight <= highest
    assert stats.max_ahead <= 2 * highest
    assert highest < 64


def test_progress_reports_the_limit_and_latency_percentiles() -> None:
    session = QueueModelSession(servers=10, service=0.02)
    reports: list[rxcql.Progress] = []
    observable = rxcql.execute(
        session,
        statements(3000),
        concurrency="auto",
        progress=reports.append,
        progress_interval=0.0,  # the simulation runs faster than real time: every pass
    )
    observer = simulate(session, observable)
    check_one_result_each(observer, 3000)
    assert reports
    assert reports[-1].done
    with_latency = [r for r in reports if r.latency_p50 is not None]
    assert with_latency
    # Latency in the model is the service time plus queueing: never below it.
    assert all(r.latency_p50 >= 0.02 - 1e-9 for r in with_latency)  # type: ignore[operator]
    assert all(r.latency_p99 >= r.latency_p50 for r in with_latency)  # type: ignore[operator]
    assert {r.concurrency for r in reports} <= set(range(4, 2049))
    assert any(r.concurrency != 32 for r in reports)


def test_a_fixed_concurrency_reports_itself_and_its_latency() -> None:
    with FakeSession(mode="thread", latency=0.001) as session:
        reports: list[rxcql.Progress] = []
        results = list(
            rxcql.iterate(
                rxcql.execute(
                    session,
                    statements(500),
                    concurrency=7,
                    progress=reports.append,
                    progress_interval=0.0,
                )
            )
        )
    assert len(results) == 500
    assert {r.concurrency for r in reports} == {7}
    assert any(r.latency_p99 is not None and r.latency_p99 >= 0.001 for r in reports)


def test_a_rate_limit_caps_the_limit() -> None:
    # max_rate keeps the requests in flight well under the limit: the run is application
    # limited, so the limiter has no reason to grow (and does not).
    with FakeSession(mode="thread", latency=0.002) as session:
        observable = rxcql.execute(session, statements(1500), concurrency="auto", max_rate=1000)
        iterator = rxcql.iterate(observable)
        run = iterator._run
        results = list(iterator)
    assert len(results) == 1500
    assert all(limit <= 32 for _, limit, _ in run.limit_changes)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: rxcql.execute_concurrent_with_args(s, "q", [(i,) for i in range(300)], "auto"),
        lambda s: rxcql.execute_concurrent(
            s, [("q", (i,)) for i in range(300)], concurrency=AdaptiveConcurrency(initial=8)
        ),
        lambda s: list(
            rxcql.execute_concurrent_with_args(
                s, "q", [(i,) for i in range(300)], concurrency="auto", results_generator=True
            )
        ),
        lambda s: rxcql.execute_concurrent_async(
            s, [("q", (i,)) for i in range(300)], concurrency="auto"
        ).result(timeout=30),
    ],
    ids=["with_args", "explicit bounds", "generator", "async"],
)
def test_the_drop_in_calls_take_auto(call: Any) -> None:
    with FakeSession(mode="thread", latency=0.0005) as session:
        results = call(session)
    assert len(results) == 300
    assert all(r.success for r in results)
    assert [r.result_or_exc.one() for r in results] == [(i,) for i in range(300)]


def test_the_operator_takes_auto() -> None:
    import reactivex
    from reactivex import operators as ops

    from rxcql import operators as cql_ops

    with FakeSession(mode="thread", latency=0.0005) as session:
        done = threading.Event()
        got: list[Any] = []
        reactivex.from_iterable(range(400)).pipe(
            ops.map(lambda i: (i,)),
            cql_ops.execute(session, "q", concurrency="auto"),
        ).subscribe(got.append, lambda e: done.set(), done.set)
        assert done.wait(30)
    assert [r.result_or_exc.one() for r in got] == [(i,) for i in range(400)]


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("fast", TypeError, "'auto'"),
        (AdaptiveConcurrency, TypeError, "must be an int"),
    ],
)
def test_a_bad_concurrency_is_a_clear_error(value: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        rxcql.execute(FakeSession(), [], concurrency=value)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"min": 0}, ValueError, "min must be at least 1"),
        ({"initial": 1, "min": 4}, ValueError, "min <= initial <= max"),
        ({"initial": 64, "max": 32}, ValueError, "min <= initial <= max"),
        ({"max": 2.5}, TypeError, "max must be an int"),
        ({"initial": True}, TypeError, "initial must be an int"),
    ],
)
def test_bad_bounds_are_a_clear_error(kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        AdaptiveConcurrency(**kwargs)


def test_a_window_below_the_min_is_refused() -> None:
    with pytest.raises(ValueError, match="adaptive concurrency's min"):
        rxcql.execute(FakeSession(), [], concurrency="auto", window=2)


# -- the limiter alone ---------------------------------------------------------------------


def test_an_overload_halves_the_limit_at_once_and_once_per_latency() -> None:
    limiter = AdaptiveLimit(AdaptiveConcurrency(initial=64), now=0.0)
    for k in range(300):  # a healthy round (of 0.6 s): median latency 10 ms
        limiter.sample(0.002 * k, 0.010, 1, 64, False)
    limit = limiter.limit
    limiter.sample(0.7, 0.010, 1, 64, True)
    assert limiter.limit == round(limit / 2)
    limiter.sample(0.705, 0.010, 1, 64, True)  # within one median latency: the same loss
    assert limiter.limit == round(limit / 2)
    limiter.sample(0.72, 0.010, 1, 64, True)
    assert limiter.limit == round(limit / 4)


def test_the_limit_never_leaves_its_bounds() -> None:
    bounds = AdaptiveConcurrency(initial=8, min=5, max=12)
    limiter = AdaptiveLimit(bounds, now=0.0)
    now = 0.0
    for k in range(5000):
        now += 0.001
        limiter.sample(now, 0.001, 1, limiter.limit, k % 7 == 0 and k > 2500)
        assert 5 <= limiter.limit <= 12


def feed_rounds(limiter: AdaptiveLimit, start: float, rounds: int, latency: float) -> float:
    """Rounds of 0.6 s at 1,000 completions a second, each request ``latency`` long, the
    limit always in use."""
    now = start
    for _ in range(rounds * 600):
        now += 0.001
        limiter.sample(now, latency, 1, limiter.limit, False)
    return now


def test_a_latency_spike_cuts_the_limit_but_a_new_level_does_not_ratchet_it() -> None:
    limiter = AdaptiveLimit(AdaptiveConcurrency(initial=64), now=0.0)
    now = feed_rounds(limiter, 0.0, 12, 0.010)  # slow start ends, probing settles
    before = limiter.limit
    now = feed_rounds(limiter, now, 1, 0.200)  # a stall: 20x the recent level
    assert limiter.changes[-1][2] == "latency"
    assert limiter.limit < before
    cuts = sum(1 for _, _, reason in limiter.changes if reason == "latency")
    # Latency stays at the new level (a slower cluster): the recent level follows it, and the
    # cuts stop within a few rounds instead of driving the limit to its floor.
    feed_rounds(limiter, now, 30, 0.200)
    later_cuts = sum(1 for _, _, reason in limiter.changes if reason == "latency") - cuts
    assert later_cuts <= 3
