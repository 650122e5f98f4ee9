"""The pool part: ``rxcql.ProcessPool`` against the in-process engine, on the real node.

Contenders, each consuming its results with ``rxcql.iterate`` and checking that result ``i`` is
statement ``i``'s success:

* ``in-process``: ``rxcql.execute(session, ...)`` with the prepared statement;
* ``pool, 1 worker`` and ``pool, 2 workers``: ``pool.execute(...)`` with the CQL text (each worker
  prepares it once); the pools are started before the clock runs and reused;
* ``in-process x2``: two independent processes, each running the in-process engine on half of
  the rows (its own session, connected and prepared before the clock runs; no pool, no parent
  work): what two engines cost on this machine's two cores, shared with the node, with nothing
  crossing a process boundary. ``pool, 2 workers`` against it is the cost of crossing processes
  alone; against ``in-process`` it also carries the contention of two busy client processes and
  the node on two cores.

Workloads: ``insert`` (one request per row, concurrency 100 per process) and ``batch`` (the same
rows through ``batch="replica"``, 32 requests in flight per process). Interleaved: every repeat
runs every workload with every contender, in a rotating order.

Client CPU per statement is the CPU time of every client process over the run, summed: the
parent's (all its threads, ``time.process_time``) and each worker's (``/proc/PID/stat``, user
plus system), divided by the statements. The node runs on the same two cores, so throughput with
two workers says what this machine allows, not what a bigger client gets: the section ends with a
model of that, from the measured per-statement costs, labelled as such.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import median
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import tuple_factory

import rxcql

from .node import KEYSPACE

POOL_BEGIN = "<!-- bench:pool:begin -->"
POOL_END = "<!-- bench:pool:end -->"
TABLE = "kv_pool"
CONTENDERS = ("in-process", "pool, 1 worker", "pool, 2 workers", "in-process x2")
#: The baseline of each pool contender: the same number of client processes running the engine.
SAME_PROCESSES = {"pool, 1 worker": "in-process", "pool, 2 workers": "in-process x2"}


@dataclass(frozen=True)
class Settings:
    insert_n: int = 40_000
    batch_n: int = 200_000
    repeats: int = 3
    concurrency: int = 100
    batch_concurrency: int = 32


def connect(contact_points: list[tuple[str, int]]) -> Session:
    """The workers' session: as the benchmark's own (tuple rows, round robin)."""
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), request_timeout=60.0, row_factory=tuple_factory
    )
    cluster = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    return cluster.connect(KEYSPACE)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def items(statement: Any, keys: range) -> Iterator[tuple[Any, tuple[int, str]]]:
    for k in keys:
        yield statement, (k, f"value-{k}")


def _consume(observable: Any, n: int) -> None:
    expected = 0
    for result in rxcql.iterate(observable):
        if result.index != expected or not result.success:
            raise AssertionError(f"result {expected}: {result!r:.200}")
        expected += 1
    if expected != n:
        raise AssertionError(f"{expected} results for {n} statements")


#: Statements each ``in-process x2`` process runs before it says ready (its own keys, below
#: zero), so that it is as warm as the pools' workers, which earlier runs warmed.
WARM_UP = 2_000
#: How long a process of ``in-process x2`` may take to connect, and to run its half.
CONNECT_SECONDS = 120.0
RUN_SECONDS = 900.0


def _wait(event: Any, parent: int, seconds: float) -> bool:
    """Wait for ``event`` while the parent lives, at most ``seconds``: whether it was set."""
    deadline = time.monotonic() + seconds
    while not event.wait(1.0):
        if os.getppid() != parent or time.monotonic() > deadline:
            return False
    return True


def _engine_process(
    contact_points: list[tuple[str, int]],
    text: str,
    keys: range,
    keywords: dict[str, Any],
    parent: int,
    ready: Any,
    go: Any,
    done: Any,
    leave: Any,
) -> None:
    """One process of ``in-process x2``: connect, prepare and warm up, say ready, run the engine
    on ``keys`` when told, say done, and stay alive until told to leave (the parent reads this
    process's CPU time from /proc before that). It gives up if the parent goes away."""
    session = connect(contact_points)
    try:
        prepared = session.prepare(text)
        warm_up = range(-WARM_UP, 0)
        _consume(rxcql.execute(session, items(prepared, warm_up), **keywords), len(warm_up))
        ready.release()
        if not _wait(go, parent, CONNECT_SECONDS + RUN_SECONDS) or leave.is_set():
            return
        _consume(rxcql.execute(session, items(prepared, keys), **keywords), len(keys))
        done.release()
        _wait(leave, parent, RUN_SECONDS)
    finally:
        session.cluster.shutdown()


def _acquire(semaphore: Any, processes: list[Any], deadline: float, what: str) -> None:
    """Wait for one release of ``semaphore``. A process that ended (they all stay until told to
    leave), or the deadline, is an error."""
    while not semaphore.acquire(timeout=1.0):
        if any(p.exitcode is not None for p in processes):
            raise RuntimeError("an in-process x2 process ended early (its traceback is above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"an in-process x2 process did not {what} in time")


def _run_in_two_processes(
    contact_points: list[tuple[str, int]], text: str, n: int, keywords: dict[str, Any]
) -> tuple[float, float]:
    """``in-process x2``: wall seconds and the two processes' CPU seconds (summed) of one run."""
    context = multiprocessing.get_context("spawn")
    ready, done = context.Semaphore(0), context.Semaphore(0)
    go, leave = context.Event(), context.Event()
    halves = [range(0, n // 2), range(n // 2, n)]
    processes = [
        context.Process(
            target=_engine_process,
            args=(contact_points, text, keys, keywords, os.getpid(), ready, go, done, leave),
            daemon=True,
        )
        for keys in halves
    ]
    for process in processes:
        process.start()
    try:
        deadline = time.monotonic() + CONNECT_SECONDS
        for _ in processes:
            _acquire(ready, processes, deadline, "connect and warm up")
        pids = [p.pid for p in processes if p.pid is not None]
        cpu0 = sum(_cpu_seconds(pid) for pid in pids)
        start = time.perf_counter()
        go.set()
        deadline = time.monotonic() + RUN_SECONDS
        for _ in processes:
            _acquire(done, processes, deadline, "finish its run")
        wall = time.perf_counter() - start
        cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu0
    finally:
        leave.set()
        go.set()  # a process still waiting for it sees ``leave`` and ends
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
    return wall, cpu


def run(settings: Settings, node: Any, say: Callable[[str], None], part: dict[str, Any]) -> None:
    admin = node.session
    admin.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (k int PRIMARY KEY, v text)")
    text = f"INSERT INTO {TABLE} (k, v) VALUES (?, ?)"
    prepared = admin.prepare(text)
    pools = {
        "pool, 1 worker": rxcql.ProcessPool(
            functools.partial(connect, node.contact_points), processes=1
        ),
        "pool, 2 workers": rxcql.ProcessPool(
            functools.partial(connect, node.contact_points), processes=2
        ),
    }
    workloads: dict[str, tuple[int, dict[str, Any]]] = {
        "insert": (settings.insert_n, {"concurrency": settings.concurrency}),
        "batch": (
            settings.batch_n,
            {"concurrency": settings.batch_concurrency, "batch": "replica"},
        ),
    }
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        w: {c: [] for c in CONTENDERS} for w in workloads
    }
    part.update(
        {
            "settings": settings.__dict__,
            "samples": samples,
            "cpus": os.cpu_count(),
        }
    )
    try:
        for repeat in range(settings.repeats):
            shift = repeat % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            for workload, (n, keywords) in workloads.items():
                for contender in order:
                    admin.execute(f"TRUNCATE {TABLE}")

                    if contender == "in-process x2":
                        wall, cpu = _run_in_two_processes(node.contact_points, text, n, keywords)
                        parent_cpu = 0.0  # no parent: the two processes are the client
                    else:
                        pool = pools.get(contender)
                        pids = pool.pids if pool is not None else []
                        parent0 = time.process_time()
                        cpu0 = parent0 + sum(_cpu_seconds(p) for p in pids)
                        start = time.perf_counter()
                        observable: Any
                        if pool is None:
                            observable = rxcql.execute(admin, items(prepared, range(n)), **keywords)
                        else:
                            observable = pool.execute(items(text, range(n)), **keywords)
                        _consume(observable, n)
                        wall = time.perf_counter() - start
                        parent = time.process_time()
                        cpu = parent + sum(_cpu_seconds(p) for p in pids) - cpu0
                        parent_cpu = parent - parent0
                    samples[workload][contender].append(
                        {"n": n, "wall": wall, "cpu": cpu, "parent": parent_cpu}
                    )
                    say(
                        f"  [{repeat + 1}] {workload:6} {contender:16} {n / wall:>9,.0f} rows/s"
                        f"  cpu {cpu / n * 1e6:6.1f} us/row"
                    )
    finally:
        for pool in pools.values():
            pool.close()


def _cell(runs: list[dict[str, float]]) -> tuple[float, float]:
    """Median rows/s and CPU microseconds per row."""
    return (
        median(r["n"] / r["wall"] for r in runs),
        median(r["cpu"] / r["n"] * 1e6 for r in runs),
    )


def _paired_cpu_ratio(runs: list[dict[str, float]], base: list[dict[str, float]]) -> float:
    """The median over repeats of the CPU-per-row ratio of two contenders' runs in one repeat."""
    return median(
        (r["cpu"] / r["n"]) / (b["cpu"] / b["n"]) for r, b in zip(runs, base, strict=False)
    )


def _verdict(ratio: float) -> str:
    """A CPU ratio against the target (at most 1.15x)."""
    return f"{ratio:.2f}x ({'met' if ratio <= 1.15 else 'NOT met'})"


def section(part: dict[str, Any], meta: dict[str, Any]) -> str:
    settings = part["settings"]
    lines = [
        POOL_BEGIN,
        "## 7. Process pool: `rxcql.ProcessPool` against the in-process engine",
        "",
        f"`{meta.get('command', 'python -m bench --only pool')}`, {settings['repeats']} "
        "interleaved repeats (medians); the node on the same machine "
        f"({part.get('cpus')} cores). `insert`: {settings['insert_n']:,} rows, one request per "
        f"row, concurrency {settings['concurrency']} per process; `batch`: "
        f'{settings["batch_n"]:,} rows, `batch="replica"`, {settings["batch_concurrency"]} '
        "requests in flight per process. Client CPU is every client process's, summed (the "
        "parent and its workers). Target: the pool's CPU per statement at most 1.15x the "
        "in-process engine's (the cost of crossing processes). Two ratios: against `in-process` "
        "(one engine process), and against the same number of engine processes (`in-process` for "
        "one worker, `in-process x2` for two: two independent processes running the engine on "
        "half the rows each, nothing crossing a process boundary). With two busy client "
        "processes and the node on two cores, the first also carries their contention; the "
        "second is the crossing cost alone. Ratios are paired: the median over repeats of the "
        "ratio of two contenders' runs in the same repeat.",
        "",
        "| workload | contender | rows/s | vs in-process | client CPU µs/row "
        "| CPU vs in-process | CPU vs as many engine processes |",
        "|---|---|---|---|---|---|---|",
    ]
    costs: dict[str, dict[str, float]] = {}
    for workload, by_contender in part["samples"].items():
        base_rate, base_cpu = _cell(by_contender["in-process"])
        costs[workload] = {"in-process": base_cpu}
        for contender in CONTENDERS:
            runs = by_contender.get(contender, [])
            if not runs:
                continue
            rate, cpu = _cell(runs)
            costs[workload][contender] = cpu
            against_one = against_same = ""
            if contender in SAME_PROCESSES:
                against_one = _verdict(_paired_cpu_ratio(runs, by_contender["in-process"]))
                same = by_contender.get(SAME_PROCESSES[contender], [])
                if same:
                    against_same = _verdict(_paired_cpu_ratio(runs, same))
            lines.append(
                f"| {workload} | {contender} | {rate:,.0f} | {rate / base_rate:.2f}x | "
                f"{cpu:.1f} | {against_one} | {against_same} |"
            )
    lines += [
        "",
        "**A model, not a measurement**: how throughput should scale with client cores. Each "
        "worker is one process bound by its own GIL, so with the cluster never the limit, a "
        "client of *C* cores running *C* workers does about *C* x 10^6 / (CPU µs per row) "
        "rows/s, as long as the parent, which only chunks the input and merges results, keeps "
        "up. The per-row CPU is the measured `pool, 2 workers` figure above; the parent's own "
        "share is measured separately below (its thread does the reading, chunking, merging).",
        "",
        "| client cores | workers | insert rows/s (model) | batch rows/s (model) |",
        "|---|---|---|---|",
    ]
    for cores in (2, 4, 8, 16, 32):
        cells = []
        for workload in ("insert", "batch"):
            per_row = costs.get(workload, {}).get("pool, 2 workers")
            cells.append(f"{cores * 1e6 / per_row:,.0f}" if per_row else "n/a")
        lines.append(f"| {cores} | {cores} | {cells[0]} | {cells[1]} |")
    parent = {
        workload: median(r["parent"] / r["n"] * 1e6 for r in by["pool, 2 workers"])
        for workload, by in part["samples"].items()
        if by["pool, 2 workers"]
    }
    if parent:
        lines += [
            "",
            "Parent CPU per row (the pool's own ceiling: one process's GIL): "
            + ", ".join(
                f"{w} {v:.1f} µs (at most ~{1e6 / v:,.0f} rows/s)" for w, v in parent.items()
            )
            + ".",
        ]
    lines.append(POOL_END)
    return "\n".join(lines)
