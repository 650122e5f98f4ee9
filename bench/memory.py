"""Part 3: peak RSS growth of the generator modes, one fresh subprocess per measurement.

Every measurement runs ``python -m bench.memory '<json>'`` so that the peak of one contender never
hides or inflates another's. The worker uses the lean fake session with a small latency
(``LATENCY`` per statement, completed in order by one thread), a generator input of ``n``
statements and ``results_generator=True``, and prints one JSON line.

Scenarios:

* ``keep_up``: the consumer reads every result as fast as it can.
* ``slow``: the consumer sleeps 1 ms per result, for ``SLOW_SPAN`` seconds of wall time (a full
  run would take ``n`` ms: 17 minutes for 1M). Then it stops; what counts is how much memory
  the producer side took meanwhile and how far ahead of the consumer it issued.
* ``first_delayed``: statement 0 takes ``FIRST_DELAY`` seconds, the others ``LATENCY``; the
  consumer keeps up and reads all ``n`` (results are in input order, so nothing can be read until
  statement 0 is back).

RSS is sampled every 5 ms by a thread reading ``/proc/self/statm`` (psutil elsewhere); growth is
the peak minus the RSS just before the run, after the session and imports were set up.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# Both libraries are imported before the baseline RSS is taken, whichever one is measured.
import cassandra.concurrent

import rxcql

from .fake import LeanSession

LATENCY = 0.0002
SLOW_SPAN = 8.0
SLOW_SLEEP = 0.001
FIRST_DELAY = 5.0
CONCURRENCY = 100
SCENARIOS = ("keep_up", "slow", "first_delayed")
CONTENDERS = ("driver", "rxcql")


def rss_reader() -> Callable[[], int]:
    """A cheap function returning this process's current RSS in bytes."""
    try:
        statm = open("/proc/self/statm", "rb")  # noqa: SIM115 - kept open for cheap sampling
    except OSError:
        process = importlib.import_module("psutil").Process()
        return lambda: int(process.memory_info().rss)
    page = os.sysconf("SC_PAGE_SIZE")

    def read() -> int:
        statm.seek(0)
        return int(statm.read().split()[1]) * page

    return read


class _Sampler:
    def __init__(self) -> None:
        self.read = rss_reader()
        self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.005):
            rss = self.read()
            if rss > self.peak:
                self.peak = rss

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.read())


def _results(contender: str, session: Any, items: Iterator[Any]) -> Iterator[Any]:
    if contender == "driver":
        results: Iterator[Any] = cassandra.concurrent.execute_concurrent(
            session, items, concurrency=CONCURRENCY, results_generator=True
        )
        return results
    return rxcql.execute_concurrent(session, items, concurrency=CONCURRENCY, results_generator=True)


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this process: ``spec`` has contender, scenario, n (and overrides)."""
    contender, scenario, n = spec["contender"], spec["scenario"], int(spec["n"])
    latency = float(spec.get("latency", LATENCY))
    span = float(spec.get("span", SLOW_SPAN))
    delay = float(spec.get("delay", FIRST_DELAY))
    session = LeanSession(latency=latency, first_delay=delay if scenario == "first_delayed" else 0)
    items = (("INSERT INTO kv (k, v) VALUES (?, ?)", (i,)) for i in range(n))
    sampler = _Sampler()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = sampler.read()
    sampler.start()
    started = time.perf_counter()
    consumed = 0
    issued_at_first: int | None = None
    problem: str | None = None
    results = _results(contender, session, items)
    for success, value in results:
        if issued_at_first is None:
            issued_at_first = session.issued
        if not success or value.current_rows[0][0] != consumed:
            problem = f"result {consumed} is a failure or belongs to another statement"
            break
        consumed += 1
        if scenario == "slow":
            time.sleep(SLOW_SLEEP)
            if time.perf_counter() - started >= span:
                break
    wall = time.perf_counter() - started
    issued = session.issued
    peak = sampler.stop()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if problem is None and scenario != "slow" and consumed != n:
        problem = f"{consumed} results for {n} statements"
    return {
        **spec,
        "latency": latency,
        "span": span if scenario == "slow" else None,
        "delay": delay if scenario == "first_delayed" else None,
        "base_rss": base,
        "peak_growth": peak - base,
        "maxrss_growth": max(0, maxrss_after - maxrss_before) * 1024,
        "wall": wall,
        "consumed": consumed,
        "issued": issued,
        "issued_at_first_result": issued_at_first,
        "problem": problem,
    }


def measure(spec: dict[str, Any], timeout: float = 900.0) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter and return its result."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", json.dumps(spec)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {
            **spec,
            "problem": f"worker exited {done.returncode}: {done.stderr.strip()[-800:]}",
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main(argv: list[str]) -> None:
    result = worker(json.loads(argv[0]))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # The driver's generator may still be issuing in the background (that is the point of the
    # slow scenario); do not wait for it.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
