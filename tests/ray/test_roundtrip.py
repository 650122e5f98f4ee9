"""A 100,000-row dataset written through ``CassandraDatasink`` and read back with
``read_cassandra``, on the real node and a local Ray of two CPUs: every row exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest
import ray
from cassandra.cluster import Session

import rxcql
from rxcql.ray import CassandraDatasink, CassandraDatasource, read_cassandra

pytestmark = pytest.mark.integration

ROWS = 100_000


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"ray_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v text)")
    yield f"{session.keyspace}.{name}"
    session.execute(f"DROP TABLE IF EXISTS {name}")


def test_every_row_written_and_read_back_once(table: str, connect: Callable[[], Any]) -> None:
    parts = 4
    size = ROWS // parts
    dataset = ray.data.from_arrow(
        [
            pa.table(
                {
                    "k": list(range(p * size, (p + 1) * size)),
                    "v": [f"v{k}" for k in range(p * size, (p + 1) * size)],
                }
            )
            for p in range(parts)
        ]
    )
    sink = CassandraDatasink(
        connect, f"INSERT INTO {table} (k, v) VALUES (?, ?)", ["k", "v"], batch="replica"
    )
    dataset.write_datasink(sink)
    assert sink.report is not None
    assert (sink.report.rows, sink.report.succeeded, sink.report.failed) == (ROWS, ROWS, 0)
    assert sink.report.tasks >= 2

    read = read_cassandra(connect, table, parallelism=6)
    seen: Counter[tuple[int, str]] = Counter()
    for row in read.iter_rows():
        seen[(row["k"], row["v"])] += 1
    assert seen == Counter((k, f"v{k}") for k in range(ROWS))


def test_a_read_task_yields_blocks_of_at_most_block_rows(
    table: str, session: Session, connect: Callable[[], Any]
) -> None:
    # Ray's executor may merge or split blocks on the way to the consumer; the bound on a
    # task's memory is what the task itself yields, so run the read tasks here.
    rows = 7_000
    insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
    results = rxcql.execute_concurrent_with_args(
        session, insert, [(k, f"v{k}") for k in range(rows)]
    )
    assert all(success for success, _ in results)

    source = CassandraDatasource(connect, table, parallelism=2, block_rows=1000)
    tasks = source.get_read_tasks(2)
    assert len(tasks) == 2
    per_task = [[block.num_rows for block in task()] for task in tasks]
    assert sum(map(sum, per_task)) == rows
    for sizes in per_task:
        # Full blocks as the rows come, then what is left at the end of the task's ranges.
        assert all(size == 1000 for size in sizes[:-1]), sizes
        assert 0 < sizes[-1] <= 1000, sizes
