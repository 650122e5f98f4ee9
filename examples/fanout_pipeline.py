"""Fan-out reads composed in an Rx pipeline: map, filter, buffer and group_by.

    python examples/fanout_pipeline.py [--orders 20000]

Orders are looked up by key with rxcql.operators.execute inside a reactivex pipeline; the
results are filtered, batched with buffer_with_count, and totalled per customer with group_by.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import reactivex
from _common import connect
from reactivex import operators as ops
from reactivex.observable import GroupedObservable

import rxcql
from rxcql import operators as cql_ops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args(argv)
    orders: int = args.orders

    session = connect()
    session.execute(
        "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, customer int, amount int)"
    )
    insert = session.prepare("INSERT INTO orders (id, customer, amount) VALUES (?, ?, ?)")
    rxcql.execute_concurrent_with_args(
        session, insert, ((i, i % 50, i % 97) for i in range(orders))
    )

    select = session.prepare("SELECT customer, amount FROM orders WHERE id = ?")
    batches: list[int] = []

    def params(i: int) -> tuple[int]:
        return (i,)  # the parameters of the prepared statement

    def row_of(result: rxcql.ExecutionResult) -> Any:
        return result.result_or_exc.one()

    def is_large(row: Any) -> bool:
        return bool(row.amount > 10)

    def amount_of(row: Any) -> int:
        return int(row.amount)

    def customer_of(row: Any) -> int:
        return int(row.customer)

    def record(batch: list[Any]) -> None:
        batches.append(len(batch))

    def total(group: GroupedObservable[Any, Any]) -> reactivex.Observable[tuple[Any, int]]:
        def keyed(amounts: list[int]) -> tuple[Any, int]:
            return (group.key, sum(amounts))

        return group.pipe(ops.map(amount_of), ops.to_list(), ops.map(keyed))

    large_orders: reactivex.Observable[Any] = reactivex.range(0, orders).pipe(
        ops.map(params),
        cql_ops.execute(session, select, concurrency=64),
        ops.map(row_of),
        ops.filter(is_large),  # only the larger orders
    )
    per_customer: list[tuple[Any, int]] = large_orders.pipe(
        ops.buffer_with_count(1_000),  # e.g. to write them out in batches
        ops.do_action(record),
        ops.flat_map(reactivex.from_iterable),
        ops.group_by(customer_of),
        ops.flat_map(total),
        ops.to_list(),
    ).run()
    totals = dict(per_customer)
    expected: dict[Any, int] = {}
    for i in range(orders):
        if i % 97 > 10:
            expected[i % 50] = expected.get(i % 50, 0) + i % 97
    print(f"{sum(batches):,} large orders in {len(batches)} batches, {len(totals)} customers")
    top = max(totals.items(), key=lambda item: item[1])
    print(f"top customer {top[0]} with {top[1]:,}")
    return 0 if totals == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
