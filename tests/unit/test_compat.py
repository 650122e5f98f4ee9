"""Drop-in parity with cassandra.concurrent, and the places where the driver's helper fails.

Every scenario runs through both implementations on the same fake session. Where the driver's
helper misbehaves, its run is marked ``xfail(strict=True)``: the test proves the driver fails
and rxcql passes.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from cassandra import concurrent as driver

import rxcql
from rxcql.testing import FakeSession

Impl = Any
UNTYPED: Any = rxcql  # for calls that deliberately break the signatures

DRIVER = pytest.param(driver, id="driver")
RXCQL = pytest.param(rxcql, id="rxcql")
BOTH = [DRIVER, RXCQL]


def fails_on_driver(reason: str) -> list[Any]:
    """Both implementations, the driver's marked as a strict expected failure."""
    return [
        pytest.param(driver, id="driver", marks=pytest.mark.xfail(strict=True, reason=reason)),
        RXCQL,
    ]


def pairs(n: int) -> Iterator[tuple[str, tuple[int]]]:
    return (("q", (i,)) for i in range(n))


def outcome(results: Any) -> list[tuple[bool, Any]]:
    """Results as comparable values: (success, rows) or (success, exception)."""
    return [(ok, list(value) if ok else value) for ok, value in results]


def call_with_timeout(fn: Callable[[], Any], timeout: float = 10) -> Any:
    """Run ``fn`` in a daemon thread; raise AssertionError if it does not return in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"did not return within {timeout} s (a hang)")
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- parity: the same results from both --------------------------------------------------------


@pytest.mark.parametrize("order", ["in_order", "reversed", "random"])
@pytest.mark.parametrize("impl", BOTH)
def test_results_in_input_order(impl: Impl, order: Any) -> None:
    with FakeSession("thread", order, threads=2) as session:
        results = impl.execute_concurrent(session, [("q", (i,)) for i in range(3_000)])
    assert outcome(results) == [(True, [(i,)]) for i in range(3_000)]


@pytest.mark.parametrize("impl", BOTH)
def test_generator_mode_yields_in_input_order(impl: Impl) -> None:
    with FakeSession("thread", "reversed") as session:
        results = list(impl.execute_concurrent(session, pairs(3_000), results_generator=True))
    assert outcome(results) == [(True, [(i,)]) for i in range(3_000)]


@pytest.mark.parametrize("impl", BOTH)
def test_slow_statements_keep_their_place(impl: Impl) -> None:
    with FakeSession("thread", latency=lambda i: 0.05 if i % 100 == 0 else 0.0) as session:
        results = impl.execute_concurrent(session, pairs(500), concurrency=20)
    assert outcome(results) == [(True, [(i,)]) for i in range(500)]


@pytest.mark.parametrize("impl", BOTH)
def test_failures_stay_in_place_without_raising(impl: Impl) -> None:
    errors = {i: ValueError(i) for i in range(0, 300, 37)}
    with FakeSession("thread", "random", fail=lambda i, s, p: errors.get(i)) as session:
        results = impl.execute_concurrent(session, pairs(300), raise_on_first_error=False)
    assert outcome(results) == [
        (False, errors[i]) if i in errors else (True, [(i,)]) for i in range(300)
    ]


@pytest.mark.parametrize("impl", BOTH)
def test_the_first_failure_is_raised_as_itself(impl: Impl) -> None:
    boom = ValueError("boom")
    with (
        FakeSession("thread", fail=lambda i, s, p: boom if i == 42 else None) as session,
        pytest.raises(ValueError, match="boom") as raised,
    ):
        impl.execute_concurrent(session, pairs(300))
    assert raised.value is boom


@pytest.mark.parametrize("impl", BOTH)
def test_generator_mode_raises_when_the_consumer_reaches_the_failure(impl: Impl) -> None:
    boom = ValueError("boom")
    seen: list[int] = []

    def consume(session: FakeSession) -> None:
        for result in impl.execute_concurrent(session, pairs(300), results_generator=True):
            seen.append(result.result_or_exc.one()[0])

    with (
        FakeSession("thread", fail=lambda i, s, p: boom if i == 42 else None) as session,
        pytest.raises(ValueError, match="boom"),
    ):
        consume(session)
    assert seen == list(range(42))


@pytest.mark.parametrize("impl", BOTH)
def test_with_args_repeats_the_statement(impl: Impl) -> None:
    with FakeSession("thread") as session:
        results = impl.execute_concurrent_with_args(
            session, "INSERT", [(i,) for i in range(100)], concurrency=7
        )
    assert outcome(results) == [(True, [(i,)]) for i in range(100)]


@pytest.mark.parametrize("impl", BOTH)
def test_empty_input_gives_an_empty_result(impl: Impl) -> None:
    with FakeSession("thread") as session:
        assert list(impl.execute_concurrent(session, [])) == []


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("concurrency", [0, -1])
def test_concurrency_below_one_is_a_value_error(impl: Impl, concurrency: int) -> None:
    with FakeSession("thread") as session, pytest.raises(ValueError, match="concurrency"):
        impl.execute_concurrent(session, pairs(3), concurrency=concurrency)


@pytest.mark.parametrize("impl", BOTH)
def test_execution_profile_reaches_execute_async(impl: Impl) -> None:
    with FakeSession("thread") as session:
        session.record_profiles = True
        impl.execute_concurrent(session, pairs(4), execution_profile="olap")
    assert session.profiles == ["olap"] * 4


@pytest.mark.parametrize("impl", BOTH)
def test_async_resolves_to_the_list(impl: Impl) -> None:
    with FakeSession("thread", "reversed") as session:
        future = impl.execute_concurrent_async(session, pairs(500))
        results = future.result(timeout=30)
    assert outcome(results) == [(True, [(i,)]) for i in range(500)]


# -- where the driver's helper fails ----------------------------------------------------------

WINDOW = 2 * 100  # rxcql's default window for the default concurrency of 100


@pytest.mark.parametrize("impl", fails_on_driver("generator mode issues while the consumer waits"))
def test_generator_mode_issues_only_within_the_window_of_a_paused_consumer(impl: Impl) -> None:
    with FakeSession("thread") as session:
        results = impl.execute_concurrent(session, pairs(20_000), results_generator=True)
        for _ in range(50):
            next(results)
        # The consumer pauses. Wait until nothing is in flight any more: issuing has stopped.
        assert session.wait_idle(timeout=30)
        issued = session.executed
        del results
    assert issued <= 50 + WINDOW


@pytest.mark.parametrize("impl", fails_on_driver("head-of-line blocking buffers everything"))
def test_a_slow_statement_0_bounds_what_is_issued_behind_it(impl: Impl) -> None:
    with FakeSession("thread", hold=lambda i: i == 0) as session:
        results = impl.execute_concurrent(session, pairs(20_000), results_generator=True)
        # Everything but statement 0 completes; whatever was going to be issued has been.
        assert session.wait_idle(timeout=30, in_flight=1)
        issued = session.executed
        session.release()
        assert sum(1 for _ in results) == 20_000
    assert issued <= WINDOW


@pytest.mark.parametrize("mode", ["list", "generator"])
@pytest.mark.parametrize("impl", fails_on_driver("the driver keeps executing after the error"))
def test_nothing_new_is_issued_after_the_first_error(impl: Impl, mode: str) -> None:
    boom = ValueError("boom")
    with FakeSession("thread", fail=lambda i, s, p: boom if i == 100 else None) as session:
        with pytest.raises(ValueError, match="boom"):
            list(
                impl.execute_concurrent(
                    session, pairs(20_000), results_generator=mode == "generator"
                )
            )
        assert session.wait_idle(timeout=30)
    assert session.executed <= 100 + WINDOW + 1


@pytest.mark.parametrize("how", ["break", "close", "garbage-collected"])
@pytest.mark.parametrize("impl", fails_on_driver("the driver keeps executing an abandoned run"))
def test_an_abandoned_generator_stops_issuing(impl: Impl, how: str) -> None:
    with FakeSession("thread") as session:
        results = impl.execute_concurrent(session, pairs(20_000), results_generator=True)
        for count, _ in enumerate(results):
            if count == 50:
                break
        if how == "close":
            results.close()
        elif how == "garbage-collected":
            del results
            gc.collect()
        assert session.wait_idle(timeout=30)
        issued = session.executed
    assert issued <= 51 + WINDOW


@pytest.mark.parametrize("impl", fails_on_driver("execute_concurrent_async blocks its caller"))
def test_execute_concurrent_async_returns_at_once(impl: Impl) -> None:
    with FakeSession("manual") as session:  # nothing completes until the test says so
        future = call_with_timeout(lambda: impl.execute_concurrent_async(session, pairs(10)), 3)
        assert not future.done()
        while session.complete():
            pass
        assert len(future.result(timeout=10)) == 10


@pytest.mark.parametrize("impl", fails_on_driver("empty input never resolves"))
def test_execute_concurrent_async_resolves_on_empty_input(impl: Impl) -> None:
    with FakeSession("thread") as session:
        future = impl.execute_concurrent_async(session, [])
        try:
            assert future.result(timeout=3) == []
        except FutureTimeout as exc:
            raise AssertionError("the future never resolved") from exc


def _all_fail(i: int, s: Any, p: Any) -> Exception:
    return RuntimeError(i)


@pytest.mark.parametrize("impl", fails_on_driver("synchronous errbacks recurse"))
def test_synchronous_errbacks_of_many_statements(impl: Impl) -> None:
    run_many_synchronous_failures(impl, fail=_all_fail)


@pytest.mark.parametrize("impl", BOTH)  # the driver guards this case (max_error_recursion)
def test_execute_async_raising_for_many_statements(impl: Impl) -> None:
    run_many_synchronous_failures(impl, raise_in_execute=_all_fail)


def run_many_synchronous_failures(impl: Impl, **kwargs: Any) -> None:
    with FakeSession("sync", **kwargs) as session:
        results = call_with_timeout(
            lambda: impl.execute_concurrent(session, pairs(20_000), raise_on_first_error=False),
            timeout=60,
        )
    assert len(results) == 20_000
    assert not any(ok for ok, _ in results)


@pytest.mark.parametrize("mode", ["list", "generator"])
@pytest.mark.parametrize("impl", fails_on_driver("an input iterator error truncates or hangs"))
def test_an_input_iterator_that_raises_is_a_clear_error(impl: Impl, mode: str) -> None:
    def broken() -> Iterator[tuple[str, tuple[int]]]:
        yield from pairs(150)
        raise InputGoneError("input gone")

    def consume() -> list[Any]:
        return list(
            impl.execute_concurrent(session, broken(), results_generator=mode == "generator")
        )

    with FakeSession("thread") as session, pytest.raises(InputGoneError) as raised:
        call_with_timeout(consume, timeout=3)
    assert "pulled 150 statements" in raised.value.__notes__[0]


class InputGoneError(Exception):
    """The caller's own exception (not an OSError: a timeout in the harness must not match)."""


