"""Sessions mocked the way users mock them, run through rxcql and the driver's helper alike.

Test suites around ``cassandra.concurrent`` (the driver's own ``tests/unit/test_concurrent.py``
among them) pass a ``unittest.mock.Mock()`` session whose ``execute_async`` returns a hand-made
future: at most ``add_callbacks``, ``clear_callbacks``, ``has_more_pages`` and the two column
attributes a ``ResultSet`` reads, completed in order, in reverse, or with random delays from a
thread. A drop-in must keep such suites passing, with the same results as the driver's helper.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import MagicMock, Mock

import pytest
from cassandra import concurrent as driver
from cassandra.cluster import ResultSet

import rxcql

N = 200
CONCURRENCY = 20


class RefusedError(Exception):
    """What the mocked server answers for some statements."""


class Completer:
    """Completes the mocked futures: synchronously inside ``add_callbacks``, or from a thread in
    order, in reverse (of what is pending at a time), or in random order with random delays."""

    def __init__(self, mode: str, seed: int = 7) -> None:
        self.mode = mode
        self.errors: list[BaseException] = []
        self._cond = threading.Condition()
        self._pending: list[Callable[[], None]] = []
        self._stopped = False
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        if mode != "sync":
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def submit(self, fire: Callable[[], None]) -> None:
        if self.mode == "sync":
            fire()
            return
        with self._cond:
            self._pending.append(fire)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                if self.mode == "reversed":
                    # Let a few accumulate (a simulated latency), then answer the newest first.
                    self._cond.wait(0.002)
                    batch, self._pending = self._pending[::-1], []
                elif self.mode == "random":
                    batch = [self._pending.pop(self._rng.randrange(len(self._pending)))]
                else:
                    batch, self._pending = self._pending, []
            for fire in batch:
                if self.mode == "random":
                    threading.Event().wait(self._rng.random() / 1000)  # simulated latency
                try:
                    fire()
                except Exception as exc:  # a callback that raised (the driver's, on a bare future)
                    self.errors.append(exc)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(10)


class MinimalFuture:
    """The least a user's test double implements: ``add_callbacks`` only."""

    def __init__(self, completer: Completer, outcome: tuple[bool, Any]) -> None:
        self._completer = completer
        self._outcome = outcome

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple[Any, ...] = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> None:
        ok, value = self._outcome
        if ok:
            kwargs = callback_kwargs or {}
            self._completer.submit(lambda: callback(value, *callback_args, **kwargs))
        else:
            kwargs = errback_kwargs or {}
            self._completer.submit(lambda: errback(value, *errback_args, **kwargs))


class DriverStyleFuture(MinimalFuture):
    """What the driver's own unit tests hand out (their ``MockResponseResponseFuture``)."""

    _query_trace = None
    _col_names = None
    _col_types = None
    has_more_pages = False

    def clear_callbacks(self) -> None:
        return


