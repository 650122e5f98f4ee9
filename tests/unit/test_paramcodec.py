"""The failed-log parameter encoding (``rxcql._paramcodec``): every type round-trips through JSON.

Each value is checked three ways after ``decode(json.loads(json.dumps(encode(v),
allow_nan=False)))``: same type and value (NaN by its bits, -0.0 by its sign), the same bytes
from the driver's serializer for a CQL type it binds to, and the same CQL text from the driver's
``Encoder`` (what a simple statement sends).
"""

from __future__ import annotations

import array
import collections
import dataclasses
import datetime
import decimal
import enum
import functools
import ipaddress
import json
import math
import pickle
import struct
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

import pytest
from cassandra import cqltypes
from cassandra.encoder import Encoder, ValueSequence
from cassandra.query import UNSET_VALUE
from cassandra.util import (
    Date,
    Duration,
    LineString,
    OrderedMap,
    OrderedMapSerializedKey,
    Point,
    Polygon,
    SortedSet,
    Time,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rxcql._paramcodec import (
    FORMAT_VERSION,
    DecodedObject,
    _cql_type_from_json,
    _cql_type_to_json,
    decode_parameters,
    decode_serialized,
    decode_value,
    encode_parameters,
    encode_serialized,
    encode_value,
)

PROTOCOL = 5
ENCODER = Encoder()


def through_json(value: Any, classes: tuple[type, ...] = ()) -> Any:
    line = json.dumps(encode_value(value), allow_nan=False)
    return decode_value(json.loads(line), classes=classes)


def float_bits(value: float) -> bytes:
    return struct.pack(">d", value)


def same(a: Any, b: Any) -> bool:
    """Deep equality that also requires equal types, NaN bits, signs of zero and key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return float_bits(a) == float_bits(b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple, SortedSet)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, OrderedMap)):
        return same(list(a.items()), list(b.items()))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, memoryview):
        return bool(a.tobytes() == b.tobytes())
    if isinstance(a, (datetime.datetime, datetime.time)):
        return (
            a == b
            and a.fold == b.fold
            and type(a.tzinfo) is type(b.tzinfo)
            and a.utcoffset() == b.utcoffset()
            and a.isoformat() == b.isoformat()
        )
    if isinstance(a, Point):
        return same((a.x, a.y), (b.x, b.y))
    if isinstance(a, Duration):
        return same((a.months, a.days, a.nanoseconds), (b.months, b.days, b.nanoseconds))
    return bool(a == b)


def udt_type(*fields: tuple[str, str]) -> Any:
    """A UserType class for the driver's serializer (built without touching its UDT cache)."""
    return _cql_type_from_json({"udt": "t", "keyspace": "ks", "fields": [list(f) for f in fields]})


class Point2(NamedTuple):
    x: int
    y: str


class Place(NamedTuple):
    where: str
    number: int
    labels: Any


class Address:
    """A plain class (registered for a UDT or not): bound by attribute."""

    kind = "class attribute"

    def __init__(self, street: str, zipcode: int | None) -> None:
        self.zipcode = zipcode  # not in the UDT's field order
        self.street = street


class Slotted:
    __slots__ = ("__secret", "name", "unset")

    def __init__(self, name: str) -> None:
        self.name = name
        self.__secret = 1


@dataclasses.dataclass(frozen=True)
class Frozen:
    street: str
    zipcode: int


PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UDT = udt_type(("street", "UTF8Type"), ("zipcode", "Int32Type"))


@dataclasses.dataclass
class Case:
    id: str
    value: Any
    cql: Any = None  # a driver type that binds the value (a name for lookup_casstype, or a class)
    render: bool = True  # the driver's Encoder renders it the same (False: str() with an address)


CASES = [
    Case("none", None),
    Case("unset", UNSET_VALUE, render=False),
    Case("bool", True, "BooleanType"),
    Case("int", 42, "Int32Type"),
    Case("int-negative", -(2**63), "LongType"),
    Case("int-huge", -(10**5000) - 1, "IntegerType", render=False),  # str() refuses it
    Case("float", 0.1, "DoubleType"),
    Case("float-float32", 1 / 3, "FloatType"),
    Case("float-nan", math.nan, "DoubleType"),
    Case("float-nan-negative", -math.nan, "DoubleType"),
    Case(
        "float-nan-payload", struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0], "DoubleType"
    ),
    Case("float-inf", math.inf, "DoubleType"),
    Case("float-minus-inf", -math.inf, "FloatType"),
    Case("float-minus-zero", -0.0, "DoubleType"),
    Case("float-tiny", 5e-324, "DoubleType"),
    Case("float-int-valued", 1e16, "DoubleType"),
    Case("str", "plain", "UTF8Type"),
    Case("str-empty", "", "UTF8Type"),
    Case("str-unicode", "\u00e9\u4e2d\U0001f600 \"quoted\" 'single' \\ \n\x00", "UTF8Type"),
    Case("str-lone-surrogate", "a\ud800b"),
    Case("str-inet", "2001:db8::1", "InetAddressType"),
    Case("bytes", b"\x00\xff\x10", "BytesType"),
    Case("bytes-empty", b"", "BytesType"),
    Case("bytearray", bytearray(b"\x01\x02"), "BytesType"),
    Case("memoryview", memoryview(b"\x03\x04"), "BytesType"),
    Case("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"), "UUIDType"),
    Case("timeuuid", uuid.UUID("d2177dd0-eaa2-11de-a572-001b779c76e3"), "TimeUUIDType"),
    Case("datetime-naive", datetime.datetime(2024, 5, 1, 12, 0, 0, 123456), "TimestampType"),
    Case("datetime-naive-fold", datetime.datetime(2024, 10, 27, 2, 30, fold=1), "TimestampType"),
    Case("datetime-year-1", datetime.datetime(1, 1, 1), "TimestampType"),
    Case(
        "datetime-utc",
        datetime.datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=datetime.UTC),
        "TimestampType",
    ),
    Case(
        "datetime-offset-seconds",
        datetime.datetime(
            1900, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5, seconds=-17))
        ),
        "TimestampType",
    ),
    Case("datetime-zoneinfo", datetime.datetime(2024, 7, 1, 9, 30, tzinfo=PARIS), "TimestampType"),
    Case(
        "datetime-zoneinfo-fold",
        datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS),
        "TimestampType",
    ),
    Case(
        "datetime-zoneinfo-gap",
        datetime.datetime(2024, 3, 31, 2, 30, tzinfo=PARIS),
        "TimestampType",
    ),
    Case("date", datetime.date(2024, 2, 29), "SimpleDateType"),
    Case("time", datetime.time(23, 59, 59, 999999), "TimeType"),
    Case("time-fold", datetime.time(1, 0, fold=1), "TimeType"),
    Case(
        "time-offset",
        datetime.time(1, 2, 3, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        "TimeType",
    ),
    Case("cql-date", Date(datetime.date(2024, 2, 29)), "SimpleDateType"),
    Case("cql-date-before-year-1", Date(-800_000), "SimpleDateType"),
    Case("cql-date-after-9999", Date(3_000_000), "SimpleDateType"),
    Case("cql-time-nanoseconds", Time(86_399_999_999_999), "TimeType"),
    Case("cql-time-zero", Time(0), "TimeType"),
    Case("decimal", decimal.Decimal("-1.50"), "DecimalType"),
    Case("decimal-exponent", decimal.Decimal("1E+3"), "DecimalType"),
    Case("decimal-minus-zero", decimal.Decimal("-0E-7"), "DecimalType"),
    Case("decimal-long", decimal.Decimal("3.14159265358979323846264338327950288419716939937510")),
    Case("decimal-nan", decimal.Decimal("NaN")),
    Case("decimal-snan", decimal.Decimal("-sNaN42"), render=False),
    Case("decimal-infinity", decimal.Decimal("-Infinity")),
    Case("duration", Duration(1, 2, 3_000_000_001), "DurationType"),
    Case("duration-negative", Duration(-1, -2, -3), "DurationType"),
    Case("ipv4", ipaddress.IPv4Address("10.1.2.3"), "InetAddressType"),
    Case("ipv6", ipaddress.IPv6Address("2001:db8::1"), "InetAddressType"),
    Case("ipv6-scoped", ipaddress.IPv6Address("fe80::1%eth0"), "InetAddressType"),
    Case("list", [1, 2, 2, None], "ListType(Int32Type)"),
    Case("list-empty", [], "ListType(Int32Type)"),
    Case("vector", [1.5, math.nan, -0.0], "VectorType(FloatType, 3)"),
    Case("tuple", (1, "a", b"\x00"), "TupleType(Int32Type, UTF8Type, BytesType)"),
    Case("tuple-with-null", (1, None), "TupleType(Int32Type, UTF8Type)"),
    Case("tuple-empty", ()),
    Case("set", {3, 1, 2}, "SetType(Int32Type)"),
    Case("set-of-tuples", {(1, 2), (3, 4)}, "SetType(TupleType(Int32Type, Int32Type))"),
    Case("frozenset", frozenset({"x"}), "SetType(UTF8Type)"),
    Case("sortedset", SortedSet(["b", "a", "c"]), "SetType(UTF8Type)"),
    Case("valuesequence", ValueSequence([1, "a"])),
    Case("dict", {"a": 1, "b": None}, "MapType(UTF8Type, Int32Type)"),
    Case("dict-empty", {}, "MapType(UTF8Type, Int32Type)"),
    Case("dict-int-keys", {2: "b", 1: "a"}, "MapType(Int32Type, UTF8Type)"),
    Case("dict-uuid-keys", {uuid.UUID(int=1): [1]}, "MapType(UUIDType, ListType(Int32Type))"),
    Case("dict-tuple-keys", {(1, "a"): 1.5}, "MapType(TupleType(Int32Type, UTF8Type), DoubleType)"),
    Case("dict-frozenset-keys", {frozenset({1}): True}, "MapType(SetType(Int32Type), BooleanType)"),
    Case("dict-dollar-key", {"$": "uuid", "v": "not a tag"}, "MapType(UTF8Type, UTF8Type)"),
    Case("dict-dollar-only", {"$": 1}, "MapType(UTF8Type, Int32Type)"),
    Case("ordereddict", collections.OrderedDict([("b", 1), ("a", 2)])),
    Case("orderedmap", OrderedMap([({"k": 1}, "dict key"), ([1, 2], "list key")])),
    Case("nested", {"a": [{"b": ({1, 2}, (3, [4.5, math.inf]))}], "c": {"$": {"$": "$"}}}),
    Case("namedtuple", Point2(1, "a"), udt_type(("x", "Int32Type"), ("y", "UTF8Type"))),
    Case("object", Address("Main St", 12345), UDT, render=False),
    Case("object-missing-attribute", Address("Main St", None), UDT, render=False),
    Case("object-slots", Slotted("n"), render=False),
    Case("object-frozen-dataclass", Frozen("Elm", 1), UDT, render=False),
    Case("udt-as-tuple", ("Main St", 1), UDT),
    Case("udt-list", [Point2(1, "a"), Address("x", 2)], render=False),
    Case("point", Point(1.0, math.nan), "PointType"),
    Case("linestring", LineString([(1.0, 2.0), (3, 4)]), "LineStringType"),
    Case(
        "polygon",
        Polygon([(0, 0), (4, 0), (0, 4)], [[(1.0, 1.0), (2.0, 1.0), (1.0, 2.0)]]),
        "PolygonType",
    ),
]


