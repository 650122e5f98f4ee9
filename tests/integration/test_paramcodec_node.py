"""The failed-log parameter encoding against a real node: a column of every CQL type.

For each case, the parameters ``P`` and ``decode(json(encode(P)))`` bind to the same bytes
through the same prepared statement (set elements: the same bytes, in any order; see the
``_paramcodec`` docstring), and rows inserted with each read back equal.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import json
import math
import struct
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import cqltypes
from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE, BoundStatement, PreparedStatement, bind_params
from cassandra.util import Date, Duration, SortedSet, Time

from rxcql._paramcodec import (
    DecodedObject,
    decode_parameters,
    decode_serialized,
    encode_parameters,
    encode_serialized,
)

pytestmark = pytest.mark.integration

COLUMNS = [
    ("k", "int PRIMARY KEY"),
    ("c_ascii", "ascii"),
    ("c_bigint", "bigint"),
    ("c_blob", "blob"),
    ("c_boolean", "boolean"),
    ("c_date", "date"),
    ("c_decimal", "decimal"),
    ("c_double", "double"),
    ("c_duration", "duration"),
    ("c_float", "float"),
    ("c_inet", "inet"),
    ("c_inet6", "inet"),
    ("c_int", "int"),
    ("c_smallint", "smallint"),
    ("c_text", "text"),
    ("c_time", "time"),
    ("c_timestamp", "timestamp"),
    ("c_timeuuid", "timeuuid"),
    ("c_tinyint", "tinyint"),
    ("c_uuid", "uuid"),
    ("c_varchar", "varchar"),
    ("c_varint", "varint"),
    ("c_list", "list<int>"),
    ("c_set", "set<text>"),
    ("c_map", "map<uuid, frozen<list<int>>>"),
    ("c_tuple", "tuple<int, text, blob>"),
    ("c_addr", "frozen<addr>"),
    ("c_addrs", "list<frozen<addr>>"),
    ("c_person", "frozen<person>"),
    ("c_vector", "vector<float, 3>"),
    ("c_unset", "text"),
    ("c_null", "text"),
]
NAMES = [name for name, _ in COLUMNS]
MARKERS = ", ".join("?" for _ in COLUMNS)


class Person:
    """Registered with ``cluster.register_user_type`` for the ``person`` UDT."""

    def __init__(self, name: str | None = None, age: int | None = None, born: Any = None) -> None:
        self.name = name
        self.age = age
        self.born = born

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Person) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class Address:
    """Not registered: the driver binds it by attribute (it cannot be indexed)."""

    def __init__(self, zip_code: int, street: str) -> None:
        # Attributes in another order than the UDT's fields; 'tags' missing (binds as null).
        self.zip = zip_code
        self.street = street


@pytest.fixture
def table(session: Session) -> Iterator[str]:
    name = f"codec_{uuid.uuid4().hex[:8]}"
    session.execute("CREATE TYPE IF NOT EXISTS addr (street text, zip int, tags frozen<set<text>>)")
    session.execute("CREATE TYPE IF NOT EXISTS person (name text, age int, born date)")
    session.cluster.register_user_type(session.keyspace, "person", Person)
    columns = ", ".join(f"{column} {cql_type}" for column, cql_type in COLUMNS)
    session.execute(f"CREATE TABLE {name} ({columns})")
    yield name
    session.execute(f"DROP TABLE IF EXISTS {name}")


def parameters(key: int) -> tuple[Any, ...]:
    row = {
        "k": key,
        "c_ascii": "ascii 'quoted'",
        "c_bigint": -(2**63),
        "c_blob": b"\x00\xffblob",
        "c_boolean": False,
        "c_date": Date(-800_000),  # before year 1: no datetime.date for it
        "c_decimal": decimal.Decimal("-1.50E+3"),
        "c_double": -0.0,
        "c_duration": Duration(-1, -2, -3_000_000_001),
        "c_float": math.inf,
        "c_inet": "10.1.2.3",
        "c_inet6": ipaddress.IPv6Address("2001:db8::1"),
        "c_int": 2**31 - 1,
        "c_smallint": -7,
        "c_text": "unicode: \u00e9\u4e2d\U0001f600",
        "c_time": Time(86_399_999_999_999),
        "c_timestamp": datetime.datetime(
            2024, 10, 27, 2, 30, 0, 123456, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")
        ),
        "c_timeuuid": uuid.UUID("d2177dd0-eaa2-11de-a572-001b779c76e3"),
        "c_tinyint": -128,
        "c_uuid": uuid.UUID(int=2**128 - 1),
        "c_varchar": "",
        "c_varint": -(10**40),
        "c_list": [3, 1, 2, 1],
        "c_set": {"pear", "apple", "fig", "kiwi", "plum"},
        "c_map": {uuid.UUID(int=9): [1, 2], uuid.UUID(int=3): []},
        "c_tuple": (7, None, b"\x01"),
        "c_addr": Address(12345, "Main St"),
        "c_addrs": [("Elm St", 1, frozenset({"a", "b"})), Address(2, "Oak St")],
        "c_person": Person("Ada", 36, datetime.date(1815, 12, 10)),
        "c_vector": [1.5, math.nan, -0.0],
        "c_unset": UNSET_VALUE,
        "c_null": None,
    }
    return tuple(row[name] for name in NAMES)


def through_json(params: Any, classes: tuple[type, ...] = ()) -> Any:
    line = json.dumps(encode_parameters(params), allow_nan=False)
    return decode_parameters(json.loads(line), classes=classes)


def holds_a_set(cql_type: Any) -> bool:
    if issubclass(cql_type, cqltypes.SetType):
        return True
    return any(holds_a_set(subtype) for subtype in cql_type.subtypes or ())


def assert_same_bytes(prepared: PreparedStatement, original: Any, decoded: Any) -> None:
    """The same bytes for every column; where a set is inside, the elements of each set may come
    in another order (Python's iteration order, which decoding cannot promise), so those are
    compared as read back: the same elements everywhere, which is what the server keeps."""
    expected, got = prepared.bind(original).values, prepared.bind(decoded).values
    assert len(expected) == len(got) == len(COLUMNS)
    for column, want, have in zip(prepared.column_metadata, expected, got, strict=True):
        if want == have:
            continue
        assert holds_a_set(column.type), column.name
        assert isinstance(want, bytes), column.name
        assert len(want) == len(have), column.name
        read_back = column.type.from_binary(want, 5), column.type.from_binary(have, 5)
        assert read_back[0] == read_back[1], column.name


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (in a vector, say) and keeps -0.0 apart.

    Types are compared by name: the driver makes a new namedtuple class for a UDT on each read.
    """
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a).__name__ == type(b).__name__


