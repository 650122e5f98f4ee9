"""Stream a large table across pages with bounded memory, sync and async.

    python examples/stream_table.py [--rows 100000] [--fetch-size 500]

At most ``max_pages`` pages are ever held ahead of the consumer, however large the table.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from _common import connect

import rxcql


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--fetch-size", type=int, default=500)
    args = parser.parse_args(argv)
    rows: int = args.rows

    session = connect()
    session.execute("DROP TABLE IF EXISTS events")
    session.execute("CREATE TABLE events (id int PRIMARY KEY, body text)")
    insert = session.prepare("INSERT INTO events (id, body) VALUES (?, ?)")
    rxcql.execute_concurrent_with_args(session, insert, ((i, "x" * 100) for i in range(rows)))

    stream = rxcql.stream_rows(
        session, "SELECT id, body FROM events", fetch_size=args.fetch_size, max_pages=4
    )
    started = time.perf_counter()
    count = 0
    iterator = rxcql.iterate(stream)
    run: Any = iterator.run
    for _row in iterator:
        count += 1
    seconds = time.perf_counter() - started
    print(
        f"streamed {count:,} rows in {seconds:.2f} s ({count / seconds:,.0f} rows/s), "
        f"{run.pages_fetched} pages, at most {run.max_pages_ahead} pages / "
        f"{run.max_rows_buffered} rows held ahead of the loop"
    )

    async def consume() -> int:
        return sum([1 async for _ in rxcql.aiterate(stream)])

    async_count = asyncio.run(consume())
    print(f"async iteration: {async_count:,} rows")
    return 0 if count == async_count == rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