def cql_type(case: Case) -> Any:
    return cqltypes.lookup_casstype(case.cql) if isinstance(case.cql, str) else case.cql


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_round_trip(case: Case) -> None:
    encoded = encode_value(case.value)
    line = json.dumps(encoded, allow_nan=False)
    decoded = decode_value(json.loads(line))

    if isinstance(case.value, (Address, Slotted, Frozen, Point2)):
        assert type(decoded).__name__ == type(case.value).__name__
    elif case.id == "udt-list":
        assert [type(item).__name__ for item in decoded] == ["Point2", "Address"]
    else:
        assert same(decoded, case.value), (case.value, decoded)
        assert type(decoded) is type(case.value)
    # Decoding what decoding gave encodes the same way (a replayed statement logs the same line).
    assert encode_value(decoded) == encoded
    if case.cql is not None:
        kind = cql_type(case)
        assert kind.serialize(decoded, PROTOCOL) == kind.serialize(case.value, PROTOCOL)
    if case.render:
        assert ENCODER.cql_encode_all_types(decoded) == ENCODER.cql_encode_all_types(case.value)


def test_examples_are_readable() -> None:
    assert FORMAT_VERSION == 1
    assert encode_parameters(
        (uuid.UUID(int=1), "alice", {"a": 1}, [1.5], None, UNSET_VALUE, (1, "x"))
    ) == [
        {"$": "uuid", "v": "00000000-0000-0000-0000-000000000001"},
        "alice",
        {"a": 1},
        [1.5],
        None,
        {"$": "unset"},
        {"$": "tuple", "v": [1, "x"]},
    ]
    assert encode_value({1: "a", "$": 2}) == {"$": "dict", "v": [[1, "a"], ["$", 2]]}
    assert encode_value(Time(1)) == {"$": "cql_time", "v": "00:00:00.000000001"}
    assert encode_value(decimal.Decimal("1E+3")) == {"$": "decimal", "v": "1E+3"}
    assert encode_value(Address("Main St", 1)) == {
        "$": "object",
        "class": f"{__name__}.Address",
        "fields": ["zipcode", "street"],
        "v": [1, "Main St"],
    }


