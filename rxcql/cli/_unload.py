"""``rxcql unload`` and ``rxcql count``: a table out by token ranges (rxcql.scan_table)."""

from __future__ import annotations

import io
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

from cassandra import InvalidRequest
from cassandra.metadata import protect_name

import rxcql
from rxcql._gc import tune_for_bulk

from . import _values
from ._connect import Connection, connect
from ._display import Display
from ._load import CliUsageError, resolve_columns, table_metadata
from ._records import EMPTY_MARK, CsvWriter, Dialect, JsonWriter


@dataclass(frozen=True)
class UnloadOptions:
    keyspace: str
    table: str
    file: str
    format: str
    header: bool
    columns: list[str] | None
    where: str | None
    dialect: Dialect
    null_value: str
    text_escapes: bool
    encoding: str
    splits: int | None
    concurrency: int
    fetch_size: int
    quiet: bool


def timestamps_as_milliseconds() -> None:
    """Make this process's driver return timestamps as int milliseconds (as cqlsh does for its
    COPY): exact, and any timestamp the server holds, also outside years 1-9999 where a
    ``datetime`` cannot go. Only the ``rxcql`` command calls it, in its own process."""
    from cassandra import cqltypes
    from cassandra.marshal import int64_unpack

    def deserialize(data: bytes, protocol_version: int) -> int:
        return int(int64_unpack(data))

    cqltypes.DateType.deserialize = staticmethod(deserialize)
    try:
        from cassandra import deserializers
    except ImportError:  # the driver without its Cython extensions
        return
    for name in ("DesDateType", "DesTimestampType"):
        if hasattr(deserializers, name):
            delattr(deserializers, name)


def _formatters(options: UnloadOptions, types: list[Any]) -> list[Any]:
    if options.format == "json":
        return [_values.json_formatter(t) for t in types]
    result = []
    null = options.null_value
    for cql_type in types:
        plain = _values.formatter(cql_type, options.text_escapes)
        kind = str(getattr(_values.base(cql_type), "typename", ""))
        if kind in ("ascii", "text", "varchar"):
            # An empty string is written "" (a quoted empty field): an empty field is null.
            result.append(
                lambda value, plain=plain: null if value is None else (plain(value) or EMPTY_MARK)
            )
        else:
            result.append(lambda value, plain=plain: null if value is None else plain(value))
    return result


def run(options: UnloadOptions, connection: Connection) -> int:
    timestamps_as_milliseconds()
    with ExitStack() as stack:
        cluster, session = connect(connection)
        stack.callback(cluster.shutdown)
        tune_for_bulk()
        table = table_metadata(cluster, options.keyspace, options.table)
        names = (
            resolve_columns(table, options.columns, "--columns")
            if options.columns
            else list(table.columns)
        )
        target = f"{protect_name(options.keyspace)}.{protect_name(options.table)}"
        select = session.prepare(
            f"SELECT {', '.join(protect_name(n) for n in names)} FROM {target}"
        )
        types = [column[3] for column in select.result_metadata]
        try:
            formatters = _formatters(options, types)
        except _values.UnsupportedTypeError as exc:
            raise CliUsageError(str(exc)) from None
        try:
            rows = rxcql.scan_table(
                session,
                f"{options.keyspace}.{options.table}",
                columns=names,
                where=options.where,
                splits=options.splits,
                concurrency=options.concurrency,
                fetch_size=options.fetch_size,
            )
        except ValueError as exc:
            raise CliUsageError(str(exc)) from None
        except InvalidRequest as exc:
            raise CliUsageError(f"the server refused the query: {exc}") from None
        out = _open_output(options, stack)
        writer: CsvWriter | JsonWriter
        if options.format == "csv":
            writer = CsvWriter(out, options.dialect)
            if options.header:
                writer.header(names)
        else:
            writer = JsonWriter(out, names)
        state = {"rows": 0}
        display = Display(
            f"unload {options.keyspace}.{options.table}",
            rows=lambda: state["rows"],
            quiet=options.quiet,
        )
        error: BaseException | None = None
        with display, rxcql.iterate(rows) as iterator:
            try:
                pairs = list(enumerate(formatters))
                written = 0
                for row in iterator:
                    writer.write([format_(row[i]) for i, format_ in pairs])
                    written += 1
                    if not written & 1023:
                        state["rows"] = written
                writer.flush()
                state["rows"] = written
            except BrokenPipeError:
                error = BrokenPipeError("the output was closed")
            except Exception as exc:
                error = exc
        return _summary(options, display, state["rows"], error)


def _summary(
    options: UnloadOptions, display: Display, rows: int, error: BaseException | None
) -> int:
    elapsed = display.elapsed()
    rate = rows / elapsed if elapsed > 0 else 0.0
    where = "stdout" if options.file == "-" else options.file
    if error is not None:
        if rows == 0 and isinstance(error, InvalidRequest):
            raise CliUsageError(f"the server refused the query: {error}")
        display.message(
            f"unload stopped after {rows:,} rows: {type(error).__name__}: {error}", style="red"
        )
        return 1
    display.message(
        f"unloaded {rows:,} rows from {options.keyspace}.{options.table} to {where} in "
        f"{elapsed:.1f} s ({rate:,.0f} rows/s)"
    )
    return 0


def _open_output(options: UnloadOptions, stack: ExitStack) -> IO[str]:
    newline = "" if options.format == "csv" else None
    if options.file == "-":
        out = io.TextIOWrapper(sys.stdout.buffer, encoding=options.encoding, newline=newline)
        stack.callback(_detach, out)
        return out
    try:
        return stack.enter_context(
            open(options.file, "w", encoding=options.encoding, newline=newline)
        )
    except OSError as exc:
        raise CliUsageError(f"cannot write {options.file}: {exc.strerror or exc}") from None


def _detach(out: io.TextIOWrapper) -> None:
    try:
        out.flush()
        out.detach()
    except (BrokenPipeError, ValueError):
        pass


def count(
    keyspace: str, table: str, where: str | None, splits: int | None, connection: Connection
) -> int:
    with ExitStack() as stack:
        cluster, session = connect(connection)
        stack.callback(cluster.shutdown)
        table_metadata(cluster, keyspace, table)
        try:
            total = rxcql.count_table(session, f"{keyspace}.{table}", where=where, splits=splits)
        except ValueError as exc:
            raise CliUsageError(str(exc)) from None
        except InvalidRequest as exc:
            raise CliUsageError(f"the server refused the query: {exc}") from None
        print(total)
        return 0
