"""Exceptions raised by rxcql.

Every exception rxcql raises itself derives from :class:`RxcqlError`. Errors that come from
Cassandra or the driver (``WriteTimeout``, ``Unavailable``, ``InvalidRequest``, ...) are passed
through unchanged, so code written against ``cassandra.concurrent`` keeps catching what it caught.
"""

from __future__ import annotations


class RxcqlError(Exception):
    """Base class of the exceptions rxcql raises itself."""


class InvalidItemError(RxcqlError, TypeError):
    """An item of ``statements_and_parameters`` is not a ``(statement, parameters)`` pair.

    Delivered as ``on_error`` (raised by the blocking calls and iterators) after the results of
    the statements issued before it; nothing after it is issued.

    The message names the item's position and type, never its contents: an item holds bound
    values, and rxcql's messages and log records never carry them.

    Attributes:
        index: the position of the item in the input.
        item: the offending item.
    """

    def __init__(self, index: int, item: object, reason: str) -> None:
        self.index = index
        self.item = item
        super().__init__(
            f"item {index} of statements_and_parameters {reason} (the item is a "
            f"{type(item).__name__}{_length(item)})"
        )


def _length(item: object) -> str:
    try:
        return f" of length {len(item)}"  # type: ignore[arg-type]
    except Exception:
        return ""


class ObserverError(RxcqlError):
    """A subscriber's ``on_next`` raised; the stream was stopped.

    The original exception is chained as ``__cause__``. rxcql reports it to the same observer's
    ``on_error`` (when that raises too, the failure is logged on the ``rxcql`` logger) and stops
    issuing statements.
    """


class SessionClosedError(RxcqlError):
    """The session (or its cluster) was shut down before or while statements were issued.

    Delivered as ``on_error`` (raised by the blocking calls and iterators), after the results of
    the statements already issued when the shutdown is found mid-run.
    """


class IOThreadBlockingError(RxcqlError, RuntimeError):
    """A blocking rxcql call was made on the driver's IO (event loop) thread.

    Waiting there would wait for the very thread that delivers the results: a deadlock of every
    request of the session. Use :func:`rxcql.execute` (an Observable) or
    :func:`rxcql.execute_concurrent_async` inside driver callbacks instead.
    """


class ReorderError(RxcqlError):
    """The :func:`rxcql.operators.reorder` operator saw an index it cannot place.

    Raised for a duplicate or already-emitted index, for a buffer that would exceed its bound,
    and for a source that completed while indexes were still missing.
    """


class TooManyErrorsError(RxcqlError):
    """A ``raise_on_first_error=False`` run failed more often than its ``max_errors`` allows.

    Delivered as ``on_error`` after the results of every statement issued before it.
    """


class CheckpointError(RxcqlError, ValueError):
    """A checkpoint cannot be used to resume: unreadable or corrupt, of another ``run_id``, of
    another first statement, or saying more statements are done than the input holds.

    Delivered as ``on_error`` before anything is issued (raised by the blocking calls and
    iterators): a resume never skips statements on a doubtful checkpoint.
    """
