"""The bulk part: many INSERTs into ``kv_bulk (k bigint PRIMARY KEY, v text)`` on the real node,
one request per row against grouped UNLOGGED batches, with the Java driver as the ceiling.

Contenders, interleaved on one workload (rows ``k = 0 .. n-1``, ``v = value(k)``):

* ``driver_list_c<C>``: ``cassandra.concurrent.execute_concurrent_with_args`` (list mode) at
  each driver concurrency; the best of them is the driver's figure;
* ``rxcql_rows``: ``rxcql.execute(...).subscribe``, one request per row (the best mode without
  batching);
* ``rxcql_<mode>_<list|stream>_b<B>``: ``batch="replica"`` / ``"partition"`` with
  ``batch_size=B``, through ``rxcql.execute_concurrent_with_args`` (list) and
  ``rxcql.execute(...).subscribe`` (stream); n/a, with the reason, while the installed rxcql
  does not take ``batch=``;
* ``java_rows`` / ``java_batch``: the Java driver's loader (:mod:`bench.java`), one request per
  row and UNLOGGED batches of consecutive rows; its own wall and JVM CPU time, warm-up excluded.

Every run is checked: the results of the Python contenders as in the other parts (count,
success, and for a request of one row that its bound key is the statement's), the Java loader's
count of failed requests, and for everyone the table itself: before each run a random sample of
keys is deleted, after it the sample is read back and every row must hold its value.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cassandra.concurrent
from cassandra.query import BoundStatement

import rxcql

from . import java
from .contenders import (
    Contender,
    Measured,
    Outcome,
    RunFn,
    Workload,
    WrongResultsError,
    subscribe_checked,
)
from .node import BULK_TABLE, KEYSPACE, Node, insert_parameters, value
from .timing import Samples, interleave

DRIVER_CONCURRENCIES = (32, 100, 256)
BATCH_SIZES = (8, 32, 100)
MODES = ("replica", "partition")
#: Requests in flight of the Java loader: one request per row, and batched.
JAVA_ROWS_IN_FLIGHT = 256
JAVA_BATCH = 32
JAVA_BATCH_IN_FLIGHT = 32
#: Keys read back after each run.
SPOT_CHECK = 1000

DRIVER_LIST = "driver_list"
RXCQL_ROWS = "rxcql_rows"
JAVA_ROWS = "java_rows"
JAVA_BATCHED = "java_batch"


@dataclass(frozen=True)
class Settings:
    """The knobs of the bulk part (``python -m bench --help``: ``--bulk-*``).

    Attributes:
        n: Rows per run.
        repeats: Interleaved repeats.
        driver_concurrencies: Concurrencies of ``driver_list``.
        row_concurrency: Concurrency of ``rxcql_rows``.
        batch_concurrency: Concurrency (requests in flight) of the batched rxcql contenders.
        batch_sizes: ``batch_size`` values of the batched rxcql contenders.
        java: Whether to run the Java loader.
        java_warmup: Rows of the loader's untimed warm-up pass.
    """

    n: int
    repeats: int
    driver_concurrencies: tuple[int, ...] = DRIVER_CONCURRENCIES
    row_concurrency: int = 256
    batch_concurrency: int = 32
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    java: bool = True
    java_warmup: int = 20_000


def driver_key(concurrency: int) -> str:
    return f"{DRIVER_LIST}_c{concurrency}"


def batched_key(mode: str, consumer: str, size: int) -> str:
    return f"rxcql_{mode}_{consumer}_b{size}"


# -- checks ---------------------------------------------------------------------------------------


def check_insert(future: Any, rows: Any, i: int) -> bool:
    """The key bound to a request of one row is statement ``i``'s (8 bytes: bigint). A batch's
    result is shared by its rows; those are checked by reading the table back."""
    query = future.query
    if isinstance(query, BoundStatement):
        return bool(query.values[0] == i.to_bytes(8, "big", signed=True))
    return True


class SpotCheck:
    """Deletes a random sample of keys before a run and reads it back after.

    The driver's own ``execute_concurrent_with_args`` does both, so the check does not rest on
    the library being measured.
    """

    def __init__(self, node: Node, n: int, size: int = SPOT_CHECK, seed: int = 15) -> None:
        self._session = node.session
        self._n = n
        self._size = min(size, n)
        self._random = random.Random(seed)
        self._keys: list[int] = []
        self._delete = node.session.prepare(f"DELETE FROM {BULK_TABLE} WHERE k = ?")
        self._select = node.session.prepare(f"SELECT k, v FROM {BULK_TABLE} WHERE k = ?")

    def before(self) -> None:
        self._keys = self._random.sample(range(self._n), self._size)
        results = cassandra.concurrent.execute_concurrent_with_args(
            self._session, self._delete, [(k,) for k in self._keys], concurrency=100
        )
        if not all(success for success, _ in results):
            raise RuntimeError("deleting the keys to read back failed")

    def after(self) -> None:
        results = cassandra.concurrent.execute_concurrent_with_args(
            self._session, self._select, [(k,) for k in self._keys], concurrency=100
        )
        missing = [
            k
            for k, (success, rows) in zip(self._keys, results, strict=True)
            if not success or list(rows) != [(k, value(k))]
        ]
        if missing:
            raise WrongResultsError(
                f"{len(missing)} of {len(self._keys)} rows read back are missing or wrong "
                f"after the run, e.g. k={missing[0]}"
            )


# -- contenders -----------------------------------------------------------------------------------


def _driver_list(concurrency: int) -> RunFn:
    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        return list(
            cassandra.concurrent.execute_concurrent_with_args(
                w.session, w.statement, w.parameter_list(), concurrency=concurrency
            )
        )

    return run


def _rxcql_rows(concurrency: int) -> RunFn:
    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        subscribe_checked(w, rxcql.execute(w.session, items, concurrency=concurrency))
        return None

    return run


# The bench runs against rxcql versions with and without ``batch=``: called through ``Any``, and
# probed once (:func:`batch_support`) before any contender that uses it runs.
_execute: Any = rxcql.execute
_with_args: Any = rxcql.execute_concurrent_with_args


def _rxcql_batched_list(mode: str, size: int, concurrency: int) -> RunFn:
    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        results: list[Any] = _with_args(
            w.session,
            w.statement,
            w.parameter_list(),
            concurrency=concurrency,
            batch=mode,
            batch_size=size,
        )
        return results

    return run


def _rxcql_batched_stream(mode: str, size: int, concurrency: int) -> RunFn:
    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        observable = _execute(
            w.session, items, concurrency=concurrency, batch=mode, batch_size=size
        )
        subscribe_checked(w, observable)
        return None

    return run


def batch_support(session: Any, statement: Any, mode: str) -> str:
    """``""`` when the installed rxcql takes ``batch=mode, batch_size=...``, else why not."""
    try:
        _execute(session, [], concurrency=1, batch=mode, batch_size=8)
        _with_args(session, statement, [], concurrency=1, batch=mode, batch_size=8)
    except TypeError as exc:
        return f"this rxcql does not take batch= yet: {exc}"
    return ""


def _java(
    lib: Path,
    host: str,
    port: int,
    in_flight: int,
    batch: int,
    warmup: int,
    echo: Callable[[str], None],
) -> RunFn:
    def run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
        got = java.run_loader(
            lib,
            host=host,
            port=port,
            keyspace=KEYSPACE,
            table=BULK_TABLE,
            rows=w.n,
            in_flight=in_flight,
            batch=batch,
            warmup=min(warmup, w.n),
        )
        if got.errors or got.rows != w.n:
            raise WrongResultsError(f"the Java loader wrote {got.rows} rows, {got.errors} failed")
        echo(
            f"  (JVM warm-up excluded: {got.warmup_rows:,} rows in {got.warmup_wall:.2f} s, "
            f"after JVM start and connection)"
        )
        return Measured(got.wall, got.cpu)

    return run


def _not_run(w: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    raise RuntimeError("an unavailable contender was run")


def contenders(settings: Settings, node: Node, echo: Callable[[str], None]) -> list[Contender]:
    """Every bulk contender in table order; the unavailable ones carry their reason."""
    out = [
        Contender(
            driver_key(c),
            f"cassandra.concurrent.execute_concurrent_with_args, concurrency {c}",
            None,
            _driver_list(c),
        )
        for c in settings.driver_concurrencies
    ]
    out.append(
        Contender(
            RXCQL_ROWS,
            f"rxcql.execute(...).subscribe, one request per row, concurrency "
            f"{settings.row_concurrency}",
            DRIVER_LIST,
            _rxcql_rows(settings.row_concurrency),
        )
    )
    c = settings.batch_concurrency
    for mode in MODES:
        reason = batch_support(node.session, node.insert_bulk, mode)
        for size in settings.batch_sizes:
            out += [
                Contender(
                    batched_key(mode, "list", size),
                    f'rxcql.execute_concurrent_with_args(batch="{mode}", batch_size={size}), '
                    f"concurrency {c}",
                    DRIVER_LIST,
                    _rxcql_batched_list(mode, size, c),
                    available=not reason,
                    reason=reason,
                ),
                Contender(
                    batched_key(mode, "stream", size),
                    f'rxcql.execute(batch="{mode}", batch_size={size}).subscribe, concurrency {c}',
                    DRIVER_LIST,
                    _rxcql_batched_stream(mode, size, c),
                    available=not reason,
                    reason=reason,
                ),
            ]
    lib: Path | None = None
    reason = "" if settings.java else "skipped (--no-java)"
    if settings.java:
        try:
            lib = java.ensure_driver_jars(echo=echo)
        except java.LoaderError as exc:
            reason = f"no Java driver: {exc}"
    host, port = node.contact_points[0]
    for key, label, in_flight, batch in (
        (
            JAVA_ROWS,
            f"Java driver {java.VERSION}, one request per row, {JAVA_ROWS_IN_FLIGHT} in flight",
            JAVA_ROWS_IN_FLIGHT,
            0,
        ),
        (
            JAVA_BATCHED,
            f"Java driver {java.VERSION}, UNLOGGED batches of {JAVA_BATCH} consecutive rows, "
            f"{JAVA_BATCH_IN_FLIGHT} in flight",
            JAVA_BATCH_IN_FLIGHT,
            JAVA_BATCH,
        ),
    ):
        if lib is None:
            out.append(Contender(key, label, DRIVER_LIST, _not_run, False, reason))
            continue
        run = _java(lib, host, port, in_flight, batch, settings.java_warmup, echo)
        out.append(Contender(key, label, DRIVER_LIST, run))
    return out


def run(settings: Settings, node: Node, echo: Callable[[str], None], part: dict[str, Any]) -> None:
    """Run the bulk part into ``part`` (filled as it goes, so a failure keeps what was measured).

    Raises:
        WrongResultsError: a contender's results or the rows it left were wrong.
    """
    chosen = contenders(settings, node, echo)
    part.update(
        {
            "n": settings.n,
            "repeats": settings.repeats,
            "batch_concurrency": settings.batch_concurrency,
            "java_warmup": settings.java_warmup,
            "spot_check": min(SPOT_CHECK, settings.n),
            "labels": {c.key: c.label for c in chosen},
            "unavailable": {c.key: c.reason for c in chosen if not c.available},
            "samples": {},
        }
    )
    for c in chosen:
        if not c.available:
            echo(f"{c.key}: n/a ({c.reason})")
    spot = SpotCheck(node, settings.n)
    workload = Workload(
        node.session,
        node.insert_bulk,
        settings.n,
        settings.batch_concurrency,
        insert_parameters,
        check_insert,
        before=spot.before,
        after=spot.after,
    )
    echo(
        f"== bulk: {settings.n:,} INSERTs into {KEYSPACE}.{BULK_TABLE} per run, "
        f"{settings.repeats} interleaved repeats"
    )
    samples: dict[str, Samples] = {}
    try:
        interleave(chosen, workload, settings.repeats, progress=echo, samples=samples)
    finally:
        part["samples"] = {key: s.to_json() for key, s in samples.items() if s.wall}


def batched_keys(keys: Sequence[str]) -> list[str]:
    """The keys of the batched rxcql contenders among ``keys``."""
    return [k for k in keys if k.startswith("rxcql_") and k != RXCQL_ROWS]
