"""Replacing ``cassandra.concurrent`` in existing code: change the import, nothing else.

    python examples/replace_driver.py [--rows 10000]

The function below was written for the driver's helper. It runs unchanged on rxcql; the only
difference is the import. In generator mode rxcql issues statements only as fast as the loop
reads them, and stops when the loop breaks.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from _common import connect
from cassandra.cluster import Session

# Before: from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from rxcql import execute_concurrent, execute_concurrent_with_args


def copy_users(session: Session, rows: int) -> tuple[int, list[Any]]:
    """Existing code, written against cassandra.concurrent's API."""
    insert = session.prepare("INSERT INTO users (id, name) VALUES (?, ?)")
    results = execute_concurrent_with_args(
        session, insert, [(i, f"user{i}") for i in range(rows)], concurrency=50
    )
    failed = [result for success, result in results if not success]

    select = session.prepare("SELECT name FROM users WHERE id = ?")
    names = []
    for success, result in execute_concurrent(
        session, [(select, (i,)) for i in range(rows)], results_generator=True
    ):
        if success:
            names.append(result.one().name)
    return len(failed), names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args(argv)
    session = connect()
    session.execute("CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text)")
    failed, names = copy_users(session, args.rows)
    print(f"{args.rows:,} users written ({failed} failed), {len(names):,} read back in order")
    return 0 if failed == 0 and names == [f"user{i}" for i in range(args.rows)] else 1


if __name__ == "__main__":
    raise SystemExit(main())
