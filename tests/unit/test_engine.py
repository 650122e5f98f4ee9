"""rxcql.execute: ordering, demand, errors, disposal and threads, with the fake session."""

from __future__ import annotations

import gc
import itertools
import logging
import re
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from cassandra.concurrent import ExecutionResult as DriverExecutionResult
from reactivex.scheduler import EventLoopScheduler

import rxcql
from rxcql import _skeleton
from rxcql.testing import FakeSession, RecordingObserver

from . import peak_memory


def pairs(n: int, statement: str = "q") -> Iterator[tuple[str, tuple[int]]]:
    return ((statement, (i,)) for i in range(n))


class CountingInput:
    """An input generator that counts how many items were pulled."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0

    def __iter__(self) -> Iterator[tuple[str, tuple[int]]]:
        for i in range(self.n):
            self.pulled += 1
            yield ("q", (i,))


def run(observable: reactivex.Observable[Any], timeout: float = 60) -> RecordingObserver:
    observer = RecordingObserver()
    observable.subscribe(observer)
    return observer.wait(timeout)


def assert_in_order(results: list[Any], n: int) -> None:
    assert len(results) == n
    for i, result in enumerate(results):
        assert result.success, result
        assert result.index == i
        assert result.result_or_exc.one() == (i,)


@pytest.mark.parametrize(
    ("mode", "order", "threads"),
    [
        ("sync", "in_order", 1),
        ("thread", "in_order", 1),
        ("thread", "reversed", 1),
        ("thread", "random", 3),
    ],
)
def test_results_arrive_in_input_order_for_50k_statements(
    mode: Any, order: Any, threads: int
) -> None:
    with FakeSession(mode, order, threads=threads) as session:
        observer = run(rxcql.execute(session, pairs(50_000)))
    assert observer.error is None
    assert observer.completed
    assert_in_order(observer.items, 50_000)


def test_results_are_driver_execution_results_with_result_sets() -> None:
    with FakeSession("sync") as session:
        observer = run(rxcql.execute(session, pairs(3)))
    first = observer.items[0]
    assert isinstance(first, DriverExecutionResult)
    success, result_set = first
    assert success is True
    assert list(result_set) == [(0,)]
    assert first == DriverExecutionResult(True, first.result_or_exc)


def test_unordered_results_arrive_in_completion_order_with_their_index() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(10), ordered=False).subscribe(observer)
        session.complete(order="reversed")
        observer.wait(5)
    assert [r.index for r in observer.items] == list(range(9, -1, -1))
    assert [r.result_or_exc.one() for r in observer.items] == [(i,) for i in range(9, -1, -1)]


def test_ordered_results_wait_for_earlier_statements() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(10)).subscribe(observer)
        session.complete(order="reversed")
        observer.wait(5)
    assert [r.index for r in observer.items] == list(range(10))


def test_nothing_runs_before_subscription_and_each_subscription_runs_once() -> None:
    with FakeSession("sync") as session:
        observable = rxcql.execute(session, [("q", (i,)) for i in range(50)])
        assert session.executed == 0
        run(observable)
        assert session.executed == 50
        run(observable)
        assert session.executed == 100


def test_in_flight_never_exceeds_concurrency() -> None:
    with FakeSession("thread", "random", threads=3, latency=0.0005) as session:
        observer = run(rxcql.execute(session, pairs(5_000), concurrency=17))
    assert len(observer.items) == 5_000
    assert session.max_in_flight <= 17
    assert session.max_in_flight == 17  # and the slots are actually used


def test_input_is_pulled_only_when_a_slot_is_free() -> None:
    source = CountingInput(1_000)
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, source, concurrency=10).subscribe(observer)
        assert source.pulled == 10
        assert session.executed == 10
        session.complete(count=3)
        assert source.pulled == 13
        while session.complete():
            pass
        observer.wait(5)
    assert len(observer.items) == 1_000


def test_issued_ahead_of_a_paused_consumer_stays_within_the_window() -> None:
    source = CountingInput(100_000)
    with FakeSession("sync") as session:
        observer = RecordingObserver()
        handle = rxcql.execute(session, source, concurrency=10, window=30).subscribe_with_demand(
            observer
        )
        assert handle is not None
        # The consumer has acknowledged nothing: exactly one window of statements ran.
        assert session.executed == 30
        assert len(observer.items) == 30
        handle.request(5)
        assert session.executed == 35
        handle.dispose()
    assert source.pulled == 35


def test_head_of_line_blocking_is_bounded_by_the_window() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(10_000), concurrency=8, window=24).subscribe(observer)
        head = session.pending.pop(0)  # statement 0 never completes until we say so
        assert head.index == 0
        while session.complete():
            pass
        # Everything behind statement 0 completed, yet only a window was issued.
        assert session.executed == 24
        assert observer.items == []
        head.complete()
        while session.complete():
            pass
        observer.wait(5)
    assert_in_order(observer.items, 10_000)


def test_default_window_is_twice_the_concurrency() -> None:
    with FakeSession("manual") as session:
        rxcql.execute(session, pairs(1_000), concurrency=5).subscribe(RecordingObserver())
        session.pending.pop(0)
        while session.complete():
            pass
        assert session.executed == 10


def test_memory_does_not_grow_with_the_input_length() -> None:
    def peak(n: int) -> int:
        with FakeSession("sync") as session:
            return peak_memory.peak(
                n,
                lambda observer: rxcql.execute(session, pairs(n), concurrency=50).subscribe(
                    observer
                ),
            )

    # Measured: 10.80 MB for 10,000, 60,000 and 200,000 statements (within 2 KB). A leak of 8
    # bytes per statement would show as 400 KB here.
    small, large = peak(10_000), peak(60_000)
    assert large < small + 256 * 1024, (small, large)


def test_first_error_ends_the_stream_after_the_results_before_it() -> None:
    boom = ValueError("boom")
    with FakeSession(
        "thread", "reversed", fail=lambda i, s, p: boom if i == 500 else None
    ) as session:
        observer = run(rxcql.execute(session, pairs(2_000), concurrency=50))
    assert observer.error is boom
    assert_in_order(observer.items, 500)


def test_nothing_is_issued_once_a_failure_is_known() -> None:
    with FakeSession("manual", fail=lambda i, s, p: ValueError("x") if i == 3 else None) as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(1_000), concurrency=10).subscribe(observer)
        failing = next(f for f in session.pending if f.index == 3)
        session.pending.remove(failing)
        failing.complete()
        assert session.executed == 10
        while session.complete():
            pass
        observer.wait(5)
    assert session.executed == 10
    assert isinstance(observer.error, ValueError)
    assert [r.index for r in observer.items] == [0, 1, 2]


def test_failures_stay_in_place_when_not_raising() -> None:
    with FakeSession(
        "thread", "random", fail=lambda i, s, p: ValueError(str(i)) if i % 7 == 0 else None
    ) as session:
        observer = run(rxcql.execute(session, pairs(1_000), raise_on_first_error=False))
    assert observer.completed
    assert len(observer.items) == 1_000
    for i, result in enumerate(observer.items):
        assert result.index == i
        assert result.success is (i % 7 != 0)
        if i % 7 == 0:
            assert str(result.result_or_exc) == str(i)


def test_unordered_first_error_ends_the_stream() -> None:
    with FakeSession("thread", fail=lambda i, s, p: KeyError(i) if i == 10 else None) as session:
        observer = run(rxcql.execute(session, pairs(1_000), ordered=False))
    assert isinstance(observer.error, KeyError)
    assert 10 not in {r.index for r in observer.items}


@pytest.mark.parametrize("failure", ["errback", "execute_async"])
def test_synchronous_failures_do_not_recurse_for_100k_statements(failure: str) -> None:
    def exc(i: int, s: Any, p: Any) -> Exception:
        return RuntimeError(i)

    kwargs: dict[str, Any] = {"fail": exc} if failure == "errback" else {"raise_in_execute": exc}
    with FakeSession("sync", **kwargs) as session:
        observer = run(rxcql.execute(session, pairs(100_000), raise_on_first_error=False))
    assert observer.completed
    assert len(observer.items) == 100_000
    assert not any(r.success for r in observer.items)
    assert observer.items[-1].result_or_exc.args == (99_999,)


def test_synchronous_completions_do_not_recurse() -> None:
    # A hundred times Python's recursion limit, one statement at a time.
    with FakeSession("sync") as session:
        observer = run(rxcql.execute(session, pairs(100_000), concurrency=1, window=1))
    assert len(observer.items) == 100_000


def test_execute_async_raising_is_the_statements_failure() -> None:
    bind_error = TypeError("wrong number of parameters")

    def session() -> FakeSession:
        return FakeSession(
            "thread", raise_in_execute=lambda i, s, p: bind_error if i == 4 else None
        )

    with session() as first, session() as second:
        not_raising = run(rxcql.execute(first, pairs(10), raise_on_first_error=False))
        raising = run(rxcql.execute(second, pairs(10)))
    assert not_raising.items[4] == (False, bind_error)
    assert raising.error is bind_error
    assert len(raising.items) == 4


def test_an_input_iterator_that_raises_ends_the_stream_after_earlier_results() -> None:
    def broken() -> Iterator[tuple[str, tuple[int]]]:
        yield from pairs(250)
        raise OSError("disk gone")

    with FakeSession("thread", "random") as session:
        observer = run(rxcql.execute(session, broken(), concurrency=20))
    assert type(observer.error) is OSError
    assert observer.error.__notes__ == [
        "rxcql had pulled 250 statements from statements_and_parameters when its iterator "
        "raised this; nothing more was issued"
    ]
    assert_in_order(observer.items, 250)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("SELECT 1", "not a (statement, parameters) pair"),
        (("q", (1,), "extra"), "not a (statement, parameters) pair"),
        (42, "not a (statement, parameters) pair"),
        ((42, (1,)), "statement that is not a str"),
        (("q", "abc"), "parameters that are not a sequence"),
        (("q", 7), "parameters that are not a sequence"),
    ],
)
def test_a_malformed_item_ends_the_stream_with_a_clear_error(item: Any, message: str) -> None:
    items = [("q", (0,)), ("q", (1,)), item, ("q", (3,))]
    with FakeSession("thread") as session:
        observer = run(rxcql.execute(session, items))
    assert isinstance(observer.error, rxcql.InvalidItemError)
    assert message in str(observer.error)
    assert observer.error.index == 2
    assert len(observer.items) == 2
    assert session.executed == 2


def test_accepted_item_shapes() -> None:
    items: list[Any] = [["q", [1]], ("q", None), ("q", {"k": 1})]
    with FakeSession("sync") as session:
        observer = run(rxcql.execute(session, items))
    assert observer.completed
    assert len(observer.items) == 3


def test_an_observer_that_raises_ends_the_stream_and_leaves_the_session_usable() -> None:
    def explode(result: Any) -> None:
        if result.index == 5:
            raise ZeroDivisionError("observer bug")

    with FakeSession("thread", "random", threads=2) as session:
        observer = RecordingObserver(on_item=explode)
        rxcql.execute(session, pairs(10_000)).subscribe(observer)
        observer.wait(10)
        assert isinstance(observer.error, rxcql.ObserverError)
        assert isinstance(observer.error.__cause__, ZeroDivisionError)
        executed = session.executed
        assert executed < 10_000
        # The completion ("IO") threads are not wedged: the session still runs statements.
        again = run(rxcql.execute(session, pairs(100)))
        assert_in_order(again.items, 100)


def test_an_observer_without_on_error_does_not_break_the_io_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def on_next(result: Any) -> None:
        seen.append(result.index)
        if result.index == 3:
            raise ValueError("boom")

    with FakeSession("thread") as session:
        rxcql.execute(session, pairs(100)).subscribe(on_next)  # no on_error
        second = run(rxcql.execute(session, pairs(50)))
        assert len(second.items) == 50
    assert seen == [0, 1, 2, 3]
    assert any("on_error/on_completed" in r.message for r in caplog.records)


def test_disposing_stops_issuing_and_drops_late_results() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        subscription = rxcql.execute(session, pairs(1_000), concurrency=10).subscribe(observer)
        session.complete(count=4)
        subscription.dispose()
        executed = session.executed
        while session.complete():
            pass
    assert session.executed == executed == 14
    assert len(observer.items) == 4
    assert not observer.done


def test_disposing_inside_on_next_stops_a_synchronous_run() -> None:
    subscription: list[Any] = []
    with FakeSession("sync") as session:
        observable = rxcql.execute(session, pairs(100_000), concurrency=4, window=4)

        def on_next(result: Any) -> None:
            if result.index == 10:
                subscription[0].dispose()

        # A synchronous run happens inside subscribe(), before its disposable is returned, so
        # dispose through a subject-like indirection that is set up first.
        sub: reactivex.Subject[Any] = reactivex.Subject()
        sub.subscribe(on_next)
        subscription.append(observable.subscribe(sub))
        assert session.executed < 100_000


def test_no_callback_keeps_a_disposed_run_alive() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        ref = weakref.ref(observer)
        subscription = rxcql.execute(session, pairs(100)).subscribe(observer)
        subscription.dispose()
        del observer, subscription
        while session.complete():
            pass
        gc.collect()
        assert ref() is None


def test_execution_profile_reaches_execute_async() -> None:
    with FakeSession("sync") as session:
        session.record_profiles = True
        run(rxcql.execute(session, pairs(5), execution_profile="analytics"))
    assert session.profiles == ["analytics"] * 5


def test_a_shut_down_session_is_a_clear_error() -> None:
    session = FakeSession("sync")
    session.shutdown()
    observer = run(rxcql.execute(session, pairs(5)))
    assert isinstance(observer.error, rxcql.SessionClosedError)


def test_a_session_shut_down_mid_run_ends_the_stream() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(1_000), concurrency=5, raise_on_first_error=False).subscribe(
            observer
        )
        session.complete(count=2)
        session.is_shutdown = True
        while session.complete():
            pass
        observer.wait(5)
    assert isinstance(observer.error, rxcql.SessionClosedError)
    # 0 and 1 completed before the shutdown and freed slots for 5 and 6; all seven are delivered.
    assert [r.index for r in observer.items] == list(range(7))


def test_failures_from_a_session_shut_down_mid_run_end_the_stream() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        rxcql.execute(session, pairs(1_000), concurrency=5, raise_on_first_error=False).subscribe(
            observer
        )
        session.is_shutdown = True  # what the driver then does: fail what is in flight
        session.fail = lambda i, s, p: RuntimeError("Pool is shutdown")
        while session.complete():
            pass
        observer.wait(5)
    assert isinstance(observer.error, rxcql.SessionClosedError)
    assert [r.success for r in observer.items] == [False] * 5  # in place, then the end
    assert session.executed == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"concurrency": 0}, ValueError, "concurrency must be greater than 0"),
        ({"concurrency": -3}, ValueError, "concurrency must be greater than 0"),
        ({"concurrency": 2.5}, TypeError, "concurrency must be an int"),
        ({"concurrency": True}, TypeError, "concurrency must be an int"),
        ({"window": 5, "concurrency": 10}, ValueError, "window (5) must be at least"),
        ({"ordered": "yes"}, TypeError, "ordered must be a bool"),
        ({"raise_on_first_error": None}, TypeError, "raise_on_first_error must be a bool"),
        ({"scheduler": "now"}, TypeError, "scheduler must be a reactivex scheduler"),
    ],
)
def test_bad_arguments_raise_at_once(kwargs: dict[str, Any], error: type, message: str) -> None:
    with FakeSession("sync") as session, pytest.raises(error, match=re.escape(message)):
        rxcql.execute(session, pairs(3), **kwargs)


@pytest.mark.parametrize("bad", [None, 5, "SELECT 1", b"x"])
def test_a_non_iterable_input_raises_at_once(bad: Any) -> None:
    with FakeSession("sync") as session, pytest.raises(TypeError, match="must be an iterable"):
        rxcql.execute(session, bad)


def test_a_session_without_execute_async_raises_at_once() -> None:
    with pytest.raises(TypeError, match=r"session must be a cassandra\.cluster\.Session"):
        rxcql.execute(object(), [])  # type: ignore[arg-type]


def test_empty_input_completes_at_once() -> None:
    with FakeSession("sync") as session:
        observer = run(rxcql.execute(session, []))
    assert observer.completed
    assert observer.items == []


def test_emissions_happen_on_the_completing_thread_by_default() -> None:
    with FakeSession("thread", threads=1) as session:
        observer = run(rxcql.execute(session, pairs(100)))
    assert observer.threads == {"fake-io-0"}


def test_a_scheduler_moves_delivery_off_the_io_thread_with_backpressure() -> None:
    scheduler = EventLoopScheduler(
        thread_factory=lambda target: threading.Thread(target=target, name="delivery", daemon=True)
    )
    release = threading.Event()
    progress = threading.Event()

    def slow(result: Any) -> None:
        if result.index == 0:
            progress.set()
            assert release.wait(10)

    try:
        with FakeSession("thread") as session:
            observer = RecordingObserver(on_item=slow)
            rxcql.execute(
                session, pairs(10_000), concurrency=10, window=40, scheduler=scheduler
            ).subscribe(observer)
            assert progress.wait(10)
            # The consumer is stuck on result 0: the window caps what was issued meanwhile.
            executed_while_blocked = session.executed
            release.set()
            observer.wait(30)
    finally:
        scheduler.dispose()
    assert executed_while_blocked <= 40
    assert observer.threads == {"delivery"}
    assert_in_order(observer.items, 10_000)


def test_a_slow_observer_on_the_io_thread_is_reported(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_skeleton, "SLOW_OBSERVER_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="rxcql"), FakeSession("thread") as session:
        run(rxcql.execute(session, pairs(3)))
    assert any("held the emitting thread" in r.message for r in caplog.records)


def test_many_completing_threads_and_concurrent_runs_share_a_session() -> None:
    with FakeSession("thread", "random", threads=4) as session:
        observers = [RecordingObserver() for _ in range(4)]
        for observer in observers:
            rxcql.execute(session, pairs(10_000), concurrency=32).subscribe(observer)
        for observer in observers:
            observer.wait(60)
            assert_in_order(observer.items, 10_000)


def test_run_counters_track_the_high_water_marks() -> None:
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        handles: list[Any] = []
        observer = RecordingObserver(on_item=lambda _: handles[0].request(1) if handles else None)
        handle = rxcql.execute(session, pairs(100), concurrency=7, window=21).subscribe_with_demand(
            observer
        )
        assert handle is not None
        handles.append(handle)
        for _ in itertools.count():
            if not session.complete():
                break
        observer.wait(5)
    stats = handle.statistics()
    assert stats.max_in_flight == 7
    assert stats.max_ahead <= 21
    assert stats.delivered == 100
    assert (stats.issued, stats.in_flight, stats.ahead, stats.failed) == (100, 0, 0, 0)
