"""``concurrency="auto"``: a limit on requests in flight that follows the cluster.

Netflix's concurrency-limits (AIMD, Vegas, Gradient2) take the latency at low load as the
no-queue baseline and shrink the limit when latency rises well above it. Measured here, that
baseline misleads a Python client: the client's own CPU is the bottleneck long before the node
is (docs/benchmarks.md, part 4), so latency rises in proportion to the requests in flight while
throughput still gains 10% or more per doubling up to 64 of them; a latency rule with Gradient2's
tolerance of 1.5-2x settles near 10 requests in flight, two thirds of the best fixed setting's
throughput. So the limiter here follows the quantity bulk users want, throughput, and uses
latency and losses as the brakes:

* **Rounds.** Completions are grouped into rounds of at least ``ROUND_SECONDS`` and
  ``MIN_SAMPLES`` requests; a round starts one median latency after the limit last changed (the
  requests sent at the old limit are not measured against the new one). A round yields its
  median latency and its throughput (statements completed per second). Rounds of a tenth of a
  second were too noisy on the real node: at 1,000 requests per second the limit took steps up
  on noise alone. Little's law (mean in flight over mean latency) is steadier but wrong for a
  busy Python client: a freed slot waits for the drain loop before it is used again, so it
  over-counts at high limits and kept the limit near 4 where 128 was 18% faster.
* **Slow start.** The limit doubles each round while that raises throughput by at least
  ``SLOW_START_GAIN``; the first doubling that does not is undone.
* **Probing.** Then every ``HOLD_ROUNDS`` rounds the limit tries a step of ``STEP`` up or
  down, in turn. A step up is kept if throughput rose by at least ``UP_GAIN`` (and the run goes
  on stepping up); a step down is kept while throughput stays within ``DOWN_LOSS`` of where
  the steps down began (fewer requests in flight for the same throughput is lower latency, by
  Little's law; and the run goes on stepping down). A step that fails is undone.
* **Loss** (multiplicative decrease): an ``Overloaded`` error or a timeout halves the limit at
  once, at most once per median latency (TCP's once per round trip).
* **Latency** (multiplicative decrease): a round whose median latency is more than
  ``LATENCY_FACTOR`` times the lowest round median seen cuts the limit by ``LATENCY_CUT``,
  unless throughput rose with it.
* **Application limited.** A round in which the requests in flight (read at each completion)
  averaged under half the limit (a rate limit, a slow source or consumer) says nothing about a
  higher limit: no step up. (The peak would not do: a rate limit's bursts reach the limit.)

Everything runs under the engine's lock, once per completed request (a few arithmetic
operations) and once per round (a sort of the round's latencies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from cassandra import OperationTimedOut, ReadTimeout, WriteTimeout
from cassandra.protocol import OverloadedErrorMessage

#: Failures that say the cluster (or the path to it) is overloaded: the loss signal.
OVERLOAD_ERRORS = (OverloadedErrorMessage, OperationTimedOut, WriteTimeout, ReadTimeout)


@dataclass(frozen=True, slots=True)
class AdaptiveConcurrency:
    """``concurrency=`` that follows the cluster: the limit on requests in flight starts at
    ``initial`` and moves between ``min`` and ``max`` (see docs/retries.md, "Adaptive
    concurrency"). ``concurrency="auto"`` is ``AdaptiveConcurrency()``.

    The window of statements issued ahead of delivery follows the limit (twice the limit, times
    ``batch_size`` with batching), so memory stays bounded by ``max``.
    """

    initial: int = 32
    min: int = 4
    max: int = 2048

    def __post_init__(self) -> None:
        for name in ("initial", "min", "max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"AdaptiveConcurrency {name} must be an int, got {type(value).__name__}"
                )
            if value < 1:
                raise ValueError(f"AdaptiveConcurrency {name} must be at least 1, got {value}")
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                "AdaptiveConcurrency needs min <= initial <= max, got "
                f"min={self.min}, initial={self.initial}, max={self.max}"
            )


def as_adaptive(value: Any) -> AdaptiveConcurrency | None:
    """``concurrency=`` as given: ``"auto"`` or an :class:`AdaptiveConcurrency` (None for the
    rest, which the int validation then judges)."""
    if isinstance(value, AdaptiveConcurrency):
        return value
    if isinstance(value, str):
        if value == "auto":
            return AdaptiveConcurrency()
        raise TypeError(
            f"concurrency must be an int, 'auto' or an AdaptiveConcurrency, got {value!r:.100}"
        )
    return None


Concurrency = int | Literal["auto"] | AdaptiveConcurrency


class AdaptiveLimit:
    """The limiter of one run. ``sample`` is called under the engine's lock for each finished
    request; ``limit`` is the current limit on requests in flight."""

    ROUND_SECONDS = 0.25
    MIN_SAMPLES = 32
    SLOW_START_GAIN = 0.10
    HOLD_ROUNDS = 3
    STEP = 1.25
    UP_GAIN = 0.08
    DOWN_LOSS = 0.05
    BACKOFF = 0.5
    LATENCY_FACTOR = 8.0
    LATENCY_CUT = 0.75

    __slots__ = (
        "_bounds",
        "_down_ref",
        "_floor",
        "_holds",
        "_last_cut",
        "_latencies",
        "_limit",
        "_median",
        "_next_probe",
        "_prev",
        "_probe",
        "_round_start",
        "_slow_start",
        "_statements",
        "_sum_in_flight",
        "changes",
        "limit",
    )

    def __init__(self, bounds: AdaptiveConcurrency, now: float) -> None:
        self._bounds = bounds
        self._limit = float(bounds.initial)
        #: The current limit on requests in flight (an int, read by the engine).
        self.limit = bounds.initial
        self._slow_start = True
        self._floor = math.inf
        self._median = 0.0
        self._last_cut = -math.inf
        #: The round before the current one: (limit, throughput); None at a fresh start.
        self._prev: tuple[float, float] | None = None
        #: The step under trial: +1 up, -1 down, 0 none.
        self._probe = 0
        self._next_probe = 1
        self._holds = 0
        #: The throughput where the current run of steps down began.
        self._down_ref = 0.0
        self._latencies: list[float] = []
        self._statements = 0
        self._sum_in_flight = 0
        self._round_start = now
        #: Every change so far, as (time, new limit, reason): for tests, benchmarks and logs.
        self.changes: list[tuple[float, int, str]] = []

    def sample(
        self, now: float, latency: float, statements: int, in_flight: int, overloaded: bool
    ) -> None:
        """One request finished: ``latency`` seconds after it was sent, with ``statements``
        statements; ``in_flight`` requests were in flight when it finished (itself included);
        ``overloaded``: it failed with one of :data:`OVERLOAD_ERRORS`."""
        if overloaded:
            if now - self._last_cut >= self._median:
                self._last_cut = now
                self._slow_start = False
                self._set(self._limit * self.BACKOFF, now, "overload")
            return
        if now < self._round_start:
            return  # sent at an earlier limit
        latencies = self._latencies
        latencies.append(latency)
        self._statements += statements
        self._sum_in_flight += in_flight
        if now - self._round_start < self.ROUND_SECONDS or len(latencies) < self.MIN_SAMPLES:
            return
        latencies.sort()
        median = latencies[len(latencies) // 2]
        throughput = self._statements / (now - self._round_start)
        limited = self._sum_in_flight < 0.5 * self._limit * len(latencies)
        self._restart_round(now)
        self._median = median
        self._end_round(now, throughput, median, limited)

    def _restart_round(self, start: float) -> None:
        self._round_start = start
        self._latencies = []
        self._statements = 0
        self._sum_in_flight = 0

    def _end_round(self, now: float, throughput: float, median: float, limited: bool) -> None:
        prev = self._prev
        floor = self._floor = min(self._floor, median)
        limit = self._limit
        if self._slow_start:
            if limited:
                self._prev = (limit, throughput)
                return
            if prev is None or throughput >= prev[1] * (1 + self.SLOW_START_GAIN):
                self._prev = (limit, throughput)
                if limit >= self._bounds.max:
                    self._slow_start = False
                    return
                self._set(limit * 2, now, "slow start")
                return
            self._slow_start = False
            self._prev = prev
            self._set(prev[0], now, "slow start ends")
            return
        if median > self.LATENCY_FACTOR * floor and (
            prev is None or throughput < prev[1] * (1 + self.UP_GAIN)
        ):
            self._prev = None
            self._probe = 0
            self._holds = 0
            self._set(limit * self.LATENCY_CUT, now, "latency")
            return
        probe = self._probe
        if probe == 0:
            self._prev = (limit, throughput)
            self._holds += 1
            if self._holds < self.HOLD_ROUNDS:
                return
            self._holds = 0
            direction = self._next_probe
            self._next_probe = -direction
            if direction > 0 and (limited or limit >= self._bounds.max):
                return
            if direction < 0 and limit <= self._bounds.min:
                return
            self._down_ref = throughput
            self._step(direction, now)
            return
        assert prev is not None
        if probe > 0:
            kept = not limited and throughput >= prev[1] * (1 + self.UP_GAIN)
        else:
            kept = throughput >= self._down_ref * (1 - self.DOWN_LOSS)
        if not kept:
            self._probe = 0
            self._set(prev[0], now, "step undone")
            return
        self._prev = (limit, throughput)
        if (probe > 0 and limit >= self._bounds.max) or (probe < 0 and limit <= self._bounds.min):
            self._probe = 0
            return
        self._step(probe, now)

    def _step(self, direction: int, now: float) -> None:
        self._probe = direction
        factor = self.STEP if direction > 0 else 1 / self.STEP
        self._set(self._limit * factor, now, "step up" if direction > 0 else "step down")

    def _set(self, limit: float, now: float, reason: str) -> None:
        bounds = self._bounds
        limit = min(float(bounds.max), max(float(bounds.min), limit))
        self._limit = limit
        new = max(bounds.min, min(bounds.max, round(limit)))
        # The next round starts once the requests sent at the old limit are out of the way.
        self._restart_round(now + self._median)
        if new != self.limit:
            self.limit = new
            self.changes.append((now, new, reason))
            del self.changes[:-1000]  # a bounded history