def test_floats_keep_nan_sign_payload_and_the_sign_of_zero() -> None:
    negative_nan = through_json(-math.nan)
    assert math.isnan(negative_nan)
    assert math.copysign(1.0, negative_nan) == -1.0
    payload = bytes.fromhex("7ff0000000000001")  # a signalling NaN's bits
    assert float_bits(through_json(struct.unpack(">d", payload)[0])) == payload
    assert math.copysign(1.0, through_json(-0.0)) == -1.0
    assert math.copysign(1.0, through_json(0.0)) == 1.0
    assert encode_value(math.nan) == {"$": "float", "v": "nan"}
    assert through_json(math.inf) == math.inf
    assert through_json(-math.inf) == -math.inf


def test_huge_int_uses_hex_under_pythons_digit_limit() -> None:
    value = 7**20_000
    encoded = encode_value(value)
    assert encoded["$"] == "int"
    assert through_json(value) == value
    assert through_json(-value) == -value
    assert encode_value(2**1000) == 2**1000  # still a plain JSON number


def test_lone_surrogate_needs_ascii_json() -> None:
    line = json.dumps(encode_value("\udc80"))  # ensure_ascii=True: an escape
    assert decode_value(json.loads(line)) == "\udc80"
    with pytest.raises(UnicodeEncodeError):
        json.dumps(encode_value("\udc80"), ensure_ascii=False).encode("utf-8")


