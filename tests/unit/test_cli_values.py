"""rxcql.cli._values without a node: text and JSON forms read back to a value that the driver
stores as the same bytes, the fast serializers give the driver's bytes, and bad values are
named."""

from __future__ import annotations

import datetime
import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from cassandra import cqltypes as t
from cassandra.util import Date, Duration, OrderedMap, Time

from rxcql.cli import _values

ADDRESS = t.UserType.make_udt_class("ks", "address", ("street", "n"), (t.UTF8Type, t.Int32Type))
VECTOR = t.lookup_casstype(
    "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 3)"
)
LIST_TEXT = t.ListType.apply_parameters([t.UTF8Type])
SET_INT = t.SetType.apply_parameters([t.Int32Type])
MAP = t.MapType.apply_parameters([t.UTF8Type, t.DateType])
TUPLE = t.TupleType.apply_parameters([t.Int32Type, t.UTF8Type, t.BytesType])
NESTED = t.MapType.apply_parameters([TUPLE, t.ListType.apply_parameters([t.TimeType])])

CASES: list[tuple[Any, Any]] = [
    (t.Int32Type, -(2**31)),
    (t.LongType, 2**63 - 1),
    (t.ShortType, -(2**15)),
    (t.ByteType, 127),
    (t.IntegerType, -(10**40)),
    (t.FloatType, 3.1415927410125732),
    (t.DoubleType, 5e-324),
    (t.DoubleType, -0.0),
    (t.DecimalType, Decimal("-1.2300E+30")),
    (t.UTF8Type, "q \"d\" 's', \\n not a newline\nnewline\ttab \x00 é 🎉"),
    (t.UTF8Type, ""),
    (t.AsciiType, "plain"),
    (t.BooleanType, False),
    (t.UUIDType, uuid.UUID(int=12345)),
    (t.TimeUUIDType, uuid.uuid1(clock_seq=1)),
    (t.DateType, 253402300800000),  # year 10000: milliseconds
    (t.DateType, -1),
    (t.SimpleDateType, Date(-(2**31))),
    (t.SimpleDateType, Date("2024-02-29")),
    (t.TimeType, Time(86399999999999)),
    (t.DurationType, Duration(-14, -25, -18367008009010)),
    (t.DurationType, Duration(0, 0, 0)),
    (t.InetAddressType, "2001:db8::ff00:42:8329"),
    (t.BytesType, b"\x00\xff"),
    (LIST_TEXT, ["a", "b'c", "d,e", "", "[x]"]),
    (SET_INT, [1, -2]),
    (MAP, OrderedMap([("k: 1", 0), ("", 1704164645678)])),
    (TUPLE, (1, None, b"\x01")),
    (ADDRESS, ("Main 'st'", None)),
    (VECTOR, [1.5, -2.25, 3.1415927410125732]),
    (NESTED, OrderedMap([((1, "a", b""), [Time(1), Time(0)])])),
]


