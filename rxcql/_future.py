"""Driver ResponseFutures: what happens to a finished one, and one as an Observable.

The engine's bounded flat-map maps each statement onto "an observable backed by its
ResponseFuture". A full reactivex subscription per statement costs several microseconds (the
trampoline, merge's synchronized wrappers), so the engine's inner observable is its own callback
pair on the future (``_engine._Run._on_success`` / ``_on_failure``); both it and
:func:`from_response_future` (a real, cold ``reactivex.Observable`` for users composing single
queries) finish a future with :func:`result_set` or :func:`detach`, defined here.
"""

from __future__ import annotations

import logging
from typing import Any

import reactivex
from cassandra.cluster import _NOT_SET, ResponseFuture, ResultSet
from cassandra.connection import Timer
from reactivex import abc
from reactivex.disposable import Disposable

from ._threads import IN_CALLBACK
from ._types import ResponseFutureLike

log = logging.getLogger("rxcql")


def release_timer(future: Any) -> None:
    """Break the driver's reference cycle through a finished future's cancelled timer.

    A ``ResponseFuture`` keeps its request timer in ``_timer`` after cancelling it, and the timer
    keeps the future's bound ``_on_timeout`` as its callback: every finished future (with the 20
    or so objects it holds) is cyclic garbage that only the garbage collector can free, and its
    full collections are a large share of the client's CPU time in a long run (measured with
    ``python -m bench``). A cancelled timer never calls its callback again (``Timer.finish``
    checks ``canceled`` first, and the future only starts a new timer when ``_timer`` is None),
    so dropping that reference changes nothing but lets reference counting free the future as
    soon as its result is dropped. Anything other than the driver's own future and timer
    classes (another reactor's timer, a fake) is left alone.
    """
    if isinstance(future, ResponseFuture):
        timer = future._timer
        if isinstance(timer, Timer) and timer.canceled:
            timer.callback = None


def _clear_callbacks(future: Any) -> None:
    """``future.clear_callbacks()`` where the future has it (a hand-made test future may not)."""
    clear = getattr(future, "clear_callbacks", None)
    if clear is not None:
        clear()


def detach(future: Any) -> None:
    """After a future's outcome arrived: drop our callbacks (fetching a next page would run them
    again, and they would keep their owner alive) and the timer cycle (:func:`release_timer`).
    Never raises: it runs in callbacks, where the driver swallows exceptions."""
    try:
        _clear_callbacks(future)
        release_timer(future)
    except Exception:  # a foreign future whose clear_callbacks raises: nothing else to undo
        log.debug("clear_callbacks failed", exc_info=True)


def result_set(future: Any, rows: Any) -> Any:
    """The result of a future that has just succeeded, after dropping our callbacks (paging
    through the ResultSet later re-runs them, and they would keep their owner alive) and the
    timer cycle (:func:`release_timer`).

    For the driver's own future (and anything that carries the same column attributes, as the
    driver's and rxcql's test fakes do) that is a :class:`~cassandra.cluster.ResultSet`, exactly
    as ``cassandra.concurrent`` builds it. A hand-made future without them (a user's test double
    that implements only ``add_callbacks``) gets no ResultSet: its result is whatever it handed
    to the callback. Raises if a ResultSet cannot be built: the caller treats that as the
    statement's failure."""
    # Written for the common case: try blocks cost nothing when nothing is raised (3.11), a
    # contextlib.suppress would cost a context manager per statement.
    try:  # noqa: SIM105 (see above)
        future.clear_callbacks()
    except AttributeError:  # a hand-made future without it: nothing to clear
        pass
    release_timer(future)
    try:
        return ResultSet(future, rows)
    except AttributeError:  # no _col_names / _col_types: not the driver's kind of future
        return rows


