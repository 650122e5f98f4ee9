"""Consumers on the caller's thread or event loop, driving the engine with explicit demand.

The emitting thread (usually the driver's IO thread) only appends to a :class:`Mailbox` and wakes
the consumer when it was empty; the consumer acknowledges what it has taken, and only
acknowledged items free credits. So at most a window of statements (or pages of rows) is ever
fetched ahead of the loop that reads them, however slow it is.

* :class:`ResultIterator`: a blocking iterator (``for result in ...``).
* :class:`AsyncResultIterator`: an async iterator (``async for result in ...``) that delivers
  on the caller's asyncio event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, overload

from reactivex import abc
from reactivex.disposable import Disposable

from ._delivery import Mailbox, Run, signal_end
from ._errors import ObserverError
from ._threads import ensure_not_io_thread

if TYPE_CHECKING:
    from ._engine import ExecuteObservable
    from ._pool import PoolObservable
    from ._results import DriverExecutionResult
    from ._rows import RowsObservable

#: What a consumer yields: a result (``execute``) or a row (the row streams).
_T = TypeVar("_T")
_R = TypeVar("_R", bound="DriverExecutionResult")


class _Taken(Enum):
    DONE = "nothing taken locally: take more from the mailbox"
    WAIT = "nothing to receive now: wait for the wake-up"


_DONE: Final = _Taken.DONE
#: What :meth:`_Consumer.receive_nowait` returns when the consumer must wait.
WAIT: Final = _Taken.WAIT


class DemandObservable(Protocol):
    """What a consumer needs of an rxcql Observable (``execute`` or the row streams)."""

    def subscribe_with_demand(
        self, observer: Any, initial_demand: int | None = None
    ) -> Run | None: ...

    @property
    def ack_every(self) -> int: ...

    @property
    def flatten(self) -> bool: ...


class _Consumer:
    """The consumer core, in the shape of anyio's memory streams: one state (the mailbox the
    emitting thread fills, the batch taken from it, the acknowledgements that grant the run new
    credit) and :meth:`receive_nowait`; the blocking iterator, the asyncio iterator and the
    scheduler delivery are three waiters over it, differing only in how they wait (:meth:`_wake`).

    Mailbox items are results (``flatten`` false: each is received and acknowledged) or pages of
    rows (``flatten`` true: their rows are received, and a page is acknowledged once its last row
    was taken: rows are flattened here and nowhere else on a consumer's side).
    """

    def __init__(self, flatten: bool, ack_every: int) -> None:
        self._mailbox = Mailbox(self._wake)
        self._local: deque[Any] = deque()
        self._rows: Iterator[Any] | None = None
        self._flatten = flatten
        #: The run's acknowledgement interval (``ack_every`` of its observable): one rule.
        self._ack_every = ack_every
        self._unacked = 0
        self._ended = False
        self._run: Run | None = None

    def _wake(self) -> None:
        raise NotImplementedError

    def _next_local(self) -> Any:
        """The next item from what was already taken, or _DONE if it must take more."""
        while True:
            rows = self._rows
            if rows is not None:
                row = next(rows, _DONE)
                if row is not _DONE:
                    return row
                self._rows = None
                self._acknowledge_one()
            local = self._local
            if not local:
                return _DONE
            item = local.popleft()
            if self._flatten:
                self._rows = iter(item)
                continue
            self._acknowledge_one()
            return item

    def _acknowledge_one(self) -> None:
        self._unacked += 1
        if self._unacked >= self._ack_every:
            self._acknowledge()

    def _acknowledge(self) -> None:
        run = self._run
        if self._unacked and run is not None:
            run.request(self._unacked)
        self._unacked = 0

    def receive_nowait(self) -> Any:
        """The next item, or :data:`WAIT` if none is here yet (the wake-up is then armed: the
        next emission calls :meth:`_wake`). Before waiting, what was consumed is acknowledged.

        Raises:
            StopIteration: the stream ended.
            Exception: the stream's error, after every item before it.
        """
        while True:
            item = self._next_local()
            if item is not _DONE:
                return item
            if self._ended:
                raise StopIteration
            self._acknowledge()  # give back the credits of what was consumed before waiting
            if not self._take():
                return WAIT

    def _take(self) -> bool:
        """Move what the mailbox holds into the local batch. True if it got something; raises
        the stream's error, or StopIteration at its end; False if the consumer must wait."""
        batch, done, error = self._mailbox.take()
        if batch:
            self._local.extend(batch)
            return True
        if done:
            self._ended = True
            self._run = None
            if error is not None:
                raise error
            raise StopIteration
        return False

    def close(self) -> None:
        """Stop: nothing more is issued or fetched; what was not read yet is dropped."""
        if self._ended:
            return
        self._ended = True
        self._local.clear()
        self._rows = None
        run, self._run = self._run, None
        if run is not None:
            run.dispose()

    @property
    def run(self) -> Run | None:
        """The engine's handle (``statistics()`` reads its counters), or None before the start
        and after the end."""
        return self._run

    def __del__(self) -> None:
        run = getattr(self, "_run", None)
        if run is not None:
            run.dispose()


class ResultIterator(_Consumer, Iterator[_T]):
    """Iterate an rxcql Observable on the calling thread, with backpressure.

    Items come in the order the observable gives them (input order for
    ``rxcql.execute(..., ordered=True)``). An error of the stream is raised from ``next()``
    when the consumer reaches it, after every item before it.

    The loop body may block, sleep or run synchronous queries on the same session: items are
    delivered on the consumer's thread, never on the driver's IO thread. :meth:`close` (or leaving
    a ``with`` block, or dropping the iterator) stops the issuing of statements at once.

    Raises:
        IOThreadBlockingError: (on creation) when created on the driver's IO thread.
    """

    def __init__(self, observable: DemandObservable) -> None:
        ensure_not_io_thread("iterating rxcql results")
        super().__init__(observable.flatten, observable.ack_every)
        # Reentrant: a Ctrl-C can land just after this thread took the lock and before the
        # ``with`` that took it is set up to release it (a CPython limitation), and the cleanup
        # that follows on this same thread (the run's end, a pool's close) wakes this iterator
        # again; with a plain lock it waited on itself forever (seen with ProcessPool).
        self._cond = threading.Condition(threading.RLock())
        self._waiting = False
        self._run = observable.subscribe_with_demand(self._mailbox)
        if self._run is None:  # the session was shut down: the mailbox holds the error
            self._take()

    def _wake(self) -> None:
        # On the emitting thread (usually the IO thread): never blocks beyond this short lock.
        with self._cond:
            if self._waiting:
                self._cond.notify()

    def __iter__(self) -> ResultIterator[_T]:
        return self

    def __next__(self) -> _T:
        local = self._local
        if local and not self._flatten:  # the common case, without the calls below
            item: _T = local.popleft()
            self._unacked += 1
            if self._unacked >= self._ack_every:
                self._acknowledge()
            return item
        while True:
            received = self.receive_nowait()
            if received is not WAIT:
                item = received
                return item
            with self._cond:
                self._waiting = True
                # An emission after the take calls _wake, which needs this lock: checking and
                # waiting under it cannot miss a wake-up.
                if not self._mailbox.ready():
                    self._cond.wait()
                self._waiting = False

    def __enter__(self) -> ResultIterator[_T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncResultIterator(_Consumer, AsyncIterator[_T]):
    """Iterate an rxcql Observable with ``async for``, on the caller's event loop.

    The run starts at the first ``__anext__``, on the running loop. Items are handed over on the
    loop's thread (the IO thread only queues them and wakes the loop with one
    ``call_soon_threadsafe`` per batch); a slow ``async for`` body slows the issuing of
    statements, since only consumed items free credits. Cancelling the task that awaits the next
    item, :meth:`aclose`, leaving an ``async with`` block or dropping the iterator stops the run.

    Acknowledgements issue the next statements on the loop's thread: ``execute_async`` does not
    wait for the network, it costs tens of microseconds per statement.

    Raises:
        Exception: the stream's error, from ``__anext__``, after every item before it.
    """

    def __init__(self, observable: DemandObservable) -> None:
        super().__init__(observable.flatten, observable.ack_every)
        self._observable = observable
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._waiter: asyncio.Future[None] | None = None
        self._started = False

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._set_waiter()
            return
        try:
            loop.call_soon_threadsafe(self._set_waiter)
        except RuntimeError:  # the loop was closed under us: nobody is listening any more
            self.close()

    def _set_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncResultIterator[_T]:
        return self

    async def __anext__(self) -> _T:
        if not self._started:
            self._started = True
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._run = self._observable.subscribe_with_demand(self._mailbox)
        while True:
            try:
                received = self.receive_nowait()
            except StopIteration:
                raise StopAsyncIteration from None
            if received is not WAIT:
                item: _T = received
                return item
            assert self._loop is not None
            waiter = self._waiter = self._loop.create_future()
            if self._mailbox.ready():
                continue  # woken before the waiter existed
            try:
                await waiter
            except asyncio.CancelledError:
                self.close()
                raise
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stop the run (like :meth:`close`); for ``contextlib.aclosing`` and ``async with``."""
        self.close()

    async def __aenter__(self) -> AsyncResultIterator[_T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ScheduledDelivery(_Consumer, abc.ObserverBase[Any]):
    """Delivers a run's items to a plain ``observer`` on a reactivex ``scheduler``: the third
    waiter over the consumer core. What ``rxcql.execute(..., scheduler=...)`` (and the row
    streams' ``scheduler=``) use: the IO thread only queues, and a slow observer slows the
    issuing of statements instead of stalling the driver (unlike ``observe_on``, which buffers
    without bound).

    It is the run's observer (emissions go to its mailbox); each wake-up schedules one delivery
    pass that receives until it must wait.
    """

    #: rxcql's own observer: the IO thread only queues; user code runs on the scheduler.
    rxcql_internal = True

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        flatten: bool,
        ack_every: int,
    ) -> None:
        super().__init__(flatten, ack_every)
        self._observer = observer
        self._scheduler = scheduler
        self._stopped = False

    def attach(self, run: Run) -> None:
        self._run = run

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    def on_next(self, value: Any) -> None:
        self._mailbox.on_next(value)

    def on_error(self, error: Exception) -> None:
        self._mailbox.on_error(error)

    def on_completed(self) -> None:
        self._mailbox.on_completed()

    def dispose(self) -> None:
        self._stopped = True
        self.close()

    def _wake(self) -> None:
        self._scheduler.schedule(self._deliver)

    def _deliver(self, scheduler: abc.SchedulerBase, state: Any = None) -> abc.DisposableBase:
        observer = self._observer
        while not self._stopped:
            try:
                item = self.receive_nowait()
            except StopIteration:
                self._end(None)
                break
            except Exception as error:
                self._end(error)
                break
            if item is WAIT:
                break  # the take re-armed the wake-up: the next emission schedules a new pass
            try:
                observer.on_next(item)
            except Exception as exc:
                failure = ObserverError(f"observer.on_next raised on the scheduler: {exc!r}")
                failure.__cause__ = exc
                self.dispose()
                signal_end(observer, failure)
                break
        return Disposable()

    def _end(self, error: Exception | None) -> None:
        self._stopped = True
        signal_end(self._observer, error)


@overload
def iterate(observable: ExecuteObservable[_R]) -> ResultIterator[_R]: ...


@overload
def iterate(observable: RowsObservable) -> ResultIterator[Any]: ...


@overload
def iterate(observable: PoolObservable) -> ResultIterator[Any]: ...


def iterate(observable: DemandObservable) -> ResultIterator[Any]:
    """A blocking, backpressured iterator over ``rxcql.execute(...)`` or a row stream.

    Items are delivered on the thread that iterates, never on the driver's IO thread; the
    stream's error is raised from ``next()`` when the loop reaches it, after every item before it.

    Example:
        >>> with rxcql.iterate(rxcql.execute(session, statements)) as results:
        ...     for result in results:
        ...         handle(result)      # may block; issuing waits for it

    Raises:
        IOThreadBlockingError: when called on the driver's IO thread.
        TypeError: for an observable that is not one of rxcql's.
    """
    _check(observable)
    return ResultIterator[Any](observable)


@overload
def aiterate(observable: ExecuteObservable[_R]) -> AsyncResultIterator[_R]: ...


@overload
def aiterate(observable: RowsObservable) -> AsyncResultIterator[Any]: ...


@overload
def aiterate(observable: PoolObservable) -> AsyncResultIterator[Any]: ...


def aiterate(observable: DemandObservable) -> AsyncResultIterator[Any]:
    """An ``async for`` iterator over ``rxcql.execute(...)`` or a row stream.

    Items are delivered on the running event loop's thread; the stream's error is raised from
    ``__anext__`` when the loop reaches it, after every item before it.

    Example:
        >>> async for result in rxcql.aiterate(rxcql.execute(session, statements)):
        ...     await handle(result)

    Raises:
        TypeError: for an observable that is not one of rxcql's.
    """
    _check(observable)
    return AsyncResultIterator[Any](observable)


@overload
async def collect(observable: ExecuteObservable[_R]) -> list[_R]: ...


@overload
async def collect(observable: RowsObservable) -> list[Any]: ...


@overload
async def collect(observable: PoolObservable) -> list[Any]: ...


async def collect(observable: DemandObservable) -> list[Any]:
    """Await every item of ``rxcql.execute(...)`` or a row stream, as a list.

    The awaitable list form of :func:`aiterate`: items are handed over on the caller's event
    loop, and cancelling the awaiting task stops the run.

    Raises:
        TypeError: for an observable that is not one of rxcql's.
        Exception: the stream's error (the driver's exception, InvalidItemError, ...).
    """
    _check(observable)
    async with AsyncResultIterator[Any](observable) as items:
        return [item async for item in items]


def _check(observable: Any) -> None:
    if not callable(getattr(observable, "subscribe_with_demand", None)):
        raise TypeError(
            "expected an Observable from rxcql.execute, rxcql.stream_rows or "
            f"rxcql.stream_rows_many, got {type(observable).__name__}"
        )