@pytest.mark.parametrize("mode", ["list", "generator"])
@pytest.mark.parametrize("impl", fails_on_driver("a malformed item truncates or hangs"))
def test_a_malformed_item_is_a_clear_error(impl: Impl, mode: str) -> None:
    items: list[Any] = [*pairs(150), "not a pair", *pairs(10)]

    def consume() -> list[Any]:
        return list(impl.execute_concurrent(session, items, results_generator=mode == "generator"))

    with FakeSession("thread") as session, pytest.raises(rxcql.InvalidItemError, match="item 150"):
        call_with_timeout(consume, timeout=3)


# -- rxcql only ----------------------------------------------------------------------------------


def test_the_generator_consumer_may_block_and_query_the_same_session() -> None:
    with FakeSession("thread", threads=1) as session:
        seen = []
        for result in rxcql.execute_concurrent(session, pairs(2_000), results_generator=True):
            # A synchronous query on the same session, from inside the loop.
            echo = session.execute("echo", (result.result_or_exc.one()[0],)).one()
            seen.append(echo[0])
    assert seen == list(range(2_000))


def test_blocking_calls_on_the_io_thread_raise_instead_of_deadlocking() -> None:
    errors: list[BaseException] = []

    def on_next(result: Any) -> None:
        for call in (
            lambda: rxcql.execute_concurrent(session, pairs(3)),
            lambda: rxcql.execute_concurrent(session, pairs(3), results_generator=True),
        ):
            try:
                call()
            except rxcql.IOThreadBlockingError as exc:
                errors.append(exc)

    with FakeSession("thread") as session:
        done = threading.Event()
        rxcql.execute(session, pairs(1)).subscribe(on_next, lambda e: done.set(), done.set)
        assert done.wait(10)
    assert len(errors) == 2
    assert "IO thread" in str(errors[0])


