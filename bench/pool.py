"""The pool part: ``rxcql.ProcessPool`` against the in-process engine, on the real node.

Contenders, each consuming its results with ``rxcql.iterate`` and checking that result ``i`` is
statement ``i``'s success:

* ``in-process``: ``rxcql.execute(session, ...)`` with the prepared statement;
* ``pool, 1 worker`` and ``pool, 2 workers``: ``pool.execute(...)`` with the CQL text (each worker
  prepares it once); the pools are started before the clock runs and reused.

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
CONTENDERS = ("in-process", "pool, 1 worker", "pool, 2 workers")


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


def items(statement: Any, n: int) -> Iterator[tuple[Any, tuple[int, str]]]:
    for k in range(n):
        yield statement, (k, f"value-{k}")


def _consume(observable: Any, n: int) -> None:
    expected = 0
    for result in rxcql.iterate(observable):
        if result.index != expected or not result.success:
            raise AssertionError(f"result {expected}: {result!r:.200}")
        expected += 1
    if expected != n:
        raise AssertionError(f"{expected} results for {n} statements")


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
            order = CONTENDERS[repeat % 3 :] + CONTENDERS[: repeat % 3]
            for workload, (n, keywords) in workloads.items():
                for contender in order:
                    admin.execute(f"TRUNCATE {TABLE}")

                    pool = pools.get(contender)
                    pids = pool.pids if pool is not None else []
                    parent0 = time.process_time()
                    cpu0 = parent0 + sum(_cpu_seconds(p) for p in pids)
                    start = time.perf_counter()
                    if pool is None:
                        _consume(rxcql.execute(admin, items(prepared, n), **keywords), n)
                    else:
                        _consume(pool.execute(items(text, n), **keywords), n)
                    wall = time.perf_counter() - start
                    parent = time.process_time()
                    cpu = parent + sum(_cpu_seconds(p) for p in pids) - cpu0
                    samples[workload][contender].append(
                        {"n": n, "wall": wall, "cpu": cpu, "parent": parent - parent0}
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
        "in-process engine's.",
        "",
        "| workload | contender | rows/s | vs in-process | client CPU µs/row | CPU vs in-process |",
        "|---|---|---|---|---|---|",
    ]
    costs: dict[str, dict[str, float]] = {}
    for workload, by_contender in part["samples"].items():
        base_rate, base_cpu = _cell(by_contender["in-process"])
        costs[workload] = {"in-process": base_cpu}
        for contender in CONTENDERS:
            rate, cpu = _cell(by_contender[contender])
            costs[workload][contender] = cpu
            verdict = ""
            if contender != "in-process":
                ratio = cpu / base_cpu
                verdict = f"{ratio:.2f}x ({'met' if ratio <= 1.15 else 'NOT met'})"
            lines.append(
                f"| {workload} | {contender} | {rate:,.0f} | {rate / base_rate:.2f}x | "
                f"{cpu:.1f} | {verdict} |"
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
