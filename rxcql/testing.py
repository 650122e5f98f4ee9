"""A fake Cassandra session for tests of ordering, demand and threads.

:class:`FakeSession` has the part of :class:`cassandra.cluster.Session` that rxcql and
``cassandra.concurrent`` use (``execute_async``, ``submit``, ``is_shutdown``), and its futures have
the part of :class:`cassandra.cluster.ResponseFuture` they use, with the driver's callback
semantics: callbacks added after completion run at once, inside ``add_callbacks``, on the caller's
thread; otherwise they run on the thread that completes the future.

How futures complete is scripted:

* ``mode="sync"``: already complete when ``execute_async`` returns (the synchronous case);
* ``mode="thread"`` (default): completed by ``threads`` background threads, each taking every
  future that is due and completing them ``order="in_order"``, ``"reversed"`` or ``"random"``;
  ``latency`` (seconds, or a function of the statement's index) delays them;
* ``mode="manual"``: futures wait in :attr:`FakeSession.pending` until the test calls
  :meth:`FakeSession.complete`.

``fail`` makes chosen statements fail (their futures end with the exception it returns) and
``raise_in_execute`` makes ``execute_async`` itself raise, like a bind error. The session counts
what it saw: :attr:`~FakeSession.executed`, :attr:`~FakeSession.in_flight` and
:attr:`~FakeSession.max_in_flight`.

Example:
    >>> fail = lambda i, s, p: ValueError() if i == 3 else None
    >>> session = FakeSession(order="reversed", fail=fail)
    >>> results = rxcql.execute_concurrent(session, [("q", (i,)) for i in range(10)],
    ...                                    raise_on_first_error=False)
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from typing import Any, Final, Literal

from cassandra.cluster import NoHostAvailable, ResultSet
from reactivex import abc

__all__ = ["FakeResponseFuture", "FakeSession", "RecordingObserver"]


class _Unset(Enum):
    NOT_SET = "no result yet"


_NOT_SET: Final = _Unset.NOT_SET

Order = Literal["in_order", "reversed", "random"]
Mode = Literal["thread", "sync", "manual"]
FailFn = Callable[[int, Any, Any], BaseException | None]


def _default_rows(statement: Any, parameters: Any) -> list[Any]:
    return [parameters]


class FakeResponseFuture:
    """A completed-by-script stand-in for :class:`cassandra.cluster.ResponseFuture`.

    With ``pages`` > 1 it pages like the driver: ``has_more_pages`` is true until the last page,
    and ``start_fetching_next_page()`` completes the next page the way the session completes
    futures (and runs the callbacks again, as the driver does).

    Callbacks run on the completing thread, or at once inside ``add_callbacks`` if the future
    is already complete. ``result(timeout)`` raises TimeoutError, or the scripted exception.
    """

    def __init__(
        self,
        session: FakeSession,
        index: int,
        query: Any,
        parameters: Any,
        pages: Sequence[list[Any]] | None = None,
    ) -> None:
        self.session = session
        self.index = index
        self.query = query
        self.parameters = parameters
        self._lock = threading.Lock()
        self._callbacks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._errbacks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._final_result: Any = _NOT_SET
        self._final_exception: BaseException | None = None
        self._event = threading.Event()
        self._col_names: list[str] | None = None
        self._col_types: list[Any] | None = None
        self._continuous_paging_session = None
        self._pages = list(pages) if pages is not None else None
        self._page = 0
        #: How many pages were fetched (requested from the "server") so far.
        self.pages_fetched = 0
        self._paging_state: bytes | None = None

    # -- the driver's API -------------------------------------------------------------------

    @property
    def has_more_pages(self) -> bool:
        return self._paging_state is not None

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FakeResponseFuture:
        with self._lock:
            self._callbacks.append((fn, args, kwargs))
            run_now = self._final_result is not _NOT_SET
        if run_now:
            fn(self._final_result, *args, **kwargs)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FakeResponseFuture:
        with self._lock:
            self._errbacks.append((fn, args, kwargs))
            run_now = self._final_exception is not None
        if run_now:
            fn(self._final_exception, *args, **kwargs)
        return self

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple[Any, ...] = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.add_callback(callback, *callback_args, **(callback_kwargs or {}))
        self.add_errback(errback, *errback_args, **(errback_kwargs or {}))

    def clear_callbacks(self) -> None:
        with self._lock:
            self._callbacks = []
            self._errbacks = []

    def result(self, timeout: float | None = None) -> ResultSet:
        if not self._event.wait(timeout):
            raise TimeoutError(f"fake future {self.index} did not complete in {timeout} s")
        if self._final_exception is not None:
            raise self._final_exception
        return ResultSet(self, self._final_result)

    def start_fetching_next_page(self) -> None:
        if self._paging_state is None:
            from cassandra.cluster import QueryExhausted

            raise QueryExhausted()
        with self._lock:
            self._final_result = _NOT_SET
            self._final_exception = None
            self._event.clear()
        self.session._schedule(self)

    # -- the script's side -----------------------------------------------------------------

    def _next_outcome(self) -> tuple[bool, Any]:
        """What this future completes with next: (True, rows) or (False, exception)."""
        if self._page == 0:
            failure = self.session.fail(self.index, self.query, self.parameters)
            if failure is not None:
                return False, failure
        if self._pages is None:
            return True, self.session.rows(self.query, self.parameters)
        rows = self._pages[self._page] if self._page < len(self._pages) else []
        self._page += 1
        self.pages_fetched += 1
        self._paging_state = str(self._page).encode() if self._page < len(self._pages) else None
        return True, rows

    def complete(self) -> None:
        """Complete now with the scripted outcome, running callbacks on this thread."""
        success, value = self._next_outcome()
        if success:
            self.set_result(value)
        else:
            self.set_exception(value)

    def set_result(self, rows: Any) -> None:
        self._settle(rows, None)

    def set_exception(self, exc: BaseException) -> None:
        self._settle(None, exc)

    def _settle(self, rows: Any, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                self._final_result = rows
                to_call = tuple(self._callbacks)
            else:
                self._final_exception = exc
                to_call = tuple(self._errbacks)
        self._event.set()
        self.session._finished(self)
        outcome = rows if exc is None else exc
        for fn, args, kwargs in to_call:
            fn(outcome, *args, **kwargs)


class FakeSession:
    """A scripted stand-in for :class:`cassandra.cluster.Session`; see the module docs.

    Args:
        mode: ``"thread"``, ``"sync"`` or ``"manual"``.
        order: within what is due at once, complete ``"in_order"``, ``"reversed"`` or ``"random"``.
        threads: completion threads (``mode="thread"``).
        latency: seconds before a statement completes, or ``latency(index) -> seconds``.
        fail: ``fail(index, statement, parameters)`` returns the exception a statement's future
            fails with, or None for success.
        raise_in_execute: like ``fail``, but ``execute_async`` raises the exception itself.
        rows: ``rows(statement, parameters)`` gives a statement's rows (default ``[parameters]``).
        pages: ``pages(statement, parameters)`` gives a list of pages of rows, for paging tests.
        seed: seed of the ``"random"`` order.
        clock: ``"manual"``: the session offers ``create_timer`` and ``clock`` (which rxcql's
            retries use instead of the driver's timers) on a clock that only :meth:`advance`
            moves, so tests drive backoff without sleeping; :attr:`timer_delays` records every
            timer asked for. ``"real"`` (default): neither is offered.
        hold: ``hold(index)`` true keeps that statement's future in :attr:`held`, incomplete,
            until :meth:`release` (e.g. a slow statement 0, for head-of-line blocking).

    Raises:
        ValueError: for an unknown ``mode`` or ``order``. After :meth:`shutdown`,
            ``execute_async`` raises ``NoHostAvailable``.
    """

    def __init__(
        self,
        mode: Mode = "thread",
        order: Order = "in_order",
        *,
        threads: int = 1,
        latency: float | Callable[[int], float] | None = None,
        fail: FailFn | None = None,
        raise_in_execute: FailFn | None = None,
        rows: Callable[[Any, Any], list[Any]] | None = None,
        pages: Callable[[Any, Any], Sequence[list[Any]]] | None = None,
        seed: int | None = 0,
        hold: Callable[[int], bool] | None = None,
        clock: Literal["real", "manual"] = "real",
    ) -> None:
        if mode not in ("thread", "sync", "manual"):
            raise ValueError(f"unknown mode {mode!r}")
        if order not in ("in_order", "reversed", "random"):
            raise ValueError(f"unknown order {order!r}")
        self.mode = mode
        self.order = order
        self.latency = latency
        self.fail: FailFn = fail or (lambda i, s, p: None)
        self.raise_in_execute: FailFn = raise_in_execute or (lambda i, s, p: None)
        self.rows = rows or _default_rows
        self.pages = pages
        self.is_shutdown = False
        self.hold = hold
        #: Futures kept back by ``hold``, until :meth:`release`.
        self.held: list[FakeResponseFuture] = []
        self._random = random.Random(seed)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, FakeResponseFuture]] = []
        self._seq = itertools.count()
        self._closed = False
        #: Futures waiting for :meth:`complete` (``mode="manual"``).
        self.pending: list[FakeResponseFuture] = []
        #: ``execute_async`` calls so far, in flight now, and the most in flight at once.
        self.executed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        #: The ``execution_profile`` of every call, when ``record_profiles`` is set.
        self.profiles: list[Any] = []
        self.record_profiles = False
        self._threads = [
            threading.Thread(target=self._complete_loop, name=f"fake-io-{n}", daemon=True)
            for n in range(threads if mode == "thread" else 0)
        ]
        for thread in self._threads:
            thread.start()
        self._executor: ThreadPoolExecutor | None = None
        #: The manual clock's time, its pending timers and every delay asked for.
        self.now = 0.0
        self.timer_delays: list[float] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        if clock == "manual":
            self.create_timer = self._create_timer
            self.clock = self._clock
        elif clock != "real":
            raise ValueError(f"unknown clock {clock!r}")

    # -- the manual clock --------------------------------------------------------------------

    def _create_timer(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            self.timer_delays.append(delay)
            heapq.heappush(self._timers, (self.now + delay, next(self._seq), callback))

    def _clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> int:
        """Move the manual clock on and run the timers that came due, on this thread.

        Returns:
            How many timers fired.
        """
        with self._cond:
            self.now += seconds
        fired = 0
        while True:
            with self._cond:
                if not self._timers or self._timers[0][0] > self.now:
                    return fired
                _, _, callback = heapq.heappop(self._timers)
            callback()
            fired += 1

    # -- the driver's API -------------------------------------------------------------------

    def execute_async(
        self,
        query: Any,
        parameters: Any = None,
        trace: bool = False,
        custom_payload: Any = None,
        timeout: Any = None,
        execution_profile: Any = None,
        **kwargs: Any,
    ) -> FakeResponseFuture:
        if self.is_shutdown:
            raise NoHostAvailable("Pool is shutdown", {})
        with self._cond:
            index = self.executed
            self.executed += 1
        if self.record_profiles:
            self.profiles.append(execution_profile)
        exc = self.raise_in_execute(index, query, parameters)
        if exc is not None:
            raise exc
        pages = self.pages(query, parameters) if self.pages is not None else None
        future = FakeResponseFuture(self, index, query, parameters, pages)
        with self._cond:
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
        self._schedule(future)
        return future

    def execute(self, query: Any, parameters: Any = None, **kwargs: Any) -> ResultSet:
        """Like ``Session.execute``: ``execute_async(...).result()``."""
        return self.execute_async(query, parameters, **kwargs).result()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Like ``Session.submit``: run ``fn`` on a worker thread (cassandra.concurrent uses it)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fake-submit")
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        """Shut down: later ``execute_async`` calls raise; completion threads stop."""
        self.is_shutdown = True
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- scripting ---------------------------------------------------------------------------

    def complete(self, count: int | None = None, order: Order | None = None) -> int:
        """Complete up to ``count`` pending futures (``mode="manual"``) on this thread.

        Returns:
            How many were completed.
        """
        with self._cond:
            batch = self.pending[:count] if count is not None else list(self.pending)
            del self.pending[: len(batch)]
        self._arrange(batch, order or self.order)
        for future in batch:
            future.complete()
        return len(batch)

    def _arrange(self, batch: list[FakeResponseFuture], order: Order) -> None:
        if order == "reversed":
            batch.reverse()
        elif order == "random":
            self._random.shuffle(batch)

    def _delay(self, index: int) -> float:
        if self.latency is None:
            return 0.0
        if callable(self.latency):
            return float(self.latency(index))
        return float(self.latency)

    def release(self) -> None:
        """Let the futures kept back by ``hold`` complete (as the mode completes futures)."""
        with self._cond:
            held, self.held = self.held, []
        for future in held:
            self._schedule(future, holding=False)

    def wait_idle(self, timeout: float = 10.0, in_flight: int = 0) -> bool:
        """Wait until at most ``in_flight`` futures are incomplete; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.in_flight > in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _schedule(self, future: FakeResponseFuture, holding: bool = True) -> None:
        if holding and self.hold is not None and future._page == 0 and self.hold(future.index):
            with self._cond:
                self.held.append(future)
            return
        if self.mode == "sync":
            future.complete()
            return
        with self._cond:
            if self.mode == "manual":
                self.pending.append(future)
                return
            due = time.monotonic() + self._delay(future.index)
            heapq.heappush(self._heap, (due, next(self._seq), future))
            self._cond.notify_all()

    def _finished(self, future: FakeResponseFuture) -> None:
        with self._cond:
            if future._page <= 1:
                self.in_flight -= 1
                self._cond.notify_all()

    def _complete_loop(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while True:
                    if heap:
                        wait = heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    elif self._closed:
                        return
                    else:
                        self._cond.wait()
                now = time.monotonic()
                batch = []
                while heap and heap[0][0] <= now:
                    batch.append(heapq.heappop(heap)[2])
            self._arrange(batch, self.order)
            for future in batch:
                future.complete()


class RecordingObserver(abc.ObserverBase[Any]):
    """An observer that records what it receives and lets a test wait for the end.

    ``items``, ``error`` and ``completed`` hold what arrived (``count`` counts the items; with
    ``keep=False`` they are counted but not kept); ``threads`` the names of the threads that called
    ``on_next``. ``on_item`` (optional) runs for each item, on the emitting thread.
    """

    def __init__(self, on_item: Callable[[Any], None] | None = None, keep: bool = True) -> None:
        self.items: list[Any] = []
        self.count = 0
        self._keep = keep
        self.error: Exception | None = None
        self.completed = False
        self.threads: set[str] = set()
        self._on_item = on_item
        self._done = threading.Event()

    def on_next(self, value: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.count += 1
        if self._keep:
            self.items.append(value)
        if self._on_item is not None:
            self._on_item(value)

    def on_error(self, error: Exception) -> None:
        self.error = error
        self._done.set()

    def on_completed(self) -> None:
        self.completed = True
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float = 30.0) -> RecordingObserver:
        """Wait until the stream ends; raise TimeoutError if it has not after ``timeout`` s."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the stream did not end within {timeout} s")
        return self