def test_execute_concurrent_async_works_inside_io_callbacks() -> None:
    futures: list[Any] = []
    with FakeSession("thread") as session:
        done = threading.Event()
        rxcql.execute(session, pairs(1)).subscribe(
            lambda r: futures.append(rxcql.execute_concurrent_async(session, pairs(5))),
            lambda e: done.set(),
            done.set,
        )
        assert done.wait(10)
        assert len(futures[0].result(timeout=10)) == 5


def test_cancelling_the_async_future_stops_issuing() -> None:
    with FakeSession("manual") as session:
        future = rxcql.execute_concurrent_async(session, pairs(10_000), concurrency=10)
        session.complete(count=5)
        assert future.cancel()
        while session.complete():
            pass
    assert session.executed == 15


def test_generator_mode_returns_a_closeable_context_manager() -> None:
    with FakeSession("thread") as session:
        with rxcql.execute_concurrent(session, pairs(10_000), results_generator=True) as results:
            first = next(results)
        assert session.wait_idle(timeout=10)
        assert session.executed <= 1 + WINDOW
    assert type(first) is driver.ExecutionResult  # the driver's own tuple
    assert first.success
    assert first.result_or_exc.one() == (0,)
    with pytest.raises(StopIteration):
        next(results)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: UNTYPED.execute_concurrent(s, pairs(2), results_generator="yes"), TypeError),
        (lambda s: UNTYPED.execute_concurrent(s, 5), TypeError),
        (lambda s: UNTYPED.execute_concurrent_with_args(s, 42, [(1,)]), TypeError),
        (lambda s: UNTYPED.execute_concurrent_with_args(s, "q", None), TypeError),
        (lambda s: rxcql.execute_concurrent_async(s, pairs(2), concurrency=0), ValueError),
    ],
)
def test_bad_arguments_raise_at_once(call: Callable[[Any], Any], error: type) -> None:
    with FakeSession("thread") as session, pytest.raises(error):
        call(session)


def test_a_shut_down_session_raises_a_clear_error() -> None:
    session = FakeSession("thread")
    session.shutdown()
    with pytest.raises(rxcql.SessionClosedError):
        rxcql.execute_concurrent(session, pairs(3))


@pytest.mark.parametrize("call", ["list", "async"])
def test_a_dropped_list_of_results_is_freed_without_the_garbage_collector(call: str) -> None:
    # The ended run lets go of its collector: nothing keeps the results in a reference cycle.
    with FakeSession("thread") as session:
        gc.collect()
        gc.disable()
        try:
            if call == "list":
                results = rxcql.execute_concurrent(session, pairs(100))
            else:
                future = rxcql.execute_concurrent_async(session, pairs(100))
                results = future.result(timeout=10)
                del future
            ref = weakref.ref(results[0].result_or_exc)
            del results
            assert ref() is None
        finally:
            gc.enable()
