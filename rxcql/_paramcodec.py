"""Lossless JSON encoding of bound parameters, for the failed-statement log (format version 1).

A failed statement is logged as one JSON line holding its parameters, so that it can be run again
later ("replay"). ``decode_parameters(json.loads(json.dumps(encode_parameters(p))))`` binds to the
same bytes as ``p``: through a prepared statement (``PreparedStatement.bind``, the driver's
``cqltypes`` serializers) and, for values whose class the driver renders, through a simple
statement (the driver's ``Encoder``, which picks a renderer by ``type(value)``; so the decoded
value has the same type as the original wherever the type is one of those below).

API (package-private; the log writer and replay call it):

- :func:`encode_parameters` / :func:`decode_parameters`: what a user passes with a statement:
  ``None``, a sequence (positional markers) or a ``dict`` (named markers).
- :func:`encode_value` / :func:`decode_value`: one value.
- :func:`encode_serialized` / :func:`decode_serialized`: the values of a ``BoundStatement``
  (``bound.values``), which are already serialized: bytes, ``None`` or ``UNSET_VALUE``.

Errors: encoding raises ``TypeError`` for a value it cannot round-trip (``ValueError`` for a
collection that contains itself); decoding raises ``ValueError`` for data that is not an
encoding. Their messages name types, tags, members and classes, never a value.

Every encoding is plain JSON data (``json.dumps(..., allow_nan=False)`` works on it). Write the
line with ``json.dumps``' default ``ensure_ascii=True``: a ``str`` holding a lone surrogate
(which Python allows and UTF-8 cannot hold) then survives as an escape (``\\ud800``).

Format, version 1 (:data:`FORMAT_VERSION`)
------------------------------------------

Parameters (the top level):

- ``None`` -> ``null``;
- a sequence (``list``, ``tuple`` or another ``Sequence``) -> a JSON array of encoded values.
  It decodes to a ``list``: the driver binds a list and a tuple of positional parameters alike;
- a ``dict`` (keys must be ``str``: they name markers) -> a JSON object of encoded values, never
  tagged (a marker named ``"$"`` is fine here). It decodes to a ``dict`` in the same key order.

Values: plain JSON where that is unambiguous, otherwise a *tagged* object: a JSON object with a
``"$"`` member naming the type. A JSON object without ``"$"`` is a plain ``dict``.

=================================  ==============================================================
Python value                       encoding
=================================  ==============================================================
``None``, ``bool``, ``str``        ``null``, ``true``/``false``, a JSON string
``int``                            a JSON number; above 13,000 bits (Python's int/str conversion
                                   limit): ``{"$": "int", "v": "-0x1f..."}`` (hex)
``float``, finite                  a JSON number (``repr``: exact; ``-0.0`` keeps its sign)
``float`` nan / inf / -inf         ``{"$": "float", "v": "nan"}`` (``"inf"``, ``"-inf"``); a NaN
                                   other than ``float("nan")`` adds ``"bits": "fff8..."`` (the
                                   IEEE 754 double, hex), so its sign and payload survive
``list``                           a JSON array
``dict``                           a JSON object when every key is a ``str`` other than ``"$"``;
                                   otherwise ``{"$": "dict", "v": [[key, value], ...]}``
``collections.OrderedDict``        ``{"$": "odict", "v": [[key, value], ...]}``
``tuple`` (a CQL tuple)            ``{"$": "tuple", "v": [...]}``
``set`` / ``frozenset``            ``{"$": "set", "v": [...]}`` / ``{"$": "frozenset", ...}``
``cassandra.util.SortedSet``       ``{"$": "sortedset", "v": [...]}``
``cassandra.util.OrderedMap``      ``{"$": "omap", "v": [[key, value], ...]}``
``OrderedMapSerializedKey``        ``{"$": "omap_sk", "key_type": T, "protocol": 5, "v": [...]}``
                                   (``T``: the key's CQL type, see below)
``cassandra.query.ValueSequence``  ``{"$": "valueseq", "v": [...]}``
``UNSET_VALUE``                    ``{"$": "unset"}``
``bytes``                          ``{"$": "bytes", "v": "cafe"}`` (hex); ``bytearray`` and
                                   ``memoryview`` alike with tags ``bytearray``, ``memoryview``
``uuid.UUID`` (uuid, timeuuid)     ``{"$": "uuid", "v": "3f2b...-..."}``
``decimal.Decimal``                ``{"$": "decimal", "v": "1E+3"}`` (``str``: sign, digits and
                                   exponent exact; NaN, sNaN, Infinity too)
``datetime.datetime``              ``{"$": "datetime", "v": "2024-05-01T12:00:00.000123+02:00"}``
                                   (ISO 8601; naive has no offset); ``"tz": "Europe/Paris"``
                                   when the tzinfo is a ``zoneinfo.ZoneInfo``; ``"fold": 1``
                                   when ``fold`` is set
``datetime.date`` / ``time``       ``{"$": "date", "v": "2024-05-01"}`` /
                                   ``{"$": "time", "v": "12:00:00.000123"}`` (+ offset, fold)
``cassandra.util.Date``            ``{"$": "cql_date", "v": "2024-05-01"}`` (days from the epoch
                                   as a JSON number when outside years 1-9999)
``cassandra.util.Time``            ``{"$": "cql_time", "v": "12:00:00.000000001"}`` (nanoseconds;
                                   a JSON number of nanoseconds when outside one day)
``cassandra.util.Duration``        ``{"$": "duration", "months": 1, "days": 2,
                                   "nanoseconds": 3}``
``ipaddress.IPv4Address`` / v6     ``{"$": "ipv4", "v": "10.0.0.1"}`` / ``{"$": "ipv6", ...}``
                                   (an inet given as ``str`` is just a string)
``cassandra.util.Point``           ``{"$": "point", "v": [x, y]}``
``LineString`` / ``Polygon``       ``{"$": "linestring", "v": coords}`` /
                                   ``{"$": "polygon", "exterior": coords, "interiors": [...]}``
a namedtuple (UDT value, e.g. the  ``{"$": "namedtuple", "class": "myapp.Point",
driver's generated UDT classes)    "fields": ["x", "y"], "v": [1, 2]}`` (positional, in order)
an object with attributes (UDT     ``{"$": "object", "class": "myapp.models.Address",
value: registered or plain class)  "fields": ["street", "zipcode"], "v": ["Main St", 78723]}``
=================================  ==============================================================

Keys and elements inside collections are encoded values too (nested to any depth). The
``key_type`` of an ``omap_sk`` is a CQL type: a string (the driver's full type name, e.g.
``"org.apache.cassandra.db.marshal.Int32Type"``), ``{"type": name, "of": [T, ...]}`` for a
parameterized type, ``{"vector": T, "size": 3}`` or ``{"udt": name, "keyspace": ks,
"fields": [[name, T], ...]}``.

User types
----------

The driver binds a UDT value by position (``val[i]``) when the value can be indexed, else by
attribute (``getattr(val, field)``, ``None`` when missing). So:

- a namedtuple is logged with its field names and values in order and decodes to a namedtuple
  with the same name and fields (a class made once per name and fields, in this module), which
  indexes the same way;
- another object is logged with its instance attributes (``__dict__`` and ``__slots__``, in
  order) and decodes to a :class:`DecodedObject` (a subclass named as the original class) with
  the same attributes, which cannot be indexed, like the original;
- ``decode_*(..., classes=[Address, ...])``: a logged object or namedtuple whose class (by
  ``module.qualname``) is listed decodes to an instance of that class (made as ``pickle`` would:
  ``cls.__new__(cls)`` and its attributes set, or ``tuple.__new__(cls, values)``). Pass the
  classes registered with ``cluster.register_user_type`` when the statement is a simple (not
  prepared) one: the driver renders those by ``type(value)``. Classes are never imported by name
  from the log.

Not lossless (each documented, none silent)
-------------------------------------------

- Sets (``set``, ``frozenset``): the elements round-trip, and the decoded set is built by adding
  them in the logged order; but Python does not promise the same iteration order for an equal
  set (collisions; and ``str``/``bytes`` hashes differ from process to process), and the driver
  serializes a set in iteration order. The server keeps set elements sorted, so what it stores is
  the same; the bytes sent may list the elements in another order. ``SortedSet`` keeps its order.
- A tz-aware ``datetime``: the driver binds only its UTC instant (and microseconds), which is
  kept exactly. The tzinfo comes back as a ``datetime.timezone`` with the same offset, or as the
  same ``ZoneInfo`` zone (when its offset for that wall time still agrees; otherwise the same
  instant converted to that zone); a ``timezone``'s name and other tzinfo classes are not kept.
- An object decoded without its class: only its instance attributes come back. Class
  attributes, properties and ``__getattr__`` answers of the original class are not logged, so a
  UDT field that the driver found only that way binds as null; and its methods (``__str__``,
  which a simple statement renders an unregistered object with) are not the original's. Pass
  the class at decode time for those.
- ``Distance`` and ``DateRange`` (DSE types), the driver's ``EMPTY``, generators, ``Enum``
  members, subclasses of the types above (e.g. an ``IntEnum``, a ``defaultdict``), objects that
  define ``__getitem__`` (other than namedtuples) and objects without instance attributes raise
  ``TypeError``: their exact type or their binding cannot be rebuilt. So does any other type,
  naming it; nothing is ``str()``-ed.
- A ``str`` with a lone surrogate round-trips only through ``ensure_ascii=True`` JSON (above).
- Map entries and JSON object members are in insertion order; a tool that reorders JSON object
  members changes the order of a plain ``dict``'s entries (the server sorts map keys anyway).
- The format relies on a JSON reader that keeps integers exact and apart from floats, as
  Python's ``json`` does.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import decimal
import enum
import ipaddress
import keyword
import math
import struct
import threading
import types
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from cassandra import cqltypes
from cassandra.encoder import ValueSequence
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

__all__ = [
    "FORMAT_VERSION",
    "DecodedObject",
    "decode_parameters",
    "decode_serialized",
    "decode_value",
    "encode_parameters",
    "encode_serialized",
    "encode_value",
]

FORMAT_VERSION = 1
"""Version of the encoding described in this module's docstring; part of the failed-log format."""

