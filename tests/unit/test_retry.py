"""Retries with backoff on the fake session, driven by its manual clock (no sleeps)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from cassandra import ConsistencyLevel, InvalidRequest, Unavailable, WriteTimeout, WriteType
from cassandra.query import SimpleStatement

import rxcql
from rxcql import Retry
from rxcql.testing import FakeSession, RecordingObserver


def idempotent(query: str = "INSERT INTO t (k) VALUES (%s)") -> SimpleStatement:
    return SimpleStatement(query, is_idempotent=True)


def timeout() -> WriteTimeout:
    return WriteTimeout("timed out", write_type=WriteType.SIMPLE)


def unavailable() -> Unavailable:
    return Unavailable("no replicas", consistency=ConsistencyLevel.ONE, required_replicas=1)


class FailFirst:
    """``fail=`` for the fake: the first ``times`` attempts of every statement fail with
    ``error()``; counts the attempts per statement (by its parameters)."""

    def __init__(self, times: int, error: Any = timeout) -> None:
        self.times = times
        self.error = error
        self.attempts: Counter[Any] = Counter()

    def __call__(self, index: int, statement: Any, parameters: Any) -> BaseException | None:
        key = tuple(parameters) if parameters is not None else statement
        self.attempts[key] += 1
        if self.attempts[key] <= self.times:
            failure: BaseException = self.error()
            return failure
        return None


def drive(session: FakeSession, observer: RecordingObserver, step: float = 0.05) -> None:
    """Move the manual clock on until the stream ends (each step fires the due retries)."""
    for _ in range(10_000):
        assert session.wait_idle(timeout=10)  # what was sent has completed
        if observer.completed or observer.error is not None:
            return
        session.advance(step)
    raise AssertionError("the stream did not end")


def run(session: FakeSession, items: list[Any], **options: Any) -> RecordingObserver:
    observer = RecordingObserver()
    rxcql.execute(session, items, **options).subscribe(observer)
    drive(session, observer)
    return observer


def test_retries_wait_growing_delays_and_every_statement_ends_in_success() -> None:
    fail = FailFirst(times=3)
    with FakeSession("sync", clock="manual", fail=fail) as session:
        items = [(idempotent(), (i,)) for i in range(20)]
        observer = run(
            session, items, retry=Retry(attempts=5, base_delay=0.1, jitter=False), concurrency=4
        )
    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(20))
    assert all(r.success for r in observer.items)
    assert set(fail.attempts.values()) == {4}
    assert sorted(set(session.timer_delays)) <= [0.1, 0.2, 0.4]
    assert {0.1, 0.2, 0.4} <= set(round(d, 6) for d in session.timer_delays)


def test_retries_stop_after_the_attempts_and_the_last_error_is_the_result() -> None:
    fail = FailFirst(times=100)
    with FakeSession("sync", clock="manual", fail=fail) as session:
        observer = run(
            session,
            [(idempotent(), (i,)) for i in range(5)],
            retry=Retry(attempts=3, base_delay=0.05, jitter=False),
            raise_on_first_error=False,
        )
    assert [r.success for r in observer.items] == [False] * 5
    assert all(isinstance(r.result_or_exc, WriteTimeout) for r in observer.items)
    assert set(fail.attempts.values()) == {3}


def test_jittered_delays_stay_under_the_cap() -> None:
    policy = Retry(attempts=10, base_delay=0.1, max_delay=0.5)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(1, 10) for _ in range(50)]
    assert all(0.0 <= d <= 0.5 for d in delays)
    assert max(delays) > 0.3  # full jitter reaches towards the cap
    assert Retry(jitter=False, base_delay=0.1, max_delay=0.5).delay(9, rng) == 0.5


def test_statements_not_marked_idempotent_are_not_retried_by_default() -> None:
    fail = FailFirst(times=1)
    with FakeSession("sync", clock="manual", fail=fail) as session:
        observer = run(
            session,
            [("INSERT INTO t (k) VALUES (%s)", (i,)) for i in range(5)],
            retry=3,
            raise_on_first_error=False,
        )
    assert [r.success for r in observer.items] == [False] * 5
    assert set(fail.attempts.values()) == {1}
    assert session.timer_delays == []


@pytest.mark.parametrize(
    ("query", "error", "retried"),
    [
        ("INSERT INTO t (k) VALUES (%s)", timeout, True),
        ("INSERT INTO t (k) VALUES (%s) IF NOT EXISTS", timeout, False),
        ("INSERT INTO t (k) VALUES (%s) IF NOT EXISTS", unavailable, True),
        ("UPDATE c SET n = n + 1 WHERE k = %s", timeout, False),
        ("UPDATE c SET n = n + 1 WHERE k = %s", unavailable, True),
        ("INSERT INTO t (k, v) VALUES (%s, 'IF')", timeout, True),
    ],
)
def test_without_idempotent_only_writes_that_may_have_been_applied_are_not_repeated(
    query: str, error: Any, retried: bool
) -> None:
    fail = FailFirst(times=1, error=error)
    with FakeSession("sync", clock="manual", fail=fail) as session:
        observer = run(
            session,
            [(query, (i,)) for i in range(3)],
            retry=Retry(attempts=3, idempotent_only=False),
            raise_on_first_error=False,
        )
    assert [r.success for r in observer.items] == [retried] * 3
    assert set(fail.attempts.values()) == {2 if retried else 1}


def test_request_errors_are_never_retried() -> None:
    fail = FailFirst(times=1, error=lambda: InvalidRequest("bad"))
    with FakeSession("sync", clock="manual", fail=fail) as session:
        observer = run(
            session,
            [(idempotent(), (i,)) for i in range(3)],
            retry=5,
            raise_on_first_error=False,
        )
    assert [r.success for r in observer.items] == [False] * 3
    assert set(fail.attempts.values()) == {1}


def test_a_waiting_retry_keeps_its_slot() -> None:
    fail = FailFirst(times=2)
    with FakeSession("thread", clock="manual", fail=fail) as session:
        observer = RecordingObserver()
        rxcql.execute(
            session,
            [(idempotent(), (i,)) for i in range(50)],
            retry=Retry(attempts=5, base_delay=1.0, jitter=False),
            concurrency=3,
        ).subscribe(observer)
        assert session.wait_idle(timeout=10)
        # Three statements failed and wait for their retry: nothing else was issued.
        assert session.executed == 3
        assert session.max_in_flight <= 3
        drive(session, observer, step=0.5)
    assert observer.completed, observer.error
    assert [r.index for r in observer.items] == list(range(50))


def test_progress_reports_retries_and_the_statements_waiting() -> None:
    reports: list[rxcql.Progress] = []
    fail = FailFirst(times=1)
    with FakeSession("sync", clock="manual", fail=fail) as session:
        observer = RecordingObserver()
        rxcql.execute(
            session,
            [(idempotent(), (i,)) for i in range(4)],
            retry=Retry(base_delay=1.0, jitter=False),
            progress=reports.append,
            progress_interval=0.0,
        ).subscribe(observer)
        assert observer.count == 0  # every statement waits for its retry
        drive(session, observer, step=0.5)
    assert observer.completed
    assert reports[-1].done
    assert reports[-1].retries == 4
    assert reports[-1].waiting == 0
    assert reports[-1].completed == 4


@pytest.mark.parametrize(
    ("value", "error"),
    [("3", TypeError), (0, ValueError), (True, TypeError)],
)
def test_bad_retry_values_are_clear_errors(value: Any, error: type[Exception]) -> None:
    with FakeSession("sync") as session, pytest.raises(error, match=r"retry|Retry"):
        rxcql.execute(session, [("q", None)], retry=value)
