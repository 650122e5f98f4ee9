"""Without a node: ``import rxcql`` leaves Ray alone, the arguments are checked at once, and
CQL types map to Arrow types."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from rxcql.ray import CassandraDatasink, FailedRow, WriteReport
from rxcql.ray._source import arrow_column


def connect() -> None:
    raise AssertionError("not called")


def test_import_rxcql_does_not_import_ray() -> None:
    code = "import sys, rxcql, rxcql.operators; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("keywords", "error"),
    [
        ({"max_errors": 1.5}, ValueError),
        ({"max_errors": -1}, ValueError),
        ({"concurrency": 0}, ValueError),
        ({"batch": "row"}, ValueError),
        ({"ordered": False}, TypeError),
        ({"key": ["other"]}, ValueError),
    ],
)
def test_bad_sink_arguments_raise_at_once(keywords: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        CassandraDatasink(connect, "INSERT INTO t (a) VALUES (?)", ["a"], **keywords)  # type: ignore[arg-type]


def test_reports_add_up_keeping_the_first_errors() -> None:
    one = WriteReport(10, 8, 2, 0, 1, {"A": 2}, (FailedRow({"k": 1}, "A", ""),) * 2)
    two = WriteReport(5, 4, 1, 0, 1, {"B": 1}, (FailedRow({"k": 2}, "B", ""),))
    total = WriteReport.combine([one, two], keep_errors=2)
    assert (total.rows, total.succeeded, total.failed, total.tasks) == (15, 12, 3, 2)
    assert total.errors_by_type == {"A": 2, "B": 1}
    assert len(total.first_errors) == 2


@pytest.mark.parametrize(
    ("cql", "arrow"),
    [
        ("int", pa.int32()),
        ("bigint", pa.int64()),
        ("text", pa.string()),
        ("uuid", pa.string()),
        ("timestamp", pa.timestamp("ms")),
        ("frozen<list<int>>", pa.list_(pa.int32())),
        ("set<text>", pa.list_(pa.string())),
        ("map<text, frozen<list<int>>>", pa.string()),
        ("map<text, int>", pa.map_(pa.string(), pa.int32())),
        ("tuple<int, text>", pa.string()),
    ],
)
def test_cql_types_map_to_arrow(cql: str, arrow: pa.DataType) -> None:
    assert arrow_column(cql)[0] == arrow
