"""``rxcql.scan_table`` and ``rxcql.count_table`` on the real node: every row exactly once
(compared by key) for single and composite partition keys, an empty table, a table of one
partition, a filter; the page window held with a slow consumer."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest
from cassandra.cluster import Session
from cassandra.cqltypes import Int32Type

import rxcql

pytestmark = pytest.mark.integration


@pytest.fixture
def name(session: Session) -> Iterator[str]:
    table = f"scan_{uuid.uuid4().hex[:8]}"
    yield table
    session.execute(f"DROP TABLE IF EXISTS {table}")


def load(session: Session, cql: str, rows: Sequence[tuple[object, ...]]) -> None:
    insert = session.prepare(cql)
    results = rxcql.execute_concurrent_with_args(session, insert, rows, batch="replica")
    assert all(ok for ok, _ in results)


@pytest.mark.parametrize("splits", [None, 1, 7, 300])
def test_every_row_once_single_key(session: Session, name: str, splits: int | None) -> None:
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v text)")
    load(session, f"INSERT INTO {name} (k, v) VALUES (?, ?)", [(k, f"v{k}") for k in range(5000)])
    table = f"{session.keyspace}.{name}"
    seen = Counter(
        (row.k, row.v) for row in rxcql.iterate(rxcql.scan_table(session, table, splits=splits))
    )
    assert seen == Counter((k, f"v{k}") for k in range(5000))
    assert rxcql.count_table(session, table, splits=splits) == 5000


def test_every_row_once_composite_key(session: Session, name: str) -> None:
    session.execute(f"CREATE TABLE {name} (a int, b text, c int, v int, PRIMARY KEY ((a, b), c))")
    rows = [(a, f"b{a % 7}", c, a * 100 + c) for a in range(300) for c in range(10)]
    load(session, f"INSERT INTO {name} (a, b, c, v) VALUES (?, ?, ?, ?)", rows)
    seen = Counter(
        tuple(row)
        for row in rxcql.iterate(
            rxcql.scan_table(session, name, columns=["a", "b", "c", "v"], concurrency=4)
        )
    )
    assert seen == Counter(rows)
    expected = session.execute(f"SELECT count(*) FROM {name}").one()[0]
    assert rxcql.count_table(session, name) == expected == len(rows)


def test_an_empty_table_and_a_table_of_one_partition(session: Session, name: str) -> None:
    session.execute(f"CREATE TABLE {name} (k int, c int, v int, PRIMARY KEY (k, c))")
    assert list(rxcql.iterate(rxcql.scan_table(session, name))) == []
    assert rxcql.count_table(session, name) == 0
    load(
        session, f"INSERT INTO {name} (k, c, v) VALUES (?, ?, ?)", [(1, c, c) for c in range(3000)]
    )
    rows = list(rxcql.iterate(rxcql.scan_table(session, name, fetch_size=500)))
    assert [row.c for row in rows] == list(range(3000))  # one partition: clustering order
    assert rxcql.count_table(session, name) == 3000


def test_a_filter_is_applied_by_the_server(session: Session, name: str) -> None:
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v int)")
    load(session, f"INSERT INTO {name} (k, v) VALUES (?, ?)", [(k, k % 10) for k in range(2000)])
    rows = list(rxcql.iterate(rxcql.scan_table(session, name, where="v = 3")))
    assert sorted(row.k for row in rows) == [k for k in range(2000) if k % 10 == 3]
    assert rxcql.count_table(session, name, where="v = 3") == 200


def test_ordered_scans_return_rows_in_token_order(session: Session, name: str) -> None:
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v int)")
    load(session, f"INSERT INTO {name} (k, v) VALUES (?, ?)", [(k, k) for k in range(2000)])
    rows = list(rxcql.iterate(rxcql.scan_table(session, name, ordered=True, splits=20)))
    token_map = session.cluster.metadata.token_map
    tokens = [token_map.token_class.from_key(Int32Type.serialize(row.k, 5)) for row in rows]
    assert tokens == sorted(tokens)
    assert sorted(row.k for row in rows) == list(range(2000))


def test_a_slow_consumer_holds_the_page_window(session: Session, name: str) -> None:
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v text)")
    load(session, f"INSERT INTO {name} (k, v) VALUES (?, ?)", [(k, "x" * 50) for k in range(20000)])
    iterator = rxcql.iterate(
        rxcql.scan_table(session, name, fetch_size=200, concurrency=4, max_pages=6, splits=32)
    )
    run = iterator.run
    assert run is not None
    paused = threading.Event()
    count = 0
    for _ in iterator:
        count += 1
        if count == 100:
            paused.wait(0.5)  # the consumer stalls; the scan must not run ahead of it
            stats = run.statistics()
            assert stats.max_ahead <= 6
            assert stats.max_rows_buffered <= 6 * 200
    assert count == 20000
    assert run.statistics().max_ahead <= 6


def test_bad_arguments(session: Session) -> None:
    with pytest.raises(ValueError, match="no table"):
        rxcql.scan_table(session, "nope.nothing")
    with pytest.raises(ValueError, match="splits"):
        rxcql.scan_table(session, "system.local", splits=0)
    with pytest.raises(TypeError, match="columns"):
        rxcql.scan_table(session, "system.local", columns="k")  # type: ignore[arg-type]
