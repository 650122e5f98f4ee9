"""``python -m bench``: run the benchmarks, print the tables, optionally write docs/benchmarks.md.

Parts (``--only``, comma-separated; default all):

* ``fake``: client overhead per statement against a zero-latency fake session;
* ``node``: throughput against the real Cassandra node, INSERT and SELECT at several
  concurrencies, plus one large INSERT run through ``rxcql.execute_concurrent_with_args``;
* ``memory``: peak RSS growth of the generator modes, one fresh subprocess per measurement;
* ``scaling``: throughput against concurrency, rxcql and the driver, drawn to docs/img;
* ``bulk``: INSERT throughput of many rows, one request per row against grouped UNLOGGED batches,
  with the Java driver as the ceiling (:mod:`bench.bulk`);
* ``adaptive``: ``concurrency="auto"`` against fixed concurrencies on the real node (rows/s, p99
  request latency, the limit it settles on), and on a rate-limited scratch node
  (:mod:`bench.adaptive`);
* ``pool``: ``rxcql.ProcessPool`` with 1 and 2 workers against the in-process engine: rows/s and
  client CPU per statement summed over the processes (:mod:`bench.pool`);
* ``cli``: the ``rxcql`` command (``rxcql load`` / ``unload``) against cqlsh's ``COPY FROM`` /
  ``COPY TO``, 1,000,000 rows of mixed types, fresh processes (:mod:`bench.command`).

``--update-docs`` replaces only the sections of the parts that ran among adaptive and pool in
docs/benchmarks.md (between their markers) with this run's, keeping the rest of the page: a
part-only alternative to ``--write-docs``.

Exit status: 0, or 1 if any contender produced wrong results (or a part failed to run).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import adaptive, bulk, command, memory, report
from . import pool as pool_part
from .contenders import DRIVER_LIST, Contender, Workload, WrongResultsError, all_contenders
from .fake import LeanSession
from .timing import Samples, interleave, say, sweep, time_once

PARTS = ("fake", "node", "memory", "scaling", "bulk", "adaptive", "cli", "pool")
NODE_PARTS = ("node", "scaling", "bulk", "adaptive", "cli", "pool")
SCALING_CONCURRENCIES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SCALING_KEYS = (DRIVER_LIST, "rxcql_list")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark rxcql against cassandra.concurrent (see docs/benchmarks.md).",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="2,000 statements per contender, every part, well under 1 minute",
    )
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    p.add_argument("--contenders", default="", help="comma-separated contender keys (default all)")
    p.add_argument("--repeats", type=int, default=5, help="fake session repeats (default 5)")
    p.add_argument("--fake-n", type=int, default=100_000, help="statements per fake run")
    p.add_argument("--fake-concurrency", type=int, default=100)
    p.add_argument("--node-repeats", type=int, default=2, help="node repeats (default 2)")
    p.add_argument(
        "--node-n", type=int, default=100_000, help="statements per node run (default 100,000)"
    )
    p.add_argument(
        "--node-concurrency", default="32,100,256", help="node concurrencies (default 32,100,256)"
    )
    p.add_argument(
        "--big-n", type=int, default=1_000_000, help="statements in the large run (0: skip)"
    )
    p.add_argument(
        "--big-mode",
        choices=("stream", "list"),
        default="stream",
        help="large run: results_generator=True read by a loop (default), or the list of results",
    )
    p.add_argument("--memory-n", default="100000,1000000", help="memory run sizes")
    p.add_argument("--memory-span", type=float, default=memory.SLOW_SPAN)
    p.add_argument("--memory-delay", type=float, default=memory.FIRST_DELAY)
    p.add_argument("--scaling-repeats", type=int, default=3)
    p.add_argument("--scaling-max-n", type=int, default=12_000)
    p.add_argument("--scaling-concurrency", default=",".join(str(c) for c in SCALING_CONCURRENCIES))
    p.add_argument("--bulk-n", type=int, default=200_000, help="rows per bulk run")
    p.add_argument("--bulk-repeats", type=int, default=2, help="bulk repeats (default 2)")
    p.add_argument(
        "--bulk-driver-concurrency",
        default=",".join(str(c) for c in bulk.DRIVER_CONCURRENCIES),
        help="concurrencies of driver_list in the bulk part (its best one is the driver's figure)",
    )
    p.add_argument(
        "--bulk-row-concurrency",
        type=int,
        default=256,
        help="concurrency of rxcql one request per row in the bulk part (default 256)",
    )
    p.add_argument(
        "--bulk-concurrency",
        type=int,
        default=32,
        help="requests in flight of the batched rxcql contenders (default 32)",
    )
    p.add_argument(
        "--bulk-batch-sizes",
        default=",".join(str(b) for b in bulk.BATCH_SIZES),
        help="batch_size values of the batched rxcql contenders (default 8,32,100)",
    )
    p.add_argument(
        "--bulk-java-warmup",
        type=int,
        default=20_000,
        help="rows of the Java loader's untimed warm-up pass (default 20,000)",
    )
    p.add_argument(
        "--no-java",
        action="store_true",
        help="bulk part without the Java driver contenders (no JVM, no Maven)",
    )
    p.add_argument(
        "--adaptive-insert-n",
        type=int,
        default=adaptive.Settings.insert_n,
        help="rows per run, one-row INSERT workload of the adaptive part (default 30,000)",
    )
    p.add_argument(
        "--adaptive-batch-n",
        type=int,
        default=adaptive.Settings.batch_n,
        help="rows per run, batched INSERT workload of the adaptive part (default 200,000)",
    )
    p.add_argument(
        "--adaptive-select-n",
        type=int,
        default=adaptive.Settings.select_n,
        help="rows per run, SELECT workload of the adaptive part (default 24,000)",
    )
    p.add_argument(
        "--adaptive-repeats",
        type=int,
        default=adaptive.Settings.repeats,
        help="adaptive part repeats (default 3)",
    )
    p.add_argument(
        "--adaptive-concurrency",
        default=",".join(str(c) for c in adaptive.CONCURRENCIES),
        help='the fixed concurrencies "auto" is compared with (default 8,32,128,512,2048)',
    )
    p.add_argument(
        "--adaptive-overload-n",
        type=int,
        default=adaptive.Settings.overload_n,
        help="rows per run on the rate-limited scratch node (default 8,000; 0: skip it)",
    )
    p.add_argument(
        "--adaptive-overload-concurrency",
        default=",".join(str(c) for c in adaptive.OVERLOAD_CONCURRENCIES),
        help="fixed concurrencies on the rate-limited node (default 32,1024)",
    )
    p.add_argument(
        "--adaptive-note",
        default="",
        help="a note shown at the top of the adaptive section (e.g. how this day's machine "
        "compares with the other sections' when it is written alone by --update-docs)",
    )
    p.add_argument(
        "--cli-n", type=int, default=command.Settings.n, help="rows of the cli part (1,000,000)"
    )
    p.add_argument("--cli-repeats", type=int, default=1, help="cli part repeats (default 1)")
    p.add_argument("--pool-insert-n", type=int, default=pool_part.Settings.insert_n)
    p.add_argument("--pool-batch-n", type=int, default=pool_part.Settings.batch_n)
    p.add_argument("--pool-repeats", type=int, default=pool_part.Settings.repeats)
    p.add_argument(
        "--no-cqlsh-tuned",
        action="store_true",
        help="cli part: cqlsh with its defaults only, not also with its throughput tuning",
    )
    p.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and plot")
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="replace only the adaptive section of --docs-path (between its markers) with this "
        "run's, keeping the rest of the page (use with --only adaptive)",
    )
    p.add_argument(
        "--docs-path",
        type=Path,
        default=report.DOCS,
        help="where --write-docs writes the page (default docs/benchmarks.md)",
    )
    p.add_argument("--json", metavar="PATH", help="also save the raw results as JSON")
    p.add_argument(
        "--profile",
        metavar="KEY",
        help="profile one contender on the fake session with yappi (all threads) and exit",
    )
    return p


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _labels(contenders: Sequence[Contender]) -> dict[str, tuple[str, str | None]]:
    return {c.key: (c.label, c.baseline) for c in contenders}


def _samples_json(samples: dict[str, Samples]) -> dict[str, Any]:
    return {key: s.to_json() for key, s in samples.items()}


# -- parts ----------------------------------------------------------------------------------------


def run_fake(args: argparse.Namespace, contenders: Sequence[Contender]) -> dict[str, Any]:
    say(f"== fake session: {args.fake_n:,} statements, concurrency {args.fake_concurrency}")
    session = LeanSession()
    try:
        workload = Workload(
            session, "INSERT", args.fake_n, args.fake_concurrency, _fake_parameters, _fake_check
        )
        samples = interleave(contenders, workload, args.repeats, progress=say)
        gc_repeats = max(1, args.repeats // 2)
        say(f"== fake session, garbage collector off: {gc_repeats} repeats")
        no_gc = interleave(contenders, workload, gc_repeats, progress=say, collector=False)
    finally:
        session.shutdown()
    return {
        "n": args.fake_n,
        "concurrency": args.fake_concurrency,
        "repeats": args.repeats,
        "samples": _samples_json(samples),
        "gc_off_repeats": gc_repeats,
        "samples_gc_off": _samples_json(no_gc),
    }


def _fake_parameters(i: int) -> tuple[int]:
    return (i,)


def _fake_check(future: Any, rows: Any, i: int) -> bool:
    return bool(rows[0][0] == i)


def run_node(
    args: argparse.Namespace, contenders: Sequence[Contender], node: Any, results: dict[str, Any]
) -> dict[str, Any]:
    part: dict[str, Any] = {"repeats": args.node_repeats, "runs": []}
    results["node"] = part
    node.populate_reads(args.node_n, say)
    cells = [(op, c) for c in _ints(args.node_concurrency) for op in ("insert", "select")]
    workloads = [
        (
            f"node: {op}, {args.node_n:,} statements, concurrency {c}",
            node.insert_workload(args.node_n, c)
            if op == "insert"
            else node.select_workload(args.node_n, c),
        )
        for op, c in cells
    ]
    swept = sweep(contenders, workloads, args.node_repeats, progress=say)
    for (op, c), samples in zip(cells, swept, strict=True):
        part["runs"].append({"op": op, "concurrency": c, "samples": _samples_json(samples)})
    if args.big_n > 0:
        part["big"] = run_big(args, node)
    return part


def run_big(args: argparse.Namespace, node: Any) -> dict[str, Any]:
    import random

    import rxcql

    from .contenders import _consume

    stream = args.big_mode == "stream"
    say(
        f"== node: {args.big_n:,} INSERTs from a generator, "
        f"rxcql.execute_concurrent_with_args(results_generator={stream})"
    )
    workload = node.insert_workload(args.big_n, 100, big=True)
    rss = memory.rss_reader()
    rss_before = rss()

    def run(w: Workload, items: Any) -> list[Any] | None:
        parameters = (w.parameters(i) for i in range(w.n))
        if stream:
            with rxcql.execute_concurrent_with_args(
                w.session, w.statement, parameters, concurrency=100, results_generator=True
            ) as results:
                _consume(w, results)
            return None
        return list(  # checked by time_once, after the clock stops
            rxcql.execute_concurrent_with_args(w.session, w.statement, parameters, concurrency=100)
        )

    contender = Contender("rxcql_with_args", "execute_concurrent_with_args", None, run)
    wall, cpu, in_gc = time_once(contender, workload)
    rss_growth = rss() - rss_before
    keys = random.Random(7).sample(range(args.big_n), min(1000, args.big_n))
    found = node.count_big(keys)
    say(f"  {wall:.1f} s, {args.big_n / wall:,.0f} stmt/s; {found}/{len(keys)} keys read back")
    if found != len(keys):
        raise WrongResultsError(
            f"only {found} of {len(keys)} sampled keys were found after the large run"
        )
    return {
        "rxcql_with_args": {
            "n": args.big_n,
            "mode": args.big_mode,
            "wall": wall,
            "cpu": cpu,
            "gc": in_gc,
            "rss_growth": rss_growth,
            "spot_checked": len(keys),
            "spot_found": found,
        }
    }


def run_memory(args: argparse.Namespace, failures: list[str]) -> dict[str, Any]:
    runs = []
    sizes = _ints(args.memory_n)
    for scenario in memory.SCENARIOS:
        for n in sizes:
            for contender in memory.CONTENDERS:
                say(f"== memory: {scenario}, N={n:,}, {contender} (fresh subprocess)")
                result = memory.measure(
                    {
                        "contender": contender,
                        "scenario": scenario,
                        "n": n,
                        "span": args.memory_span,
                        "delay": args.memory_delay,
                    }
                )
                if result.get("problem"):
                    failures.append(f"memory {scenario} N={n} {contender}: {result['problem']}")
                else:
                    say(
                        f"  peak RSS growth {result['peak_growth'] / 1e6:,.1f} MB, "
                        f"issued {result['issued']:,}, read {result['consumed']:,}, "
                        f"{result['wall']:.1f} s"
                    )
                runs.append(result)
    notes = (
        f"Lean fake session with {memory.LATENCY * 1000:.1f} ms latency per statement (one "
        "completion thread, in order), concurrency "
        f"{memory.CONCURRENCY}, a generator input of N statements, `results_generator=True`; "
        "every measurement in a fresh interpreter, after both libraries were imported; growth = "
        "peak RSS (sampled every 5 ms) minus RSS just before the call. "
        "*keep_up*: the loop reads every result at once. "
        f"*slow*: the loop sleeps 1 ms per result and stops after {args.memory_span:g} s of wall "
        "time (reading all N would take N ms: 17 minutes for 1M); the table shows how many "
        "statements were issued meanwhile. "
        f"*first_delayed*: statement 0 takes {args.memory_delay:g} s, the others "
        f"{memory.LATENCY * 1000:.1f} ms; the loop reads all N, and 'issued before result 0 was "
        "read' is how far the producer went while the head of the line was missing."
    )
    return {"runs": runs, "notes": notes}


def run_scaling(
    args: argparse.Namespace, contenders: Sequence[Contender], node: Any
) -> dict[str, Any]:
    chosen = [c for c in contenders if c.key in SCALING_KEYS]
    concurrencies = _ints(args.scaling_concurrency)
    workloads = []
    for concurrency in concurrencies:
        n = min(args.scaling_max_n, 1500 * concurrency)
        workloads.append(
            (
                f"scaling: INSERT, concurrency {concurrency}, {n:,} statements",
                node.insert_workload(n, concurrency),
            )
        )
    swept = sweep(chosen, workloads, args.scaling_repeats, progress=say)
    points = [
        {"concurrency": c, "samples": _samples_json(samples)}
        for c, samples in zip(concurrencies, swept, strict=True)
    ]
    return {"repeats": args.scaling_repeats, "max_n": args.scaling_max_n, "points": points}


def run_bulk(args: argparse.Namespace, node: Any, results: dict[str, Any]) -> dict[str, Any]:
    settings = bulk.Settings(
        n=args.bulk_n,
        repeats=args.bulk_repeats,
        driver_concurrencies=tuple(_ints(args.bulk_driver_concurrency)),
        row_concurrency=args.bulk_row_concurrency,
        batch_concurrency=args.bulk_concurrency,
        batch_sizes=tuple(_ints(args.bulk_batch_sizes)),
        java=not args.no_java,
        java_warmup=args.bulk_java_warmup,
    )
    part: dict[str, Any] = {}
    results["bulk"] = part
    bulk.run(settings, node, say, part)
    return part


def run_adaptive(
    args: argparse.Namespace, node: Any, results: dict[str, Any], skip_overload: str
) -> dict[str, Any]:
    settings = adaptive.Settings(
        insert_n=args.adaptive_insert_n,
        batch_n=args.adaptive_batch_n,
        select_n=args.adaptive_select_n,
        repeats=args.adaptive_repeats,
        concurrencies=tuple(_ints(args.adaptive_concurrency)),
        overload_n=0 if skip_overload else args.adaptive_overload_n,
        overload_concurrencies=tuple(_ints(args.adaptive_overload_concurrency)),
        overload_skip_reason=skip_overload
        or ("skipped (--adaptive-overload-n 0)" if args.adaptive_overload_n <= 0 else ""),
    )
    part: dict[str, Any] = {"note": args.adaptive_note}
    results["adaptive"] = part
    began = time.perf_counter()
    try:
        adaptive.run(settings, node, say, part)
    finally:
        part["duration_s"] = time.perf_counter() - began
    return part


def run_pool(args: argparse.Namespace, node: Any, results: dict[str, Any]) -> dict[str, Any]:
    settings = pool_part.Settings(
        insert_n=args.pool_insert_n, batch_n=args.pool_batch_n, repeats=args.pool_repeats
    )
    say(f"== pool: {settings}")
    part: dict[str, Any] = {}
    results["pool"] = part
    pool_part.run(settings, node, say, part)
    return part


def run_cli(args: argparse.Namespace, node: Any, results: dict[str, Any]) -> dict[str, Any]:
    settings = command.Settings(
        n=args.cli_n, repeats=args.cli_repeats, tuned=not args.no_cqlsh_tuned
    )
    part: dict[str, Any] = {}
    results["cli"] = part
    command.run(settings, node, say, part)
    return part


# -- profile --------------------------------------------------------------------------------------


def run_profile(args: argparse.Namespace, key: str) -> int:
    yappi = importlib.import_module("yappi")  # optional: pip install yappi (the bench extra)
    chosen = [c for c in all_contenders() + _pure_python_driver() if c.key == key and c.available]
    if not chosen:
        say(f"no available contender {key!r}")
        return 2
    contender = chosen[0]
    session = LeanSession()
    workload = Workload(
        session, "INSERT", args.fake_n, args.fake_concurrency, _fake_parameters, _fake_check
    )
    plain_wall, plain_cpu, _ = time_once(contender, workload)
    yappi.set_clock_type("cpu")
    yappi.start()
    time_once(contender, workload)
    yappi.stop()
    session.shutdown()
    stats = sorted(
        (
            (f.tsub, f.ttot, f.ncall, f"{os.path.basename(f.module)}:{f.lineno} {f.name}")
            for f in yappi.get_func_stats()
        ),
        reverse=True,
    )
    total = sum(s[0] for s in stats)
    scale = plain_cpu / total if total else 1.0
    n = workload.n
    print(
        f"{key}: {plain_wall / n * 1e6:.2f} µs/statement wall, {plain_cpu / n * 1e6:.2f} µs CPU "
        f"without the profiler; under yappi {total / n * 1e6:.2f} µs CPU. Columns: own time and "
        "total time per statement, scaled to the unprofiled CPU time; calls per statement."
    )
    print(f"{'own µs':>8} {'total µs':>9} {'calls':>6}  function")
    for tsub, ttot, ncall, name in stats[:30]:
        print(
            f"{tsub * scale / n * 1e6:8.3f} {ttot * scale / n * 1e6:9.3f} {ncall / n:6.2f}  {name}"
        )
    return 0


def _pure_python_driver() -> list[Contender]:
    """cassandra.concurrent loaded from its .py source (the wheel runs a Cython build of it), so
    that a profiler can see inside it: ``--profile driver_list_py`` / ``driver_gen_py``."""
    import importlib.util

    import cassandra.concurrent

    from .contenders import _consume

    source = Path(str(cassandra.concurrent.__file__)).with_name("concurrent.py")
    spec = importlib.util.spec_from_file_location("cassandra_concurrent_py", source)
    if spec is None or spec.loader is None or not source.exists():
        return []
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run_list(w: Workload, items: Any) -> list[Any]:
        return list(module.execute_concurrent(w.session, items, concurrency=w.concurrency))

    def run_gen(w: Workload, items: Any) -> None:
        _consume(
            w,
            module.execute_concurrent(
                w.session, items, concurrency=w.concurrency, results_generator=True
            ),
        )

    return [
        Contender("driver_list_py", "cassandra.concurrent (pure Python)", None, run_list),
        Contender("driver_gen_py", "cassandra.concurrent generator (pure Python)", None, run_gen),
    ]


# -- main -----------------------------------------------------------------------------------------


def _smoke(args: argparse.Namespace) -> None:
    args.repeats = 1
    args.fake_n = 2000
    args.node_n = 2000
    args.node_repeats = 1
    args.node_concurrency = "100"
    args.big_n = 0
    args.memory_n = "2000"
    args.memory_span = 0.3
    args.memory_delay = 0.3
    args.scaling_repeats = 1
    args.scaling_max_n = 2000
    args.scaling_concurrency = "1,64"
    args.bulk_n = 2000
    args.bulk_repeats = 1
    args.bulk_java_warmup = 2000
    args.adaptive_insert_n = 1000
    args.adaptive_batch_n = 2000
    args.adaptive_select_n = 1000
    args.adaptive_repeats = 1
    args.adaptive_concurrency = "32,512"
    args.cli_n = 2000
    args.pool_insert_n = 1000
    args.pool_batch_n = 2000
    args.pool_repeats = 1
    args.no_cqlsh_tuned = True


def _commands() -> str:
    return """\