def read(session: Session, table: str, key: int) -> dict[str, Any]:
    row = session.execute(f"SELECT * FROM {table} WHERE k = %s", (key,)).one()
    assert row is not None
    values: dict[str, Any] = row._asdict()
    return values


def insert_and_compare(
    session: Session, table: str, params: tuple[Any, ...], decoded: list[Any], key: int
) -> None:
    """Insert ``params`` under its key and ``decoded`` under ``key``; both rows read back equal.

    Both rows get ``c_unset = 'kept'`` first: the UNSET value leaves it, None would not.
    """
    insert = session.prepare(f"INSERT INTO {table} ({', '.join(NAMES)}) VALUES ({MARKERS})")
    decoded = [key, *decoded[1:]]
    for row_key in (params[0], key):
        session.execute(f"INSERT INTO {table} (k, c_unset) VALUES (%s, 'kept')", (row_key,))
    session.execute(insert, params)
    session.execute(insert, decoded)
    first, second = read(session, table, params[0]), read(session, table, key)
    assert first["c_unset"] == "kept"
    assert first["c_null"] is None
    for name in NAMES[1:]:
        assert same(first[name], second[name]), name


def test_prepared_parameters_bind_the_same_bytes(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} ({', '.join(NAMES)}) VALUES ({MARKERS})")
    params = parameters(1)
    decoded = through_json(params)

    assert type(decoded) is list
    assert decoded[NAMES.index("c_unset")] is UNSET_VALUE
    assert decoded[NAMES.index("c_null")] is None
    assert type(decoded[NAMES.index("c_addr")]).__name__ == "Address"
    assert isinstance(decoded[NAMES.index("c_addr")], DecodedObject)
    assert_same_bytes(insert, params, decoded)
    insert_and_compare(session, table, params, decoded, key=2)

    # With the classes given, objects come back as themselves (and still bind the same).
    with_classes = through_json(params, classes=(Person, Address))
    assert type(with_classes[NAMES.index("c_person")]) is Person
    assert vars(with_classes[NAMES.index("c_addr")]) == vars(params[NAMES.index("c_addr")])
    assert_same_bytes(insert, params, with_classes)


