"""``concurrency="auto"`` against the real node: every consumer, with batching and retries,
lands every row; the limit and the request latencies show in the progress reports."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

import rxcql

pytestmark = pytest.mark.integration

ROWS = 6_000


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"auto_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k int, c int, v text, PRIMARY KEY (k, c))")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def stored(session: Session, table: str) -> dict[tuple[int, int], str]:
    return {(r.k, r.c): r.v for r in session.execute(f"SELECT k, c, v FROM {table}")}


def rows(n: int) -> Iterator[tuple[int, int, str]]:
    return ((i % 97, i, f"value {i}") for i in range(n))


@pytest.mark.parametrize("batch", [None, "replica"])
def test_auto_lands_every_row_through_the_iterator(
    session: Session, table: str, batch: str | None
) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    insert.is_idempotent = True
    reports: list[rxcql.Progress] = []
    observable = rxcql.execute(
        session,
        ((insert, row) for row in rows(ROWS)),
        concurrency="auto",
        batch=batch,  # type: ignore[arg-type]
        retry=rxcql.Retry(attempts=4),
        progress=reports.append,
        progress_interval=0.1,
    )
    results = list(rxcql.iterate(observable))
    assert [r.index for r in results] == list(range(ROWS))
    assert all(r.success for r in results)
    assert stored(session, table) == {(k, c): v for k, c, v in rows(ROWS)}
    assert reports[-1].done
    assert reports[-1].completed == ROWS
    timed = [r for r in reports if r.latency_p99 is not None]
    assert timed, "no report carried request latencies"
    assert all(0 < r.latency_p50 <= r.latency_p99 < 10 for r in timed)  # type: ignore[operator]
    assert all(4 <= r.concurrency <= 2048 for r in reports)


def test_auto_through_the_drop_in_call(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    results = rxcql.execute_concurrent_with_args(session, insert, list(rows(ROWS)), "auto")
    assert len(results) == ROWS
    assert all(ok for ok, _ in results)
    assert len(stored(session, table)) == ROWS


def test_auto_through_the_asyncio_consumer(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} (k, c, v) VALUES (?, ?, ?)")
    bounds = rxcql.AdaptiveConcurrency(initial=8, min=2, max=64)

    async def main() -> list[int]:
        observable = rxcql.execute(
            session, ((insert, row) for row in rows(2_000)), concurrency=bounds
        )
        return [result.index async for result in rxcql.aiterate(observable) if result.success]

    assert asyncio.run(main()) == list(range(2_000))
    assert len(stored(session, table)) == 2_000
