"""Interoperability with cqlsh (the PyPI package, installed by the test extra): a table
unloaded by cqlsh ``COPY TO`` loads with ``rxcql load`` to the same contents, and a table
unloaded by ``rxcql unload`` loads with cqlsh ``COPY FROM`` to the same contents.

What cqlsh itself loses is left out of the data, as cqlsh loses it in its own round trip too:
``COPY TO`` writes an empty string as null and rounds floats (``FLOATPRECISION=9``,
``DOUBLEPRECISION=17`` keep them exact), and fails on a null field of a tuple or user type;
``COPY FROM`` does not undo its own text escapes (a newline comes back as ``\\n``), and cannot
load ``duration`` or user-type columns (cqlsh 6.2.2: "DurationType arguments must be a
Duration", a PicklingError for the user type)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Cluster, Session
from cassandra.util import Date, Duration, Time

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli]

COMMON = """id int PRIMARY KEY, a ascii, bi bigint, b blob, bo boolean, d date, dec decimal,
    dbl double, f float, i inet, si smallint, t text, tm time, ts timestamp, tu timeuuid,
    ti tinyint, u uuid, vi varint, l list<text>, s set<int>, m map<text, timestamp>,
    tup frozen<tuple<int, text, blob>>, fl frozen<list<frozen<map<text, int>>>>,
    v vector<float, 3>, nested map<int, frozen<list<text>>>, sd set<date>, lb list<boolean>"""
EXTRA = "du duration, ad frozen<pair>"


def cqlsh() -> str:
    found = shutil.which("cqlsh", path=str(Path(sys.executable).parent)) or shutil.which("cqlsh")
    assert found, "cqlsh is not installed (pip install -e '.[test]')"
    return found


def run_cqlsh(cluster: Cluster, statement: str) -> subprocess.CompletedProcess[bytes]:
    point = cluster.contact_points[0]
    host, port = point if isinstance(point, tuple) else (point, cluster.port)
    completed = subprocess.run(
        [cqlsh(), str(host), str(port), "--request-timeout", "60", "-e", statement],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, describe(completed)
    return completed


def row(n: int, texts: list[str], extra: bool) -> dict[str, Any]:
    text = texts[n % len(texts)]
    values: dict[str, Any] = {
        "id": n,
        "a": "ascii ' \" ,",
        "bi": [-(2**63), 2**63 - 1, n][n % 3],
        "b": [b"\x00\xff", bytes(range(40)), b"\x01"][n % 3],
        "bo": n % 2 == 0,
        "d": Date("2024-02-29") if n % 2 else Date("1970-01-01"),
        "dec": [Decimal("123.4500"), Decimal("-1E+30"), Decimal("0.000000001")][n % 3],
        "dbl": [0.1, -1e308, 5e-324, float("nan"), float("-inf"), 1 / 3][n % 6],
        "f": [3.1415927410125732, -3.4028234663852886e38, 1.401298464324817e-45][n % 3],
        "i": ["127.0.0.1", "::1", "2001:db8::ff00:42:8329"][n % 3],
        "si": -(2**15) + n,
        "t": text,
        "tm": Time("12:34:56.123456789"),
        "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000) + datetime.timedelta(days=n),
        "tu": uuid.uuid1(clock_seq=n),
        "ti": [-128, 127][n % 2],
        "u": uuid.UUID(int=n),
        "vi": [10**40, -(10**40), 7][n % 3],
        "l": [text, "b'c", "d,e"],
        "s": {1, -2, n},
        "m": {text: datetime.datetime(2020, 1, 1), "k:2": datetime.datetime(1999, 12, 31)},
        "tup": (n, text, b"\x01"),
        "fl": [{"a": 1, text: 2}, {"z": 0}],
        "v": [1.5, -2.25, 3.1415927410125732],
        "nested": {1: ["x", text]},
        "sd": {Date("2024-01-01"), Date("1999-12-31")},
        "lb": [True, False],
    }
    if extra:
        values["du"] = Duration(14, 25, 18367008009010)
        values["ad"] = (text, n)
    return values


def make_table(session: Session, keyspace: str, name: str, extra: bool) -> None:
    session.execute(f"CREATE TYPE IF NOT EXISTS {keyspace}.pair (street text, n int)")
    columns = f"{COMMON}, {EXTRA}" if extra else COMMON
    session.execute(f"CREATE TABLE {keyspace}.{name} ({columns})")


def fill(session: Session, keyspace: str, name: str, rows: list[dict[str, Any]]) -> None:
    for values in rows:
        names = list(values)
        insert = session.prepare(
            f"INSERT INTO {keyspace}.{name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        session.execute(insert, [values[c] for c in names])
    session.execute(f"INSERT INTO {keyspace}.{name} (id) VALUES (1000)")  # nulls


def contents(session: Session, keyspace: str, name: str) -> list[str]:
    return sorted(repr(tuple(r)) for r in session.execute(f"SELECT * FROM {keyspace}.{name}"))


def test_cqlsh_copy_to_loads_with_rxcql(
    rxcql_cli: Runner, cluster: Cluster, session: Session, keyspace: str, tmp_path: Path
) -> None:
    """Text with newlines, tabs, backslashes and quotes too: rxcql load undoes cqlsh's
    escapes."""
    texts = ["plain", "line\nbreak\tand tab", "back\\slash \\n", "q \"d\" 's', c", "é 中文 🎉"]
    make_table(session, keyspace, "from_cqlsh", extra=True)
    make_table(session, keyspace, "from_cqlsh_copy", extra=True)
    fill(session, keyspace, "from_cqlsh", [row(n, texts, extra=True) for n in range(30)])
    exported = tmp_path / "cqlsh.csv"
    run_cqlsh(
        cluster,
        f"COPY {keyspace}.from_cqlsh TO '{exported}' WITH HEADER=true "
        "AND FLOATPRECISION=9 AND DOUBLEPRECISION=17",
    )
    loaded = rxcql_cli("load", "-t", f"{keyspace}.from_cqlsh_copy", "-f", str(exported), "-q")
    assert loaded.returncode == 0, describe(loaded)
    assert contents(session, keyspace, "from_cqlsh_copy") == contents(
        session, keyspace, "from_cqlsh"
    )


def test_rxcql_unload_loads_with_cqlsh_copy_from(
    rxcql_cli: Runner, cluster: Cluster, session: Session, keyspace: str, tmp_path: Path
) -> None:
    texts = ["plain", "spaces  and, commas", "q \"d\" 's'", "é 中文 🎉", "null-ish NULL"]
    make_table(session, keyspace, "to_cqlsh", extra=False)
    make_table(session, keyspace, "to_cqlsh_copy", extra=False)
    fill(session, keyspace, "to_cqlsh", [row(n, texts, extra=False) for n in range(30)])
    exported = tmp_path / "rxcql.csv"
    rxcql_cli("unload", "-t", f"{keyspace}.to_cqlsh", "-f", str(exported), "-q", check=0)
    header = exported.read_bytes().decode().split("\r\n", 1)[0]
    run_cqlsh(
        cluster,
        f"COPY {keyspace}.to_cqlsh_copy ({header}) FROM '{exported}' WITH HEADER=true",
    )
    assert contents(session, keyspace, "to_cqlsh_copy") == contents(session, keyspace, "to_cqlsh")
