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

from rxcql.ray import CassandraDatasink, read_cassandra

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

    block_rows = 3000
    read = read_cassandra(connect, table, parallelism=6, block_rows=block_rows)
    seen: Counter[tuple[int, str]] = Counter()
    largest = 0
    block: Any  # a pyarrow.Table
    for block in read.iter_batches(batch_size=None, batch_format="pyarrow"):
        largest = max(largest, block.num_rows)
        seen.update(zip(block.column("k").to_pylist(), block.column("v").to_pylist(), strict=True))
    assert largest <= block_rows
    assert seen == Counter((k, f"v{k}") for k in range(ROWS))
