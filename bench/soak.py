"""Soak run: millions of statements through rxcql against the real node, memory watched.

    .venv/bin/python -m bench.soak [--statements 10000000] [--concurrency 256]

Inserts ``--statements`` rows (keys cycling over ``--keys`` so the table stays small) from a
generator through ``rxcql.execute_concurrent_with_args(..., results_generator=True)``, and prints,
every ``--interval`` seconds, the statements done, the rate, the failures and the process's RSS.
It ends with a summary: steady memory means the RSS after warm-up stays within a few MiB.
Uses RXCQL_CONTACT_POINTS, or a node on 127.0.0.1:9042, or starts one (as the benchmark does:
``bench.node``); the table is ``rxcql_bench.soak``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence

import rxcql

from .node import Node


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", type=int, default=10_000_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--interval", type=float, default=30.0)
    args = parser.parse_args(argv)
    total: int = args.statements

    node = Node(lambda line: print(line, file=sys.stderr, flush=True))
    session = node.session
    session.execute("CREATE TABLE IF NOT EXISTS soak (k int PRIMARY KEY, v bigint)")
    insert = session.prepare("INSERT INTO soak (k, v) VALUES (?, ?)")

    def parameters() -> Iterator[tuple[int, int]]:
        keys = args.keys
        for i in range(total):
            yield i % keys, i

    started = last = time.perf_counter()
    done = failed = 0
    samples: list[tuple[int, float]] = []
    print(f"soak: {total:,} statements at concurrency {args.concurrency}", flush=True)
    print(f"{'seconds':>8} {'done':>12} {'rate/s':>9} {'failed':>7} {'RSS MiB':>8}", flush=True)
    for ok, _ in rxcql.execute_concurrent_with_args(
        session,
        insert,
        parameters(),
        concurrency=args.concurrency,
        raise_on_first_error=False,
        results_generator=True,
    ):
        done += 1
        failed += not ok
        if done & 0x3FFF == 0:
            now = time.perf_counter()
            if now - last >= args.interval:
                last = now
                rss = rss_mib()
                samples.append((done, rss))
                print(
                    f"{now - started:8.0f} {done:12,} {done / (now - started):9,.0f} "
                    f"{failed:7,} {rss:8.1f}",
                    flush=True,
                )
    seconds = time.perf_counter() - started
    rss = rss_mib()
    samples.append((done, rss))
    steady = [r for d, r in samples if d >= total // 10] or [rss]
    print(
        f"done: {done:,} statements in {seconds:,.0f} s ({done / seconds:,.0f}/s), "
        f"{failed:,} failed; RSS after warm-up {min(steady):.1f}-{max(steady):.1f} MiB "
        f"(spread {max(steady) - min(steady):.1f} MiB)",
        flush=True,
    )
    node.shutdown()
    return 0 if done == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