def test_unset_and_none_stay_apart() -> None:
    decoded = decode_parameters(json.loads(json.dumps(encode_parameters([None, UNSET_VALUE]))))
    assert decoded[0] is None
    assert decoded[1] is UNSET_VALUE


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (None, None),
        ([1, "a"], [1, "a"]),
        ((1, "a"), [1, "a"]),  # the driver binds a positional list and tuple alike
        (Point2(1, "a"), [1, "a"]),
        ([], []),
        ({"b": 1, "a": {"$": 2}, "$": "a marker named $"}, None),
        ({}, {}),
    ],
    ids=["none", "list", "tuple", "namedtuple", "empty-list", "dict", "empty-dict"],
)
def test_parameters_keep_their_kind(parameters: Any, expected: Any) -> None:
    encoded = encode_parameters(parameters)
    decoded = decode_parameters(json.loads(json.dumps(encoded, allow_nan=False)))
    if isinstance(parameters, dict):
        assert type(decoded) is dict
        assert list(decoded.items()) == list(parameters.items())
        if parameters:
            assert encoded["$"] == "a marker named $"  # the top level is never a tag
    else:
        assert same(decoded, expected)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ("abc", "not str"),
        (b"abc", "not bytes"),
        (42, "not int"),
        (OrderedMap([(1, 2)]), "not cassandra.util.OrderedMap"),
        ({1: "a"}, "str keys, not int"),
    ],
    ids=["str", "bytes", "int", "mapping-not-dict", "dict-int-key"],
)
def test_parameters_of_another_kind_are_refused(parameters: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        encode_parameters(parameters)


def test_a_failing_parameter_is_named_in_a_note() -> None:
    with pytest.raises(TypeError, match=r"datetime\.timedelta") as caught:
        encode_parameters({"ok": 1, "when": [datetime.timedelta(1)]})
    assert caught.value.__notes__ == ["in parameter 'when'"]


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Indexable:
    def __init__(self) -> None:
        self.a = 1

    def __getitem__(self, index: int) -> int:
        return self.a


def generator() -> Iterator[int]:
    yield 1


UNKNOWN = [
    ("object", object(), "type object"),
    ("timedelta", datetime.timedelta(days=1), "datetime.timedelta"),
    ("intenum", Level.LOW, f"{__name__}.Level, a subclass of int"),
    ("enum", Color.RED, f"{__name__}.Color"),
    ("defaultdict", collections.defaultdict(list), "collections.defaultdict, a subclass of dict"),
    ("getitem", Indexable(), f"{__name__}.Indexable"),
    ("generator", generator(), "generator"),
    ("function", lambda: 1, "function"),
    ("class", Address, "type type"),
    ("empty-value", cqltypes.EMPTY, "cassandra.cqltypes.EmptyValue"),
    ("no-attributes", functools.partial(int), "functools.partial"),
    ("complex", 1 + 2j, "complex"),
    ("network", ipaddress.ip_network("10.0.0.0/8"), "ipaddress.IPv4Network"),
    ("nested", [1, {"a": [object()]}], "type object"),
]


@pytest.mark.parametrize(
    ("value", "name"), [case[1:] for case in UNKNOWN], ids=[case[0] for case in UNKNOWN]
)
def test_unknown_type_raises_type_error_naming_it(value: Any, name: str) -> None:
    with pytest.raises(TypeError, match=name.replace(".", r"\.")):
        encode_value(value)


def test_a_collection_that_contains_itself_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        encode_value(loop)
    shared = [1]
    assert through_json([shared, shared]) == [[1], [1]]  # the same list twice is no loop


def test_user_dicts_that_look_like_tags_round_trip() -> None:
    for value in (
        {"$": "uuid", "v": "00000000-0000-0000-0000-000000000001"},
        {"$": None},
        {"$": {"$": "unset"}},
        [{"$": "tuple", "v": []}],
        {"a": {"$": "set", "v": [1]}},
    ):
        decoded = through_json(value)
        assert same(decoded, value)
    assert through_json({"$": "unset"}) == {"$": "unset"}


def test_objects_decode_to_generated_classes_bound_by_attribute() -> None:
    original = Address("Main St", 12345)
    decoded = through_json(original)

    assert isinstance(decoded, DecodedObject)
    assert type(decoded).__name__ == "Address"
    assert vars(decoded) == {"zipcode": 12345, "street": "Main St"}
    assert decoded == through_json(original)
    assert decoded != Address("Main St", 12345)
    assert repr(decoded) == "Address(zipcode=12345, street='Main St')"
    with pytest.raises(TypeError):
        cast(Any, decoded)[0]
    assert len({decoded, through_json(original)}) == 2  # hashed by identity, as the original
    assert not hasattr(decoded, "kind")  # a class attribute is not logged (see docstring)
    assert type(through_json(Address("x", 1))) is type(decoded)  # one class per logged class
    assert pickle.loads(pickle.dumps(decoded)) == decoded


def test_slots_are_logged_with_mangled_names_and_unset_ones_left_out() -> None:
    decoded = through_json(Slotted("n"))
    assert vars(decoded) == {"_Slotted__secret": 1, "name": "n"}
    with_class = through_json(Slotted("n"), classes=(Slotted,))
    assert type(with_class) is Slotted
    assert with_class.name == "n"
    assert not hasattr(with_class, "unset")


def test_namedtuples_decode_to_namedtuples_with_the_same_fields() -> None:
    decoded = through_json(Point2(1, "a"))
    assert decoded == (1, "a")
    assert decoded._fields == ("x", "y")
    assert decoded.y == "a"
    assert repr(decoded) == "Point2(x=1, y='a')"
    assert pickle.loads(pickle.dumps(decoded)) == decoded
    assert OrderedMap([(decoded, 1)])[decoded] == 1  # OrderedMap pickles its keys

    factory: Any = collections.namedtuple
    renamed = factory("renamed", ["a", "def", "_c"], rename=True)(1, 2, 3)
    assert through_json(renamed)._fields == renamed._fields == ("a", "_1", "_2")


def test_given_classes_come_back_as_themselves() -> None:
    classes = (Address, Point2, Frozen)
    address = through_json(Address("Main St", 1), classes=classes)
    assert type(address) is Address
    assert vars(address) == vars(Address("Main St", 1))
    assert address.kind == "class attribute"
    point = through_json(Point2(1, "a"), classes=classes)
    assert type(point) is Point2
    assert point == Point2(1, "a")
    frozen = through_json(Frozen("Elm", 1), classes=classes)
    assert frozen == Frozen("Elm", 1)
    assert type(frozen) is Frozen


def test_a_given_class_that_does_not_match_is_refused() -> None:
    factory: Any = collections.namedtuple
    other = factory("Point2", ["x", "z"])
    other.__module__ = __name__
    with pytest.raises(ValueError, match="not a namedtuple with fields"):
        through_json(Point2(1, "a"), classes=(other,))
    with pytest.raises(ValueError, match="is a tuple"):
        through_json(
            Address("a", 1), classes=(type("Address", (tuple,), {"__module__": __name__}),)
        )


def test_user_type_serializer_binds_decoded_values_like_originals() -> None:
    """UserType.serialize_safe: ``val[i]``, else ``getattr(val, field, None)``."""
    udt = udt_type(("street", "UTF8Type"), ("zipcode", "Int32Type"), ("tags", "SetType(UTF8Type)"))
    for original in (
        Address("Main St", 12345),  # by attribute, in another order, 'tags' missing
        Place("Main St", 2, None),  # by position, other names
        ("Elm", 5, SortedSet(["t"])),
        Frozen("Oak", 7),
        Slotted("n"),
    ):
        expected = udt.serialize(original, PROTOCOL)
        assert udt.serialize(through_json(original), PROTOCOL) == expected
        classes = (type(original),)
        assert udt.serialize(through_json(original, classes=classes), PROTOCOL) == expected


def test_registered_class_renders_the_same_in_a_simple_statement_when_given() -> None:
    encoder = Encoder()
    fields = ("street", "zipcode")
    encoder.mapping[Address] = lambda value: (  # as Session.user_type_registered does
        "{ "
        + " , ".join(
            f"{name} : {encoder.cql_encode_all_types(getattr(value, name, None))}"
            for name in fields
        )
        + " }"
    )
    original = [Address("Main St", 1)]
    decoded = through_json(original, classes=(Address,))
    assert encoder.cql_encode_all_types(decoded) == encoder.cql_encode_all_types(original)
    assert encoder.cql_encode_all_types(original) == "[{ street : 'Main St' , zipcode : 1 }]"


@pytest.mark.parametrize(
    ("key_type", "keys"),
    [
        ("Int32Type", [2, 1]),
        ("TupleType(Int32Type, UTF8Type)", [(1, "a"), (0, "b")]),
        ("FrozenType(ListType(UUIDType))", [[uuid.UUID(int=1)], []]),
        ("VectorType(FloatType, 2)", [[1.0, 2.0], [0.5, 0.25]]),
        (
            udt_type(("a", "Int32Type"), ("b", "FrozenType(SetType(UTF8Type))")),
            [(1, SortedSet(["x"])), (2, SortedSet())],
        ),
    ],
    ids=["int", "tuple", "frozen-list", "vector", "udt"],
)
def test_ordered_map_serialized_key_round_trips_with_its_key_type(
    key_type: Any, keys: list[Any]
) -> None:
    kind = cqltypes.lookup_casstype(key_type) if isinstance(key_type, str) else key_type
    original = OrderedMapSerializedKey(kind, PROTOCOL)
    for i, key in enumerate(keys):
        original._insert(key, i)
    decoded = through_json(original)

    assert type(decoded) is OrderedMapSerializedKey
    assert list(decoded.items()) == list(original.items())
    assert decoded.protocol_version == PROTOCOL
    assert decoded[keys[1]] == 1  # looked up through the rebuilt key type's serializer
    map_type = cqltypes.MapType.apply_parameters([kind, cqltypes.Int32Type])
    assert map_type.serialize(decoded, PROTOCOL) == map_type.serialize(original, PROTOCOL)
    assert _cql_type_to_json(decoded.cass_key_type) == _cql_type_to_json(kind)


def test_a_tzinfo_of_another_class_keeps_the_instant() -> None:
    class Fixed(datetime.tzinfo):
        def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
            return datetime.timedelta(hours=3)

        def dst(self, dt: datetime.datetime | None) -> datetime.timedelta:
            return datetime.timedelta(0)

        def tzname(self, dt: datetime.datetime | None) -> str:
            return "Fixed"

    original = datetime.datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=Fixed())
    decoded = through_json(original)
    assert decoded == original
    assert decoded.utcoffset() == datetime.timedelta(hours=3)
    assert type(decoded.tzinfo) is datetime.timezone
    timestamp = cqltypes.DateType
    assert timestamp.serialize(decoded, PROTOCOL) == timestamp.serialize(original, PROTOCOL)
    assert ENCODER.cql_encode_all_types(decoded) == ENCODER.cql_encode_all_types(original)


