"""Load and read back a table through worker processes: ``rxcql.ProcessPool``.

    python examples/pool_load.py [--rows 200000] [--processes 2]

Each worker process has its own session (made by ``worker_session``, a module-level function:
a Cluster cannot cross processes) and its own engine; the parent reads the input lazily, hands
it out in chunks and merges the results back in input order.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Iterator, Sequence

from _common import KEYSPACE, connect
from cassandra.cluster import Cluster, Session

import rxcql


def worker_session(contact_points: list[tuple[str, int]], keyspace: str) -> Session:
    """Run once in each worker process."""
    return Cluster(contact_points=contact_points, protocol_version=5).connect(keyspace)


def rows(count: int) -> Iterator[tuple[int, str]]:
    for i in range(count):
        yield i, f"sku-{i:08d}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)

    session = connect()  # the node (started here if none is configured) and the keyspace
    session.execute("CREATE TABLE IF NOT EXISTS stock (id int PRIMARY KEY, sku text)")
    insert = "INSERT INTO stock (id, sku) VALUES (?, ?)"  # CQL text: each worker prepares it

    make_session = functools.partial(worker_session, session.cluster.contact_points, KEYSPACE)
    with rxcql.ProcessPool(make_session, processes=args.processes) as pool:
        started = time.perf_counter()
        failed = 0
        # Plain INSERTs may be applied twice: retry them (text is prepared unmarked).
        retry = rxcql.Retry(attempts=5, idempotent_only=False)
        written = pool.execute(
            ((insert, row) for row in rows(args.rows)), batch="replica", retry=retry
        )
        for result in rxcql.iterate(written):
            failed += not result.success
        seconds = time.perf_counter() - started
        print(
            f"pool of {args.processes}: {args.rows:,} rows in {seconds:.1f} s "
            f"({args.rows / seconds:,.0f}/s), {failed} failed"
        )
        read = sum(1 for _ in rxcql.iterate(pool.scan_table(f"{KEYSPACE}.stock")))
    print(f"{read:,} rows read back through the pool")
    return 0 if failed == 0 and read >= args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
