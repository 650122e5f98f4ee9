"""``CassandraDatasink`` when rows fail: failures counted and reported with their keys, the
dataset-wide error budget (a count or a share) raising past it, a failing task surfacing; and
the rows' values in no exception message of rxcql's."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest
import ray
from cassandra.cluster import Session

import rxcql
from rxcql.ray import CassandraDatasink, TooManyWriteErrorsError, read_cassandra

pytestmark = pytest.mark.integration

MARKER = "SECRET-MARKER-7c2d"
ROWS = 2000
#: Rows the server refuses (a null clustering key) and rows the driver cannot encode (an int
#: column given a value past 32 bits).
REFUSED = {13, 400, 401, 977, 1500, 1501, 1999}
UNENCODABLE = {0, 250, 1234, 1600, 1700}


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"ray_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {name} (k text, c int, n int, PRIMARY KEY (k, c))")
    yield f"{session.keyspace}.{name}"
    session.execute(f"DROP TABLE IF EXISTS {name}")


def dataset() -> ray.data.Dataset:
    keys = [f"{MARKER}-{i}" for i in range(ROWS)]
    clustering = [None if i in REFUSED else i for i in range(ROWS)]
    numbers = [2**40 + i if i in UNENCODABLE else i for i in range(ROWS)]
    half = ROWS // 2
    columns: dict[str, list[Any]] = {"k": keys, "c": clustering, "n": numbers}
    return ray.data.from_arrow(
        [
            pa.table({name: values[:half] for name, values in columns.items()}),
            pa.table({name: values[half:] for name, values in columns.items()}),
        ]
    )


def sink(connect: Callable[[], Any], table: str, **keywords: Any) -> CassandraDatasink:
    return CassandraDatasink(
        connect, f"INSERT INTO {table} (k, c, n) VALUES (?, ?, ?)", ["k", "c", "n"], **keywords
    )


def test_failures_counted_and_reported_with_keys(table: str, connect: Callable[[], Any]) -> None:
    failing = REFUSED | UNENCODABLE
    writer = sink(connect, table, max_errors=len(failing), keep_errors=100)
    dataset().write_datasink(writer)
    report = writer.report
    assert report is not None
    assert (report.rows, report.failed, report.abandoned) == (ROWS, len(failing), 0)
    assert report.succeeded == ROWS - len(failing)
    assert {row.key["k"] for row in report.first_errors} == {f"{MARKER}-{i}" for i in failing}
    assert report.errors_by_type["InvalidRequest"] == len(REFUSED)
    assert sum(report.errors_by_type.values()) == len(failing)
    written = read_cassandra(connect, table, columns=["k"], parallelism=2).take_all()
    assert sorted(row["k"] for row in written) == sorted(
        f"{MARKER}-{i}" for i in range(ROWS) if i not in failing
    )


@pytest.mark.parametrize("max_errors", [3, 0.001], ids=["count", "share"])
def test_budget_exceeded_raises_without_values(
    table: str, connect: Callable[[], Any], max_errors: float
) -> None:
    writer = sink(connect, table, max_errors=max_errors)
    with pytest.raises(TooManyWriteErrorsError) as raised:
        dataset().write_datasink(writer)
    assert isinstance(raised.value, rxcql.TooManyErrorsError)
    assert raised.value.report.failed > 3
    assert raised.value.report is writer.report
    assert MARKER not in str(raised.value)
    assert any(MARKER in row.key["k"] for row in raised.value.report.first_errors)


def test_failing_task_surfaces(table: str, connect: Callable[[], Any]) -> None:
    writer = CassandraDatasink(
        connect, f"INSERT INTO {table} (k, c, n) VALUES (?, ?, ?)", ["k", "c", "missing"]
    )
    with pytest.raises(Exception, match="no column") as raised:
        dataset().write_datasink(writer, ray_remote_args={"max_retries": 0})
    assert MARKER not in str(raised.value)
    assert writer.report is None