def test_values_read_back_from_the_node_round_trip(session: Session, table: str) -> None:
    """What the driver returns (OrderedMapSerializedKey, SortedSet, its UDT namedtuples, Date,
    Time, a registered class) is encoded, decoded and bound again to the same bytes."""
    insert = session.prepare(f"INSERT INTO {table} ({', '.join(NAMES)}) VALUES ({MARKERS})")
    session.execute(insert, parameters(10))
    stored = read(session, table, 10)
    stored.update(k=11, c_unset=UNSET_VALUE)
    params = tuple(stored[name] for name in NAMES)
    assert type(stored["c_map"]).__name__ == "OrderedMapSerializedKey"
    assert type(stored["c_set"]) is SortedSet
    assert type(stored["c_person"]) is Person

    decoded = through_json(params)
    for name, original, value in zip(NAMES, params, decoded, strict=True):
        if hasattr(original, "_fields"):  # the driver's namedtuple for a UDT: one like it
            assert (type(value).__name__, value._fields) == ("addr", ("street", "zip", "tags"))
        elif not isinstance(original, Person):
            assert type(value) is type(original), name
    assert_same_bytes(insert, params, decoded)
    insert_and_compare(session, table, params, decoded, key=12)


def test_named_parameters_bind_the_same_bytes(session: Session, table: str) -> None:
    insert = session.prepare(f"INSERT INTO {table} ({', '.join(NAMES)}) VALUES ({MARKERS})")
    named = dict(zip(NAMES, parameters(20), strict=True))
    del named["c_unset"]  # a missing name binds as UNSET
    decoded = through_json(named)

    assert type(decoded) is dict
    assert list(decoded) == list(named)
    assert_same_bytes(insert, named, decoded)


def test_simple_statement_renders_the_same_cql(session: Session, table: str) -> None:
    """A simple statement: the driver renders each value by its type (a registered class through
    its registered encoder, so the decoder is given the class)."""
    simple_columns = [
        name for name in NAMES if name not in ("c_unset", "c_addr", "c_addrs", "c_tuple")
    ]
    query = (
        f"INSERT INTO {table} ({', '.join(simple_columns)}) "
        f"VALUES ({', '.join('%s' for _ in simple_columns)})"
    )
    row = dict(zip(NAMES, parameters(30), strict=True))
    row["c_set"] = {"one element"}  # the order of a set's elements is not kept (see docstring)
    params = [row[name] for name in simple_columns]
    decoded = through_json(params, classes=(Person,))
    assert bind_params(query, decoded, session.encoder) == bind_params(
        query, params, session.encoder
    )

    session.execute(query, params)
    session.execute(query, [31, *decoded[1:]])
    first, second = read(session, table, 30), read(session, table, 31)
    for name in simple_columns[1:]:
        assert same(first[name], second[name]), name


def test_a_bound_statements_serialized_values_round_trip(session: Session, table: str) -> None:
    """A failed BoundStatement is logged with its already serialized values; run again, they
    write the same row (the key's bytes swapped for another key)."""
    insert = session.prepare(f"INSERT INTO {table} ({', '.join(NAMES)}) VALUES ({MARKERS})")
    bound = insert.bind(parameters(40))
    line = json.dumps(encode_serialized(bound.values), allow_nan=False)
    values = decode_serialized(json.loads(line))
    assert values == bound.values
    assert values[NAMES.index("c_unset")] is UNSET_VALUE
    assert values[NAMES.index("c_null")] is None

    again = BoundStatement(insert)
    again.values = [cqltypes.Int32Type.serialize(41, 5), *values[1:]]
    for key in (40, 41):
        session.execute(f"INSERT INTO {table} (k, c_unset) VALUES (%s, 'kept')", (key,))
    session.execute(bound)
    session.execute(again)
    first, second = read(session, table, 40), read(session, table, 41)
    assert second["c_unset"] == "kept"
    for name in NAMES[1:]:
        assert same(first[name], second[name]), name
