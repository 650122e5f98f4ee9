"""The bad-input matrix: every public entry point, every argument of the wrong type or shape.

Each case must raise a clear exception naming the problem (at once, or as the stream's error) and
leave the session usable: never a hang, a silent truncation or a lost result.
"""

from __future__ import annotations

import asyncio
import re
import traceback
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
    ("iterator raises", broken_input, KeyError, "input broke"),
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
    with FakeSession("thread") as session:
        with pytest.raises(error, match=re.escape(message)):
            consume(session, materialize(items), consumer)
        assert_usable(session)


def consume(
    session: FakeSession, items: Any, consumer: str, seen: list[Any] | None = None
) -> list[Any]:
    """Run ``items`` through one consumer; what it delivered before an error goes to ``seen``."""
    seen = [] if seen is None else seen
    if consumer in ("subscribe", "operator"):
        observer = RecordingObserver()
        if consumer == "subscribe":
            rxcql.execute(session, items).subscribe(observer)
        else:
            source = reactivex.from_iterable(materialize(items))
            source.pipe(cql_ops.execute(session)).subscribe(observer)
        observer.wait(10)
        seen.extend(observer.items)
        if observer.error is not None:
            raise observer.error
        return observer.items
    if consumer == "list":
        return rxcql.execute_concurrent(session, items)
    if consumer == "async_future":
        return rxcql.execute_concurrent_async(session, items).result(timeout=10)
    if consumer in ("generator", "iterate"):
        if consumer == "generator":
            results: Iterator[Any] = rxcql.execute_concurrent(
                session, items, results_generator=True
            )
        else:
            results = rxcql.iterate(rxcql.execute(session, items))
        for result in results:
            seen.append(result)
        return seen
    return asyncio.run(rxcql.collect(rxcql.execute(session, items)))


class MyParseError(Exception):
    """The kind of exception a user's own input parser raises."""


CONSUMERS = ["subscribe", "list", "generator", "async", "operator", "async_future", "iterate"]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_the_input_iterators_own_exception_comes_out_as_itself(consumer: str) -> None:
    raised: list[MyParseError] = []
    seen: list[Any] = []

    def parse_lines() -> Iterator[tuple[str, tuple[int]]]:
        yield from pairs(30)
        error = MyParseError("line 31 does not parse")
        raised.append(error)
        raise error

    with FakeSession("thread", "random") as session:
        with pytest.raises(MyParseError) as caught:
            consume(session, parse_lines(), consumer, seen)
        assert_usable(session)
    assert caught.value is raised[0]  # the very object: `except MyParseError` matches
    # The traceback still leads to where the user's code raised it.
    assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "parse_lines"
    if consumer != "operator":  # an upstream Observable's error is reactivex's to deliver
        assert caught.value.__notes__ == [
            "rxcql had pulled 30 statements from statements_and_parameters when its iterator "
            "raised this; nothing more was issued"
        ]
    if consumer in ("subscribe", "generator", "iterate", "operator"):
        # The results of the statements pulled before it came first, in order.
        assert [r.result_or_exc.one() for r in seen] == [(i,) for i in range(30)]


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