def mocked_session(
    kind: type[Mock], completer: Completer, future: type[MinimalFuture]
) -> tuple[Mock, dict[int, Any]]:
    """A ``Mock`` (or ``MagicMock``) session; statements whose key is 4 mod 9 are refused.
    Returns it with the values handed to the success callbacks, by key."""
    session = kind()
    handed: dict[int, Any] = {}

    def execute_async(statement: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        key = parameters[0]
        if key % 9 == 4:
            return future(completer, (False, RefusedError(f"statement {key}")))
        rows = handed[key] = [("row", key)]
        return future(completer, (True, rows))

    session.execute_async.side_effect = execute_async
    return session, handed


def statements(n: int = N) -> Iterator[tuple[str, tuple[int]]]:
    return (("INSERT INTO t (k, v) VALUES (%s, 0)", (i,)) for i in range(n))


def run(impl: Any, session: Any, mode: str) -> list[Any]:
    if mode == "list":
        return list(
            impl.execute_concurrent(
                session, statements(), concurrency=CONCURRENCY, raise_on_first_error=False
            )
        )
    if mode == "generator":
        return list(
            impl.execute_concurrent(
                session,
                statements(),
                concurrency=CONCURRENCY,
                raise_on_first_error=False,
                results_generator=True,
            )
        )
    return list(
        impl.execute_concurrent_async(session, statements(), concurrency=CONCURRENCY).result(30)
    )


def comparable(results: list[Any]) -> list[tuple[bool, Any]]:
    """(success, rows) or (success, (exception type, args)): equal across the two runs."""
    return [(ok, list(value) if ok else (type(value), value.args)) for ok, value in results]


def run_both(
    kind: type[Mock], completion: str, mode: str, future: type[MinimalFuture]
) -> tuple[list[Any], list[Any], dict[int, Any]]:
    """The same mocks through the driver's helper (on the driver-style future, which is what the
    helper needs) and through rxcql (on ``future``)."""
    results = []
    handed: dict[int, Any] = {}
    for impl, future_class in ((driver, DriverStyleFuture), (rxcql, future)):
        completer = Completer(completion)
        try:
            session, handed = mocked_session(kind, completer, future_class)
            results.append(run(impl, session, mode))
        finally:
            completer.stop()
        assert completer.errors == []
    return results[0], results[1], handed


SESSIONS = [pytest.param(Mock, id="Mock"), pytest.param(MagicMock, id="MagicMock")]
COMPLETIONS = ["sync", "in_order", "reversed", "random"]
MODES = ["list", "generator", "execute_concurrent_async"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("completion", COMPLETIONS)
@pytest.mark.parametrize("kind", SESSIONS)
def test_a_driver_style_mock_gives_the_driver_helpers_results(
    kind: type[Mock], completion: str, mode: str
) -> None:
    theirs, ours, _ = run_both(kind, completion, mode, DriverStyleFuture)
    assert len(ours) == N
    assert comparable(ours) == comparable(theirs)
    # The same types too: the driver's plain tuple, its ResultSet, the mocked server's error.
    assert [type(r) for r in ours] == [type(r) for r in theirs]
    assert [type(r[1]) for r in ours] == [type(r[1]) for r in theirs]
    assert all(type(r[1]) is ResultSet for r in ours if r[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("completion", COMPLETIONS)
@pytest.mark.parametrize("kind", SESSIONS)
def test_a_future_with_only_add_callbacks_gives_what_it_handed_over(
    kind: type[Mock], completion: str, mode: str
) -> None:
    theirs, ours, handed = run_both(kind, completion, mode, MinimalFuture)
    assert comparable(ours) == comparable(theirs)
    # No ResultSet can be built without the driver's column attributes: the success value is
    # the very object the future handed to the callback.
    for index, (ok, value) in enumerate(ours):
        assert ok == (index % 9 != 4)
        if ok:
            assert value is handed[index]


def test_the_driver_helper_itself_fails_on_a_future_with_only_add_callbacks() -> None:
    # Why the comparison above runs the driver on the driver-style future: on the bare one its
    # helper calls clear_callbacks() inside the callback, and every success becomes an error.
    # (50 statements: past its max_error_recursion of 100 synchronous failures the helper hands
    # the rest to session.submit, which on a Mock does nothing, and it hangs.)
    completer = Completer("sync")
    session, _ = mocked_session(Mock, completer, MinimalFuture)
    results = driver.execute_concurrent(session, statements(50), raise_on_first_error=False)
    assert len(results) == 50
    assert all(not ok for ok, _ in results)
    assert any(isinstance(value, AttributeError) for _, value in results)


@pytest.mark.parametrize("kind", SESSIONS)
def test_a_mocked_session_is_shut_down_only_when_it_says_so_with_a_bool(kind: type[Mock]) -> None:
    completer = Completer("sync")
    session, _ = mocked_session(kind, completer, DriverStyleFuture)
    assert len(rxcql.execute_concurrent(session, statements(), raise_on_first_error=False)) == N
    session.is_shutdown = True
    with pytest.raises(rxcql.SessionClosedError):
        rxcql.execute_concurrent(session, statements())
    session.is_shutdown = False
    session.cluster.is_shutdown = True
    with pytest.raises(rxcql.SessionClosedError):
        rxcql.execute_concurrent(session, statements())
