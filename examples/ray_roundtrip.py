"""Ray Data in and out of Cassandra: write a dataset through ``CassandraDatasink``, read the
table back with ``read_cassandra`` and check every row came back once.

    pip install "rxcql[ray]"
    python examples/ray_roundtrip.py [--rows 100000] [--cpus 2]

Ray starts locally here (``ray.init(num_cpus=...)``); on a cluster, ``ray.init()`` joins it and
nothing else changes. The worker processes call ``connect`` (a module-level function, pickled by
reference) once each and keep the session.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import ray
from _common import connect

from rxcql.ray import CassandraDatasink, read_cassandra


def with_names(batch: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for the transformation a real pipeline does before writing."""
    return {"id": batch["id"], "name": [f"customer-{i:08d}" for i in batch["id"]]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="per write task")
    args = parser.parse_args(argv)

    session = connect()
    session.execute("DROP TABLE IF EXISTS ray_customers")
    session.execute("CREATE TABLE ray_customers (id bigint PRIMARY KEY, name text)")

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        started = time.perf_counter()
        dataset = ray.data.range(args.rows, override_num_blocks=2 * args.cpus).map_batches(
            with_names
        )
        sink = CassandraDatasink(
            connect,
            "INSERT INTO rxcql_examples.ray_customers (id, name) VALUES (?, ?)",
            ["id", "name"],
            concurrency=args.concurrency,
            batch="replica",
            retry=4,
            max_errors=0.001,
        )
        dataset.write_datasink(sink)
        report = sink.report
        assert report is not None
        wrote = time.perf_counter() - started
        print(
            f"wrote {report.succeeded:,} of {report.rows:,} rows in {wrote:.1f} s "
            f"({report.tasks} tasks, {report.failed} failed)"
        )

        started = time.perf_counter()
        ids = set()
        rows = 0
        table = read_cassandra(connect, "rxcql_examples.ray_customers", parallelism=2 * args.cpus)
        for batch in table.iter_batches(batch_size=None, batch_format="numpy"):
            ids.update(batch["id"].tolist())
            rows += len(batch["id"])
        read = time.perf_counter() - started
        print(f"read {rows:,} rows back in {read:.1f} s, {len(ids):,} distinct ids")
    finally:
        ray.shutdown()
    return 0 if rows == len(ids) == args.rows == report.succeeded else 1


if __name__ == "__main__":
    raise SystemExit(main())