def test_a_zone_whose_rules_disagree_keeps_the_instant() -> None:
    data = {"$": "datetime", "v": "2024-07-01T12:00:00+05:00", "tz": "Europe/Paris"}
    decoded = decode_value(data)
    assert decoded.tzinfo is PARIS
    assert decoded == datetime.datetime(2024, 7, 1, 7, 0, tzinfo=datetime.UTC)
    unknown = decode_value({**data, "tz": "Nowhere/Unknown"})
    assert unknown.utcoffset() == datetime.timedelta(hours=5)


def test_memoryview_of_another_format_binds_its_bytes() -> None:
    original = memoryview(array.array("i", [1, 2]))
    decoded = through_json(original)
    assert type(decoded) is memoryview
    assert decoded.tobytes() == original.tobytes()
    blob = cqltypes.BytesType
    assert blob.serialize(decoded, PROTOCOL) == blob.serialize(original, PROTOCOL)
    assert ENCODER.cql_encode_all_types(decoded) == ENCODER.cql_encode_all_types(original)


def test_serialized_bound_values_round_trip() -> None:
    values = [b"\x00\x00\x00\x01", None, UNSET_VALUE, b"", bytearray(b"\xff")]
    encoded = encode_serialized(values)
    assert encoded == ["00000001", None, {"$": "unset"}, "", "ff"]
    decoded = decode_serialized(json.loads(json.dumps(encoded, allow_nan=False)))
    assert decoded == [b"\x00\x00\x00\x01", None, UNSET_VALUE, b"", b"\xff"]
    assert decoded[2] is UNSET_VALUE
    assert decoded[1] is None
    with pytest.raises(TypeError, match="not int"):
        encode_serialized([1])