TAG = "$"

_MAX_PLAIN_INT_BITS = 13_000  # about 3,900 digits: under the default int/str limit of 4,300
_CANONICAL_NAN = struct.pack(">d", math.nan)
_EPOCH = datetime.date(1970, 1, 1)
_NANOS_PER_DAY = 86_400 * 10**9
_BYTES_LIKE = (bytes, bytearray, memoryview)


# --- encoding ---------------------------------------------------------------------------------


def encode_parameters(parameters: Any) -> Any:
    """Encode what a user passes with a statement: ``None``, a sequence or a ``dict``.

    Raises:
        TypeError: a value (or the parameters themselves) of a type that cannot round-trip; the
            message names the type, a note names the parameter.
        ValueError: a collection that contains itself.
    """
    if parameters is None:
        return None
    if isinstance(parameters, dict):
        encoded: dict[str, Any] = {}
        for name, value in parameters.items():
            if type(name) is not str:
                raise TypeError(f"named parameters must have str keys, not {_type_name(name)}")
            encoded[name] = _encode_parameter(value, name)
        return encoded
    if isinstance(parameters, Sequence) and not isinstance(parameters, (str, *_BYTES_LIKE)):
        return [_encode_parameter(value, i) for i, value in enumerate(parameters)]
    raise TypeError(f"parameters must be None, a sequence or a dict, not {_type_name(parameters)}")


