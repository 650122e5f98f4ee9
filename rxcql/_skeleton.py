"""What every rxcql run and every rxcql Observable share, written once.

Two kinds of run drive the driver's futures: :class:`rxcql._engine._Run` (statements: one
result each, the bounded flat-map of the design card) and :class:`rxcql._rows._PagesRun`
(queries: pages of rows). Their credit rules differ; their skeleton does not:

* :class:`RunSkeleton`: the lock and the work-in-progress counter of the queue-drain loop,
  once-only termination (:meth:`~RunSkeleton.dispose`, :meth:`~RunSkeleton._finish`),
  emission to a user's observer (:meth:`~RunSkeleton._emit_batch`: the IO-thread marker, an
  ``on_next`` that raises becoming :class:`~rxcql.ObserverError`, disposal from inside
  ``on_next``), the error of a session closed under an ``execute_async`` call, and the guard
  that turns a bug of ours into the stream's error instead of a silently wedged run.
* :class:`DemandShell`: the cold Observable over such runs, with the demand interface the
  consumers use (:meth:`~DemandShell.subscribe_with_demand`) and the wiring of a delivery
  ``scheduler`` (:class:`~rxcql._consumers.ScheduledDelivery`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable

from ._consumers import ScheduledDelivery
from ._delivery import signal_end
from ._errors import ObserverError, SessionClosedError
from ._options import session_closed
from ._threads import thread_marker

log = logging.getLogger("rxcql")

#: An observer that takes more than this long, on the driver's IO thread, is reported.
SLOW_OBSERVER_SECONDS = 0.1


class _Discard(abc.ObserverBase[Any]):
    """The observer of a run that has ended: ignores everything."""

    rxcql_internal = True

    def on_next(self, value: Any) -> None:
        pass

    def on_error(self, error: Exception) -> None:
        pass

    def on_completed(self) -> None:
        pass


DISCARD = _Discard()


class RunSkeleton:
    """The shared skeleton of a run; subclasses add their credit rules and drain loop.

    A subclass sets ``_stop_hooks`` behaviour by overriding :meth:`_drop_queued` (under the
    lock, when the run terminates) and :meth:`_release` (outside it), and :meth:`_before_end`
    (a last progress report, say).
    """

    __slots__ = ("_lock", "_manual", "_observer", "_on_next", "_session", "_terminated", "_wip")

    def __init__(self, session: Any, observer: abc.ObserverBase[Any], manual: bool) -> None:
        # Reentrant, as every lock a consumer's thread takes in rxcql: a Ctrl-C can leave it
        # held by that thread (CPython's ``with`` is not atomic against signals), and the
        # cleanup that follows on the same thread must not wait on itself.
        self._lock = threading.RLock()
        self._session = session
        self._observer = observer
        self._on_next = observer.on_next
        #: True: rxcql's own consumer grants demand with request(n); False: every emission is
        #: consumption (a plain subscriber).
        self._manual = manual
        #: The queue-drain counter: signals while the loop runs only bump it.
        self._wip = 0
        self._terminated = False

    # -- termination, once ----------------------------------------------------------------

    def dispose(self) -> None:
        """Stop at once; what arrives later is dropped. Idempotent."""
        if self._stop():
            self._forget_observer()

    @property
    def disposed(self) -> bool:
        return self._terminated

    def _stop(self) -> bool:
        """Terminate (once): drop what is queued, release the input. False if already ended."""
        with self._lock:
            if self._terminated:
                return False
            self._terminated = True
            self._drop_queued()
        self._release()
        return True

    def _drop_queued(self) -> None:
        """Under the lock, at termination: forget results or pages not delivered yet."""

    def _release(self) -> None:
        """Outside the lock, at termination: release the input and anything upstream."""

    def _before_end(self) -> None:
        """Just before the observer hears the end of the stream."""

    def _finish(self, error: Exception | None, complete: bool = False) -> None:
        """End the stream (once): ``on_completed`` if ``complete``, else ``on_error(error)``."""
        if not self._stop():
            return
        self._before_end()
        signal_end(self._observer, None if complete else error)
        self._forget_observer()

    def _forget_observer(self) -> None:
        """An ended run calls its observer no more: drop it. Whoever still holds the run (a
        subscription, a future's done-callback) then no longer keeps the observer, and what it
        collected, alive through a reference cycle until the garbage collector runs."""
        self._observer = DISCARD
        self._on_next = DISCARD.on_next

    def _crashed(self, exc: BaseException, what: str) -> None:
        """The guard around a drain loop: a bug of ours must not become a silently wedged run.
        The stream ends with the error; a BaseException (KeyboardInterrupt) propagates."""
        log.exception("rxcql %s failed", what)
        self._finish(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
        if not isinstance(exc, Exception):
            raise exc

    def _closed_error(self, exc: Exception, message: str) -> SessionClosedError | None:
        """When ``execute_async`` raised because the session was shut down: the run's error
        (``exc`` chained); None when the session is open and ``exc`` is the statement's own."""
        if not session_closed(self._session):
            return None
        closed = SessionClosedError(message)
        closed.__cause__ = exc
        return closed

    # -- emission to a user's observer ----------------------------------------------------

    def _emit_batch(
        self,
        items: Iterable[Any],
        stop_at_failure: bool,
        after_each: Callable[[Any], None] | None,
        describe: Callable[[Any], str],
    ) -> int:
        """Hand ``items`` to the observer on this thread: how many were delivered, or -1 if
        the run ended meanwhile (a failure with ``stop_at_failure``, an ``on_next`` that
        raised, or disposal from inside ``on_next``). ``after_each`` runs after every delivered
        item; ``describe`` names an item in an :class:`~rxcql.ObserverError`."""
        observer = self._observer
        perf_counter = time.perf_counter
        started = perf_counter()
        delivered = 0
        # Mark the thread: a blocking rxcql call from inside on_next would deadlock.
        depth = getattr(thread_marker, "depth", 0)
        thread_marker.depth = depth + 1
        try:
            for item in items:
                if stop_at_failure and not item[0]:
                    self._finish(item[1])
                    return -1
                try:
                    observer.on_next(item)
                except Exception as exc:
                    error = ObserverError(f"observer.on_next raised on {describe(item)}: {exc!r}")
                    error.__cause__ = exc
                    self._finish(error)
                    return -1
                delivered += 1
                if after_each is not None:
                    after_each(item)
                if self._terminated or getattr(observer, "is_stopped", False):
                    # disposed from inside on_next (reactivex's auto-detach observer)
                    self.dispose()
                    return -1
        finally:
            thread_marker.depth = depth
        took = perf_counter() - started
        if took > SLOW_OBSERVER_SECONDS and not self._manual:
            # (rxcql's own consumers only queue: their observer is never slow.)
            log.warning(
                "an rxcql observer held the emitting thread (the driver's IO thread unless a "
                "scheduler was given) for %.0f ms; every request of the session waits "
                "meanwhile. Pass scheduler=..., or use the blocking or asyncio consumers.",
                took * 1000,
            )
        return delivered


_T_co = TypeVar("_T_co", covariant=True)


class DemandShell(reactivex.Observable[_T_co]):
    """A cold Observable whose every subscription is one run, with explicit demand for rxcql's
    consumers and scheduler wiring for plain subscribers.

    Subclasses say how a run is made (:meth:`_make_run`) and started (:meth:`_start`), how
    often consumers acknowledge (:attr:`ack_every`), and whether items are pages to flatten.
    """

    def __init__(self, session: Any, scheduler: abc.SchedulerBase | None) -> None:
        self._session = session
        self._delivery = scheduler
        super().__init__(self._subscribe_auto)

    @property
    def ack_every(self) -> int:
        """How many consumed items rxcql's consumers acknowledge at once."""
        raise NotImplementedError

    @property
    def flatten(self) -> bool:
        """True when the run emits pages whose rows are the items."""
        return False

    def _make_run(self, observer: abc.ObserverBase[Any], manual: bool) -> Any:
        raise NotImplementedError

    def _start(self, run: Any, demand: int | None) -> None:
        raise NotImplementedError

    def _plain(self, observer: abc.ObserverBase[Any]) -> abc.ObserverBase[Any]:
        """The observer a plain subscriber's items go through when emitted directly (the row
        streams flatten pages there; with a scheduler the consumer core flattens them)."""
        return observer

    def _new_run(self, observer: abc.ObserverBase[Any], manual: bool) -> Any:
        if session_closed(self._session):
            observer.on_error(SessionClosedError("the session is shut down"))
            return None
        return self._make_run(observer, manual)

    def _launch(self, observer: abc.ObserverBase[Any]) -> tuple[Any, abc.DisposableBase]:
        """Start a run for a plain subscriber: the run (None if the session was closed) and
        what disposes of it."""
        if self._delivery is not None:
            scheduled = ScheduledDelivery(observer, self._delivery, self.flatten, self.ack_every)
            run = self._new_run(scheduled, manual=True)
            if run is None:
                return None, Disposable()
            scheduled.attach(run)
            self._start(run, None)
            return run, Disposable(scheduled.dispose)
        run = self._new_run(self._plain(observer), manual=False)
        if run is None:
            return None, Disposable()
        self._start(run, None)
        return run, Disposable(run.dispose)

    def _subscribe_auto(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        return self._launch(observer)[1]

    def run_direct(self, observer: abc.ObserverBase[Any]) -> abc.DisposableBase:
        """Run with ``observer`` called directly, without reactivex's subscribe machinery (the
        trampoline, the auto-detach wrapper): what rxcql's own collectors use. The observer is
        called on the emitting thread and must not raise."""
        run = self._new_run(observer, manual=False)
        if run is None:
            return Disposable()
        self._start(run, None)
        return Disposable(run.dispose)

    def subscribe_with_demand(
        self, observer: abc.ObserverBase[Any], initial_demand: int | None = None
    ) -> Any:
        """Run with explicit demand, reactive-streams style: the run handle (``request(n)``,
        ``dispose()``, ``statistics()``), or None if the session was already shut down
        (``observer.on_error`` has then been called). ``observer`` is called directly, on the
        thread that completes a future or that calls ``request``."""
        run = self._new_run(observer, manual=True)
        if run is not None:
            self._start(run, initial_demand)
        return run
