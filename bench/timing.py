"""Interleaved timing: every contender once per repeat, in rotation, so drift and noise from the
rest of the machine fall on all of them alike and cancel in the ratios."""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .contenders import Contender, Measured, Workload, verify_list


@dataclass
class Samples:
    """The runs of one contender on one workload."""

    n: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    #: Seconds spent in the cyclic garbage collector during each run (any thread); empty for a
    #: contender that runs in another process.
    gc: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def us_per_statement(self) -> float:
        return self.wall_median / self.n * 1e6

    @property
    def cpu_us_per_statement(self) -> float:
        return self.cpu_median / self.n * 1e6

    @property
    def throughput(self) -> float:
        return self.n / self.wall_median

    def to_json(self) -> dict[str, object]:
        return {"n": self.n, "wall": self.wall, "cpu": self.cpu, "gc": self.gc}


class GcClock:
    """Adds up the time the cyclic garbage collector runs, on any thread, while installed."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started: dict[int, float] = {}

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = now
        else:
            self.total += now - self._started.pop(ident, now)

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def time_once(
    contender: Contender, workload: Workload, collector: bool = True
) -> tuple[float, float, float | None]:
    """Run once; return (wall seconds, process CPU seconds, seconds in the garbage collector).
    Results are checked after timing, then the workload's ``after`` check runs.

    A contender that ran in another process and returned :class:`Measured` gets that process's
    wall and CPU seconds, and ``None`` for the garbage collector.

    ``collector=False`` runs with the cyclic garbage collector disabled (to show its share).
    """
    if workload.before is not None:
        workload.before()
    items = workload.items()
    # Start every run from the same heap: collect the garbage of the previous run and move what
    # survives (the input list, the session, the interpreter's own objects) out of the collector's
    # sight, so that full collections during the run only see what this run allocated.
    gc.collect()
    gc.freeze()
    if not collector:
        gc.disable()
    try:
        with GcClock() as clock:
            wall0 = time.perf_counter()
            cpu0 = time.process_time()
            outcome = contender.run(workload, items)
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
    finally:
        gc.enable()
        gc.unfreeze()
    in_gc: float | None = clock.total
    if isinstance(outcome, Measured):
        wall, cpu, in_gc = outcome.wall, outcome.cpu, None
    elif outcome is not None:
        verify_list(workload, outcome)
    del outcome
    if workload.after is not None:
        workload.after()
    return wall, cpu, in_gc


def interleave(
    contenders: Sequence[Contender],
    workload: Workload,
    repeats: int,
    progress: Callable[[str], None] | None = None,
    collector: bool = True,
    first_repeat: int = 0,
    samples: dict[str, Samples] | None = None,
) -> dict[str, Samples]:
    """Run each available contender ``repeats`` times, A B C A B C ..., rotating the start.

    ``first_repeat`` sets the rotation of the first repeat; runs are appended to ``samples`` when
    given (see :func:`sweep`).

    Returns:
        Samples per contender key (unavailable contenders are absent).

    Raises:
        WrongResultsError: a contender's results were wrong (the run stops there).
    """
    active = [c for c in contenders if c.available]
    if samples is None:
        samples = {}
    for c in active:
        samples.setdefault(c.key, Samples(workload.n))
    for repeat in range(first_repeat, first_repeat + repeats):
        shift = repeat % len(active) if active else 0
        for contender in active[shift:] + active[:shift]:
            wall, cpu, in_gc = time_once(contender, workload, collector)
            samples[contender.key].wall.append(wall)
            samples[contender.key].cpu.append(cpu)
            if in_gc is not None:
                samples[contender.key].gc.append(in_gc)
            if progress is not None:
                in_gc_us = "—" if in_gc is None else f"{in_gc / workload.n * 1e6:6.2f}"
                progress(
                    f"  [{repeat + 1}] {contender.key:<16} "
                    f"{wall / workload.n * 1e6:8.2f} us/stmt  {workload.n / wall:10,.0f} stmt/s  "
                    f"cpu {cpu / workload.n * 1e6:6.2f} us/stmt  gc {in_gc_us}"
                )
    return samples


def sweep(
    contenders: Sequence[Contender],
    workloads: Sequence[tuple[str, Workload]],
    repeats: int,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Samples]]:
    """:func:`interleave` over several workloads, with the repeats outermost.

    Each repeat visits every workload (forward, then backward on the next repeat), so a noisy
    stretch of the machine lands on one repeat of many workloads instead of on every repeat of
    one workload.

    Returns:
        Samples per contender key, for each workload in the given order.
    """
    results: list[dict[str, Samples]] = [{} for _ in workloads]
    order = list(range(len(workloads)))
    for repeat in range(repeats):
        for i in order if repeat % 2 == 0 else order[::-1]:
            name, workload = workloads[i]
            if progress is not None:
                progress(f"== {name} (repeat {repeat + 1}/{repeats})")
            interleave(
                contenders,
                workload,
                1,
                progress=progress,
                first_repeat=repeat,
                samples=results[i],
            )
    return results


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
