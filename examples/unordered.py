"""``ordered=False``: results as they complete, each carrying its input position.

    python examples/unordered.py [--keys 10000]

Useful when results need no order (counting, writing elsewhere): no result waits for a slow one
before it, and ``result.index`` still says which statement it belongs to.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from _common import connect

import rxcql


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args(argv)
    keys: int = args.keys

    session = connect()
    session.execute("CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v text)")
    insert = session.prepare("INSERT INTO kv (k, v) VALUES (?, ?)")
    rxcql.execute_concurrent_with_args(session, insert, ((k, f"v{k}") for k in range(keys)))

    select = session.prepare("SELECT v FROM kv WHERE k = ?")
    out_of_order = 0
    seen = set()
    for position, result in enumerate(
        rxcql.iterate(rxcql.execute(session, ((select, (k,)) for k in range(keys)), ordered=False))
    ):
        out_of_order += result.index != position
        assert result.result_or_exc.one().v == f"v{result.index}"
        seen.add(result.index)
    print(f"{len(seen):,} results, {out_of_order:,} of them arrived out of input order")
    return 0 if seen == set(range(keys)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
