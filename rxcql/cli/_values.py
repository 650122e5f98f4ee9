"""Text and JSON forms of CQL values, chosen by each column's driver type.

Two directions, two forms:

* **text** (a CSV field): the form cqlsh ``COPY TO`` writes. Scalars as cqlsh prints them
  (``2024-01-02 03:04:05.678+0000``, ``0xcafe``, ``1h30m``, ``True``); collections, tuples, user
  types and vectors as CQL literals (``['a', 'b''c']``, ``{1: 'x'}``, ``(1, 'a')``,
  ``{street: 'Main', n: 5}``); text with cqlsh's escapes (a backslash doubled, control
  characters as ``\\n``, ``\\t``, ``\\xNN``), which the reader undoes (``escapes=False``: text as
  it is).
* **JSON** (one value of a JSON object): numbers as JSON numbers (``decimal`` exact, ``NaN`` and
  infinities as strings), text, UUIDs, dates, times, timestamps (ISO 8601, UTC), durations,
  addresses and blobs (``"0x..."``) as strings, lists, sets, tuples and vectors as arrays, maps
  and user types as objects (a map's keys in their text form).

:func:`parser` returns a function from a CSV field to the value to bind; :func:`json_parser`
from a decoded JSON value (``json.loads(..., parse_float=Decimal)``); :func:`formatter` and
:func:`json_formatter` go the other way, from what the driver returns. A value that does not
parse raises :class:`BadValueError` with a short reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import ipaddress
import math
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from cassandra import cqltypes
from cassandra.metadata import protect_name
from cassandra.util import Date, Duration, OrderedMap, Time

Parser = Callable[[str], Any]
JsonParser = Callable[[Any], Any]
Formatter = Callable[[Any], str]


class BadValueError(ValueError):
    """A value that does not parse as its column's type; the message says why."""


class UnsupportedTypeError(Exception):
    """A column type this module has no text form for."""


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


# -- types ---------------------------------------------------------------------------------------

_TEXT = frozenset({"ascii", "text", "varchar"})
_MILLISECOND = datetime.timedelta(milliseconds=1)
_INT_BITS = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64, "counter": 64}


def base(cql_type: Any) -> Any:
    """The type without ``frozen<>`` or a reversed clustering order around it."""
    while issubclass(cql_type, cqltypes.FrozenType | cqltypes.ReversedType):
        cql_type = cql_type.subtypes[0]
    return cql_type


def type_name(cql_type: Any) -> str:
    """The CQL name of a driver type, for messages: ``map<text, int>``."""
    cql_type = base(cql_type)
    if issubclass(cql_type, cqltypes.VectorType):
        return f"vector<{type_name(cql_type.subtype)}, {cql_type.vector_size}>"
    if issubclass(cql_type, cqltypes.UserType):
        return str(cql_type.typename)
    subtypes = getattr(cql_type, "subtypes", ())
    if subtypes:
        return f"{cql_type.typename}<{', '.join(type_name(s) for s in subtypes)}>"
    return str(cql_type.typename)


def _kind(cql_type: Any) -> str:
    cql_type = base(cql_type)
    if issubclass(cql_type, cqltypes.VectorType):
        return "vector"
    if issubclass(cql_type, cqltypes.UserType):
        return "udt"
    if issubclass(cql_type, cqltypes.TupleType):
        return "tuple"
    if issubclass(cql_type, cqltypes.MapType):
        return "map"
    if issubclass(cql_type, cqltypes.SetType):
        return "set"
    if issubclass(cql_type, cqltypes.ListType):
        return "list"
    name = str(cql_type.typename)
    if name in _TEXT or name in _INT_BITS or name in _SCALARS:
        return name
    raise UnsupportedTypeError(f"no text form for the CQL type {type_name(cql_type)}")


def _is_composite(kind: str) -> bool:
    return kind in ("list", "set", "map", "tuple", "udt", "vector")


# -- scalars: text to value ------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'", '"': '"'}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\xa0]")


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 3:
        return chr(int(code[1:], 16))
    return _SIMPLE_ESCAPES.get(code, match.group(0))


def unescape_text(text: str) -> str:
    """Undo cqlsh's escapes of text: ``\\\\``, ``\\n``, ``\\t``, ``\\r``, ``\\xNN``."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_unescape_one, text)


def _show_control(match: re.Match[str]) -> str:
    char = match.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char) or f"\\x{ord(char):02x}"


def escape_text(text: str) -> str:
    """Text as cqlsh writes it: a backslash doubled, control characters as escapes."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if _CONTROL.search(text):
        text = _CONTROL.sub(_show_control, text)
    return text