## Commands

```bash
scripts/cassandra start                     # the project's Cassandra 5.0 node (or set
                                            # RXCQL_CONTACT_POINTS=host:port); python -m bench
                                            # starts one itself if none answers, and stops it
.venv/bin/pip install -e ".[bench]"         # matplotlib, psutil; yappi for --profile
.venv/bin/python -m bench --write-docs      # everything; writes this page and docs/img/
.venv/bin/python -m bench --smoke           # CI: 2,000 statements per contender, < 1 minute,
                                            # exit status 1 if any contender is wrong
.venv/bin/python -m bench --only fake --repeats 9        # one part, more repeats
.venv/bin/python -m bench --only node --node-n 15000 --node-repeats 6  # shorter runs, more pairs
.venv/bin/python -m bench --only bulk                    # bulk writes, Java driver as ceiling
.venv/bin/python -m bench --only bulk --no-java --bulk-n 50000  # without the JVM, shorter
.venv/bin/python -m bench --only adaptive --update-docs  # concurrency="auto"; rewrites
                                                         # only its section of this page
.venv/bin/python -m bench --only cli                     # rxcql load/unload against cqlsh
                                                         # COPY, 1,000,000 rows (docs/cli.md)
.venv/bin/python -m bench --profile rxcql_list           # where the time goes (yappi)
```"""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.profile:
        return run_profile(args, args.profile)
    if args.smoke:
        _smoke(args)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        say(f"unknown part(s): {', '.join(sorted(unknown))}; choose from {PARTS}")
        return 2
    everyone = all_contenders()
    wanted = {k for k in args.contenders.split(",") if k}
    contenders = [c for c in everyone if not wanted or c.key in wanted]
    for c in everyone:
        if not c.available:
            say(f"{c.key}: n/a ({c.reason or 'not available in this rxcql'})")
    began = time.perf_counter()
    failures: list[str] = []
    results: dict[str, Any] = {"failures": failures}
    meta: dict[str, Any] = {
        "machine": report.machine(),
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "commands": _commands(),
    }
    results["meta"] = meta

    def attempt(name: str, fn: Callable[[], Any]) -> None:
        try:
            results[name] = fn()
        except WrongResultsError as exc:
            failures.append(f"{name}: wrong results: {exc}")
            say(f"!! {name}: WRONG RESULTS: {exc}")
        except Exception as exc:
            failures.append(f"{name}: {exc!r}")
            say(f"!! {name} failed:\n{traceback.format_exc()}")

    durations: dict[str, float] = {}
    meta["durations_s"] = durations

    def timed(name: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        attempt(name, fn)
        durations[name] = time.perf_counter() - start

    if "fake" in parts:
        timed("fake", lambda: run_fake(args, contenders))
    node = None
    if any(p in parts for p in NODE_PARTS):
        try:
            from .node import Node

            node = Node(say)
            meta["cassandra"] = node.release_version
        except Exception as exc:
            failures.append(f"cannot use Cassandra: {exc!r}")
            say(f"!! cannot use Cassandra: {exc!r}")
    if node is not None:
        if "node" in parts:
            timed("node", lambda: run_node(args, contenders, node, results))
        if "scaling" in parts:
            timed("scaling", lambda: run_scaling(args, everyone, node))
        if "bulk" in parts:
            timed("bulk", lambda: run_bulk(args, node, results))
        if "adaptive" in parts:
            skip = "skipped in --smoke (it starts a scratch node)" if args.smoke else ""
            timed("adaptive", lambda: run_adaptive(args, node, results, skip))
        if "cli" in parts:
            timed("cli", lambda: run_cli(args, node, results))
        if "pool" in parts:
            timed("pool", lambda: run_pool(args, node, results))
    if "memory" in parts:
        timed("memory", lambda: run_memory(args, failures))
    if node is not None:
        node.shutdown()
    meta["duration_s"] = time.perf_counter() - began
    meta["load_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    text = report.render(results, _labels(everyone))
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.write_docs:
        if results.get("scaling"):
            from .plot import scaling_plot

            scaling_plot(results["scaling"], report.PLOT)
        say(f"wrote {report.write_docs(text, args.docs_path)}")
    elif args.update_docs:
        updated = False
        if results.get("adaptive", {}).get("workloads"):
            section = report.adaptive_section(results["adaptive"], meta)
            say(f"updated the adaptive section of {report.update_section(section, args.docs_path)}")
            updated = True
        if results.get("pool", {}).get("samples"):
            section = pool_part.section(results["pool"], meta)
            path = report.update_section(
                section, args.docs_path, pool_part.POOL_BEGIN, pool_part.POOL_END
            )
            say(f"updated the pool section of {path}")
            updated = True
        if not updated:
            failures.append("--update-docs: neither adaptive nor pool ran; the page is unchanged")
            say("!! --update-docs: neither adaptive nor pool ran; the page is unchanged")
    say(
        f"== done in {meta['duration_s']:.0f} s"
        + (f"; {len(failures)} FAILURE(S)" if failures else "")
    )
    return 1 if failures else 0
