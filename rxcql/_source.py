"""The demand-driven source: the first stage of the engine.

reactivex's ``from_iterable`` pushes its whole iterable at subscription, and ``merge`` parks what
it cannot run yet in an unbounded list, so a generator of millions would be drained into memory.
Here the engine *pulls*: it asks the source for one more ``(statement, parameters)`` item only
when a concurrency slot and a window credit are free, and the source checks the item's shape.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

from cassandra.query import PreparedStatement, Statement

from ._errors import InvalidItemError


class Pull(Enum):
    """What :meth:`IterableSource.pull` returns instead of an item (typed sentinels: an
    ``is`` test narrows the type, as with httpx's ``UseClientDefault``)."""

    EMPTY = "nothing now, more may come"
    END = "the input is exhausted"


#: ``pull`` found nothing now, but more may come (push sources only).
EMPTY: Final = Pull.EMPTY
#: ``pull`` found the input exhausted.
END: Final = Pull.END

#: A checked ``(statement, parameters)`` item, or one of the two signals.
Pulled: TypeAlias = tuple[Any, Any] | Literal[Pull.EMPTY, Pull.END]

_STATEMENT_TYPES = (str, Statement, PreparedStatement)
_PLAIN_PARAMETERS = frozenset({tuple, list, dict, type(None)})
_EXHAUSTED: Iterator[Any] = iter(())  # what a finished or released source pulls from


def check_item(index: int, item: Any) -> tuple[Any, Any]:
    """Return ``(statement, parameters)`` from one input item, or raise InvalidItemError."""
    if type(item) is tuple and len(item) == 2:
        statement, parameters = item
    elif isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 2:
        statement, parameters = item[0], item[1]
    else:
        raise InvalidItemError(index, item, "is not a (statement, parameters) pair")
    if type(parameters) in _PLAIN_PARAMETERS and isinstance(statement, _STATEMENT_TYPES):
        return statement, parameters  # the common case, without the ABC checks below
    if not isinstance(statement, _STATEMENT_TYPES):
        raise InvalidItemError(
            index,
            item,
            "has a statement that is not a str, Statement or PreparedStatement "
            f"(got {type(statement).__name__})",
        )
    if parameters is not None and (
        isinstance(parameters, str | bytes) or not isinstance(parameters, Sequence | Mapping)
    ):
        raise InvalidItemError(
            index,
            item,
            "has parameters that are not a sequence, a mapping or None "
            f"(got {type(parameters).__name__})",
        )
    return statement, parameters


class IterableSource:
    """Pulls items from the user's iterable, one ``next()`` per free slot.

    Only the engine's drain loop calls :meth:`pull`, and only one thread runs that loop at a time,
    so a generator (which is not thread-safe) is never entered concurrently.
    """

    __slots__ = ("_iterator", "_pulled")

    def __init__(self, iterable: Iterable[Any]) -> None:
        self._iterator: Iterator[Any] = iter(iterable)
        self._pulled = 0

    def pull(self) -> Pulled:
        """The next checked item, or END.

        Raises:
            Exception: the iterator's own exception, unchanged but for a PEP 678 note.
            InvalidItemError: the item is not a well-formed ``(statement, parameters)`` pair.
        """
        try:
            item = next(self._iterator)
        except StopIteration:
            self._iterator = _EXHAUSTED  # some iterators would go on after StopIteration
            return END
        except Exception as exc:
            # The caller's own exception, unchanged (as list(), map() and from_iterable let it
            # through), so that `except TheirError:` around an rxcql call keeps matching.
            self._iterator = _EXHAUSTED
            exc.add_note(
                f"rxcql had pulled {self._pulled} statements from statements_and_parameters "
                "when its iterator raised this; nothing more was issued"
            )
            raise
        self._pulled += 1
        if (
            type(item) is tuple
            and len(item) == 2
            and type(item[1]) in _PLAIN_PARAMETERS
            and isinstance(item[0], _STATEMENT_TYPES)
        ):
            return item  # the common case, checked inline (this runs once per statement)
        return check_item(self._pulled - 1, item)

    def close(self) -> None:
        """Forget the iterator (the run is over); it is not closed, only released."""
        self._iterator = _EXHAUSTED


class PushSource:
    """Buffers items pushed by an upstream Observable until the engine pulls them.

    Upstream ``on_next`` may run on any thread; ``deque`` appends and pops are atomic. An upstream
    that pushes faster than the cluster runs statements is buffered here, without bound (the
    Observable contract gives no way to slow a pushing source down); use
    :func:`rxcql.execute` with an iterable for end-to-end backpressure.
    """

    __slots__ = ("_done", "_error", "_pulled", "_queue", "_statement")

    def __init__(self, statement: Any = None) -> None:
        self._queue: deque[Any] = deque()
        self._done = False
        self._error: Exception | None = None
        self._pulled = 0
        self._statement = statement

    def push(self, item: Any) -> None:
        self._queue.append(item)

    def finish(self, error: Exception | None = None) -> None:
        self._error = error
        self._done = True

    def __len__(self) -> int:
        return len(self._queue)

    def pull(self) -> Pulled:
        """The next checked item, EMPTY if none is buffered yet, or END.

        Raises:
            Exception: the upstream's own error, once everything pushed before it was pulled.
            InvalidItemError: a malformed item.
        """
        # Read the done flag before the queue: if it was set, every push happened before it.
        done = self._done
        queue = self._queue
        if not queue:
            if not done:
                return EMPTY
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return END
        item = queue.popleft()
        index = self._pulled
        self._pulled = index + 1
        if self._statement is not None:
            item = (self._statement, item)
        return check_item(index, item)

    def close(self) -> None:
        self._queue.clear()
