"""max_rate, max_errors and progress reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import rxcql
from rxcql import _controls
from rxcql.testing import FakeSession, RecordingObserver


def pairs(n: int) -> Iterator[tuple[str, tuple[int]]]:
    return (("q", (i,)) for i in range(n))


def run(observable: Any) -> RecordingObserver:
    observer = RecordingObserver()
    observable.subscribe(observer)
    return observer.wait(60)


def test_the_token_bucket_grants_at_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    bucket = _controls.RateLimiter(100, burst=10)
    assert bucket.take(50) == (1, 0.0)  # one permit to start with
    granted, wait = bucket.take(50)
    assert granted == 0
    assert wait == pytest.approx(0.01)
    now[0] += 0.05
    assert bucket.take(50)[0] == 5
    now[0] += 10
    assert bucket.take(50)[0] == 10  # never more than the burst


def test_max_rate_holds_a_run_back() -> None:
    with FakeSession("thread") as session:
        started = time.monotonic()
        observer = run(rxcql.execute(session, pairs(300), max_rate=1_000))
        took = time.monotonic() - started
    assert len(observer.items) == 300
    assert took >= 0.2  # 300 statements at 1,000/s with a burst of 100 take at least 0.2 s


def test_max_errors_as_a_count_ends_the_run() -> None:
    with FakeSession("thread", fail=lambda i, s, p: ValueError(i) if i % 10 == 0 else None) as s:
        observer = run(
            rxcql.execute(s, pairs(10_000), raise_on_first_error=False, max_errors=5, concurrency=4)
        )
    assert isinstance(observer.error, rxcql.TooManyErrorsError)
    assert "6 statements failed" in str(observer.error)
    assert [r.index for r in observer.items] == list(range(len(observer.items)))
    assert sum(not r.success for r in observer.items) >= 6
    assert s.executed < 100


def test_max_errors_as_a_share() -> None:
    with FakeSession("thread", fail=lambda i, s, p: ValueError(i) if i % 2 == 0 else None) as s:
        observer = run(rxcql.execute(s, pairs(10_000), raise_on_first_error=False, max_errors=0.2))
    assert isinstance(observer.error, rxcql.TooManyErrorsError)
    assert s.executed < 1_000


def test_a_share_below_the_threshold_completes() -> None:
    with FakeSession("thread", fail=lambda i, s, p: ValueError(i) if i % 50 == 0 else None) as s:
        observer = run(rxcql.execute(s, pairs(2_000), raise_on_first_error=False, max_errors=0.05))
    assert observer.completed
    assert len(observer.items) == 2_000


def test_progress_reports_counts_and_a_final_report() -> None:
    reports: list[rxcql.Progress] = []
    with FakeSession("thread", fail=lambda i, s, p: ValueError() if i < 3 else None) as session:
        run(
            rxcql.execute(
                session,
                pairs(5_000),
                raise_on_first_error=False,
                progress=reports.append,
                progress_interval=0,
            )
        )
    assert len(reports) > 1
    final = reports[-1]
    assert final.done
    assert (final.issued, final.completed, final.failed, final.in_flight) == (5_000, 5_000, 3, 0)
    assert final.rate > 0
    completed = [p.completed for p in reports]
    assert completed == sorted(completed)


def test_a_failing_progress_callback_is_switched_off_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(progress: rxcql.Progress) -> None:
        raise RuntimeError("bar")

    with FakeSession("thread") as session:
        observer = run(rxcql.execute(session, pairs(100), progress=broken, progress_interval=0))
    assert observer.completed
    assert any("progress reporting is off" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_rate": 0}, ValueError),
        ({"max_rate": "fast"}, TypeError),
        ({"max_errors": -1}, ValueError),
        ({"max_errors": 1.5}, ValueError),
        ({"max_errors": "x"}, TypeError),
        ({"progress": 5}, TypeError),
        ({"progress_interval": -1}, ValueError),
    ],
)
def test_bad_control_arguments(kwargs: dict[str, Any], error: type) -> None:
    with FakeSession("sync") as session, pytest.raises(error):
        rxcql.execute(session, pairs(1), **kwargs)
