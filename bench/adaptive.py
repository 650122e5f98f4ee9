"""The adaptive part: ``concurrency="auto"`` against fixed concurrencies, on the real node and on
a scratch node whose native transport is rate limited (the overload scenario).

Workloads on the real node (:mod:`bench.node`), each run with every fixed concurrency
(:data:`CONCURRENCIES`) and with ``"auto"``:

* ``insert``: a prepared, idempotent ``INSERT INTO kv_bulk (k, v) VALUES (?, ?)``, one request
  per row;
* ``batch``: the same rows through ``batch="replica", batch_size=32`` (the concurrency then
  counts requests: a batch is one);
* ``select``: a prepared ``SELECT k, v FROM kv_read WHERE k = ?`` over rows populated
  beforehand.

Every contender is ``rxcql.execute(..., raise_on_first_error=False).subscribe`` with the same
observer, which checks as the other parts do the count and that result ``i`` belongs to statement
``i``, and counts the failed statements (a server-side timeout with too many requests in flight
is an outcome of that setting, not a broken contender), and with the same progress callback
(``progress_interval=0.25``): the fixed settings pay for the request timing that a progress
callback turns on, as ``"auto"`` does. The INSERT workloads also delete a random sample of keys
before each run and read it back after it (:class:`ReadBack`; the keys of statements that failed
are not read back).

Request latency is measured independently of rxcql: the session is wrapped in
:class:`TimingSession`, whose ``execute_async`` notes the time before calling the driver's and
adds its own callback pair to the driver's ResponseFuture (registered before rxcql's, so it has
run for every request by the time the stream completes). A run's p50/p99 are over all of its
requests (a batch is one request). For ``"auto"``, the limit it settled on is the median of
``Progress.concurrency`` over the second half of the run's progress reports.

Order: the repeats are outermost; each repeat visits the workloads forward, then backward on the
next repeat, and within a workload runs the contenders forward, then backward (so that with an
even number of repeats every contender has the same mean position; the default is three).

The overload scenario starts (or reuses) a one-node cluster on 127.0.0.6 with
``native_transport_rate_limiting_enabled`` at :data:`OVERLOAD_RATE` requests per second and
runs one-row INSERTs at :data:`OVERLOAD_CONCURRENCIES` and ``"auto"``. A node started here is
stopped at the end.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cassandra.concurrent

import rxcql
from rxcql._adaptive import AdaptiveLimit

from .bulk import check_insert as check_bulk_insert
from .contenders import (
    RUN_TIMEOUT,
    Contender,
    Outcome,
    RunFn,
    Workload,
    WrongResultsError,
)
from .node import (
    BULK_TABLE,
    KEYSPACE,
    Node,
    check_select,
    insert_parameters,
    select_parameters,
    value,
)
from .timing import Samples, interleave

CONCURRENCIES = (8, 32, 128, 512, 2048)
AUTO = "auto"
#: ``"auto"`` with its client-bound rule switched off (``AdaptiveLimit.CLIENT_BOUND`` set out of
#: reach for the run): the latency rules alone, measured in the same run as ``auto`` so that
#: what the rule adds is read like for like.
AUTO_LATENCY = "auto_latency"
BATCH_SIZE = 32
PROGRESS_INTERVAL = 0.25
#: Keys deleted before each INSERT run and read back after it.
SPOT_CHECK = 200
#: What ``"auto"`` must reach, as a share of the best fixed setting's throughput.
TARGET = 0.9

OVERLOAD_RATE = 1000
OVERLOAD_CONCURRENCIES = (32, 1024)
OVERLOAD_NODE = ("overload", "127.0.0.6", 19143, 17101)
OVERLOAD_YAML = (
    "native_transport_rate_limiting_enabled: true\n"
    f"native_transport_max_requests_per_second: {OVERLOAD_RATE}\n"
)

WORKLOADS = ("insert", "batch", "select")
WORKLOAD_LABELS = {
    "insert": "INSERT, one row per request",
    "batch": f'INSERT, `batch="replica", batch_size={BATCH_SIZE}` (concurrency counts requests)',
    "select": "SELECT by key",
}


@dataclass(frozen=True)
class Settings:
    """The knobs of the adaptive part (``python -m bench --help``: ``--adaptive-*``).

    Attributes:
        insert_n: Rows per run of the one-row INSERT workload.
        batch_n: Rows per run of the batched INSERT workload.
        select_n: Rows per run of the SELECT workload.
        repeats: Interleaved repeats.
        concurrencies: The fixed settings ``"auto"`` is compared with.
        overload_n: Rows per run of the overload scenario (0: skip it).
        overload_concurrencies: Its fixed settings.
        overload_skip_reason: Why the overload scenario is skipped, shown in the report.
    """

    insert_n: int = 30_000
    batch_n: int = 200_000
    select_n: int = 24_000
    repeats: int = 3
    concurrencies: tuple[int, ...] = CONCURRENCIES
    overload_n: int = 8_000
    overload_concurrencies: tuple[int, ...] = OVERLOAD_CONCURRENCIES
    overload_skip_reason: str = ""


def key(concurrency: int | str) -> str:
    """``c<C>`` for a fixed concurrency, ``auto`` / ``auto_latency`` for those."""
    if isinstance(concurrency, str):
        return concurrency
    return f"c{concurrency}"


# -- measuring ------------------------------------------------------------------------------------


class TimingSession:
    """A session as rxcql sees it, timing every request independently of rxcql.

    ``execute_async`` notes the time, calls the real session's and adds a callback pair to the
    real ResponseFuture that notes the completion; every other attribute is the real session's.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self.latencies: list[float] = []
        #: Indexes of the statements that failed in the last run.
        self.failed: set[int] = set()

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        future = self._session.execute_async(*args, **kwargs)
        append = self.latencies.append

        def finished(_result: Any) -> None:
            append(time.perf_counter() - started)

        future.add_callbacks(finished, finished)
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@dataclass(frozen=True)
class RunStats:
    """What one run measured besides its time.

    Attributes:
        requests: Requests sent (a batch is one).
        p50, p99: Request latency, seconds, over all requests of the run.
        limit: The limit on requests in flight the run settled on (the median of
            ``Progress.concurrency`` over the second half of its reports).
        failures: Statements that failed (server-side timeouts, overload).
    """

    requests: int
    p50: float
    p99: float
    limit: float | None
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "p50": self.p50,
            "p99": self.p99,
            "limit": self.limit,
            "failures": self.failures,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values`` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def settled_limit(reports: Sequence[rxcql.Progress]) -> float | None:
    """The median of ``Progress.concurrency`` over the second half of the reports."""
    second = reports[len(reports) // 2 :]
    return float(statistics.median(r.concurrency for r in second)) if second else None


class Recorder:
    """Collects each run's :class:`RunStats` per contender key."""

    def __init__(self) -> None:
        self.runs: dict[str, list[RunStats]] = {}

    def add(self, contender: str, stats: RunStats) -> None:
        self.runs.setdefault(contender, []).append(stats)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {k: [s.to_json() for s in v] for k, v in self.runs.items()}


def _stats(latencies: list[float], reports: list[rxcql.Progress], failures: int = 0) -> RunStats:
    return RunStats(
        len(latencies),
        percentile(latencies, 50),
        percentile(latencies, 99),
        settled_limit(reports),
        failures,
    )


class ReadBack:
    """Deletes a random sample of keys of ``kv_bulk`` before a run and reads it back after it,
    through the driver's own ``execute_concurrent_with_args`` (as :class:`bench.bulk.SpotCheck`,
    but the keys of the statements that failed in the run, ``session.failed``, are skipped: a
    timed-out write may or may not have been applied)."""

    def __init__(self, node: Node, session: TimingSession, n: int, size: int = SPOT_CHECK) -> None:
        self._real = node.session
        self._session = session
        self._n = n
        self._size = min(size, n)
        self._random = random.Random(15)
        self._keys: list[int] = []
        self._delete = node.session.prepare(f"DELETE FROM {BULK_TABLE} WHERE k = ?")
        self._select = node.session.prepare(f"SELECT k, v FROM {BULK_TABLE} WHERE k = ?")

    def before(self) -> None:
        self._keys = self._random.sample(range(self._n), self._size)
        self._session.failed = set()
        results = cassandra.concurrent.execute_concurrent_with_args(
            self._real, self._delete, [(k,) for k in self._keys], concurrency=100
        )
        if not all(success for success, _ in results):
            raise RuntimeError("deleting the keys to read back failed")

    def after(self) -> None:
        keys = [k for k in self._keys if k not in self._session.failed]
        results = cassandra.concurrent.execute_concurrent_with_args(
            self._real, self._select, [(k,) for k in keys], concurrency=100
        )
        missing = [
            k
            for k, (success, rows) in zip(keys, results, strict=True)
            if not success or list(rows) != [(k, value(k))]
        ]
        if missing:
            raise WrongResultsError(
                f"{len(missing)} of {len(keys)} rows read back are missing or wrong after the "
                f"run, e.g. k={missing[0]}"
            )


# -- contenders -----------------------------------------------------------------------------------


def _session(w: Workload) -> TimingSession:
    session = w.session
    if not isinstance(session, TimingSession):
        raise TypeError("the adaptive part's workloads run on a TimingSession")
    return session


class _CountingObserver:
    """Counts results and notes the failed ones (checking the key of every success); the end
    sets an event."""

    def __init__(self, workload: Workload) -> None:
        self.check = workload.check
        self.count = 0
        self.failed: set[int] = set()
        self.problem: str | None = None
        self.done = threading.Event()

    def on_next(self, result: rxcql.ExecutionResult) -> None:
        i = self.count
        self.count = i + 1
        if not result.success:
            self.failed.add(i)
            return
        value = result.result_or_exc
        if self.problem is None and not self.check(value.response_future, value.current_rows, i):
            self.problem = f"result {i} belongs to another statement: {value!r:.300}"

    def on_error(self, error: Exception) -> None:
        self.problem = f"the stream failed: {error!r:.300}"
        self.done.set()

    def on_completed(self) -> None:
        self.done.set()


def _run_fn(
    concurrency: int | str, recorder: Callable[[], Recorder], batch_size: int | None
) -> RunFn:
    """``rxcql.execute(..., raise_on_first_error=False).subscribe`` with the counting observer.

    A failed statement (a server-side timeout under too many requests in flight) is counted,
    not fatal: it is a measured outcome of that setting. Everything else is checked: one result
    per statement, the key of every success, one timed request per statement (at least one per
    ``batch_size`` statements with batching).
    """
    name = key(concurrency)
    options: dict[str, Any] = {}
    if batch_size is not None:
        options = {"batch": "replica", "batch_size": batch_size}

    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        session = _session(w)
        latencies: list[float] = []
        session.latencies = latencies
        reports: list[rxcql.Progress] = []
        observer = _CountingObserver(w)
        bound = AdaptiveLimit.CLIENT_BOUND
        if concurrency == AUTO_LATENCY:
            AdaptiveLimit.CLIENT_BOUND = math.inf  # read once a round: for this run only
        try:
            rxcql.execute(
                session,
                items,
                concurrency=AUTO if concurrency == AUTO_LATENCY else concurrency,  # type: ignore[arg-type]
                raise_on_first_error=False,
                progress=reports.append,
                progress_interval=PROGRESS_INTERVAL,
                **options,
            ).subscribe(observer.on_next, observer.on_error, observer.on_completed)
            finished = observer.done.wait(RUN_TIMEOUT)
        finally:
            AdaptiveLimit.CLIENT_BOUND = bound
        if not finished:
            raise WrongResultsError("rxcql.execute(...) did not complete")
        if observer.problem is not None:
            raise WrongResultsError(observer.problem)
        if observer.count != w.n:
            raise WrongResultsError(f"{observer.count} results for {w.n} statements")
        least = w.n if batch_size is None else math.ceil(w.n / batch_size)
        if len(latencies) < least or (batch_size is None and len(latencies) != w.n):
            raise WrongResultsError(
                f"the timing session saw {len(latencies)} requests for {w.n} statements"
            )
        session.failed = observer.failed
        recorder().add(name, _stats(latencies, reports, len(observer.failed)))
        return None

    return run


def _label(concurrency: int | str) -> str:
    if concurrency == AUTO_LATENCY:
        return 'concurrency="auto", latency rules only'
    return 'concurrency="auto"' if concurrency == AUTO else f"concurrency={concurrency}"


def contenders(
    concurrencies: Sequence[int], recorder: Callable[[], Recorder], batch_size: int | None = None
) -> list[Contender]:
    """The fixed settings in increasing order, then ``"auto"`` and ``"auto"`` without its
    client-bound rule."""
    out = []
    settings: list[int | str] = [*concurrencies, AUTO, AUTO_LATENCY]
    for c in settings:
        run = _run_fn(c, recorder, batch_size)
        out.append(Contender(key(c), _label(c), None, run))
    return out


# -- running --------------------------------------------------------------------------------------


def calibrate() -> float:
    """Seconds a plain Python loop of 10M additions takes: how fast the machine is today."""
    total = 0
    started = time.perf_counter()
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


@dataclass
class _Cell:
    name: str
    workload: Workload
    recorder: Recorder
    samples: dict[str, Samples]


def _cell_json(cell: _Cell) -> dict[str, Any]:
    return {
        "name": cell.name,
        "n": cell.workload.n,
        "samples": {k: s.to_json() for k, s in cell.samples.items() if s.wall},
        "runs": cell.recorder.to_json(),
    }


def run(settings: Settings, node: Node, echo: Callable[[str], None], part: dict[str, Any]) -> None:
    """Run the adaptive part into ``part`` (filled as it goes, so a failure keeps what was
    measured).

    Raises:
        WrongResultsError: a contender's results or the rows it left were wrong.
    """
    calibration = calibrate()
    echo(f"== adaptive: a plain Python loop of 10M additions takes {calibration:.2f} s")
    part.update(
        {
            "calibration_s": calibration,
            "repeats": settings.repeats,
            "concurrencies": list(settings.concurrencies),
            "batch_size": BATCH_SIZE,
            "spot_check": SPOT_CHECK,
            "progress_interval": PROGRESS_INTERVAL,
            "workloads": [],
        }
    )
    session = TimingSession(node.session)
    insert = node.session.prepare(f"INSERT INTO {BULK_TABLE} (k, v) VALUES (?, ?)")
    insert.is_idempotent = True
    node.populate_reads(settings.select_n, echo)
    current = [Recorder()]

    def recorder() -> Recorder:
        return current[0]

    def insert_workload(n: int) -> Workload:
        spot = ReadBack(node, session, n)
        return Workload(
            session,
            insert,
            n,
            0,  # each contender brings its own concurrency
            insert_parameters,
            check_bulk_insert,
            before=spot.before,
            after=spot.after,
        )

    workloads = {
        "insert": insert_workload(settings.insert_n),
        "batch": insert_workload(settings.batch_n),
        "select": Workload(
            session, node.select, settings.select_n, 0, select_parameters, check_select
        ),
    }
    cells = [_Cell(name, workloads[name], Recorder(), {}) for name in WORKLOADS]
    chosen = {
        name: contenders(settings.concurrencies, recorder, BATCH_SIZE if name == "batch" else None)
        for name in WORKLOADS
    }
    try:
        # One sweep per contender set; the batched workload has its own contenders.
        for repeat in range(settings.repeats):
            forward = repeat % 2 == 0
            for cell in cells if forward else cells[::-1]:
                _sweep_one(chosen[cell.name], cell, repeat, settings.repeats, echo, current)
    finally:
        part["workloads"] = [_cell_json(cell) for cell in cells]
    if settings.overload_n <= 0:
        part["overload"] = {"skipped": settings.overload_skip_reason or "skipped"}
        echo(f"== adaptive: overload scenario {part['overload']['skipped']}")
        return
    overload: dict[str, Any] = {}
    part["overload"] = overload
    run_overload(settings, echo, overload)


def _sweep_one(
    chosen: Sequence[Contender],
    cell: _Cell,
    repeat: int,
    repeats: int,
    echo: Callable[[str], None],
    current: list[Recorder],
) -> None:
    """One repeat of one workload: contenders forward on even repeats, backward on odd ones."""
    forward = repeat % 2 == 0
    echo(
        f"== adaptive: {cell.name}, {cell.workload.n:,} rows "
        f"(repeat {repeat + 1}/{repeats}, contenders {'forward' if forward else 'backward'})"
    )
    current[0] = cell.recorder
    order = list(chosen) if forward else list(chosen)[::-1]
    interleave(order, cell.workload, 1, progress=echo, samples=cell.samples)
    for c in order:
        s = cell.recorder.runs[c.key][-1]
        limit = (
            ""
            if c.key not in (AUTO, AUTO_LATENCY) or s.limit is None
            else f", settled at {s.limit:g}"
        )
        echo(
            f"      {c.key:<6} p50 {s.p50 * 1e3:7.1f} ms  p99 {s.p99 * 1e3:7.1f} ms  "
            f"{s.requests:,} requests{limit}" + (f", {s.failures:,} failed" if s.failures else "")
        )


# -- the overload scenario ------------------------------------------------------------------------


def run_overload(settings: Settings, echo: Callable[[str], None], part: dict[str, Any]) -> None:
    """Start (or reuse) the rate-limited scratch node, run the overload scenario into ``part``,
    and stop the node again if it was started here."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy
    from cassandra.query import tuple_factory
    from rxcql_dev import cassandra_cluster, cassandra_server

    name, host, port, storage_port = OVERLOAD_NODE
    spec = cassandra_cluster.single_node_spec(
        name, host, port, storage_port, heap="1g", extra_yaml=OVERLOAD_YAML
    )
    part.update(
        {
            "n": settings.overload_n,
            "rate": OVERLOAD_RATE,
            "concurrencies": list(settings.overload_concurrencies),
            "node": f"{host}:{port}",
        }
    )
    info = cassandra_server.start_node(spec, echo=echo)
    echo(
        f"== adaptive overload: node {host}:{port} "
        + ("started" if info.started else "already running (reused, left running)")
        + f", native transport limited to {OVERLOAD_RATE:,} requests/s"
    )
    cluster = None
    try:
        profile = ExecutionProfile(
            load_balancing_policy=RoundRobinPolicy(),
            request_timeout=60.0,
            row_factory=tuple_factory,
        )
        cluster = Cluster(
            [(host, port)],
            protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )
        admin = cluster.connect()
        admin.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        admin.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{BULK_TABLE} (k bigint PRIMARY KEY, v text)"
        )
        admin.shutdown()
        real = cluster.connect(KEYSPACE)
        insert = real.prepare(f"INSERT INTO {BULK_TABLE} (k, v) VALUES (?, ?)")
        insert.is_idempotent = True
        workload = Workload(
            TimingSession(real),
            insert,
            settings.overload_n,
            0,
            insert_parameters,
            check_bulk_insert,
        )
        cell = _Cell("overload", workload, Recorder(), {})
        current = [cell.recorder]
        chosen = contenders(settings.overload_concurrencies, lambda: current[0])
        try:
            for repeat in range(settings.repeats):
                _sweep_one(chosen, cell, repeat, settings.repeats, echo, current)
        finally:
            part.update(_cell_json(cell))
    finally:
        if cluster is not None:
            cluster.shutdown()
        if info.started:
            echo(f"== adaptive overload: stopping the node on {host}:{port}")
            cassandra_server.stop_node(spec)
