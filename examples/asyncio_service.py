"""An asyncio service-style consumer: requests come in, each fans out to many queries.

    python examples/asyncio_service.py [--requests 20] [--lookups 500]

Each "request" handler awaits rxcql.collect(...) for its lookups, several handlers run at once
on one event loop, and a heartbeat task shows the loop is never blocked meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from _common import connect
from cassandra.cluster import Session

import rxcql


async def handle_request(session: Session, select: object, request: int, lookups: int) -> int:
    keys = [(request * lookups + i) % 5_000 for i in range(lookups)]
    results = await rxcql.collect(
        rxcql.execute(session, [(select, (k,)) for k in keys], concurrency=32)
    )
    return sum(result.result_or_exc.one().price for result in results)


async def serve(session: Session, requests: int, lookups: int) -> tuple[list[int], int]:
    select = session.prepare("SELECT price FROM prices WHERE k = ?")
    beats = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal beats
        while not stop.is_set():
            beats += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    semaphore = asyncio.Semaphore(4)  # at most four requests at once

    async def limited(request: int) -> int:
        async with semaphore:
            return await handle_request(session, select, request, lookups)

    totals = await asyncio.gather(*(limited(r) for r in range(requests)))
    stop.set()
    await beat
    return list(totals), beats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args(argv)

    session = connect()
    session.execute("CREATE TABLE IF NOT EXISTS prices (k int PRIMARY KEY, price int)")
    insert = session.prepare("INSERT INTO prices (k, price) VALUES (?, ?)")
    rxcql.execute_concurrent_with_args(session, insert, ((k, k % 100) for k in range(5_000)))

    started = time.perf_counter()
    totals, beats = asyncio.run(serve(session, args.requests, args.lookups))
    seconds = time.perf_counter() - started
    lookups = args.requests * args.lookups
    print(
        f"{args.requests} requests, {lookups:,} lookups in {seconds:.2f} s "
        f"({lookups / seconds:,.0f}/s); the loop's heartbeat ticked {beats} times meanwhile"
    )
    expected = [
        sum(((r * args.lookups + i) % 5_000) % 100 for i in range(args.lookups))
        for r in range(args.requests)
    ]
    return 0 if totals == expected and beats > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