def _encode_parameter(value: Any, where: int | str) -> Any:
    try:
        return _encode(value, set())
    except (TypeError, ValueError) as error:
        error.add_note(f"in parameter {where!r}")
        raise


def encode_value(value: Any) -> Any:
    """Encode one value (see the module docstring for the format).

    Raises:
        TypeError: a value of a type that cannot round-trip; the message names the type.
        ValueError: a collection that contains itself.
    """
    return _encode(value, set())


def encode_serialized(values: Iterable[Any]) -> list[Any]:
    """Encode a ``BoundStatement``'s ``values``: each bytes as hex, ``None`` and UNSET apart."""
    encoded: list[Any] = []
    for value in values:
        if value is None:
            encoded.append(None)
        elif value is UNSET_VALUE:
            encoded.append({TAG: "unset"})
        elif isinstance(value, _BYTES_LIKE):
            encoded.append(bytes(value).hex())
        else:
            raise TypeError(
                f"a serialized value is bytes, None or UNSET_VALUE, not {_type_name(value)}"
            )
    return encoded


def _type_name(value: Any) -> str:
    return _qualified(type(value))


def _qualified(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode(value: Any, active: set[int]) -> Any:
    if value is UNSET_VALUE:
        return {TAG: "unset"}
    cls = type(value)
    scalar = _SCALARS.get(cls)
    if scalar is not None:
        return scalar(value)
    # Containers: guard against a value that contains itself.
    key = id(value)
    if key in active:
        raise ValueError(f"a {_type_name(value)} that contains itself cannot be encoded")
    active.add(key)
    try:
        container = _CONTAINERS.get(cls)
        if container is not None:
            return container(value, active)
        return _encode_other(value, active)
    finally:
        active.discard(key)


def _encode_int(value: int) -> Any:
    if value.bit_length() <= _MAX_PLAIN_INT_BITS:
        return value
    return {TAG: "int", "v": hex(value)}


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        encoded: dict[str, Any] = {TAG: "float", "v": "nan"}
        packed = struct.pack(">d", value)
        if packed != _CANONICAL_NAN:
            encoded["bits"] = packed.hex()
        return encoded
    return {TAG: "float", "v": "inf" if value > 0 else "-inf"}


def _with_fold(encoded: dict[str, Any], fold: int) -> dict[str, Any]:
    if fold:
        encoded["fold"] = fold
    return encoded


def _encode_datetime(value: datetime.datetime) -> Any:
    encoded: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    tz = value.tzinfo
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None and value.utcoffset() is not None:
        encoded["tz"] = tz.key
    return _with_fold(encoded, value.fold)


def _encode_time(value: datetime.time) -> Any:
    return _with_fold({TAG: "time", "v": value.isoformat()}, value.fold)


def _encode_cql_date(value: Date) -> Any:
    days = value.days_from_epoch
    if type(days) is not int:
        raise TypeError(f"a cassandra.util.Date with days_from_epoch of {_type_name(days)}")
    try:
        return {TAG: "cql_date", "v": (_EPOCH + datetime.timedelta(days=days)).isoformat()}
    except OverflowError:
        return {TAG: "cql_date", "v": days}


def _encode_cql_time(value: Time) -> Any:
    nanos = value.nanosecond_time
    if type(nanos) is not int:
        raise TypeError(f"a cassandra.util.Time with nanosecond_time of {_type_name(nanos)}")
    if not 0 <= nanos < _NANOS_PER_DAY:
        return {TAG: "cql_time", "v": nanos}
    seconds, fraction = divmod(nanos, 10**9)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return {TAG: "cql_time", "v": f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:09d}"}


_SCALARS: dict[type, Callable[[Any], Any]] = {
    type(None): lambda value: None,
    bool: lambda value: value,
    str: lambda value: value,
    int: _encode_int,
    float: _encode_float,
    bytes: lambda value: {TAG: "bytes", "v": value.hex()},
    bytearray: lambda value: {TAG: "bytearray", "v": value.hex()},
    memoryview: lambda value: {TAG: "memoryview", "v": value.tobytes().hex()},
    uuid.UUID: lambda value: {TAG: "uuid", "v": str(value)},
    decimal.Decimal: lambda value: {TAG: "decimal", "v": str(value)},
    datetime.datetime: _encode_datetime,
    datetime.date: lambda value: {TAG: "date", "v": value.isoformat()},
    datetime.time: _encode_time,
    Date: _encode_cql_date,
    Time: _encode_cql_time,
    ipaddress.IPv4Address: lambda value: {TAG: "ipv4", "v": str(value)},
    ipaddress.IPv6Address: lambda value: {TAG: "ipv6", "v": str(value)},
}


def _encode_items(items: Iterable[Any], active: set[int]) -> list[Any]:
    return [_encode(item, active) for item in items]


def _encode_pairs(mapping: Any, active: set[int]) -> list[list[Any]]:
    return [[_encode(key, active), _encode(value, active)] for key, value in mapping.items()]


def _encode_dict(value: dict[Any, Any], active: set[int]) -> Any:
    if all(type(key) is str and key != TAG for key in value):
        return {key: _encode(item, active) for key, item in value.items()}
    return {TAG: "dict", "v": _encode_pairs(value, active)}


def _encode_duration(value: Duration, active: set[int]) -> Any:
    return {
        TAG: "duration",
        "months": _encode(value.months, active),
        "days": _encode(value.days, active),
        "nanoseconds": _encode(value.nanoseconds, active),
    }


def _encode_omap_sk(value: OrderedMapSerializedKey, active: set[int]) -> Any:
    return {
        TAG: "omap_sk",
        "key_type": _cql_type_to_json(value.cass_key_type),
        "protocol": value.protocol_version,
        "v": _encode_pairs(value, active),
    }


def _encode_polygon(value: Polygon, active: set[int]) -> Any:
    return {
        TAG: "polygon",
        "exterior": _encode(value.exterior.coords, active),
        "interiors": [_encode(ring.coords, active) for ring in value.interiors],
    }


_CONTAINERS: dict[type, Callable[[Any, set[int]], Any]] = {
    list: _encode_items,
    dict: _encode_dict,
    tuple: lambda value, active: {TAG: "tuple", "v": _encode_items(value, active)},
    set: lambda value, active: {TAG: "set", "v": _encode_items(value, active)},
    frozenset: lambda value, active: {TAG: "frozenset", "v": _encode_items(value, active)},
    SortedSet: lambda value, active: {TAG: "sortedset", "v": _encode_items(value, active)},
    ValueSequence: lambda value, active: {TAG: "valueseq", "v": _encode_items(value, active)},
    collections.OrderedDict: lambda value, active: {
        TAG: "odict",
        "v": _encode_pairs(value, active),
    },
    OrderedMap: lambda value, active: {TAG: "omap", "v": _encode_pairs(value, active)},
    OrderedMapSerializedKey: _encode_omap_sk,
    Duration: _encode_duration,
    Point: lambda value, active: {TAG: "point", "v": _encode_items((value.x, value.y), active)},
    LineString: lambda value, active: {TAG: "linestring", "v": _encode(value.coords, active)},
    Polygon: _encode_polygon,
}

_SUPPORTED = (*_SCALARS, *_CONTAINERS)


def _encode_other(value: Any, active: set[int]) -> Any:
    cls = type(value)
    if isinstance(value, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        return {
            TAG: "namedtuple",
            "class": _origin(cls),
            "fields": list(cls._fields),
            "v": _encode_items(value, active),
        }
    if isinstance(value, _SUPPORTED):
        base = next(base for base in cls.__mro__ if base in _SCALARS or base in _CONTAINERS)
        raise TypeError(
            f"cannot encode a value of type {_type_name(value)}, a subclass of "
            f"{_qualified(base)}: only the exact type round-trips"
        )
    if isinstance(value, enum.Enum):
        raise TypeError(f"cannot encode a value of type {_type_name(value)} (an Enum member)")
    if isinstance(value, cqltypes.EmptyValue):
        raise TypeError(f"cannot encode {_type_name(value)} (the driver's EMPTY, read, not bound)")
    attributes = _attributes(value)
    if not attributes:  # not a plain object, or one with nothing to bind (a functools.partial)
        raise TypeError(f"cannot encode a value of type {_type_name(value)}")
    return {
        TAG: "object",
        "class": _origin(cls),
        "fields": [name for name, _ in attributes],
        "v": [_encode(item, active) for _, item in attributes],
    }


def _origin(cls: type) -> str:
    generated = cls.__dict__.get("_rxcql_origin")
    if isinstance(generated, str):
        return generated
    return f"{cls.__module__}.{cls.__qualname__}"


def _attributes(value: Any) -> list[tuple[str, Any]] | None:
    """The instance attributes of a plain object, or None when it is not one."""
    cls = type(value)
    if cls.__module__ == "builtins" or isinstance(value, type) or hasattr(cls, "__getitem__"):
        return None
    found: dict[str, Any] = {}
    has_slots = False
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            has_slots = True
            name = slot
            if slot.startswith("__") and not slot.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{slot}"  # private names are mangled
            # An unset slot is left out: getattr finds nothing, as it will after decoding.
            with contextlib.suppress(AttributeError):
                found[name] = object.__getattribute__(value, name)
    try:
        instance_dict = object.__getattribute__(value, "__dict__")
    except AttributeError:
        instance_dict = None
    if instance_dict is None and not has_slots:
        return None
    found.update(instance_dict or {})
    return list(found.items())


# --- CQL types (the key type of an OrderedMapSerializedKey) ------------------------------------


def _cql_type_to_json(cql_type: Any) -> Any:
    if issubclass(cql_type, cqltypes.UserType):
        return {
            "udt": cql_type.typename,
            "keyspace": cql_type.keyspace,
            "fields": [
                [name, _cql_type_to_json(subtype)]
                for name, subtype in zip(cql_type.fieldnames, cql_type.subtypes, strict=True)
            ],
        }
    if issubclass(cql_type, cqltypes.VectorType):
        return {"vector": _cql_type_to_json(cql_type.subtype), "size": cql_type.vector_size}
    if cql_type.subtypes:
        return {
            "type": cql_type.cass_parameterized_type_with((), full=True),
            "of": [_cql_type_to_json(subtype) for subtype in cql_type.subtypes],
        }
    return cql_type.cass_parameterized_type(full=True)


def _cql_type_from_json(data: Any) -> Any:
    if isinstance(data, str):
        return cqltypes.lookup_casstype(data)
    if not isinstance(data, dict):
        raise ValueError(f"not an encoded CQL type: a JSON {_type_name(data)}")
    if "udt" in data:
        fields = data["fields"]
        # As UserType.make_udt_class builds it, without touching the driver's cache of UDT
        # classes (a leading underscore keeps it out of the driver's type registry too).
        return type(
            "_rxcql_udt",
            (cqltypes.UserType,),
            {
                "subtypes": tuple(_cql_type_from_json(subtype) for _, subtype in fields),
                "cassname": cqltypes.UserType.cassname,
                "typename": data["udt"],
                "fieldnames": tuple(name for name, _ in fields),
                "keyspace": data["keyspace"],
                "mapped_class": None,
                "tuple_type": None,
            },
        )
    if "vector" in data:
        subtype = _cql_type_from_json(data["vector"])
        return cqltypes.VectorType.apply_parameters([subtype, data["size"]], None)
    base = cqltypes.lookup_casstype(data["type"])
    return base.apply_parameters([_cql_type_from_json(subtype) for subtype in data["of"]])


# --- decoding ---------------------------------------------------------------------------------


class DecodedObject:
    """A logged object with attributes (a UDT value) whose class was not given to the decoder.

    Decoding makes one subclass per logged class, named as that class; an instance has the
    logged attributes and cannot be indexed, so the driver binds it by attribute, as it bound the
    original. Equal when of the same class with equal attributes; hashed by identity, as a plain
    object is.
    """

    _rxcql_origin: ClassVar[str] = ""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({fields})"


# Classes made while decoding live here, so pickle finds them (OrderedMap pickles its keys).
_generated = types.SimpleNamespace()
_generated_lock = threading.Lock()
_generated_by_key: dict[tuple[str, str, tuple[str, ...]], type] = {}


def _class_name(origin: str, fallback: str) -> str:
    name = origin.rpartition(".")[2]
    return name if name.isidentifier() and not keyword.iskeyword(name) else fallback


def _generated_class(kind: str, origin: str, fields: tuple[str, ...]) -> type:
    key = (kind, origin, fields)
    with _generated_lock:
        found = _generated_by_key.get(key)
        if found is not None:
            return found
        cls: Any
        if kind == "namedtuple":
            name = _class_name(origin, "Record")
            factory: Callable[..., type] = collections.namedtuple
            cls = factory(name, fields, rename=True, module=__name__)
        else:
            name = _class_name(origin, "Object")
            cls = type(name, (DecodedObject,), {"__module__": __name__})
        cls._rxcql_origin = origin
        attribute = f"{name}_{len(_generated_by_key)}"
        cls.__qualname__ = f"_generated.{attribute}"
        setattr(_generated, attribute, cls)
        _generated_by_key[key] = cls
        result: type = cls
        return result


def decode_parameters(data: Any, *, classes: Iterable[type] = ()) -> Any:
    """Decode :func:`encode_parameters`' output: ``None``, a ``list`` or a ``dict``.

    Args:
        data: the encoding (after a JSON round trip or not).
        classes: classes of logged objects and namedtuples to rebuild as themselves (matched by
            ``module.qualname``); others decode to generated classes. See the module docstring.

    Raises:
        ValueError: ``data`` is not an encoding (unknown tag, missing member, bad value).
    """
    decoder = _Decoder(classes)
    if data is None:
        return None
    if isinstance(data, list):
        return [decoder.value(item) for item in data]
    if isinstance(data, dict):
        return {name: decoder.value(item) for name, item in data.items()}
    raise _MalformedError(
        f"encoded parameters are null, an array or an object, not {_type_name(data)}"
    )


def decode_value(data: Any, *, classes: Iterable[type] = ()) -> Any:
    """Decode :func:`encode_value`'s output (``classes`` as for :func:`decode_parameters`).

    Raises:
        ValueError: ``data`` is not an encoding (unknown tag, missing member, bad value).
    """
    return _Decoder(classes).value(data)


def decode_serialized(data: Iterable[Any]) -> list[Any]:
    """Decode :func:`encode_serialized`'s output: a list of bytes, ``None`` and ``UNSET_VALUE``."""
    values: list[Any] = []
    for item in data:
        if item is None:
            values.append(None)
        elif item == {TAG: "unset"}:
            values.append(UNSET_VALUE)
        elif isinstance(item, str):
            values.append(bytes.fromhex(item))
        else:
            raise _MalformedError(f"not an encoded serialized value: a JSON {_type_name(item)}")
    return values


class _MalformedError(ValueError):
    """Raised by the decoder for data that is not an encoding."""


def _member(data: dict[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise _MalformedError(f"encoded {data.get(TAG)!r} value without {name!r}") from None


class _Decoder:
    def __init__(self, classes: Iterable[type]) -> None:
        self._classes = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}

    def value(self, data: Any) -> Any:
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(item) for item in data]
        if isinstance(data, dict):
            tag = data.get(TAG)
            if tag is None:
                return {key: self.value(item) for key, item in data.items()}
            try:
                decode = _TAGS[tag]
            except (KeyError, TypeError):
                raise _MalformedError(f"unknown tag {tag!r} in an encoded value") from None
            try:
                return decode(self, data)
            except _MalformedError:
                raise
            except (ArithmeticError, KeyError, TypeError, IndexError, ValueError) as error:
                raise _MalformedError(
                    f"malformed encoded {tag!r} value ({type(error).__name__})"
                ) from error
        raise _MalformedError(f"not an encoded value: a {_type_name(data)}")

    def items(self, data: dict[str, Any], name: str = "v") -> list[Any]:
        items = _member(data, name)
        if not isinstance(items, list):
            raise _MalformedError(f"encoded {data[TAG]!r} value whose {name!r} is not an array")
        return [self.value(item) for item in items]

    def pairs(self, data: dict[str, Any]) -> list[tuple[Any, Any]]:
        return [(self.value(key), self.value(item)) for key, item in _member(data, "v")]

    def record(self, data: dict[str, Any]) -> Any:
        tag = data[TAG]
        origin = _member(data, "class")
        fields = _member(data, "fields")
        values = self.items(data)
        if (
            not isinstance(origin, str)
            or not isinstance(fields, list)
            or not all(isinstance(name, str) for name in fields)
            or len(fields) != len(values)
        ):
            raise _MalformedError(f"encoded {tag!r} value with a bad class, fields or values")
        fields = tuple(fields)
        cls: Any = self._classes.get(origin)
        if tag == "namedtuple":
            if cls is None:
                cls = _generated_class("namedtuple", origin, fields)
            elif not issubclass(cls, tuple) or tuple(getattr(cls, "_fields", ())) != fields:
                raise _MalformedError(
                    f"class {origin} given to the decoder is not a namedtuple with fields {fields}"
                )
            return tuple.__new__(cls, values)
        if cls is None:
            cls = _generated_class("object", origin, ())
        elif issubclass(cls, tuple):
            raise _MalformedError(
                f"class {origin} given to the decoder is a tuple; logged an object"
            )
        result = cls.__new__(cls)
        for name, item in zip(fields, values, strict=True):
            object.__setattr__(result, name, item)
        return result


def _decode_int(decoder: _Decoder, data: dict[str, Any]) -> int:
    return int(_member(data, "v"), 16)


def _decode_float(decoder: _Decoder, data: dict[str, Any]) -> float:
    text = _member(data, "v")
    if text == "nan":
        bits = data.get("bits")
        if bits is None:
            return math.nan
        value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
        if not math.isnan(value):
            raise ValueError("'bits' that are not a NaN")
        return value
    if text in ("inf", "-inf"):
        return float(text)
    raise ValueError("a non-finite float other than nan, inf, -inf")


def _decode_datetime(decoder: _Decoder, data: dict[str, Any]) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(_member(data, "v"))
    fold = data.get("fold", 0)
    key = data.get("tz")
    if key is None:
        return value.replace(fold=fold)
    try:
        zone = zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return value  # the same instant, at the logged offset
    wall = value.replace(tzinfo=zone, fold=fold)
    if wall.utcoffset() == value.utcoffset():
        return wall
    return value.astimezone(zone)  # the zone's rules changed: keep the instant


def _decode_time(decoder: _Decoder, data: dict[str, Any]) -> datetime.time:
    return datetime.time.fromisoformat(_member(data, "v")).replace(fold=data.get("fold", 0))


def _decode_cql_date(decoder: _Decoder, data: dict[str, Any]) -> Date:
    value = _member(data, "v")
    if isinstance(value, str):
        value = (datetime.date.fromisoformat(value) - _EPOCH).days
    if type(value) is not int:
        raise ValueError("a cql_date neither an ISO date nor an int")
    return Date(value)


def _decode_cql_time(decoder: _Decoder, data: dict[str, Any]) -> Time:
    value = _member(data, "v")
    result = Time(0)
    if isinstance(value, str):
        clock, _, fraction = value.partition(".")
        hour, minute, second = (int(part) for part in clock.split(":"))
        if len(fraction) != 9 or not fraction.isdigit():
            raise ValueError("a cql_time neither HH:MM:SS.nnnnnnnnn nor an int")
        value = ((hour * 60 + minute) * 60 + second) * 10**9 + int(fraction)
    if type(value) is not int:
        raise ValueError("a cql_time neither HH:MM:SS.nnnnnnnnn nor an int")
    result.nanosecond_time = value  # also outside one day, as logged (Time() refuses those)
    return result


def _decode_duration(decoder: _Decoder, data: dict[str, Any]) -> Duration:
    return Duration(
        decoder.value(_member(data, "months")),
        decoder.value(_member(data, "days")),
        decoder.value(_member(data, "nanoseconds")),
    )


def _decode_sortedset(decoder: _Decoder, data: dict[str, Any]) -> SortedSet:
    result = SortedSet()
    result._items = decoder.items(data)  # as logged: already in the set's order
    return result


def _decode_omap_sk(decoder: _Decoder, data: dict[str, Any]) -> OrderedMapSerializedKey:
    key_type = _cql_type_from_json(_member(data, "key_type"))
    result = OrderedMapSerializedKey(key_type, _member(data, "protocol"))
    for key, item in decoder.pairs(data):
        if key is None:  # a null key, as the driver reads one
            result._insert_unchecked(None, None, item)
        else:
            result._insert(key, item)
    return result


def _decode_polygon(decoder: _Decoder, data: dict[str, Any]) -> Polygon:
    interiors = [decoder.value(ring) for ring in _member(data, "interiors")]
    return Polygon(decoder.value(_member(data, "exterior")), interiors or None)


def _decode_linestring(decoder: _Decoder, data: dict[str, Any]) -> LineString:
    return LineString(decoder.value(_member(data, "v")))


def _decode_point(decoder: _Decoder, data: dict[str, Any]) -> Point:
    x, y = decoder.items(data)
    return Point(x, y)


_TAGS: dict[str, Callable[[_Decoder, dict[str, Any]], Any]] = {
    "unset": lambda decoder, data: UNSET_VALUE,
    "int": _decode_int,
    "float": _decode_float,
    "bytes": lambda decoder, data: bytes.fromhex(_member(data, "v")),
    "bytearray": lambda decoder, data: bytearray.fromhex(_member(data, "v")),
    "memoryview": lambda decoder, data: memoryview(bytes.fromhex(_member(data, "v"))),
    "uuid": lambda decoder, data: uuid.UUID(_member(data, "v")),
    "decimal": lambda decoder, data: decimal.Decimal(_member(data, "v")),
    "datetime": _decode_datetime,
    "date": lambda decoder, data: datetime.date.fromisoformat(_member(data, "v")),
    "time": _decode_time,
    "cql_date": _decode_cql_date,
    "cql_time": _decode_cql_time,
    "duration": _decode_duration,
    "ipv4": lambda decoder, data: ipaddress.IPv4Address(_member(data, "v")),
    "ipv6": lambda decoder, data: ipaddress.IPv6Address(_member(data, "v")),
    "tuple": lambda decoder, data: tuple(decoder.items(data)),
    "set": lambda decoder, data: set(decoder.items(data)),
    "frozenset": lambda decoder, data: frozenset(decoder.items(data)),
    "sortedset": _decode_sortedset,
    "valueseq": lambda decoder, data: ValueSequence(decoder.items(data)),
    "dict": lambda decoder, data: dict(decoder.pairs(data)),
    "odict": lambda decoder, data: collections.OrderedDict(decoder.pairs(data)),
    "omap": lambda decoder, data: OrderedMap(decoder.pairs(data)),
    "omap_sk": _decode_omap_sk,
    "point": _decode_point,
    "linestring": _decode_linestring,
    "polygon": _decode_polygon,
    "namedtuple": _Decoder.record,
    "object": _Decoder.record,
}
