"""Records in and out: CSV (cqlsh's and dsbulk's dialect by default) and JSON lines.

Input is read as bytes and decoded line by line, so that every record knows its first line's
number and its raw text (for messages and the failed log), and the bytes read so far give the
progress through a file of known size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

#: What an empty string is written as before the CSV writer runs; replaced by "" (a quoted
#: empty field) afterwards. It needs no quoting, and text never holds it (its characters are
#: escaped, or written as they are by a writer that does not quote private-use characters).
EMPTY_MARK = "\ue000rxcql:empty\ue001"


@dataclass(frozen=True)
class Dialect:
    """The CSV dialect: cqlsh's and dsbulk's defaults (``,``, ``"``, ``\\``)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = "\\"

    def reader_options(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote,
            "escapechar": self.escape if self.escape != self.quote else None,
            "doublequote": True,  # "" inside quotes is read as " whatever the escape character
            "strict": False,
        }

    def writer_options(self) -> dict[str, Any]:
        if self.escape is None or self.escape == self.quote:
            return {"delimiter": self.delimiter, "quotechar": self.quote, "doublequote": True}
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote,
            "escapechar": self.escape,
            "doublequote": False,
        }


class Feed:
    """The decoded lines of a binary stream, as ``csv.reader`` pulls them, with the lines of
    the record being read kept (``lines``), physical lines counted (``number``) and bytes."""

    __slots__ = ("_next", "bad", "bytes", "encoding", "lines", "number")

    def __init__(self, stream: IO[bytes], encoding: str = "utf-8") -> None:
        self._next = iter(stream).__next__
        self.encoding = encoding
        self.lines: list[str] = []
        self.number = 0
        self.bytes = 0
        #: Why a line of the current record could not be decoded (None: it could).
        self.bad: str | None = None

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> str:
        raw = self._next()
        self.bytes += len(raw)
        self.number += 1
        try:
            line = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            self.bad = f"not valid {self.encoding}: {exc.reason} at byte {exc.start + 1}"
            line = raw.decode(self.encoding, "replace")
        if self.number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        self.lines.append(line)
        return line


class Record:
    """One input record: its first line's number, its raw text, and its fields (a list for
    CSV, a dict for JSON) or why it has none."""

    __slots__ = ("error", "fields", "line", "lines")

    def __init__(self, line: int, lines: list[str], fields: Any, error: str | None = None):
        self.line = line
        self.lines = lines
        self.fields = fields
        self.error = error

    @property
    def raw(self) -> str:
        return "".join(self.lines).rstrip("\r\n")


def csv_records(feed: Feed, dialect: Dialect) -> Iterator[Record]:
    """The records of a CSV stream; blank lines are skipped."""
    reader = csv.reader(feed, **dialect.reader_options())
    while True:
        error = None
        try:
            fields = next(reader)
        except StopIteration:
            if feed.lines:  # the end of the input inside a quoted field
                yield _take(feed, None, "the input ends inside a quoted field")
            return
        except csv.Error as exc:
            fields, error = None, f"not CSV: {exc}"
        if feed.bad is not None:
            fields, error, feed.bad = None, feed.bad, None
        if fields == [] and error is None:
            feed.lines = []
            continue
        yield _take(feed, fields, error)


def _take(feed: Feed, fields: Any, error: str | None) -> Record:
    lines = feed.lines
    feed.lines = []
    return Record(feed.number - len(lines) + 1, lines, fields, error)


def json_records(feed: Feed) -> Iterator[Record]:
    """The records of a JSON-lines stream (one object per line); blank lines are skipped."""
    for line in feed:
        lines = feed.lines
        feed.lines = []
        if feed.bad is not None:
            bad, feed.bad = feed.bad, None
            yield Record(feed.number, lines, None, bad)
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            yield Record(feed.number, lines, None, f"not JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Record(feed.number, lines, None, "not a JSON object")
            continue
        yield Record(feed.number, lines, value)


def quoted_fields(raw: str, dialect: Dialect) -> list[bool]:
    """Which fields of a CSV record were quoted (``""`` is an empty string; nothing is null):
    a second look at the few records that have an empty field and a pair of quotes."""
    delimiter, quote = dialect.delimiter, dialect.quote
    escape = dialect.escape if dialect.escape != quote else None
    flags: list[bool] = []
    i, n = 0, len(raw)
    while True:
        if i < n and raw[i] == quote:
            flags.append(True)
            i += 1
            while i < n:
                char = raw[i]
                if escape is not None and char == escape:
                    i += 2
                    continue
                if char == quote:
                    if i + 1 < n and raw[i + 1] == quote:
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        else:
            flags.append(False)
        while i < n and raw[i] != delimiter:
            i += 2 if escape is not None and raw[i] == escape else 1
        if i >= n:
            return flags
        i += 1


class CsvWriter:
    """Rows of formatted fields to a text stream, in chunks."""

    def __init__(self, out: IO[str], dialect: Dialect, chunk: int = 1000) -> None:
        self._out = out
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, **dialect.writer_options())
        self._empty = dialect.quote * 2
        self._rows: list[list[str]] = []
        self._chunk = chunk

    def header(self, names: list[str]) -> None:
        self._writer.writerow(names)
        self._flush_buffer()

    def write(self, fields: list[str]) -> None:
        self._rows.append(fields)
        if len(self._rows) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._writer.writerows(self._rows)
            self._rows = []
            self._flush_buffer()
        self._out.flush()

    def _flush_buffer(self) -> None:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        if EMPTY_MARK in text:
            text = text.replace(EMPTY_MARK, self._empty)
        self._out.write(text)


class JsonWriter:
    """Rows as JSON objects, one a line, in chunks."""

    def __init__(self, out: IO[str], names: list[str], chunk: int = 1000) -> None:
        self._out = out
        self._keys = [json.dumps(name, ensure_ascii=False) + ":" for name in names]
        self._lines: list[str] = []
        self._chunk = chunk

    def write(self, fields: list[str]) -> None:
        self._lines.append(
            "{"
            + ",".join([key + field for key, field in zip(self._keys, fields, strict=True)])
            + "}\n"
        )
        if len(self._lines) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._out.write("".join(self._lines))
            self._lines = []
        self._out.flush()
