"""The bad-input matrix: every public entry point, every argument of the wrong type or shape.

Each case must raise a clear exception naming the problem (at once, or as the stream's error) and
leave the session usable: never a hang, a silent truncation or a lost result.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex

import rxcql
from rxcql import operators as cql_ops
from rxcql.testing import FakeSession, RecordingObserver

X: Any = rxcql  # calls that deliberately break the signatures
XOPS: Any = cql_ops


def pairs(n: int) -> Iterator[tuple[str, tuple[int]]]:
    return (("q", (i,)) for i in range(n))


def broken_input() -> Iterator[Any]:
    yield ("q", (0,))
    raise KeyError("input broke")


Call = Callable[[FakeSession], Any]

IMMEDIATE: list[tuple[str, Call, type[BaseException], str]] = [
    # session
    ("execute session", lambda s: X.execute(None, []), TypeError, "session must be"),
    ("execute_concurrent session", lambda s: X.execute_concurrent("s", []), TypeError, "session"),
    ("stream_rows session", lambda s: X.stream_rows(1, "q"), TypeError, "session must be"),
    ("operator session", lambda s: XOPS.execute(object()), TypeError, "session must be"),
    # statements_and_parameters
    ("execute input int", lambda s: X.execute(s, 3), TypeError, "must be an iterable"),
    ("execute input str", lambda s: X.execute(s, "SELECT"), TypeError, "must be an iterable"),
    (
        "with_args params",
        lambda s: X.execute_concurrent_with_args(s, "q", 7),
        TypeError,
        "iterable",
    ),
    (
        "with_args statement",
        lambda s: X.execute_concurrent_with_args(s, 7, []),
        TypeError,
        "statement",
    ),
    ("rows_many input", lambda s: X.stream_rows_many(s, None), TypeError, "must be an iterable"),
    ("stream_rows pair", lambda s: X.stream_rows(s, 42), rxcql.InvalidItemError, "statement"),
    # concurrency and window
    ("concurrency 0", lambda s: X.execute(s, [], concurrency=0), ValueError, "greater than 0"),
    ("concurrency str", lambda s: X.execute(s, [], concurrency="9"), TypeError, "must be an int"),
    ("concurrency float", lambda s: X.execute_concurrent(s, [], 1.5), TypeError, "must be an int"),
    ("async concurrency", lambda s: X.execute_concurrent_async(s, [], -1), ValueError, "than 0"),
    ("window small", lambda s: X.execute(s, [], concurrency=4, window=2), ValueError, "at least"),
    ("window type", lambda s: X.execute(s, [], window=2.0), TypeError, "window must be"),
    ("rows concurrency", lambda s: X.stream_rows_many(s, [], concurrency=0), ValueError, "than 0"),
    ("rows max_pages", lambda s: X.stream_rows(s, "q", max_pages=0), ValueError, "than 0"),
    ("rows fetch_size", lambda s: X.stream_rows(s, "q", fetch_size=0), ValueError, "fetch_size"),
    # flags and knobs
    ("ordered", lambda s: X.execute(s, [], ordered=1), TypeError, "ordered must be a bool"),
    ("raise flag", lambda s: X.execute(s, [], raise_on_first_error="no"), TypeError, "bool"),
    ("generator flag", lambda s: X.execute_concurrent(s, [], 5, True, "y"), TypeError, "bool"),
    ("scheduler", lambda s: X.execute(s, [], scheduler=object()), TypeError, "scheduler"),
    ("max_rate", lambda s: X.execute(s, [], max_rate=-5), ValueError, "max_rate"),
    ("max_errors", lambda s: X.execute(s, [], max_errors=2.0), ValueError, "max_errors"),
    ("progress", lambda s: X.execute(s, [], progress="bar"), TypeError, "progress"),
    ("reorder max_buffer", lambda s: XOPS.reorder(max_buffer=-1), ValueError, "max_buffer"),
    # consumers and futures
    ("iterate other", lambda s: X.iterate([1, 2]), TypeError, "expected an Observable"),
    ("aiterate other", lambda s: X.aiterate(reactivex.of(1)), TypeError, "expected an Observable"),
    ("future", lambda s: X.from_response_future(None), TypeError, "ResponseFuture"),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [pytest.param(c, e, m, id=i) for i, c, e, m in IMMEDIATE],
)
def test_bad_arguments_raise_a_clear_error_at_once(
    call: Call, error: type[BaseException], message: str
) -> None:
    with FakeSession("thread") as session:
        with pytest.raises(error, match=re.escape(message)):
            call(session)
        assert_usable(session)


STREAM: list[tuple[str, Any, type[BaseException], str]] = [
    ("not a pair", [("q", (0,)), "SELECT 1"], rxcql.InvalidItemError, "item 1"),
    ("three-tuple", [("q", (0,), 1)], rxcql.InvalidItemError, "item 0"),
    ("statement type", [(b"q", (0,))], rxcql.InvalidItemError, "statement that is not"),
    ("parameters str", [("q", "ab")], rxcql.InvalidItemError, "parameters that are not"),
    ("parameters set", [("q", {1, 2})], rxcql.InvalidItemError, "parameters that are not"),
    ("iterator raises", broken_input, rxcql.InputIteratorError, "iterator raised after 1"),
]


def materialize(items: Any) -> Any:
    return items() if callable(items) else items


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [pytest.param(it, e, m, id=i) for i, it, e, m in STREAM],
)
@pytest.mark.parametrize("consumer", ["subscribe", "list", "generator", "async", "operator"])
def test_malformed_input_ends_every_consumer_with_a_clear_error(
    items: Any, error: type[BaseException], message: str, consumer: str
) -> None:
    if consumer == "operator" and error is rxcql.InputIteratorError:
        # An Observable's own error passes through unchanged (reactivex raised it, not rxcql).
        error, message = KeyError, "input broke"
    with FakeSession("thread") as session:
        with pytest.raises(error, match=re.escape(message)):
            consume(session, materialize(items), consumer)
        assert_usable(session)


def consume(session: FakeSession, items: Any, consumer: str) -> list[Any]:
    if consumer == "subscribe":
        observer = RecordingObserver()
        rxcql.execute(session, items).subscribe(observer)
        observer.wait(10)
        if observer.error is not None:
            raise observer.error
        return observer.items
    if consumer == "list":
        return rxcql.execute_concurrent(session, items)
    if consumer == "generator":
        return list(rxcql.execute_concurrent(session, items, results_generator=True))
    if consumer == "async":
        return asyncio.run(rxcql.collect(rxcql.execute(session, items)))
    observer = RecordingObserver()
    reactivex.from_iterable(materialize(items)).pipe(cql_ops.execute(session)).subscribe(observer)
    observer.wait(10)
    if observer.error is not None:
        raise observer.error
    return observer.items


def test_an_observer_that_raises_is_reported_and_the_session_stays_usable() -> None:
    with FakeSession("thread") as session:

        def explode(result: Any) -> None:
            raise ZeroDivisionError(result.index)

        observer = RecordingObserver(on_item=explode)
        rxcql.execute(session, pairs(100)).subscribe(observer)
        observer.wait(10)
        assert isinstance(observer.error, rxcql.ObserverError)
        assert_usable(session)


def test_an_abandoned_consumer_stops_the_run_and_the_session_stays_usable() -> None:
    with FakeSession("thread") as session:
        results = rxcql.iterate(rxcql.execute(session, pairs(100_000)))
        next(results)
        results.close()
        assert session.wait_idle(timeout=10)
        assert session.executed <= 1 + 200
        assert_usable(session)


def test_a_shut_down_session_is_a_clear_error_for_every_consumer() -> None:
    session = FakeSession("thread")
    session.shutdown()
    for consumer in ("subscribe", "list", "generator", "async", "operator"):
        with pytest.raises(rxcql.SessionClosedError):
            consume(session, list(pairs(3)), consumer)
    with pytest.raises(rxcql.SessionClosedError):
        list(rxcql.iterate(rxcql.stream_rows(session, "q")))


def assert_usable(session: FakeSession) -> None:
    """The session still runs statements, in order, after the failure."""
    results = rxcql.execute_concurrent(session, pairs(50))
    assert [r.result_or_exc.one() for r in results] == [(i,) for i in range(50)]