def _int_parser(bits: int | None) -> Parser:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if bits else (0, 0)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise BadValueError(f"{shown(text)} is not an integer") from None
        if bits and not low <= value <= high:
            raise BadValueError(f"{value} is out of range for a {bits}-bit integer")
        return value

    return parse


_FLOAT32 = struct.Struct(">f")
_FLOAT32_MAX = _FLOAT32.unpack(b"\x7f\x7f\xff\xff")[0]


def _parse_double(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadValueError(f"{shown(text)} is not a number") from None


def _parse_float(text: str) -> float:
    value = _parse_double(text)
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        try:  # what rounds to the largest float is in range
            value = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
        except OverflowError:
            raise BadValueError(f"{shown(text)} is out of range for a float") from None
    return value


def _parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadValueError(f"{shown(text)} is not a decimal number") from None
    if not value.is_finite():
        raise BadValueError(f"{shown(text)}: a decimal must be finite")
    return value


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _parse_boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadValueError(f"{shown(text)} is not a boolean (true or false)")


def _parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise BadValueError(f"{shown(text)} is not a UUID") from None


def _parse_timeuuid(text: str) -> uuid.UUID:
    value = _parse_uuid(text)
    if value.version != 1:
        raise BadValueError(f"{shown(text)} is not a time-based (version 1) UUID")
    return value


def _parse_inet(text: str) -> str:
    text = text.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise BadValueError(f"{shown(text)} is not an IPv4 or IPv6 address") from None
    return text


def _parse_blob(text: str) -> bytes:
    text = text.strip()
    if not text.startswith(("0x", "0X")):
        raise BadValueError(f"{shown(text)} is not a blob (0x followed by hex digits)")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise BadValueError(f"{shown(text)} is not a blob (0x followed by hex digits)") from None


def _parse_json_blob(text: str) -> bytes:
    if text.startswith(("0x", "0X")):
        return _parse_blob(text)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadValueError(f'{shown(text)} is not a blob ("0x..." hex or base64)') from None


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _valid_day(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return day <= days


_TIMESTAMP = re.compile(
    r"\s*([+-]?\d{1,9})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*"
)


_UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch: ISO 8601 or cqlsh's form (``T`` or a space, an optional
    fraction and zone; no zone is UTC), or an integer of milliseconds."""
    if text[4:5] == "-" and text[:1].isdigit():
        try:  # the common case, in C
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return (moment - _UTC_EPOCH) // _MILLISECOND
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        try:
            return int(text)
        except ValueError:
            raise BadValueError(
                f"{shown(text)} is not a timestamp (2024-01-31 13:45:00.000+0000, ISO 8601 or "
                "milliseconds since the epoch)"
            ) from None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    y, m, d = int(year), int(month), int(day)
    h, mi, s = int(hour or 0), int(minute or 0), int(second or 0)
    if not _valid_day(y, m, d) or h > 23 or mi > 59 or s > 59:
        raise BadValueError(f"{shown(text)} is not a valid date and time")
    millis = int((fraction or "0").ljust(3, "0")[:3])
    total = ((_days_from_civil(y, m, d) * 24 + h) * 60 + mi) * 60 + s
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:] or 0) * 60
        total -= sign * offset
    return total * 1000 + millis


_DATE = re.compile(r"\s*([+-]?\d{1,9})-(\d{1,2})-(\d{1,2})\s*")


def _parse_date(text: str) -> Date:
    match = _DATE.fullmatch(text)
    if match is None:
        try:
            days = int(text)  # cqlsh writes a date outside years 1-9999 as days since the epoch
        except ValueError:
            raise BadValueError(f"{shown(text)} is not a date (YYYY-MM-DD)") from None
    else:
        y, m, d = (int(g) for g in match.groups())
        if not _valid_day(y, m, d):
            raise BadValueError(f"{shown(text)} is not a valid date")
        days = _days_from_civil(y, m, d)
    if not -(2**31) <= days < 2**31:
        raise BadValueError(f"{shown(text)} is out of the range of a CQL date")
    return Date(days)


_TIME = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*")
_NANOS_PER_DAY = 86_400 * 10**9


def _parse_time(text: str) -> Time:
    match = _TIME.fullmatch(text)
    if match is None:
        try:
            nanos = int(text)
        except ValueError:
            raise BadValueError(f"{shown(text)} is not a time (HH:MM:SS.fffffffff)") from None
    else:
        h, m, s, fraction = match.groups()
        if int(h) > 23 or int(m) > 59 or int(s or 0) > 59:
            raise BadValueError(f"{shown(text)} is not a valid time")
        nanos = ((int(h) * 60 + int(m)) * 60 + int(s or 0)) * 10**9
        nanos += int((fraction or "0").ljust(9, "0"))
    if not 0 <= nanos < _NANOS_PER_DAY:
        raise BadValueError(f"{shown(text)} is not a time of day")
    return Time(nanos)


_NANOS = {
    "h": 3600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "µs": 10**3,
    "ns": 1,
}
_DURATION_UNIT = re.compile(r"(\d+)(mo|ms|us|µs|ns|y|w|d|h|m|s)", re.IGNORECASE)
_DURATION_STANDARD = re.compile(r"(?:\d+(?:mo|ms|us|µs|ns|y|w|d|h|m|s))+", re.IGNORECASE)
_DURATION_ISO = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)
_DURATION_WEEKS = re.compile(r"P(\d+)W", re.IGNORECASE)
_DURATION_ALTERNATIVE = re.compile(r"P(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")


def _parse_duration(text: str) -> Duration:
    body = text.strip()
    negative = body.startswith("-")
    body = body.lstrip("+-")
    months = days = nanos = 0
    if _DURATION_STANDARD.fullmatch(body):
        for amount, unit in _DURATION_UNIT.findall(body):
            count, unit = int(amount), unit.lower()
            if unit == "y":
                months += 12 * count
            elif unit == "mo":
                months += count
            elif unit == "w":
                days += 7 * count
            elif unit == "d":
                days += count
            else:
                nanos += count * _NANOS[unit]
    elif (iso := _DURATION_ISO.fullmatch(body)) and body.upper() not in ("P", "PT"):
        y, mo, d, h, mi, s = (int(g or 0) for g in iso.groups())
        months, days = 12 * y + mo, d
        nanos = ((h * 60 + mi) * 60 + s) * 10**9
    elif weeks := _DURATION_WEEKS.fullmatch(body):
        days = 7 * int(weeks.group(1))
    elif alternative := _DURATION_ALTERNATIVE.fullmatch(body):
        y, mo, d, h, mi, s = (int(g) for g in alternative.groups())
        months, days = 12 * y + mo, d
        nanos = ((h * 60 + mi) * 60 + s) * 10**9
    else:
        raise BadValueError(f"{shown(text)} is not a duration (1y2mo3d4h5m6s7ms8us9ns or ISO 8601)")
    if negative:
        months, days, nanos = -months, -days, -nanos
    return Duration(months, days, nanos)


def _parse_ascii(text: str) -> str:
    if not text.isascii():
        raise BadValueError(f"{shown(text)} is not ASCII")
    return text


_SCALARS: dict[str, Parser] = {
    "varint": _int_parser(None),
    "float": _parse_float,
    "double": _parse_double,
    "decimal": _parse_decimal,
    "boolean": _parse_boolean,
    "uuid": _parse_uuid,
    "timeuuid": _parse_timeuuid,
    "timestamp": parse_timestamp,
    "date": _parse_date,
    "time": _parse_time,
    "duration": _parse_duration,
    "inet": _parse_inet,
    "blob": _parse_blob,
}


def _scalar_parser(kind: str, escapes: bool) -> Parser:
    if kind in _INT_BITS:
        return _int_parser(_INT_BITS[kind])
    if kind == "ascii":
        if escapes:
            return lambda text: _parse_ascii(unescape_text(text))
        return _parse_ascii
    if kind in _TEXT:
        return unescape_text if escapes else str
    return _SCALARS[kind]


# -- CQL literals: text to value -------------------------------------------------------------------


class _Literal:
    """A recursive-descent reader of one CQL literal (a collection, tuple, user type, vector),
    typed by the column: ``[1, 2]``, ``{'a': 1}``, ``(1, 'x', null)``, ``{street: 'Main'}``."""

    __slots__ = ("escapes", "pos", "text")

    def __init__(self, text: str, escapes: bool) -> None:
        self.text = text
        self.pos = 0
        self.escapes = escapes

    def fail(self, what: str) -> BadValueError:
        return BadValueError(f"{what} at position {self.pos + 1} of {shown(self.text)}")

    def skip(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        self.pos = pos

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def quoted(self) -> str:
        """A single-quoted string (``''`` inside it is one quote), the quotes removed."""
        text, pos = self.text, self.pos + 1
        parts = []
        while True:
            end = text.find("'", pos)
            if end < 0:
                raise self.fail("a quoted string is not closed")
            parts.append(text[pos:end])
            if text.startswith("''", end):
                parts.append("'")
                pos = end + 2
                continue
            self.pos = end + 1
            return "".join(parts)

    def bare(self, stops: str) -> str:
        """Characters up to the next of ``stops`` (or a bracket that closes), trimmed."""
        text, start = self.text, self.pos
        pos = start
        while pos < len(text) and text[pos] not in stops:
            pos += 1
        self.pos = pos
        return text[start:pos].strip()

    def value(self, cql_type: Any, stops: str, nullable: bool) -> Any:
        cql_type = base(cql_type)
        kind = _kind(cql_type)
        first = self.peek()
        if first == "'":
            inner = self.quoted()
            if kind in _TEXT:
                return _scalar_parser(kind, self.escapes)(inner)
            if _is_composite(kind):
                return _Literal(inner, self.escapes).whole(cql_type)
            return _scalar_parser(kind, self.escapes)(inner)
        if _is_composite(kind) and first and first in "[{(":
            return self.composite(cql_type, kind)
        pattern = _TIME if kind == "time" else _TIMESTAMP if kind == "timestamp" else None
        if pattern is not None and (match := pattern.match(self.text, self.pos)):
            token = match.group(0)
            self.pos = match.end()
        else:
            token = self.bare(stops)
        if token == "" or token.lower() in ("null", "none"):
            if not nullable:
                raise self.fail("a null is not allowed here")
            return None
        if _is_composite(kind):
            raise self.fail(f"expected a {kind} literal, found {shown(token)}")
        return _scalar_parser(kind, self.escapes)(token)

    def composite(self, cql_type: Any, kind: str) -> Any:
        if kind in ("list", "set", "vector"):
            element = cql_type.subtype if kind == "vector" else cql_type.subtypes[0]
            opener = self.peek()
            if opener not in "[{":
                raise self.fail(f"expected '[' to start a {kind}")
            closer = "]" if opener == "[" else "}"
            items = self.sequence(opener, closer, [element], repeat=True, nullable=False)
            if kind == "vector" and len(items) != cql_type.vector_size:
                raise BadValueError(
                    f"a vector of {cql_type.vector_size} values has {len(items)} in "
                    f"{shown(self.text)}"
                )
            return items
        if kind == "tuple":
            items = self.sequence("(", ")", list(cql_type.subtypes), repeat=False, nullable=True)
            return tuple(items + [None] * (len(cql_type.subtypes) - len(items)))
        if kind == "map":
            return self.mapping(cql_type)
        return self.user_type(cql_type)

    def sequence(
        self, opener: str, closer: str, types: list[Any], repeat: bool, nullable: bool
    ) -> list[Any]:
        self.expect(opener)
        items: list[Any] = []
        if self.peek() == closer:
            self.pos += 1
            return items
        while True:
            if not repeat and len(items) >= len(types):
                raise self.fail(f"more than {len(types)} values")
            cql_type = types[0] if repeat else types[len(items)]
            items.append(self.value(cql_type, "," + closer, nullable))
            following = self.peek()
            self.pos += 1
            if following == closer:
                return items
            if following != ",":
                self.pos -= 1
                raise self.fail(f"expected ',' or {closer!r}")

    def mapping(self, cql_type: Any) -> OrderedMap:
        key_type, value_type = cql_type.subtypes
        self.expect("{")
        pairs = OrderedMap()
        if self.peek() == "}":
            self.pos += 1
            return pairs
        while True:
            key = self.value(key_type, ":,}", nullable=False)
            self.expect(":")
            pairs[key] = self.value(value_type, ",}", nullable=False)
            following = self.peek()
            self.pos += 1
            if following == "}":
                return pairs
            if following != ",":
                self.pos -= 1
                raise self.fail("expected ',' or '}'")

    def user_type(self, cql_type: Any) -> tuple[Any, ...]:
        names = list(cql_type.fieldnames)
        values: list[Any] = [None] * len(names)
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return tuple(values)
        while True:
            if self.peek() == '"':
                end = self.text.find('"', self.pos + 1)
                if end < 0:
                    raise self.fail("a quoted field name is not closed")
                name = self.text[self.pos + 1 : end]
                self.pos = end + 1
            else:
                name = self.bare(":,}").lower()
            if name not in names:
                raise self.fail(f"{cql_type.typename} has no field {name!r}")
            self.expect(":")
            at = names.index(name)
            values[at] = self.value(cql_type.subtypes[at], ",}", nullable=True)
            following = self.peek()
            self.pos += 1
            if following == "}":
                return tuple(values)
            if following != ",":
                self.pos -= 1
                raise self.fail("expected ',' or '}'")

    def whole(self, cql_type: Any) -> Any:
        kind = _kind(cql_type)
        if not self.peek() or self.peek() not in "[{(":
            raise BadValueError(f"{shown(self.text)} is not a {type_name(cql_type)} literal")
        value = self.composite(base(cql_type), kind)
        if self.peek():
            raise self.fail("unexpected text after the literal")
        return value


#: A whole list or set of quoted items, and the items of one (two passes in C: the first says
#: the text is exactly that shape, the second takes the items).
_QUOTED_SEQUENCE = re.compile(r"\s*'(?:[^']|'')*'\s*(?:,\s*'(?:[^']|'')*'\s*)*")
_QUOTED_ITEM = re.compile(r"'((?:[^']|'')*)'")
_BRACKETS = frozenset({("[", "]"), ("{", "}")})


def _simple_sequence(cql_type: Any, kind: str, escapes: bool) -> Parser | None:
    """A faster parser for the common lists and sets of scalars (``['a', 'b']``, ``{1, 2}``),
    falling back to the full literal reader for anything else."""
    element = base(cql_type.subtypes[0])
    element_kind = _kind(element)
    if _is_composite(element_kind):
        return None
    scalar = _scalar_parser(element_kind, escapes)
    text_items = element_kind in _TEXT
    #: Text items need a look only to undo escapes or check ascii; plain text is taken as it is.
    check_items = scalar is not str
    #: Items that need the look even without a backslash (ascii: its characters are checked).
    check_all = element_kind == "ascii"

    def full(text: str) -> Any:
        return _Literal(text, escapes).whole(cql_type)

    def parse(text: str) -> Any:
        stripped = text.strip()
        if len(stripped) < 2 or (stripped[0], stripped[-1]) not in _BRACKETS:
            return full(text)
        inner = stripped[1:-1]
        if not inner.strip():
            return []
        if text_items:
            if "''" not in inner:
                # Items with no quote inside: split at the commas; if any piece is not one
                # whole quoted item (a comma was inside one), the careful path decides.
                items = []
                for piece in inner.split(","):
                    piece = piece.strip()
                    if len(piece) < 2 or piece[0] != "'" or piece[-1] != "'":
                        break
                    item = piece[1:-1]
                    if "'" in item:
                        break
                    items.append(item)
                else:
                    if check_items and (check_all or "\\" in inner):
                        return [scalar(item) for item in items]
                    return items
            if _QUOTED_SEQUENCE.fullmatch(inner) is None:
                return full(text)
            found = _QUOTED_ITEM.findall(inner)
            if "''" in inner:
                found = [item.replace("''", "'") for item in found]
            return [scalar(item) for item in found] if check_items else found
        if "'" in inner or "[" in inner or "{" in inner or "(" in inner:
            return full(text)
        parts = [part.strip() for part in inner.split(",")]
        if "" in parts or any(part.lower() in ("null", "none") for part in parts):
            return full(text)
        return [scalar(part) for part in parts]

    return parse


def parser(cql_type: Any, escapes: bool = True) -> Parser:
    """A CSV field (not empty, not the null marker) to the value to bind for ``cql_type``."""
    kind = _kind(cql_type)
    if kind in ("list", "set"):
        fast = _simple_sequence(base(cql_type), kind, escapes)
        if fast is not None:
            return fast
    if _is_composite(kind):
        return lambda text: _Literal(text, escapes).whole(cql_type)
    scalar = _scalar_parser(kind, escapes)
    if kind in _TEXT:
        return scalar

    def lenient(text: str) -> Any:
        # A scalar the way it appears inside a literal ('2024-01-01') is taken too.
        if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
            text = text[1:-1].replace("''", "'")
        return scalar(text)

    if kind not in _INT_BITS:
        return lenient

    def integer(text: str) -> Any:
        # The common case first (the integer parser, no quote check); anything else, and
        # its message, as lenient takes it.
        try:
            return scalar(text)
        except BadValueError:
            return lenient(text)

    return integer


# -- JSON to value ---------------------------------------------------------------------------------


def json_parser(cql_type: Any) -> JsonParser:
    """A decoded JSON value (floats as ``Decimal``) to the value to bind for ``cql_type``."""
    cql_type = base(cql_type)
    kind = _kind(cql_type)
    text = parser(cql_type, escapes=False)
    name = type_name(cql_type)

    def wrong(value: Any) -> BadValueError:
        return BadValueError(f"a JSON {_json_type(value)} is not a {name}: {shown(repr(value))}")

    if kind in _TEXT:

        def parse_text(value: Any) -> Any:
            if isinstance(value, str):
                return text(value)
            raise wrong(value)

        return parse_text
    if kind in _INT_BITS or kind == "varint":

        def parse_int(value: Any) -> Any:
            if isinstance(value, bool):
                raise wrong(value)
            if isinstance(value, int):
                return text(str(value))
            if isinstance(value, Decimal) and value == value.to_integral_value():
                return text(str(int(value)))
            if isinstance(value, str):
                return text(value)
            raise wrong(value)

        return parse_int
    if kind in ("float", "double", "decimal"):

        def parse_number(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
                raise wrong(value)
            if kind == "decimal":
                return value if isinstance(value, Decimal) else text(str(value))
            return text(str(value))

        return parse_number
    if kind == "boolean":

        def parse_boolean(value: Any) -> Any:
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                return text(value)
            raise wrong(value)

        return parse_boolean
    if kind == "timestamp":

        def parse_timestamp_json(value: Any) -> Any:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                return text(value)
            raise wrong(value)

        return parse_timestamp_json
    if kind == "blob":

        def parse_blob(value: Any) -> Any:
            if isinstance(value, str):
                return _parse_json_blob(value)
            raise wrong(value)

        return parse_blob
    if not _is_composite(kind):

        def parse_scalar(value: Any) -> Any:
            if isinstance(value, str):
                return text(value)
            raise wrong(value)

        return parse_scalar
    return _json_composite(cql_type, kind, text, wrong)


def _json_composite(
    cql_type: Any, kind: str, text: Parser, wrong: Callable[[Any], BadValueError]
) -> JsonParser:
    if kind in ("list", "set", "vector"):
        element = json_parser(cql_type.subtype if kind == "vector" else cql_type.subtypes[0])

        def parse_sequence(value: Any) -> Any:
            if isinstance(value, str):
                return text(value)
            if not isinstance(value, list):
                raise wrong(value)
            if kind == "vector" and len(value) != cql_type.vector_size:
                raise BadValueError(
                    f"a vector of {cql_type.vector_size} values has {len(value)} values"
                )
            if any(item is None for item in value):
                raise BadValueError(f"a null is not allowed in a {kind}")
            return [element(item) for item in value]

        return parse_sequence
    if kind == "tuple":
        elements = [json_parser(t) for t in cql_type.subtypes]

        def parse_tuple(value: Any) -> Any:
            if isinstance(value, str):
                return text(value)
            if not isinstance(value, list) or len(value) > len(elements):
                raise wrong(value)
            items = [None if v is None else p(v) for p, v in zip(elements, value, strict=False)]
            return tuple(items + [None] * (len(elements) - len(items)))

        return parse_tuple
    if kind == "map":
        key_type, value_type = cql_type.subtypes
        key_text = parser(key_type, escapes=False)
        key_json = json_parser(key_type)
        value_json = json_parser(value_type)

        def parse_map(value: Any) -> Any:
            if isinstance(value, str):
                return text(value)
            pairs: Any
            if isinstance(value, dict):
                pairs = value.items()
            elif isinstance(value, list) and all(
                isinstance(p, list) and len(p) == 2 for p in value
            ):
                pairs = [(key_json(k), v) for k, v in value]  # [[key, value], ...]
            else:
                raise wrong(value)
            result = OrderedMap()
            for key, item in pairs:
                if item is None:
                    raise BadValueError("a null is not allowed as a map value")
                result[key_text(key) if isinstance(key, str) else key] = value_json(item)
            return result

        return parse_map
    names = list(cql_type.fieldnames)
    fields = [json_parser(t) for t in cql_type.subtypes]

    def parse_user_type(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if not isinstance(value, dict):
            raise wrong(value)
        values: list[Any] = [None] * len(names)
        for name, item in value.items():
            if name not in names:
                raise BadValueError(f"{cql_type.typename} has no field {name!r}")
            at = names.index(name)
            values[at] = None if item is None else fields[at](item)
        return tuple(values)

    return parse_user_type


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- value to text ---------------------------------------------------------------------------------

_EPOCH = datetime.datetime(1970, 1, 1)


def milliseconds(value: Any) -> int:
    """Milliseconds since the epoch of what the driver returns for a timestamp: an int (see
    :func:`rxcql.cli._unload.timestamps_as_milliseconds`) or a naive UTC datetime."""
    if isinstance(value, int):
        return value
    delta: datetime.timedelta = (
        value.replace(tzinfo=None) - _EPOCH if value.tzinfo else value - _EPOCH
    )
    return round(delta / _MILLISECOND)


def format_timestamp(value: Any, iso: bool = False) -> str:
    """``2024-01-02 03:04:05.678+0000`` (cqlsh's form) or ``2024-01-02T03:04:05.678Z``;
    outside years 1-9999 the milliseconds since the epoch, as cqlsh writes them."""
    millis = milliseconds(value)
    try:
        moment = _EPOCH + datetime.timedelta(milliseconds=millis)
    except OverflowError:
        return str(millis)
    if iso:
        return moment.isoformat("T", "milliseconds") + "Z"
    return moment.isoformat(" ", "milliseconds") + "+0000"


def _format_float32(value: float) -> str:
    if not math.isfinite(value):
        return _format_double(value)
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack(">f", struct.pack(">f", float(text)))[0] == value:
            return text
    return repr(value)


def _format_double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def format_duration(value: Duration) -> str:
    """cqlsh's form of a duration: ``1y2mo3d4h5m6s7ms8us9ns`` (``-`` in front if negative)."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    parts = ["-"] if months < 0 or days < 0 or nanos < 0 else []
    months, days, nanos = abs(months), abs(days), abs(nanos)
    if months // 12:
        parts.append(f"{months // 12}y")
    if months % 12:
        parts.append(f"{months % 12}mo")
    if days:
        parts.append(f"{days}d")
    for unit in ("h", "m", "s", "ms", "us", "ns"):
        size = _NANOS[unit]
        if nanos >= size:
            parts.append(f"{nanos // size}{unit}")
            nanos %= size
    return "".join(parts) if len(parts) > (parts[:1] == ["-"]) else "0s"


def _format_bool(value: bool) -> str:
    return "True" if value else "False"


def _format_blob(value: bytes) -> str:
    return "0x" + value.hex()


_SCALAR_FORMATS: dict[str, Formatter] = {
    "varint": str,
    "float": _format_float32,
    "double": _format_double,
    "decimal": str,
    "boolean": _format_bool,
    "uuid": str,
    "timeuuid": str,
    "timestamp": format_timestamp,
    "date": str,
    "time": str,
    "duration": format_duration,
    "inet": str,
    "blob": _format_blob,
}
#: Scalars quoted inside a literal (besides text).
_QUOTED_IN_LITERALS = frozenset({"timestamp", "date", "time", "inet"})


def formatter(cql_type: Any, escapes: bool = True) -> Formatter:
    """A value the driver returned (not None) to its CSV field."""
    kind = _kind(cql_type)
    if kind in _TEXT:
        return escape_text if escapes else str
    if kind in _INT_BITS:
        return str
    if kind in _SCALAR_FORMATS:
        return _SCALAR_FORMATS[kind]
    return _literal_formatter(base(cql_type), kind, escapes)


def _element_formatter(cql_type: Any, escapes: bool) -> Formatter:
    """A value inside a literal: text and some scalars quoted, null as ``null``."""
    cql_type = base(cql_type)
    kind = _kind(cql_type)
    plain = formatter(cql_type, escapes)
    if kind in _TEXT or kind in _QUOTED_IN_LITERALS:

        def quoted(value: Any) -> str:
            return "null" if value is None else "'" + plain(value).replace("'", "''") + "'"

        return quoted
    return lambda value: "null" if value is None else plain(value)


def _literal_formatter(cql_type: Any, kind: str, escapes: bool) -> Formatter:
    if kind in ("list", "set", "vector"):
        element = _element_formatter(
            cql_type.subtype if kind == "vector" else cql_type.subtypes[0], escapes
        )
        opener, closer = ("{", "}") if kind == "set" else ("[", "]")
        return lambda value: opener + ", ".join(element(item) for item in value) + closer
    if kind == "tuple":
        elements = [_element_formatter(t, escapes) for t in cql_type.subtypes]
        return lambda value: (
            "(" + ", ".join(f(v) for f, v in zip(elements, value, strict=False)) + ")"
        )
    if kind == "map":
        key = _element_formatter(cql_type.subtypes[0], escapes)
        item = _element_formatter(cql_type.subtypes[1], escapes)
        return lambda value: (
            "{" + ", ".join(key(k) + ": " + item(v) for k, v in value.items()) + "}"
        )
    names = [protect_name(name) for name in cql_type.fieldnames]
    fields = [_element_formatter(t, escapes) for t in cql_type.subtypes]
    return lambda value: (
        "{"
        + ", ".join(
            name + ": " + f(v) for name, f, v in zip(names, fields, tuple(value), strict=False)
        )
        + "}"
    )


# -- value to JSON ---------------------------------------------------------------------------------


def _json_string(text: str) -> str:
    return str(encode_basestring(text))


def _json_float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return '"' + _format_double(value) + '"'


def _json_float32(value: float) -> str:
    if math.isfinite(value):
        return _format_float32(value)
    return '"' + _format_double(value) + '"'


def json_formatter(cql_type: Any) -> Formatter:
    """A value the driver returned (None too) to its JSON text."""
    cql_type = base(cql_type)
    kind = _kind(cql_type)
    inner = _json_formatter(cql_type, kind)
    return lambda value: "null" if value is None else inner(value)


def _json_formatter(cql_type: Any, kind: str) -> Formatter:
    if kind in _TEXT:
        return _json_string
    if kind in _INT_BITS or kind in ("varint", "decimal"):
        return str
    if kind == "double":
        return _json_float
    if kind == "float":
        return _json_float32
    if kind == "boolean":
        return lambda value: "true" if value else "false"
    if kind == "timestamp":
        return lambda value: '"' + format_timestamp(value, iso=True) + '"'
    if not _is_composite(kind):
        text = _SCALAR_FORMATS[kind]
        return lambda value: _json_string(text(value))
    if kind in ("list", "set", "vector", "tuple"):
        subtypes = (
            [cql_type.subtype]
            if kind == "vector"
            else cql_type.subtypes
            if kind == "tuple"
            else cql_type.subtypes[:1]
        )
        elements = [json_formatter(t) for t in subtypes]
        if kind == "tuple":
            return lambda value: (
                "[" + ",".join(f(v) for f, v in zip(elements, value, strict=False)) + "]"
            )
        element = elements[0]
        return lambda value: "[" + ",".join(element(item) for item in value) + "]"
    if kind == "map":
        key = map_key_text(cql_type.subtypes[0])
        item = json_formatter(cql_type.subtypes[1])
        return lambda value: (
            "{" + ",".join(_json_string(key(k)) + ":" + item(v) for k, v in value.items()) + "}"
        )
    names = [_json_string(name) for name in cql_type.fieldnames]
    fields = [json_formatter(t) for t in cql_type.subtypes]
    return lambda value: (
        "{"
        + ",".join(
            name + ":" + f(v) for name, f, v in zip(names, fields, tuple(value), strict=False)
        )
        + "}"
    )


def map_key_text(cql_type: Any) -> Formatter:
    """A map key as the string a JSON object needs (read back by :func:`parser`)."""
    cql_type = base(cql_type)
    kind = _kind(cql_type)
    if kind in _TEXT:
        return str
    if kind == "timestamp":
        return lambda value: format_timestamp(value, iso=True)
    if kind == "boolean":
        return lambda value: "true" if value else "false"
    return formatter(cql_type, escapes=False)


# -- value to bytes --------------------------------------------------------------------------------

_PACK = {
    "int": struct.Struct(">i").pack,
    "bigint": struct.Struct(">q").pack,
    "counter": struct.Struct(">q").pack,
    "smallint": struct.Struct(">h").pack,
    "tinyint": struct.Struct(">b").pack,
    "timestamp": struct.Struct(">q").pack,
    "float": struct.Struct(">f").pack,
    "double": struct.Struct(">d").pack,
}


_INT32 = struct.Struct(">i").pack


def _varint(value: int) -> bytes:
    """Two's complement, big-endian, in the fewest bytes (the driver's ``varint_pack``)."""
    length = ((value if value >= 0 else ~value).bit_length() // 8) + 1
    return value.to_bytes(length, "big", signed=True)


#: Exact for any finite decimal: scaling by a power of ten only moves the exponent.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _decimal(value: Decimal) -> bytes:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: the parser checked
    return _INT32(-exponent) + _varint(int(value.scaleb(-exponent, _EXACT)))


def serializer(cql_type: Any, protocol_version: int) -> Callable[[Any], bytes]:
    """What the driver's ``bind`` does to a value of ``cql_type`` (its bytes on the wire),
    faster for the common types; the driver's own serializer for the others."""
    kind = _kind(cql_type)
    if kind in _PACK:
        return _PACK[kind]
    if kind in ("text", "varchar"):
        return str.encode
    if kind in ("uuid", "timeuuid"):
        return lambda value: value.bytes
    if kind == "boolean":
        return lambda value: b"\x01" if value else b"\x00"
    if kind == "blob":
        return bytes
    if kind == "varint":
        return _varint
    if kind == "decimal":
        return _decimal
    if kind in ("list", "set") and protocol_version >= 3:
        element = serializer(base(cql_type).subtypes[0], protocol_version)

        def sequence(value: Any) -> bytes:
            parts = [_INT32(len(value))]
            for item in value:
                data = element(item)
                parts.append(_INT32(len(data)))
                parts.append(data)
            return b"".join(parts)

        return sequence
    serialize = base(cql_type).serialize
    return lambda value: serialize(value, protocol_version)
