"""Round trips through the ``rxcql`` command: a table with every CQL type unloaded and loaded
into a copy of itself, as CSV (header on and off) and JSON, through files and stdin/stdout;
the copy must hold the same rows, value for value."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session
from cassandra.util import Date, Duration, Time

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli]

COLUMNS = """
    id int, a ascii, bi bigint, b blob, bo boolean, d date, dec decimal, dbl double,
    du duration, f float, i inet, si smallint, t text, tm time, ts timestamp, tu timeuuid,
    ti tinyint, u uuid, vc varchar, vi varint, l list<text>, s set<int>,
    m map<text, timestamp>, tup tuple<int, text, blob>, ad frozen<address>,
    fl frozen<list<frozen<map<text, int>>>>, v vector<float, 3>,
    nested map<int, frozen<list<text>>>, sd set<date>, mt map<time, inet>,
    ld list<duration>, mk map<frozen<tuple<int, text>>, frozen<set<uuid>>>,
    sb set<blob>, lb list<boolean>, ldec list<decimal>, ltu list<frozen<address>>
"""
TYPE = "CREATE TYPE IF NOT EXISTS {ks}.address (street text, n int, tags frozen<set<text>>)"
NAMES = [c.split()[0] for c in " ".join(COLUMNS.split()).split(", ")]

TEXTS = [
    "plain",
    "",
    "quotes \"double\" and 'single', commas, ; semicolons",
    "line\nbreak\r\nand\ttab",
    "back\\slash \\n not a newline \\\\ two",
    "unicode é ü 中文 🎉 \u00a0nbsp \x7f",
    "  leading and trailing spaces  ",
    "null",
    "NULL",
    "[not, a, list]",
    "'quoted'",
    "0x00",
]


def rows() -> list[dict[str, Any]]:
    """Rows meant to break things: every text above, extreme numbers, null everywhere."""
    out: list[dict[str, Any]] = []
    for n, text in enumerate(TEXTS):
        out.append(
            {
                "id": n,
                "a": "ascii ' \" , text",
                "bi": [-(2**63), 2**63 - 1, 0][n % 3],
                "b": [b"", b"\x00\xff\x10", bytes(range(256))][n % 3],
                "bo": n % 2 == 0,
                "d": [Date(0), Date("2024-02-29"), Date(-(2**31)), Date(2**31 - 1)][n % 4],
                "dec": [Decimal("123.4500"), Decimal("-1E+30"), Decimal("0.000000001")][n % 3],
                "dbl": [0.1, -1e308, 5e-324, float("nan"), float("inf"), -0.0][n % 6],
                "du": [Duration(14, 25, 18367008009010), Duration(-1, -2, -3), Duration(0, 0, 1)][
                    n % 3
                ],
                "f": [3.1415927410125732, -3.4028234663852886e38, 1.401298464324817e-45][n % 3],
                "i": ["127.0.0.1", "::1", "2001:db8::ff00:42:8329"][n % 3],
                "si": [-(2**15), 2**15 - 1][n % 2],
                "t": text,
                "tm": [Time(0), Time(86399999999999), Time("12:34:56.123456789")][n % 3],
                "ts": [
                    datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
                    datetime.datetime(1, 1, 1),
                    datetime.datetime(9999, 12, 31, 23, 59, 59, 999000),
                    datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
                ][n % 4],
                "tu": uuid.uuid1(clock_seq=n),
                "ti": [-128, 127][n % 2],
                "u": uuid.UUID(int=n * 2**100 + n),
                "vc": text,
                "vi": [10**40, -(10**40), 0][n % 3],
                "l": [text, "b'c", "d,e", ""],
                "s": {1, -2, 2**31 - 1},
                "m": {text: datetime.datetime(2020, 1, 1), "k:2": datetime.datetime(1970, 1, 1)},
                "tup": (n, text, b"\x01"),
                "ad": (text, n, {"x", text}),
                "fl": [{"a": 1, text: 2}, {}],
                "v": [1.5, -2.25, 3.1415927410125732],
                "nested": {1: ["x", text], -5: []},
                "sd": {Date("2024-01-01"), Date(-(2**31))},
                "mt": {Time("01:02:03.000000004"): "10.0.0.1", Time(0): "::1"},
                "ld": [Duration(1, 2, 3), Duration(0, 0, -7)],
                "mk": {(1, text): {uuid.UUID(int=1)}, (2, "x"): set()},
                "sb": {b"", b"\x01\x02"},
                "lb": [True, False, True],
                "ldec": [Decimal("1.10"), Decimal("1E+3")],
                "ltu": [(text, None, None), ("s", 1, {"a"})],
            }
        )
    # Nulls: in every column but the key; and null fields of a tuple and a user type.
    out.append({"id": 100})
    out.append({"id": 101, "tup": (None, None, None), "ad": (None, None, None), "t": ""})
    return out


@pytest.fixture(scope="module")
def tables(session: Session, keyspace: str) -> tuple[str, str]:
    session.execute(TYPE.format(ks=keyspace))
    session.execute(f"CREATE TABLE all_types (id int PRIMARY KEY, {COLUMNS.split(', ', 1)[1]})")
    names = ", ".join(NAMES)
    for row in rows():
        columns = list(row)
        session.execute(
            session.prepare(
                f"INSERT INTO all_types ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            ),
            [row[c] for c in columns],
        )
    assert names
    return keyspace, "all_types"


def contents(session: Session, keyspace: str, table: str) -> list[str]:
    """Every row, as text that compares NaN and -0.0 as values (repr), sorted by key."""
    result = session.execute(f"SELECT * FROM {keyspace}.{table}")
    return sorted(repr(tuple(row)) for row in result)


def fresh_copy(session: Session, keyspace: str, name: str) -> str:
    session.execute(f"DROP TABLE IF EXISTS {keyspace}.{name}")
    session.execute(
        f"CREATE TABLE {keyspace}.{name} (id int PRIMARY KEY, {COLUMNS.split(', ', 1)[1]})"
    )
    return name


@pytest.mark.parametrize(
    ("form", "header", "piped"),
    [
        ("csv", True, False),
        ("csv", False, False),
        ("csv", True, True),
        ("json", False, False),
        ("json", False, True),
    ],
    ids=["csv-header-files", "csv-no-header-files", "csv-header-pipes", "json-files", "json-pipes"],
)
def test_unload_then_load_gives_the_same_table(
    rxcql_cli: Runner,
    session: Session,
    tables: tuple[str, str],
    tmp_path: Path,
    form: str,
    header: bool,
    piped: bool,
) -> None:
    keyspace, source = tables
    target = fresh_copy(session, keyspace, f"copy_{form}_{int(header)}_{int(piped)}")
    options = ["--format", form, "--header" if header else "--no-header", "-q"]
    data = tmp_path / f"data.{form}"
    unloaded = rxcql_cli(
        "unload", "-k", keyspace, "-t", source, "-f", "-" if piped else str(data), *options
    )
    assert unloaded.returncode == 0, describe(unloaded)
    if piped:
        data.write_bytes(unloaded.stdout)
    text = data.read_text("utf-8")
    assert len(text.splitlines()) == len(rows()) + (1 if header else 0), text[:2000]
    loaded = rxcql_cli(
        "load",
        "-k",
        keyspace,
        "-t",
        target,
        "-f",
        "-" if piped else str(data),
        *options,
        input=data.read_bytes() if piped else None,
    )
    assert loaded.returncode == 0, describe(loaded)
    assert b"loaded 14 rows" in loaded.stderr, describe(loaded)
    assert contents(session, keyspace, target) == contents(session, keyspace, source)


def test_unloaded_csv_is_cqlsh_text(
    rxcql_cli: Runner, tables: tuple[str, str], tmp_path: Path
) -> None:
    """The forms cqlsh COPY TO writes: cqlsh's timestamps, blobs, booleans, durations, text
    escapes and CQL literals; an empty string is "" and null is an empty field."""
    keyspace, source = tables
    out = rxcql_cli(
        "unload", "-k", keyspace, "-t", source, "-f", "-", "-q", "--columns", "id,t,ts,b,bo,du,l,ad"
    )
    assert out.returncode == 0, describe(out)
    lines = out.stdout.decode().split("\r\n")
    assert lines[0] == "id,t,ts,b,bo,du,l,ad"
    by_id = {line.split(",", 1)[0]: line for line in lines[1:] if line}
    assert by_id["0"].startswith("0,plain,2024-01-02 03:04:05.678+0000,0x,True,1y2mo25d5h6m7s")
    assert by_id["0"].endswith(
        """,\"['plain', 'b''c', 'd,e', '']\",\"{street: 'plain', n: 0, tags: {'plain', 'x'}}\""""
    )
    assert by_id["1"].startswith('1,"",0001-01-01 00:00:00.000+0000,0x00ff10,False,-1mo2d3ns')
    assert by_id["3"].startswith("3,line\\\\nbreak\\\\r\\\\nand\\\\ttab,")
    assert by_id["100"] == "100,,,,,,,"