def test_serialized_values_of_a_bound_statement_round_trip() -> None:
    kinds = [cqltypes.Int32Type, cqltypes.UTF8Type, cqltypes.lookup_casstype("SetType(Int32Type)")]
    original = [
        kind.serialize(value, PROTOCOL) for kind, value in zip(kinds, [1, "a", {2}], strict=True)
    ]
    bound_values = [*original, None, UNSET_VALUE]
    assert decode_serialized(encode_serialized(bound_values)) == bound_values


@pytest.mark.parametrize(
    "data",
    [
        {"$": "nope", "v": 1},
        {"$": 3},
        {"$": "uuid"},
        {"$": "uuid", "v": "not a uuid"},
        {"$": "float", "v": "1.5"},
        {"$": "float", "v": "nan", "bits": "3ff0000000000000"},
        {"$": "decimal", "v": "one"},
        {"$": "tuple", "v": "abc"},
        {"$": "cql_time", "v": "01:02:03.5"},
        {"$": "object", "class": "x.Y", "fields": ["a"], "v": []},
        {"$": "set", "v": [[1]]},
        [{"$": "bytes", "v": "xyz"}],
        ("a tuple is not JSON",),
    ],
    ids=lambda data: json.dumps(data) if not isinstance(data, tuple) else "tuple",
)
def test_malformed_data_raises_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match=r"encoded|not an"):
        decode_value(data)


