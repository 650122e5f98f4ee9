"""rxcql.from_response_future: one driver future as a cold Observable."""

from __future__ import annotations

import pytest
from cassandra.cluster import ResponseFuture, ResultSet
from cassandra.connection import Timer

import rxcql
from rxcql._future import release_timer
from rxcql.testing import FakeSession, RecordingObserver


def test_emits_the_result_set_and_completes() -> None:
    with FakeSession("thread") as session:
        observer = RecordingObserver()
        rxcql.from_response_future(session.execute_async("q", (7,))).subscribe(observer)
        observer.wait(5)
    assert observer.completed
    assert len(observer.items) == 1
    assert isinstance(observer.items[0], ResultSet)
    assert observer.items[0].one() == (7,)
    assert observer.threads == {"fake-io-0"}


def test_a_failed_future_is_on_error() -> None:
    boom = ValueError("x")
    with FakeSession("thread", fail=lambda i, s, p: boom) as session:
        observer = RecordingObserver()
        rxcql.from_response_future(session.execute_async("q")).subscribe(observer)
        observer.wait(5)
    assert observer.error is boom
    assert observer.items == []


def test_an_already_completed_future_emits_synchronously_inside_subscribe() -> None:
    with FakeSession("sync") as session:
        future = session.execute_async("q", (1,))
        observer = RecordingObserver()
        rxcql.from_response_future(future).subscribe(observer)
        assert observer.completed  # before any waiting
        assert observer.items[0].one() == (1,)


def test_it_is_cold_nothing_is_attached_before_subscribe() -> None:
    with FakeSession("manual") as session:
        future = session.execute_async("q", (1,))
        observable = rxcql.from_response_future(future)
        assert future._callbacks == []
        first, second = RecordingObserver(), RecordingObserver()
        observable.subscribe(first)
        observable.subscribe(second)
        session.complete()
        first.wait(5)
        second.wait(5)
    assert first.items[0].one() == second.items[0].one() == (1,)


def test_disposing_before_the_result_drops_it() -> None:
    with FakeSession("manual") as session:
        future = session.execute_async("q", (1,))
        observer = RecordingObserver()
        rxcql.from_response_future(future).subscribe(observer).dispose()
        session.complete()
    assert observer.items == []
    assert not observer.done


def test_an_object_that_is_not_a_future_is_rejected() -> None:
    with pytest.raises(TypeError, match="needs a driver ResponseFuture"):
        rxcql.from_response_future(42)  # type: ignore[arg-type]


def _finished_future(timer: Timer | None) -> ResponseFuture:
    future = ResponseFuture.__new__(ResponseFuture)  # the driver's class, without a session
    future._timer = timer
    return future


def test_release_timer_breaks_the_cycle_through_a_cancelled_timer() -> None:
    future = _finished_future(None)
    timer = Timer(60, future._on_timeout)  # what the driver creates: future -> timer -> future
    future._timer = timer
    timer.cancel()
    release_timer(future)
    assert timer.callback is None
    assert future._timer is timer  # the future's own state is untouched (no new timer on paging)
    assert timer.finish(timer.end + 1)  # a cancelled timer is done without calling anything


def test_release_timer_leaves_a_running_timer_and_other_futures_alone() -> None:
    calls: list[int] = []
    running = Timer(60, lambda: calls.append(1))
    release_timer(_finished_future(running))
    assert running.callback is not None
    assert running.finish(running.end + 1)
    assert calls == [1]
    release_timer(_finished_future(None))  # no timer (timeout=None)
    with FakeSession("sync") as session:
        release_timer(session.execute_async("q"))  # not the driver's future: nothing to do
