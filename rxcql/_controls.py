"""Throughput controls bulk users expect (dsbulk has them): a rate limit, an error budget and
progress reports. The engine consults them under its lock, once per drain pass."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ._errors import TooManyErrorsError


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run, handed to the ``progress`` callback of :func:`rxcql.execute`.

    The callback runs on whichever thread runs the engine (usually the driver's IO thread).

    Attributes:
        issued: statements sent to the driver so far.
        completed: statements finished (successes and failures).
        failed: statements that failed.
        in_flight: statements sent and not finished.
        delivered: results handed to the consumer.
        elapsed: seconds since the run started.
        done: True for the last report of a run (sent when the stream ends).
        retries: requests sent again so far (``retry=``; a batch counts once).
        waiting: statements waiting now for a retry.
        concurrency: the limit on requests in flight now: the fixed ``concurrency``, or where
            ``concurrency="auto"`` has moved it.
        latency_p50, latency_p99: seconds from sending a request to its answer, median and
            99th percentile over the requests that finished since the previous report (None
            when none did).
    """

    issued: int
    completed: int
    failed: int
    in_flight: int
    delivered: int
    elapsed: float
    done: bool = False
    retries: int = 0
    waiting: int = 0
    concurrency: int = 0
    latency_p50: float | None = None
    latency_p99: float | None = None

    @property
    def rate(self) -> float:
        """Completed statements per second, over the whole run so far."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


class RateLimiter:
    """A token bucket: at most ``rate`` statements per second, with bursts of ``burst``.

    Not thread-safe; the engine calls it under its lock.
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = float(rate)
        # A burst of a tenth of a second's worth keeps wake-ups few without overshooting much.
        self._burst = burst if burst is not None else max(1.0, self._rate / 10)
        self._tokens = 1.0
        self._last = time.monotonic()

    def take(self, wanted: int) -> tuple[int, float]:
        """Up to ``wanted`` permits now; and, if that is none, seconds until the next one."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        granted = min(wanted, int(self._tokens + 1e-9))
        self._tokens -= granted
        if granted:
            return granted, 0.0
        return 0, (1.0 - self._tokens) / self._rate


class ErrorBudget:
    """Stops a ``raise_on_first_error=False`` run after too many failures.

    ``max_errors`` is a count (an int: stop when failures exceed it) or a fraction in (0, 1) of the
    completed statements (stop when, after at least ``min_sample`` completions, the failed share
    exceeds it).
    """

    __slots__ = ("_count", "_fraction", "_min_sample")

    def __init__(self, max_errors: int | float, min_sample: int = 100) -> None:
        if isinstance(max_errors, bool) or not isinstance(max_errors, int | float):
            raise TypeError(f"max_errors must be an int or a float, got {max_errors!r}")
        if isinstance(max_errors, int):
            if max_errors < 0:
                raise ValueError(f"max_errors must be >= 0, got {max_errors}")
            self._count: int | None = max_errors
            self._fraction: float | None = None
        else:
            if not 0 < max_errors < 1:
                raise ValueError(f"a fractional max_errors must be in (0, 1), got {max_errors}")
            self._count = None
            self._fraction = max_errors
        self._min_sample = min_sample

    def exceeded(self, failed: int, completed: int) -> TooManyErrorsError | None:
        if self._count is not None:
            if failed > self._count:
                return TooManyErrorsError(
                    f"{failed} statements failed, more than max_errors={self._count}"
                )
            return None
        assert self._fraction is not None
        if completed >= self._min_sample and failed > self._fraction * completed:
            return TooManyErrorsError(
                f"{failed} of {completed} statements failed ({failed / completed:.1%}), more "
                f"than max_errors={self._fraction:.1%}"
            )
        return None


class RunStatistics(NamedTuple):
    """A snapshot of one run's counters, from ``handle.statistics()`` (the handle that
    ``subscribe_with_demand`` returns, and ``iterator.run`` of rxcql's iterators).

    For :func:`rxcql.execute` the units are statements and results; for the row streams,
    queries and pages. Read without the run's lock: a snapshot may be an item or two behind.

    Attributes:
        issued: statements (queries) sent to the driver so far.
        in_flight: sent and not finished.
        delivered: results (pages) handed to the consumer.
        failed: statements that failed (row streams: 0; their first failure ends the stream).
        ahead: issued and not yet delivered (row streams: pages requested or fetched and not yet
            acknowledged).
        max_in_flight: the most in flight at once.
        max_ahead: the most ``ahead`` at once: the bound the window (``max_pages``) keeps.
        pages_fetched: row streams: pages requested from the server (statements: 0).
        rows_delivered: row streams: rows handed to the consumer (statements: 0).
        max_rows_buffered: row streams: the most rows fetched and not yet delivered at once.
    """

    issued: int
    in_flight: int
    delivered: int
    failed: int
    ahead: int
    max_in_flight: int
    max_ahead: int
    pages_fetched: int = 0
    rows_delivered: int = 0
    max_rows_buffered: int = 0