MARKER = "SECRET-5e1f"


@pytest.mark.parametrize(
    "data",
    [
        {"$": "uuid", "v": MARKER},
        {"$": "datetime", "v": MARKER},
        {"$": "int", "v": MARKER},
        {"$": "cql_date", "v": MARKER},
        {"$": "float", "v": MARKER},
        {"$": "decimal", "v": MARKER},
        {"$": "tuple", "v": MARKER},
        {"$": "object", "class": "a.B", "fields": [MARKER], "v": []},
        {"$": "omap_sk", "key_type": MARKER, "protocol": 5, "v": []},
        {"$": "uuid", MARKER: 1},
    ],
    ids=lambda data: str(data["$"]),
)
def test_messages_carry_no_values(data: Any) -> None:
    """As everywhere in rxcql, messages name types and tags, never a value."""
    with pytest.raises(ValueError, match="encoded") as caught:
        decode_value([data])
    assert MARKER not in str(caught.value)
    for parameters in ({"p": [object(), MARKER]}, {MARKER.encode(): 1}, [MARKER, 1j]):
        with pytest.raises(TypeError) as refused:
            encode_parameters(parameters)
        assert MARKER not in str(refused.value)
        assert MARKER not in "".join(getattr(refused.value, "__notes__", []))


def test_malformed_parameters_and_serialized_values_raise_value_error() -> None:
    with pytest.raises(ValueError, match="null, an array or an object"):
        decode_parameters("abc")
    with pytest.raises(ValueError, match="serialized"):
        decode_serialized([1])


# --- properties ------------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None)

texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=8) | st.sampled_from(
    ["$", "v", "", "\ud800"]
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.binary(max_size=8)
)
hashables = st.recursive(
    leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(texts, inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=3)
    ),
    max_leaves=20,
)


@SETTINGS
@given(values)
def test_property_any_nested_value_round_trips(value: Any) -> None:
    encoded = encode_value(value)
    decoded = decode_value(json.loads(json.dumps(encoded, allow_nan=False)))
    assert same(decoded, value)


@SETTINGS
@given(st.lists(values, max_size=4) | st.dictionaries(texts, values, max_size=4))
def test_property_parameters_round_trip(parameters: Any) -> None:
    encoded = encode_parameters(parameters)
    decoded = decode_parameters(json.loads(json.dumps(encoded, allow_nan=False)))
    assert same(decoded, parameters)


@SETTINGS
@given(st.lists(st.integers(-(2**31), 2**31 - 1) | st.none(), max_size=6))
def test_property_list_of_int_binds_the_same_bytes(items: list[int | None]) -> None:
    kind = cqltypes.lookup_casstype("ListType(Int32Type)")
    assert kind.serialize(through_json(items), PROTOCOL) == kind.serialize(items, PROTOCOL)
