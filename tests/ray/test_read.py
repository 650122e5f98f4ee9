"""``read_cassandra`` on the real node: CQL types as Arrow values, ``columns`` and ``where``,
and the errors it raises at once."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cassandra.cluster import Session

from rxcql.ray import read_cassandra

pytestmark = pytest.mark.integration


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"ray_{uuid.uuid4().hex[:8]}"
    session.execute(
        f"CREATE TABLE {name} (k int PRIMARY KEY, big bigint, t text, u uuid, ts timestamp, "
        "d date, l list<int>, m map<text, int>, s set<text>, f frozen<tuple<int, text>>)"
    )
    yield f"{session.keyspace}.{name}"
    session.execute(f"DROP TABLE IF EXISTS {name}")


def test_types_columns_and_where(session: Session, table: str, connect: Callable[[], Any]) -> None:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    insert = session.prepare(
        f"INSERT INTO {table} (k, big, t, u, ts, d, l, m, s, f) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)"
    )
    for k in range(20):
        session.execute(
            insert,
            (
                k,
                2**40 + k,
                f"t{k}",
                key,
                when,
                datetime.date(2024, 1, 1 + k),
                [k, k + 1],
                {"a": k},
                {"x", "y"},
                (k, "z"),
            ),
        )
    session.execute(f"INSERT INTO {table} (k) VALUES (100)")

    rows = {row["k"]: row for row in read_cassandra(connect, table, parallelism=3).take_all()}
    assert sorted(rows) == [*range(20), 100]
    row = rows[3]
    assert row["big"] == 2**40 + 3
    assert row["t"] == "t3"
    assert row["u"] == str(key)
    assert row["ts"] == when
    assert row["d"] == datetime.date(2024, 1, 4)
    assert list(row["l"]) == [3, 4]
    assert dict(row["m"]) == {"a": 3}
    assert sorted(row["s"]) == ["x", "y"]
    assert row["f"] == "(3, 'z')"
    assert rows[100]["t"] is None

    filtered = read_cassandra(connect, table, columns=["k", "t"], where="big < 1099511627781")
    chosen = filtered.take_all()
    assert sorted(row["k"] for row in chosen) == [0, 1, 2, 3, 4]
    assert set(chosen[0]) == {"k", "t"}


def test_unknown_table_and_column_raise_at_once(table: str, connect: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match="no table"):
        read_cassandra(connect, table + "_missing")
    with pytest.raises(ValueError, match="no column"):
        read_cassandra(connect, table, columns=["k", "nope"])
