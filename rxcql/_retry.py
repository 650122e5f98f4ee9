"""Retries with backoff: which failures are tried again, when, and on one timer per run.

cassandra-driver's ``RetryPolicy`` retries at once, without backoff, and sends a retry through a
new ``execute_async`` only if the caller does it (with a new, later client timestamp). rxcql's
:class:`Retry` is a stage of the run: a statement (or a batch) that failed with an error saying
the request may succeed later waits, keeping its concurrency slot and its window place (so
retries slow the run down instead of piling up), then goes again with the client timestamp of
its first attempt, so it cannot win over a write sent after it. Each statement still yields one
result: its last outcome.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BoundStatement, PreparedStatement, SimpleStatement

log = logging.getLogger("rxcql")

#: Errors after which the request was surely not applied: safe to retry any statement.
_NOT_APPLIED = (Unavailable, OverloadedErrorMessage, IsBootstrappingErrorMessage, NoHostAvailable)
#: Errors after which it may have been applied (a timeout, a connection lost mid-request).
_MAYBE_APPLIED = (OperationTimedOut, WriteTimeout, ReadTimeout, ConnectionException)

_CONDITION = re.compile(r"\bIF\b", re.IGNORECASE)
_COUNTER_UPDATE = re.compile(r"\b(\w+)\s*=\s*\1\s*[-+]", re.IGNORECASE)
_STRINGS = re.compile(r"'(?:[^']|'')*'|\$\$.*?\$\$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Retry:
    """How rxcql retries statements that failed with an error that may pass.

    Retried: ``OperationTimedOut``, ``WriteTimeout``, ``ReadTimeout``, ``Unavailable``,
    ``OverloadedErrorMessage``, ``IsBootstrappingErrorMessage``, connection errors and
    ``NoHostAvailable`` while the session is open. Never retried: request errors
    (``InvalidRequest``, ``SyntaxException``, ``Unauthorized``, ...) and a shut-down session.

    Args:
        attempts: the most attempts of a statement in all (the first one included).
        base_delay: seconds before the first retry (before jitter); it doubles each time.
        max_delay: the longest wait between two attempts.
        jitter: full jitter: each wait is uniform in ``[0, min(max_delay, base * 2**n))``.
        idempotent_only: True (the default): only statements marked ``is_idempotent`` (the
            driver's flag, on the statement or its prepared statement) are retried. False:
            every statement is, except conditional writes (``IF ...``) and counter updates after
            an error that says they may have been applied (a timeout, a lost connection).

    A batch is retried only if every statement of it may be.
    """

    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 5.0
    jitter: bool = True
    idempotent_only: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"Retry attempts must be an int, got {type(self.attempts).__name__}")
        if self.attempts < 1:
            raise ValueError(f"Retry attempts must be at least 1, got {self.attempts}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Retry {name} must be a number >= 0, got {value!r}")
        for name in ("jitter", "idempotent_only"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Retry {name} must be a bool")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def allows(self, error: BaseException, statements: list[Any]) -> bool:
        """Whether a request of these statements that failed with ``error`` may be retried."""
        if isinstance(error, _NOT_APPLIED):
            maybe_applied = False
        elif isinstance(error, _MAYBE_APPLIED):
            maybe_applied = True
        else:
            return False
        for statement in statements:
            if self.idempotent_only:
                if not _idempotent(statement):
                    return False
            elif maybe_applied and _unsafe_to_repeat(statement):
                return False
        return True


def as_retry(value: Retry | int | None) -> Retry | None:
    """``retry=`` as given: a :class:`Retry`, an int (``Retry(attempts=n)``) or None."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"retry must be a rxcql.Retry, an int or None, got {type(value).__name__}")
    return Retry(attempts=value)


def _idempotent(statement: Any) -> bool:
    if isinstance(statement, BatchStatement | BoundStatement | SimpleStatement):
        return bool(statement.is_idempotent)
    if isinstance(statement, PreparedStatement):
        return bool(statement.is_idempotent)
    return False  # a plain string: the driver's default, not idempotent


def _unsafe_to_repeat(statement: Any) -> bool:
    """A conditional write or a counter update: applying it twice is not applying it once."""
    if isinstance(statement, BoundStatement):
        query = statement.prepared_statement.query_string
    elif isinstance(statement, PreparedStatement | SimpleStatement):
        query = statement.query_string
    elif isinstance(statement, str):
        query = statement
    else:
        return True
    text = _STRINGS.sub("''", query or "")
    return bool(_CONDITION.search(text) or _COUNTER_UPDATE.search(text))


TimerFactory = Callable[[float, Callable[[], None]], Any]
Clock = Callable[[], float]


def own_clock(session: Any) -> bool:
    """Whether ``session`` brings its own timers and clock (a fake: see
    :class:`rxcql.testing.FakeSession`)."""
    return callable(getattr(session, "create_timer", None)) and callable(
        getattr(session, "clock", None)
    )


def timer_factory(session: Any) -> tuple[TimerFactory, Clock]:
    """How a run waits, and its clock: a fake's own ``create_timer`` and ``clock`` (a
    controllable clock, see :class:`rxcql.testing.FakeSession`), else the driver reactor's
    timers (``cluster.connection_class.create_timer``: they fire on its IO thread, no thread of
    ours), else a ``threading.Timer``."""
    if own_clock(session):
        return session.create_timer, session.clock
    connection_class = getattr(getattr(session, "cluster", None), "connection_class", None)
    create = getattr(connection_class, "create_timer", None)
    if callable(create):
        return create, time.monotonic
    return _thread_timer, time.monotonic


def _thread_timer(delay: float, callback: Callable[[], None]) -> Any:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()
    return timer


class RetryTimer:
    """One run's waiting retries: a heap by due time, and one timer armed for the earliest.

    ``due(item)`` is called (on the timer's thread) for each item whose time has come.
    """

    #: A timer may fire a little before the due time as this clock reads it (the driver's
    #: timers count on the wall clock): items due within this many seconds go.
    SLACK = 0.002

    def __init__(
        self,
        create_timer: TimerFactory,
        clock: Clock,
        due: Callable[[list[Any]], None],
    ) -> None:
        self._create_timer = create_timer
        self._clock = clock
        self._due = due
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, Any]] = []
        self._sequence = itertools.count()
        self._armed_for: float | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, item: Any, delay: float) -> None:
        when = self._clock() + delay
        with self._lock:
            if self._closed:
                return
            heapq.heappush(self._heap, (when, next(self._sequence), item))
            if self._armed_for is not None and self._armed_for <= when:
                return
            self._armed_for = when
        self._create_timer(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        try:
            now = self._clock() + self.SLACK
            ready: list[Any] = []
            with self._lock:
                heap = self._heap
                while heap and heap[0][0] <= now:
                    ready.append(heapq.heappop(heap)[2])
                rearm = heap[0][0] if heap else None
                if self._armed_for is not None and self._armed_for > now and not ready:
                    return  # a stale timer: an earlier one was armed after it
                self._armed_for = rearm
            if rearm is not None:
                self._create_timer(max(0.0, rearm - now), self._fire)
            if ready:
                self._due(ready)
        except Exception:  # a timer callback must not fail silently (the driver swallows it)
            log.exception("rxcql retry timer failed")

    def close(self) -> list[Any]:
        """Stop: what was still waiting (it will not be retried)."""
        with self._lock:
            self._closed = True
            waiting = [item for _, _, item in self._heap]
            self._heap.clear()
        return waiting
