"""Reorder: ``(index, value)`` pairs arriving in any order back into index order.

The third stage of the engine (``source -> bounded flat-map -> reorder``). The engine uses the
buffers directly; :func:`reorder` is the same logic as a standalone reactivex operator.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any, Final, Generic, Literal, TypeVar

import reactivex
from reactivex import abc

from ._errors import ReorderError

_T = TypeVar("_T")


class Nothing(Enum):
    """The type of :data:`NOTHING` (a typed sentinel: ``value is NOTHING`` narrows)."""

    NOTHING = "nothing is ready"


#: Returned by :meth:`OrderedBuffer.pop` / :meth:`ArrivalBuffer.pop` when nothing is ready.
NOTHING: Final = Nothing.NOTHING
#: What ``take_ready`` returns when nothing is ready (shared: never mutate it).
NONE_READY: list[Any] = []


class OrderedBuffer(Generic[_T]):
    """Holds values that arrived ahead of their turn and releases them in index order.

    Not thread-safe: the caller serializes access (the engine holds its lock).
    """

    __slots__ = ("_next", "pending")

    def __init__(self, start: int = 0) -> None:
        self._next = start
        #: The values that arrived ahead of their turn; empty means nothing can be ready.
        self.pending: dict[int, _T] = {}

    def put(self, index: int, value: _T) -> None:
        self.pending[index] = value

    def pop(self) -> _T | Literal[Nothing.NOTHING]:
        """The value for the next index, or :data:`NOTHING` if it has not arrived yet."""
        value = self.pending.pop(self._next, NOTHING)
        if value is not NOTHING:
            self._next += 1
        return value

    def put_take(self, index: int, value: _T) -> list[_T]:
        """:meth:`put` then :meth:`take_ready`, without the detour through the dictionary for a
        value whose turn it is (the common case)."""
        if index != self._next:
            self.pending[index] = value
            return NONE_READY
        ready = [value]
        self._next = self._following(ready, index + 1) if self.pending else index + 1
        return ready

    def take_ready(self) -> list[_T]:
        """Remove and return every value whose turn has come (possibly none), in index order."""
        index = self._next
        value = self.pending.pop(index, NOTHING)
        if value is NOTHING:
            return NONE_READY
        ready = [value]
        self._next = self._following(ready, index + 1)
        return ready

    def _following(self, ready: list[_T], index: int) -> int:
        """Move the values waiting from ``index`` on, in order, to ``ready``; return the first
        index still missing."""
        waiting = self.pending
        while True:
            value = waiting.pop(index, NOTHING)
            if value is NOTHING:
                return index
            ready.append(value)
            index += 1

    @property
    def next_index(self) -> int:
        return self._next

    def clear(self) -> None:
        self.pending.clear()

    def __contains__(self, index: object) -> bool:
        return index in self.pending

    def __len__(self) -> int:
        return len(self.pending)


class ArrivalBuffer(Generic[_T]):
    """The ``ordered=False`` counterpart of :class:`OrderedBuffer`: first in, first out."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        #: The values that arrived and were not taken yet.
        self.pending: deque[_T] = deque()

    def put(self, index: int, value: _T) -> None:
        self.pending.append(value)

    def pop(self) -> _T | Literal[Nothing.NOTHING]:
        return self.pending.popleft() if self.pending else NOTHING

    def put_take(self, index: int, value: _T) -> list[_T]:
        """:meth:`put` then :meth:`take_ready`."""
        queue = self.pending
        if not queue:
            return [value]
        queue.append(value)
        return self.take_ready()

    def take_ready(self) -> list[_T]:
        """Remove and return everything that arrived, in arrival order."""
        queue = self.pending
        if not queue:
            return NONE_READY
        ready = list(queue)
        queue.clear()
        return ready

    def clear(self) -> None:
        self.pending.clear()

    def __len__(self) -> int:
        return len(self.pending)


def reorder(
    start: int = 0, max_buffer: int | None = None
) -> Callable[[reactivex.Observable[tuple[int, _T]]], reactivex.Observable[_T]]:
    """Turn ``(index, value)`` pairs that arrive in any order into values in index order.

    Index ``start`` is emitted first, then ``start + 1`` and so on; a value that arrives early
    waits in a buffer until every index before it has been emitted.

    Args:
        start: the first index expected.
        max_buffer: the most values that may wait at once. ``None`` means unbounded; with a bound,
            a value that would exceed it ends the stream with :class:`ReorderError` instead of
            growing memory without limit.

    Returns:
        An operator for ``source.pipe(...)``.

    Raises:
        ReorderError: (as ``on_error``) for a duplicate or already-emitted index, a full buffer,
            or a source that completes while some indexes before buffered values never arrived.
        ValueError: (immediately) for a negative ``max_buffer``.

    Emissions happen on the thread of the source emission that completed the run of indexes.
    The source must respect the Rx contract (no concurrent ``on_next`` calls).

    Example:
        >>> reactivex.of((1, "b"), (0, "a"), (2, "c")).pipe(reorder()).subscribe(print)
    """
    if max_buffer is not None and (
        isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 0
    ):
        raise ValueError(f"max_buffer must be None or an int >= 0, got {max_buffer!r}")

    def operator(source: reactivex.Observable[tuple[int, _T]]) -> reactivex.Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            buffer: OrderedBuffer[_T] = OrderedBuffer(start)
            stopped = False

            def fail(error: Exception) -> None:
                nonlocal stopped
                stopped = True
                buffer.clear()
                observer.on_error(error)

            def on_next(pair: tuple[int, _T]) -> None:
                if stopped:
                    return
                try:
                    index, value = pair
                except (TypeError, ValueError):
                    fail(
                        ReorderError(
                            f"reorder expects (index, value) pairs, got a {type(pair).__name__}"
                        )
                    )
                    return
                if not isinstance(index, int) or index < buffer.next_index or index in buffer:
                    fail(
                        ReorderError(
                            f"reorder got index {index!r}: a duplicate, already emitted "
                            "or not an int"
                        )
                    )
                    return
                if max_buffer is not None and len(buffer) >= max_buffer:
                    fail(
                        ReorderError(
                            f"reorder buffer is full ({max_buffer} values waiting for index "
                            f"{buffer.next_index}); index {index} cannot be held"
                        )
                    )
                    return
                buffer.put(index, value)
                while True:
                    ready = buffer.pop()
                    if ready is NOTHING:
                        break
                    observer.on_next(ready)

            def on_completed() -> None:
                if stopped:
                    return
                if len(buffer):
                    missing = buffer.next_index
                    fail(
                        ReorderError(
                            f"reorder source completed with {len(buffer)} values waiting for "
                            f"index {missing}, which never arrived"
                        )
                    )
                    return
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return reactivex.Observable(subscribe)

    return operator
