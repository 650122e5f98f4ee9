"""The test wiring itself: a real node, the fixtures, and the driver's own concurrent helper."""

from __future__ import annotations

import uuid

import pytest
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

pytestmark = pytest.mark.integration

ROWS = 10_000


def test_driver_concurrent_insert_reads_back_every_row(session: Session) -> None:
    table = f"wiring_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, payload text)")
    insert = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    expected = {i: f"payload-{i}" for i in range(ROWS)}

    results = execute_concurrent_with_args(
        session, insert, list(expected.items()), concurrency=100, raise_on_first_error=True
    )
    select = SimpleStatement(f"SELECT id, payload FROM {table}", fetch_size=1000)
    stored = {row.id: row.payload for row in session.execute(select)}

    assert (len(results), all(result.success for result in results)) == (ROWS, True)
    assert stored == expected
