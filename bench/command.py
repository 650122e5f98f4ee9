"""The ``cli`` part: the ``rxcql`` command against cqlsh's ``COPY``, on the real node.

One file of ``n`` rows (default 1,000,000) of a few columns of mixed types, in cqlsh's CSV
forms, loaded into ``rxcql_bench.cli_rows`` and unloaded again, each by

* ``rxcql load`` / ``rxcql unload`` with their defaults (replica batches, ``concurrency=auto``,
  retries; unload: 8 token ranges at once, pages of 5,000);
* cqlsh ``COPY FROM`` / ``COPY TO`` with its defaults (``NUMPROCESSES`` = cores - 1, ``CHUNKSIZE``
  5,000, ``MAXBATCHSIZE`` 20; ``PAGESIZE`` 1,000);
* cqlsh with the tuning its documentation suggests for throughput: more worker processes,
  bigger batches and pages (:data:`CQLSH_TUNED_LOAD`, :data:`CQLSH_TUNED_UNLOAD`).

Each is a fresh process (as a user runs it), timed from start to exit: wall time, CPU time of
the process and its children (``wait4``), and the peak RSS of its process tree (sampled every
50 ms with psutil: cqlsh's workers are processes). The order of the contenders rotates from
repeat to repeat. Every run is checked: after a load the table holds ``n`` rows (the table is
truncated before each load), after an unload the file has ``n`` rows.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rxcql

from .contenders import WrongResultsError
from .node import KEYSPACE, Node

TABLE = "cli_rows"
COLUMNS = "id, name, qty, price, created, tags"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} (id bigint PRIMARY KEY, name text, "
    "qty int, price decimal, created timestamp, tags set<text>)"
)
CQLSH_TUNED_LOAD = "NUMPROCESSES=4 AND CHUNKSIZE=5000 AND MAXBATCHSIZE=50 AND MINBATCHSIZE=20"
CQLSH_TUNED_UNLOAD = "NUMPROCESSES=4 AND PAGESIZE=5000 AND MAXREQUESTS=8"


@dataclass(frozen=True)
class Settings:
    n: int = 1_000_000
    repeats: int = 1
    #: Run the tuned cqlsh variants too.
    tuned: bool = True


@dataclass(frozen=True)
class Run:
    key: str
    label: str
    kind: str  # "load" or "unload"
    command: Callable[[Path, Path], list[str]]  # (data file, output file) -> argv


def cqlsh_path() -> str | None:
    return shutil.which("cqlsh", path=str(Path(sys.executable).parent)) or shutil.which("cqlsh")


def write_rows(path: Path, n: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as out:
        out.write("id,name,qty,price,created,tags\r\n")
        for k in range(n):
            millis = 1_700_000_000_000 + k * 1000 + rng.randrange(1000)
            seconds, ms = divmod(millis, 1000)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
            out.write(
                f"{k},customer {k:08d},{rng.randrange(1000)},{rng.randrange(100000) / 100},"
                f"{stamp}.{ms:03d}+0000,\"{{'t{k % 7}', 'x'}}\"\r\n"
            )


def node_process(host: str, port: int) -> Any:
    """The local Cassandra process listening on ``host:port`` (psutil), or None (a remote
    node). Local clusters put several nodes on one port at different addresses."""
    psutil: Any = importlib.import_module("psutil")
    for process in psutil.process_iter(["cmdline"]):
        if not any("CassandraDaemon" in part for part in process.info["cmdline"] or ()):
            continue
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections(kind="tcp"):
                address = connection.laddr
                if (
                    connection.status == psutil.CONN_LISTEN
                    and address.port == port
                    and address.ip in (host, "0.0.0.0", "::")
                ):
                    return process
    return None


def _cpu_of(process: Any) -> float | None:
    psutil: Any = importlib.import_module("psutil")
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def quiesce(node: Any, idle: float = 0.15, longest: float = 120.0) -> float:
    """Wait (at most ``longest`` s) until the local node uses under ``idle`` of a core over a
    second: the flushes and compactions a load leaves behind would otherwise land on the next
    contender. The seconds waited."""
    began = time.perf_counter()
    before = _cpu_of(node)
    while before is not None and time.perf_counter() - began < longest:
        time.sleep(1.0)
        after = _cpu_of(node)
        if after is None or after - before < idle:
            break
        before = after
    return time.perf_counter() - began


def measure(argv: list[str], env: dict[str, str], node: Any = None) -> dict[str, Any]:
    """Run ``argv`` to its end: wall, CPU (process and children), peak RSS of the tree, and
    the CPU the local node (``node``, a psutil process) spent meanwhile."""
    psutil: Any = importlib.import_module("psutil")  # the bench extra; untyped

    node_before = _cpu_of(node)
    began = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    peak = 0
    #: CPU seconds of each process of the tree, as last sampled.
    cpu_seen: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for member in tree:
                    with contextlib.suppress(psutil.Error):
                        total += member.memory_info().rss
                        times = member.cpu_times()
                        cpu_seen[member.pid] = times.user + times.system
                peak = max(peak, total)
            except psutil.Error:
                return
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stderr is not None
    err = process.stderr.read()
    process.stderr.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    node_after = _cpu_of(node)
    process.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    return {
        "wall": wall,
        # The rusage of the process and the children it waited for (cqlsh's workers); the
        # sampled tree when that is more: a ProcessPool's workers are the forkserver's
        # children, which nobody here waits for.
        "cpu": max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values())),
        "rss_peak": peak,
        "node_cpu": (
            node_after - node_before if node_before is not None and node_after is not None else None
        ),
        "status": process.returncode,
        "stderr": err.decode(errors="replace")[-2000:],
    }


def runs(settings: Settings, host: str, port: int) -> list[Run]:
    target = f"{KEYSPACE}.{TABLE}"
    rxcql_cmd = [sys.executable, "-m", "rxcql.cli"]
    cqlsh = cqlsh_path()
    out: list[Run] = [
        Run(
            "rxcql_load",
            "rxcql load (defaults)",
            "load",
            lambda data, _: [*rxcql_cmd, "load", "-t", target, "-f", str(data), "-q"],
        ),
        Run(
            "rxcql_load_processes",
            "rxcql load --processes 2",
            "load",
            lambda data, _: [
                *rxcql_cmd,
                "load",
                "-t",
                target,
                "-f",
                str(data),
                "-q",
                "--processes",
                "2",
            ],
        ),
        Run(
            "rxcql_unload",
            "rxcql unload (defaults)",
            "unload",
            lambda _, output: [*rxcql_cmd, "unload", "-t", target, "-f", str(output), "-q"],
        ),
    ]
    if cqlsh is None:
        return out

    def copy(statement: str) -> list[str]:
        return [cqlsh, host, str(port), "--request-timeout", "120", "-e", statement]

    out += [
        Run(
            "cqlsh_from",
            "cqlsh COPY FROM (defaults)",
            "load",
            lambda data, _: copy(f"COPY {target} ({COLUMNS}) FROM '{data}' WITH HEADER=true"),
        ),
        Run(
            "cqlsh_to",
            "cqlsh COPY TO (defaults)",
            "unload",
            lambda _, output: copy(f"COPY {target} ({COLUMNS}) TO '{output}' WITH HEADER=true"),
        ),
    ]
    if settings.tuned:
        out += [
            Run(
                "cqlsh_from_tuned",
                f"cqlsh COPY FROM ({CQLSH_TUNED_LOAD})",
                "load",
                lambda data, _: copy(
                    f"COPY {target} ({COLUMNS}) FROM '{data}' WITH HEADER=true AND "
                    f"{CQLSH_TUNED_LOAD}"
                ),
            ),
            Run(
                "cqlsh_to_tuned",
                f"cqlsh COPY TO ({CQLSH_TUNED_UNLOAD})",
                "unload",
                lambda _, output: copy(
                    f"COPY {target} ({COLUMNS}) TO '{output}' WITH HEADER=true AND "
                    f"{CQLSH_TUNED_UNLOAD}"
                ),
            ),
        ]
    return out


def run(settings: Settings, node: Node, say: Callable[[str], None], part: dict[str, Any]) -> None:
    host, port = node.contact_points[0]
    session = node.cluster.connect()
    session.execute(SCHEMA)
    env = {**os.environ, "RXCQL_CONTACT_POINTS": f"{host}:{port}"}
    contenders = runs(settings, host, port)
    node_cpu = node_process(host, port)
    if node_cpu is None:
        say("  the node is not a local process: its CPU is not measured")
    part.update(
        {
            "n": settings.n,
            "repeats": settings.repeats,
            "labels": {r.key: r.label for r in contenders},
            "kinds": {r.key: r.kind for r in contenders},
            "cqlsh": cqlsh_path() is not None,
            "cpus": os.cpu_count(),
            "node_measured": node_cpu is not None,
            "samples": {r.key: [] for r in contenders},
        }
    )
    if cqlsh_path() is None:
        say("  cqlsh is not installed: rxcql only")
    with tempfile.TemporaryDirectory(prefix="rxcql-bench-cli-") as scratch:
        data = Path(scratch) / "rows.csv"
        say(f"== cli: writing {settings.n:,} rows to {data}")
        write_rows(data, settings.n)
        part["file_bytes"] = data.stat().st_size
        loads = [r for r in contenders if r.kind == "load"]
        unloads = [r for r in contenders if r.kind == "unload"]
        out = Path(scratch) / "out.csv"

        def one(contender: Run) -> None:
            _one(contender, data, out, env, settings, session, say, part, node_cpu)

        for repeat in range(settings.repeats):
            shift_l = repeat % len(loads)
            shift_u = repeat % len(unloads)
            ordered = loads[shift_l:] + loads[:shift_l]
            # Each load, then (on the table it left) one of the unloads, in turn.
            for i, load in enumerate(ordered):
                session.execute(f"TRUNCATE {KEYSPACE}.{TABLE}", timeout=120)
                one(load)
                if i < len(unloads):
                    unload = unloads[(i + shift_u) % len(unloads)]
                    one(unload)
            for unload in unloads[len(ordered) :]:
                one(unload)
    session.shutdown()


def _count(session: Any) -> int:
    """The table's rows, in many short range queries (right after a million-row load the node
    is busy flushing and compacting: a few long ones time out), read again after a failure."""
    for attempt in range(3):
        try:
            return rxcql.count_table(session, f"{KEYSPACE}.{TABLE}", splits=256)
        except Exception:
            if attempt == 2:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def _one(
    contender: Run,
    data: Path,
    output: Path,
    env: dict[str, str],
    settings: Settings,
    session: Any,
    say: Callable[[str], None],
    part: dict[str, Any],
    node_cpu: Any = None,
) -> None:
    if output.exists():
        output.unlink()
    waited = quiesce(node_cpu)
    result = measure(contender.command(data, output), env, node_cpu)
    result["quiesce_s"] = waited
    # cqlsh exits 2 when it printed an error, even one it recovered from (a batch that timed
    # out and went through on a later attempt): such a run counts if every row arrived. rxcql
    # must exit 0.
    if result["status"] != 0 and not (contender.key.startswith("cqlsh") and result["status"] == 2):
        raise WrongResultsError(f"{contender.key} exited {result['status']}: {result['stderr']}")
    if contender.kind == "load":
        found = _count(session)
    else:
        with output.open("rb") as unloaded:
            found = sum(1 for _ in unloaded) - 1  # the header
    if found != settings.n:
        raise WrongResultsError(
            f"{contender.key}: {found:,} rows instead of {settings.n:,}: {result['stderr']}"
        )
    errors = result.pop("stderr")
    if result["status"] != 0:
        say(f"  {contender.key}: exit status {result['status']}, every row there: {errors[-300:]}")
    part["samples"][contender.key].append(result)
    say(
        f"  {contender.key:<18} {settings.n / result['wall']:>9,.0f} rows/s  "
        f"cpu {result['cpu']:6.1f} s  peak RSS {result['rss_peak'] / 2**20:6.0f} MiB"
        + (f"  node cpu {result['node_cpu']:6.1f} s" if result["node_cpu"] is not None else "")
    )