@pytest.mark.parametrize(
    ("cql_type", "value"), CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_text_form_reads_back(cql_type: Any, value: Any) -> None:
    text = _values.formatter(cql_type)(value)
    assert "\n" not in text
    back = _values.parser(cql_type)(text) if text else ""
    assert cql_type.serialize(back, 5) == cql_type.serialize(value, 5), text


@pytest.mark.parametrize(
    ("cql_type", "value"), CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_json_form_reads_back(cql_type: Any, value: Any) -> None:
    text = _values.json_formatter(cql_type)(value)
    decoded = json.loads(text, parse_float=Decimal)
    back = _values.json_parser(cql_type)(decoded)
    assert cql_type.serialize(back, 5) == cql_type.serialize(value, 5), text


@pytest.mark.parametrize(
    ("cql_type", "value"), CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_serializer_gives_the_driver_bytes(cql_type: Any, value: Any) -> None:
    if value is None or (isinstance(value, tuple) and None in value):
        pytest.skip("the driver's own serializer handles nulls inside")
    assert _values.serializer(cql_type, 5)(value) == cql_type.serialize(value, 5)


def test_cqlsh_forms() -> None:
    ts = _values.parser(t.DateType)
    assert ts("2024-01-02 03:04:05.678+0000") == 1704164645678
    assert ts("2024-01-02T05:04:05.678+02:00") == 1704164645678
    assert ts("2024-01-02 03:04:05.678") == 1704164645678  # no zone: UTC
    assert ts("1704164645678") == 1704164645678
    assert ts("-62135596800001") == -62135596800001
    assert _values.format_timestamp(1704164645678) == "2024-01-02 03:04:05.678+0000"
    assert _values.format_timestamp(datetime.datetime(2024, 1, 2, 3, 4, 5, 678000)) == (
        "2024-01-02 03:04:05.678+0000"
    )
    assert _values.parser(t.DurationType)("P1Y2M3DT4H5M6S") == Duration(14, 3, 14706 * 10**9)
    assert _values.parser(t.DurationType)("-P2W") == Duration(0, -14, 0)
    assert _values.formatter(t.DurationType)(Duration(14, 25, 18367008009010)) == (
        "1y2mo25d5h6m7s8ms9us10ns"
    )
    assert _values.parser(MAP)("{'a': '2020-01-01 00:00:00.000+0000'}") == {"a": 1577836800000}
    time_keys = t.MapType.apply_parameters([t.TimeType, t.Int32Type])
    assert _values.parser(time_keys)("{10:00:00.000000000: 1}") == {Time("10:00:00"): 1}
    assert _values.parser(LIST_TEXT)("[a, 'b']") == ["a", "b"]
    assert _values.parser(t.BooleanType)("TRUE") is True
    assert math.isnan(_values.parser(t.DoubleType)("NaN"))


@pytest.mark.parametrize(
    ("cql_type", "text", "reason"),
    [
        (t.Int32Type, "2147483648", "out of range for a 32-bit integer"),
        (t.FloatType, "1e39", "out of range for a float"),
        (t.DecimalType, "NaN", "must be finite"),
        (t.SimpleDateType, "2023-02-29", "not a valid date"),
        (t.TimeType, "24:00:00", "not a valid time"),
        (t.TimeUUIDType, str(uuid.UUID(int=1)), "version 1"),
        (t.InetAddressType, "300.1.1.1", "not an IPv4 or IPv6 address"),
        (t.BytesType, "cafe", "0x followed by hex digits"),
        (t.DurationType, "1 hour", "not a duration"),
        (LIST_TEXT, "['a', 'b'", "expected ',' or ']'"),
        (SET_INT, "{1, null}", "a null is not allowed"),
        (VECTOR, "[1, 2]", "a vector of 3 values has 2"),
        (ADDRESS, "{street: 'x', zip: 1}", "has no field 'zip'"),
        (TUPLE, "(1, 'a', 0x, 4)", "more than 3 values"),
    ],
)
def test_bad_values_are_named(cql_type: Any, text: str, reason: str) -> None:
    with pytest.raises(_values.BadValueError, match=reason):
        _values.parser(cql_type)(text)


DECIMALS = [
    "0",
    "-0",
    "0.000",
    "197.72",
    "-12.50",
    "1E+5",
    "-1.2300E+30",
    "1e-30",
    "123456789012345678901234567890.123456789",
    "9" * 80 + "." + "1" * 40,
    "-" + "9" * 200 + "E-400",
]


@pytest.mark.parametrize("text", DECIMALS)
def test_decimal_serializer_is_exact(text: str) -> None:
    # Past the default context's 28 digits too: scaling must not round.
    value = Decimal(text)
    assert _values.serializer(t.DecimalType, 5)(value) == t.DecimalType.serialize(value, 5)


SET_TEXT = t.SetType.apply_parameters([t.UTF8Type])
SET_ASCII = t.SetType.apply_parameters([t.AsciiType])


@pytest.mark.parametrize(
    "text",
    [
        "{'t0', 'x'}",
        "{ 'a' ,'b'  }",
        "['it''s', '', 'a,b', '[x]', '{y}']",
        "['\\\\n', 'tab\\there']",  # escapes are undone
        "[]",
        "{'a', 'b',}",  # a trailing comma: the full reader decides
        "['a' 'b']",
        "['a', b]",  # an unquoted item
        "['a', null]",
        "{'a,b', 'c'}",  # a comma inside an item
        "{'x\\\\y', 'z'}",
        "{' spaced ' , 'q'}",
        "{'a', 'b''}",
        "['a', 'b'}",  # brackets that do not pair
        "[ }",
    ],
)
def test_text_sequence_fast_path_matches_the_full_reader(text: str) -> None:
    cql_type = SET_TEXT if text.startswith("{") else LIST_TEXT
    fast = _values.parser(cql_type)
    try:
        expected: Any = _values._Literal(text, True).whole(cql_type)
    except _values.BadValueError as exc:
        expected = exc
    if isinstance(expected, _values.BadValueError):
        with pytest.raises(_values.BadValueError, match=re.escape(str(expected))):
            fast(text)
    else:
        assert fast(text) == expected


def test_ascii_items_are_checked_on_the_fast_path() -> None:
    assert _values.parser(SET_ASCII)("{'a', 'b'}") == ["a", "b"]
    with pytest.raises(_values.BadValueError, match="not ASCII"):
        _values.parser(SET_ASCII)("{'a', 'é'}")


def test_int_sequence_brackets_must_pair() -> None:
    with pytest.raises(_values.BadValueError):
        _values.parser(t.ListType.apply_parameters([t.Int32Type]))("[1, 2}")


@pytest.mark.parametrize(
    ("cql_type", "text", "expected"),
    [
        (t.Int32Type, "42", 42),
        (t.Int32Type, " -7 ", -7),
        (t.Int32Type, "'12'", 12),  # the literal form
        (t.LongType, str(2**63 - 1), 2**63 - 1),
        (t.ByteType, "-128", -128),
        (t.IntegerType, str(10**40), 10**40),
    ],
)
def test_integers(cql_type: Any, text: str, expected: int) -> None:
    assert _values.parser(cql_type)(text) == expected


@pytest.mark.parametrize(
    ("cql_type", "text", "reason"),
    [
        (t.ByteType, "128", "out of range for a 8-bit integer"),
        (t.LongType, str(2**63), "out of range for a 64-bit integer"),
        (t.Int32Type, "'2147483648'", "out of range for a 32-bit integer"),
        (t.Int32Type, "1.5", "is not an integer"),
        (t.ShortType, "x", "is not an integer"),
    ],
)
def test_bad_integers_are_named(cql_type: Any, text: str, reason: str) -> None:
    with pytest.raises(_values.BadValueError, match=reason):
        _values.parser(cql_type)(text)
