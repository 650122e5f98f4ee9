"""Hand-off from the IO thread to a consumer's thread, with acknowledgements as demand.

The engine emits on whatever thread completed a future. A :class:`Mailbox` is an observer that
only appends to a deque there and wakes its consumer on the transition from empty to non-empty;
the consumer (a blocking iterator, an asyncio task, a reactivex scheduler) takes whole batches and
acknowledges what it delivered with ``run.request(n)``, which is what lets the engine issue more.
So the consumer's pace, not the cluster's, decides how far input is pulled ahead.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from reactivex import abc

from ._controls import RunStatistics

log = logging.getLogger("rxcql")


class Run(Protocol):
    """A run's handle, as its consumers and shells use it."""

    def request(self, n: int) -> None: ...

    def dispose(self) -> None: ...

    def statistics(self) -> RunStatistics: ...


def signal_end(observer: abc.ObserverBase[Any], error: Exception | None) -> None:
    """``on_completed`` (no error) or ``on_error``; an observer that raises there is logged,
    since nobody is left to tell (and on the IO thread the driver would swallow it)."""
    try:
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(error)
    except Exception:
        log.exception("an rxcql observer raised in on_error/on_completed")


def ack_interval(window: int, concurrency: int) -> int:
    """How many deliveries to acknowledge at once: rarely enough to be cheap, often enough that
    the credits held back never starve the concurrency slots."""
    return max(1, (window - concurrency) // 4)


class Mailbox(abc.ObserverBase[Any]):
    """Observer that queues results and terminal signals for another thread.

    ``wake`` is called (on the emitting thread) when the consumer may be waiting: when the queue
    goes from empty to non-empty, or on termination, and only once until the next :meth:`take`.

    ``on_next`` takes no lock: the deque's ``append`` and ``popleft`` are atomic, and the wake-up
    flag is only set under the lock. An emission that reads the flag as set happened before the
    consumer's next :meth:`take` re-armed it, and that take's drain (after the re-arming) finds
    it; one that reads it clear wakes the consumer. A wake-up is never lost, at worst doubled.
    """

    __slots__ = ("_done", "_error", "_lock", "_queue", "_wake", "_woken")

    #: rxcql's own observer: it only queues, never raises, runs no user code.
    rxcql_internal = True

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.RLock()  # reentrant: see RunSkeleton's
        self._queue: deque[Any] = deque()
        self._done = False
        self._error: Exception | None = None
        self._wake = wake
        self._woken = False

    def on_next(self, value: Any) -> None:
        self._queue.append(value)
        if not self._woken:
            self._arm()

    def _arm(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        self._wake()

    def _terminate(self, error: Exception | None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self._error = error
            if self._woken:
                return
            self._woken = True
        self._wake()

    def on_error(self, error: Exception) -> None:
        self._terminate(error)

    def on_completed(self) -> None:
        self._terminate(None)

    def take(self) -> tuple[list[Any], bool, Exception | None]:
        """Everything queued so far, and whether (and how) the stream has ended.

        Re-arms the wake-up: the next emission after this call wakes the consumer again.
        """
        with self._lock:
            self._woken = False
            done, error = self._done, self._error
        # Counted after reading the end flag: if it was set, every item is already queued.
        queue = self._queue
        popleft = queue.popleft
        return [popleft() for _ in range(len(queue))], done, error

    def ready(self) -> bool:
        """Whether :meth:`take` would return something now (items or the end)."""
        return bool(self._queue) or self._done
