"""Bulk load from a generator, with a progress bar, a rate limit and an error budget.

    python examples/bulk_load.py [--rows 200000] [--max-rate 50000]

The generator is pulled one statement per free slot: memory stays flat for any number of rows.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from typing import Any

from _common import ProgressBar, connect

import rxcql


def rows(count: int) -> Iterator[tuple[int, str]]:
    """Stand-in for reading a large file or another database."""
    for i in range(count):
        yield i, f"customer-{i:08d}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--max-rate", type=float, default=None, help="statements per second")
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args(argv)

    session = connect()
    session.execute("CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text)")
    insert = session.prepare("INSERT INTO customers (id, name) VALUES (?, ?)")

    started = time.perf_counter()
    observable = rxcql.execute(
        session,
        ((insert, row) for row in rows(args.rows)),
        concurrency=args.concurrency,
        raise_on_first_error=False,
        max_errors=0.01,  # give up if more than 1% of the writes fail
        max_rate=args.max_rate,
        progress=ProgressBar(args.rows, "bulk load "),
        progress_interval=0.25,
    )
    failures: list[Any] = []
    for result in rxcql.iterate(observable):
        if not result.success:
            failures.append((result.index, result.result_or_exc))
    seconds = time.perf_counter() - started
    print(
        f"{args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f}/s), "
        f"{len(failures)} failed"
    )
    count = session.execute("SELECT count(*) FROM customers").one()[0]
    print(f"customers table holds {count:,} rows")
    return 0 if not failures and count >= args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
