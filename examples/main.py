"""The main job: load 100,000 rows through rxcql with a progress bar, read them back through an
Rx pipeline, and print the throughput.

    python examples/main.py [--rows 100000] [--concurrency 128]

Uses RXCQL_CONTACT_POINTS, or a node on 127.0.0.1:9042, or starts one (see _common.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import reactivex
from _common import ProgressBar, connect
from reactivex import operators as ops
from reactivex.observable import GroupedObservable

import rxcql

SENSORS = 100
Summary = tuple[Any, int, float]  # sensor, readings, average


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args(argv)
    rows: int = args.rows

    session = connect()
    session.execute("DROP TABLE IF EXISTS readings")
    session.execute(
        "CREATE TABLE readings (sensor int, seq int, value double, PRIMARY KEY (sensor, seq))"
    )
    insert = session.prepare("INSERT INTO readings (sensor, seq, value) VALUES (?, ?, ?)")

    # 1. Load: a generator of 100,000 statements, pulled only as fast as the node takes them.
    statements = ((insert, (i % SENSORS, i // SENSORS, (i * 37 % 1000) / 10)) for i in range(rows))
    started = time.perf_counter()
    results = rxcql.iterate(
        rxcql.execute(
            session,
            statements,
            concurrency=args.concurrency,
            progress=ProgressBar(rows, "load "),
            progress_interval=0.2,
        )
    )
    failed = sum(1 for result in results if not result.success)
    load_seconds = time.perf_counter() - started
    print(f"loaded {rows:,} rows in {load_seconds:.1f} s: {rows / load_seconds:,.0f} rows/s")

    # 2. Read back: one query per sensor, fanned out, composed in an Rx pipeline.
    select = session.prepare("SELECT sensor, value FROM readings WHERE sensor = ?")
    started = time.perf_counter()

    def value_of(row: Any) -> float:
        return float(row.value)

    def sensor_of(row: Any) -> int:
        return int(row.sensor)

    def average(group: GroupedObservable[Any, Any]) -> reactivex.Observable[Summary]:
        def summarize(values: list[float]) -> Summary:
            return (group.key, len(values), sum(values) / len(values))

        return group.pipe(ops.map(value_of), ops.to_list(), ops.map(summarize))

    rows_by_sensor = rxcql.stream_rows_many(
        session, [(select, (s,)) for s in range(SENSORS)], concurrency=16
    )
    summary: list[Summary] = rows_by_sensor.pipe(
        ops.group_by(sensor_of),
        ops.flat_map(average),
        ops.to_list(),
    ).run()
    read_seconds = time.perf_counter() - started
    read = sum(count for _, count, _ in summary)
    print(f"read {read:,} rows back in {read_seconds:.1f} s: {read / read_seconds:,.0f} rows/s")
    hottest = max(summary, key=lambda item: item[2])
    print(f"{len(summary)} sensors; hottest: sensor {hottest[0]} averaging {hottest[2]:.2f}")
    if failed or read != rows:
        print(f"FAILED: {failed} failed inserts, {read} of {rows} rows read back")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