def test_timestamps_outside_the_datetime_range(
    rxcql_cli: Runner, session: Session, keyspace: str, tmp_path: Path
) -> None:
    """A timestamp outside years 1-9999 goes out as milliseconds (as cqlsh writes it) and
    comes back to the same value."""
    session.execute(f"CREATE TABLE {keyspace}.far (k int PRIMARY KEY, ts timestamp)")
    far = [253402300800000, -62135596800001, 2**63 - 1, -(2**63)]
    for k, millis in enumerate(far):
        session.execute(f"INSERT INTO {keyspace}.far (k, ts) VALUES ({k}, {millis})")
    data = tmp_path / "far.csv"
    rxcql_cli("unload", "-t", f"{keyspace}.far", "-f", str(data), "-q", check=0)
    assert f"0,{far[0]}" in data.read_text()
    session.execute(f"TRUNCATE {keyspace}.far")
    rxcql_cli("load", "-t", f"{keyspace}.far", "-f", str(data), "-q", check=0)
    back = session.execute(f"SELECT k, blobAsBigint(timestampAsBlob(ts)) FROM {keyspace}.far")
    assert sorted(tuple(row) for row in back) == list(enumerate(far))


def test_input_forms_beyond_the_unloaded_ones(
    rxcql_cli: Runner, session: Session, keyspace: str
) -> None:
    """ISO 8601 timestamps with zones, epoch milliseconds, ISO durations, quoted scalars,
    RFC 4180 quoting, unquoted list items, a JSON map given as pairs, base64 blobs."""
    session.execute(
        f"CREATE TABLE {keyspace}.forms (k int PRIMARY KEY, ts timestamp, du duration, "
        "l list<int>, b blob, m map<int, text>, t text)"
    )
    csv_text = (
        "k,ts,du,l,b,m,t\n"
        '1,2024-01-02T03:04:05.5+02:00,P1Y2M3DT4H5M6S,"[1, 2,3]",0xCAFE,"{1: \'a\'}","say ""hi"""\n'
        "2,1704164645678,PT1H,[],0x,{},x\n"
        "3,'2024-01-02 03:04:05Z',P2W,[ 7 ],0x00,{2: b},x\n"
    )
    rxcql_cli("load", "-t", f"{keyspace}.forms", "-f", "-", "-q", input=csv_text.encode(), check=0)
    json_text = (
        '{"k": 4, "ts": "2024-01-02T03:04:05.678Z", "m": [[5, "e"]], "b": "yv4=", "l": [9]}\n'
    )
    rxcql_cli(
        "load",
        "-t",
        f"{keyspace}.forms",
        "-f",
        "-",
        "-q",
        "--format",
        "json",
        input=json_text.encode(),
        check=0,
    )
    got = {row.k: row for row in session.execute(f"SELECT * FROM {keyspace}.forms")}
    assert got[1].ts == datetime.datetime(2024, 1, 2, 1, 4, 5, 500000)
    assert got[1].du == Duration(14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9)
    assert got[1].l == [1, 2, 3]
    assert got[1].b == b"\xca\xfe"
    assert got[1].t == 'say "hi"'
    assert got[2].ts == datetime.datetime(2024, 1, 2, 3, 4, 5, 678000)
    assert got[2].l is None
    assert got[2].m is None
    assert got[3].du == Duration(0, 14, 0)
    assert got[3].m == {2: "b"}
    assert got[4].m == {5: "e"}
    assert got[4].b == b"\xca\xfe"
    assert got[4].ts == datetime.datetime(2024, 1, 2, 3, 4, 5, 678000)
