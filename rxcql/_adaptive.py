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
  median latency and its throughput: the median of the rates of its ``PARTS`` parts, so that a
  stall (a garbage collection, a busy consumer holding the IO thread) spoils one part, not the
  round. Rounds of a tenth of a second, and the plain average rate, were too noisy on the real
  node: at 1,000 requests per second the limit took steps up on noise alone. Little's law (mean
  in flight over mean latency) is steadier but wrong for a busy Python client: a freed slot
  waits for the drain loop before it is used again, so it over-counts at high limits and kept
  the limit near 4 where 128 was 18% faster.
* **Slow start.** The limit doubles each round while that raises throughput by at least
  ``SLOW_START_GAIN`` and the median latency by less than ``SLOW_START_LATENCY`` times (a
  doubling over flat throughput doubles latency: on a rate-limited node, throughput noise alone
  carried the limit up past 128); the first doubling that does not pay is undone.
* **The curve, measured.** Limits live on a grid (``initial * STEP ** i``, three steps to a
  doubling). Each round's throughput is folded into its limit's estimate (an exponential
  average, so one noisy round moves it but does not set it; estimates older than
  ``FORGET_SECONDS`` are dropped). The limit goes to the *target*: the lowest limit whose
  estimate is within ``TOLERANCE`` of the best one, the best throughput at the least latency
  (Little's law). Every ``HOLD_ROUNDS`` rounds it tries a neighbour of the target, up and down
  in turn; a neighbour that becomes the target is followed by the next step the same way at
  once (so a recovery takes rounds, not probes). An earlier version judged each step by one
  round against the one before; under the noise of a shared machine it random-walked, and in
  the benchmark ended between 6 and 320 for one workload.
* **Loss** (multiplicative decrease): an ``Overloaded`` error or a timeout halves the limit at
  once, at most once per median latency (TCP's once per round trip), and forgets what was
  measured above the new limit.
* **Latency** (multiplicative decrease): a round whose median latency is more than
  ``LATENCY_FACTOR`` times its recent level (an exponential average of the round medians) cuts
  the limit by ``LATENCY_CUT``, unless throughput rose with it. Measured against the lowest
  latency ever seen instead (Vegas' and Gradient2's no-load baseline), a Python client's
  latency, which grows with the requests in flight, read as "far above" at every high limit,
  and the limit ratcheted down to 4-26 in the benchmark while 512 was best.
* **Application limited.** A round in which the requests in flight (read at each completion)
  averaged under half the limit (a rate limit, a slow source or consumer) says nothing about a
  higher limit: no step up. (The peak would not do: a rate limit's bursts reach the limit.)
* **Client bound.** When the client process itself is the bottleneck (its CPU time, read once
  a round with ``time.process_time``, is at least ``CLIENT_BOUND`` of the wall time, where one
  core is the GIL's ceiling; measured, client-bound benchmark rounds used 0.76-0.93 of a core
  and the client of a rate-limited node 0.41-0.51), the latency above is mostly the client's
  own queue, not the cluster's, and a higher limit costs the cluster nothing (it cannot be sent
  more than the client produces).
  What a higher limit buys there is the client's efficiency: the driver reads many responses per
  wake-up, so CPU per request can fall. Measured on the benchmark's node on 2026-12-02: one-row
  INSERTs and SELECTs by key gained 5-10% per doubling all the way from 32 to 512 in flight,
  with latency doubling each time, which the rules above read as "no gain": ``auto`` settled
  near 50 at 0.78x the best fixed setting (how steep the curve is varies from day to day).
  So while the client is bound (from ``CLIENT_BOUND`` of a core until the share falls under
  ``CLIENT_FREE``), a slow-start doubling pays if it raises throughput by
  ``CLIENT_BOUND_GAIN``, whatever latency does. Flat throughput, what a saturated cluster
  gives however busy the client is, still ends slow start; the rest (the target, probes,
  losses, the latency brake) is as above. A process that is not bound (a rate-limited
  cluster, a slow node, a sleeping consumer) keeps every rule above. Fake sessions with their
  own clock are never measured (a test gives one a ``cpu_clock`` to model a busy client).

Everything runs under the engine's lock, once per completed request (a few arithmetic
operations) and once per round (a sort of the round's latencies).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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

    ROUND_SECONDS = 0.5
    #: A round's throughput is the median of its parts' (a stall of the client or a node
    #: spoils one part, not the round).
    PARTS = 5
    MIN_SAMPLES = 32
    SLOW_START_GAIN = 0.10
    SLOW_START_LATENCY = 1.8
    HOLD_ROUNDS = 3
    #: Limits move on a grid of ``initial * STEP ** i``; a doubling (or halving) is 3 steps.
    STEP = 2 ** (1 / 3)
    DOUBLING = 3
    UP_GAIN = 0.05
    #: The target: the lowest limit within this share of the best throughput measured.
    TOLERANCE = 0.03
    MEASURE_WEIGHT = 0.3
    #: Measurements older than this are forgotten (the cluster changes).
    FORGET_SECONDS = 30.0
    #: CPU seconds per wall second of the client process at which it counts as bound.
    CLIENT_BOUND = 0.7
    #: ... and leaves that state below this share (hysteresis: a share near the threshold
    #: does not flip the rule from round to round).
    CLIENT_FREE = 0.6
    #: While the client is bound, a slow-start doubling pays if it raises throughput by this
    #: much, whatever latency does (flat throughput, what a saturated cluster gives, does not).
    CLIENT_BOUND_GAIN = 0.02
    #: Weight of a round's CPU share in its recent level (an exponential average).
    CPU_WEIGHT = 0.5
    LATENCY_FACTOR = 3.0
    LATENCY_CUT = 0.75
    #: Weight of a round's median latency in the recent level (an exponential average).
    RECENT_WEIGHT = 0.2

    __slots__ = (
        "_bound",
        "_bounds",
        "_busy",
        "_cpu_clock",
        "_cpu_mark",
        "_index",
        "_last_cut",
        "_latencies",
        "_limit",
        "_measured",
        "_median",
        "_next_probe",
        "_parts",
        "_probe",
        "_recent",
        "_round_start",
        "_rounds",
        "_slow_median",
        "_slow_start",
        "_statements",
        "_sum_in_flight",
        "changes",
        "limit",
    )

    def __init__(
        self,
        bounds: AdaptiveConcurrency,
        now: float,
        cpu_clock: Callable[[], float] | None = None,
    ) -> None:
        self._bounds = bounds
        #: The process's CPU seconds (``time.process_time`` for a real session), or None: not
        #: measured (never client bound). The share is taken against the run's clock.
        self._cpu_clock = cpu_clock
        #: (clock, CPU seconds) at the end of the previous round; the recent CPU share.
        self._cpu_mark = (now, cpu_clock()) if cpu_clock is not None else (now, 0.0)
        self._busy = -1.0  # none yet
        self._bound = False
        self._limit = float(bounds.initial)
        #: The current limit on requests in flight (an int, read by the engine).
        self.limit = bounds.initial
        self._slow_start = True
        #: The median latency of the previous slow-start round.
        self._slow_median = 0.0
        #: The recent level of round median latencies (an exponential average); 0: none yet.
        self._recent = 0.0
        self._median = 0.0
        self._last_cut = -math.inf
        #: Where the limit is on its grid (``initial * STEP ** index``).
        self._index = 0
        #: What each limit on the grid measured lately: index -> (throughput, when).
        self._measured: dict[int, tuple[float, float]] = {}
        self._rounds = 0
        #: The step being tried (+1 up, -1 down, 0 none), and the next one to try.
        self._probe = 0
        self._next_probe = 1
        self._latencies: list[float] = []
        self._statements = 0
        self._sum_in_flight = 0
        self._parts = [0] * self.PARTS
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
                self._forget_above(self._index - self.DOUBLING)
                self._go(self._index - self.DOUBLING, now, "overload")
            return
        if now < self._round_start:
            return  # sent at an earlier limit
        latencies = self._latencies
        latencies.append(latency)
        self._statements += statements
        self._sum_in_flight += in_flight
        elapsed = now - self._round_start
        part = int(elapsed * self.PARTS / self.ROUND_SECONDS)
        self._parts[part if part < self.PARTS else self.PARTS - 1] += statements
        if elapsed < self.ROUND_SECONDS or len(latencies) < self.MIN_SAMPLES:
            return
        latencies.sort()
        median = latencies[len(latencies) // 2]
        throughput = self._throughput(elapsed)
        limited = self._sum_in_flight < 0.5 * self._limit * len(latencies)
        self._restart_round(now)
        self._median = median
        self._measure_cpu(now)
        self._end_round(now, throughput, median, limited)

    def _measure_cpu(self, now: float) -> None:
        """The client's CPU share since the previous round's end, into its recent level."""
        cpu_clock = self._cpu_clock
        if cpu_clock is None:
            return
        cpu = cpu_clock()
        then, before = self._cpu_mark
        self._cpu_mark = (now, cpu)
        if now > then:
            share = (cpu - before) / (now - then)
            busy = self._busy
            busy = self._busy = share if busy < 0.0 else busy + self.CPU_WEIGHT * (share - busy)
            if busy >= self.CLIENT_BOUND:
                self._bound = True
            elif busy < self.CLIENT_FREE:
                self._bound = False

    def _throughput(self, elapsed: float) -> float:
        """Statements per second of the round: the median of its parts' rates when each part
        saw a few completions, else the round's average."""
        parts = self._parts
        if min(parts) < 3:
            return self._statements / elapsed
        width = self.ROUND_SECONDS / self.PARTS
        rates = [count / width for count in parts[:-1]]
        rates.append(parts[-1] / (elapsed - width * (self.PARTS - 1)))
        rates.sort()
        return rates[len(rates) // 2]

    def _restart_round(self, start: float) -> None:
        self._round_start = start
        self._latencies = []
        self._statements = 0
        self._sum_in_flight = 0
        self._parts = [0] * self.PARTS

    def _end_round(self, now: float, throughput: float, median: float, limited: bool) -> None:
        recent = self._recent
        self._recent = median if recent == 0.0 else recent + self.RECENT_WEIGHT * (median - recent)
        index = self._index
        previous = self._measured.get(index)
        if self._slow_start:
            if limited:
                return
            best = max((rate for rate, _ in self._measured.values()), default=0.0)
            before, self._slow_median = self._slow_median, median
            self._measure(index, throughput, now)
            # A doubling pays if throughput rose, and latency did not double with it (what a
            # doubling does when throughput is flat: Little's law), which noise in the
            # throughput of a short round could hide. A bound client's latency is its own
            # queue: there, a doubling pays if throughput rose at all.
            if (
                best == 0.0
                or (
                    throughput >= best * (1 + self.SLOW_START_GAIN)
                    and median < self.SLOW_START_LATENCY * before
                )
                or (self._bound and throughput >= best * (1 + self.CLIENT_BOUND_GAIN))
            ):
                if self._at_max(index):
                    self._end_slow_start(median)
                    return
                self._go(index + self.DOUBLING, now, "slow start")
                return
            self._end_slow_start(median)
            self._go(index - self.DOUBLING, now, "slow start ends")
            return
        if (
            recent > 0.0
            and median > self.LATENCY_FACTOR * recent
            and (previous is None or throughput < previous[0] * (1 + self.UP_GAIN))
        ):
            self._forget_above(index - 1)
            self._go(index - 1, now, "latency")
            return
        if limited:
            return  # says nothing about this limit's throughput
        self._measure(index, throughput, now)
        self._rounds += 1
        target = self._target(now)
        probe, self._probe = self._probe, 0
        if probe and target == index and not self._bounded(target, probe):
            # The step just tried is now the best: keep going that way at once (momentum: a
            # recovery after a loss takes a few rounds, not a few probes apart).
            self._probe = probe
            self._go(target + probe, now, "step up" if probe > 0 else "step down")
            return
        if self._rounds % self.HOLD_ROUNDS == 0:
            # Look at a neighbour of the target, up and down in turn, to keep the picture of
            # the curve fresh (the cluster changes, and one round is a noisy measure).
            direction = self._next_probe
            self._next_probe = -direction
            if not self._bounded(target, direction):
                self._probe = direction
                self._go(target + direction, now, "step up" if direction > 0 else "step down")
                return
        if target != index:
            self._go(target, now, "to the best")

    def _end_slow_start(self, median: float) -> None:
        """The latency level starts at the last round's: averaged over slow start's rounds,
        whose latency doubled each time, it would lag a third behind and read the next
        round as a spike."""
        self._slow_start = False
        self._recent = median

    def _measure(self, index: int, throughput: float, now: float) -> None:
        """Fold a round's throughput into the estimate of its limit (an exponential average:
        a noisy round moves it, does not set it)."""
        known = self._measured.get(index)
        rate = (
            throughput
            if known is None
            else known[0] + self.MEASURE_WEIGHT * (throughput - known[0])
        )
        self._measured[index] = (rate, now)

    def _target(self, now: float) -> int:
        """The lowest limit whose throughput is within ``TOLERANCE`` of the best measured
        lately: the best throughput at the least latency (Little's law)."""
        measured = self._measured
        for index in [i for i, (_, seen) in measured.items() if now - seen > self.FORGET_SECONDS]:
            del measured[index]
        best = max(rate for rate, _ in measured.values())
        return min(i for i, (rate, _) in measured.items() if rate >= best * (1 - self.TOLERANCE))

    def _forget_above(self, index: int) -> None:
        """After a loss or a latency spike, what was measured above ``index`` no longer holds."""
        for known in [i for i in self._measured if i > index]:
            del self._measured[known]

    def _bounded(self, index: int, direction: int) -> bool:
        """Whether a step that way from ``index`` would leave the bounds."""
        return self._at_max(index) if direction > 0 else self._at_min(index)

    def _at_max(self, index: int) -> bool:
        return self._limit_of(index) >= self._bounds.max

    def _at_min(self, index: int) -> bool:
        return self._limit_of(index) <= self._bounds.min

    def _limit_of(self, index: int) -> float:
        bounds = self._bounds
        return min(float(bounds.max), max(float(bounds.min), bounds.initial * self.STEP**index))

    def _go(self, index: int, now: float, reason: str) -> None:
        bounds = self._bounds
        # Keep the index within the bounds (so that a step back from a bound is one step).
        while index > 0 and bounds.initial * self.STEP ** (index - 1) >= bounds.max:
            index -= 1
        while index < 0 and bounds.initial * self.STEP ** (index + 1) <= bounds.min:
            index += 1
        self._index = index
        self._set(self._limit_of(index), now, reason)

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