def execute_with_timestamp(
    session: Any, statement: Any, parameters: Any, execution_profile: Any, timestamp: int | None
) -> Any:
    """``session.execute_async(statement, parameters)`` with the request's client timestamp set
    to ``timestamp`` instead of a new one: a statement sent again keeps the place in the order
    of writes its first attempt had (the driver's own retries re-send the same message, and so
    the same timestamp; a new ``execute_async`` would stamp it later than statements sent
    meanwhile, and an older write would win). These are the steps of the driver's
    ``Session.execute_async`` with the timestamp set before the request is sent, on the driver's
    ``Session`` or anything that offers the same steps (a wrapper that delegates them); a
    session without them (a fake) gets a plain ``execute_async``."""
    create = getattr(session, "_create_response_future", None)
    on_request = getattr(session, "_on_request", None)
    if timestamp is None or not callable(create) or not callable(on_request):
        return session.execute_async(statement, parameters, execution_profile=execution_profile)
    future = create(statement, parameters, False, None, _NOT_SET, execution_profile)
    if not isinstance(future, ResponseFuture):  # a look-alike (a Mock): it is not sent
        return session.execute_async(statement, parameters, execution_profile=execution_profile)
    future.message.timestamp = timestamp
    future._protocol_handler = session.client_protocol_handler
    on_request(future)
    future.send_request()
    return future


def request_timestamp(future: Any) -> int | None:
    """The client timestamp a driver future's request was sent with (None for a fake)."""
    timestamp = getattr(getattr(future, "message", None), "timestamp", None)
    return timestamp if isinstance(timestamp, int) else None


class _FutureSubscription:
    """One subscription of :func:`from_response_future`: the future's callback pair."""

    __slots__ = ("disposed", "observer")

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self.observer = observer
        self.disposed = False

    # Both run on the driver's IO thread (or inside add_callbacks if the result was already
    # there). The driver swallows exceptions from callbacks, so none may escape.

    def on_success(self, rows: Any, future: Any) -> None:
        try:
            value: Any = result_set(future, rows)
        except Exception as exc:  # a future that cannot build its ResultSet is a failure
            self._deliver(False, exc)
            return
        self._deliver(True, value)

    def on_failure(self, exc: Any, future: Any) -> None:
        detach(future)
        self._deliver(False, exc)

    def _deliver(self, success: bool, value: Any) -> None:
        if self.disposed:
            return
        self.disposed = True
        try:
            with IN_CALLBACK:
                if success:
                    self.observer.on_next(value)
                    self.observer.on_completed()
                else:
                    self.observer.on_error(value)
        except Exception:
            # Nowhere to report it: the observer itself failed on the IO thread. Log it rather
            # than let the driver swallow it silently.
            log.exception("an observer of from_response_future raised")


def from_response_future(future: ResponseFutureLike) -> reactivex.Observable[ResultSet]:
    """A cold Observable over one driver ``ResponseFuture``.

    Each subscription attaches callbacks to the future; it emits the driver's
    :class:`~cassandra.cluster.ResultSet` and completes, or fails with the driver's exception.
    Disposing before the result arrives drops it (the driver has no way to cancel a request).

    Emissions happen on the driver's IO thread; if the future had already completed when
    subscribing, they happen synchronously on the subscriber's thread, inside ``subscribe``. Do not
    iterate a multi-page ResultSet on the IO thread: fetching the next page waits for that thread.

    Args:
        future: a ``ResponseFuture`` from ``session.execute_async`` (or a compatible fake).

    Returns:
        ``Observable[ResultSet]`` of exactly one item, or an error.

    Raises:
        TypeError: if ``future`` has no ``add_callbacks`` method.

    Example:
        >>> from_response_future(session.execute_async("SELECT * FROM t")).pipe(
        ...     ops.map(lambda rs: rs.one())).subscribe(print)
    """
    if not callable(getattr(future, "add_callbacks", None)):
        raise TypeError(f"from_response_future needs a driver ResponseFuture, got {future!r:.200}")

    def subscribe(
        observer: abc.ObserverBase[ResultSet], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscription = _FutureSubscription(observer)
        args = (future,)
        future.add_callbacks(
            subscription.on_success,
            subscription.on_failure,
            callback_args=args,
            errback_args=args,
        )

        def dispose() -> None:
            subscription.disposed = True

        return Disposable(dispose)

    return reactivex.Observable(subscribe)
