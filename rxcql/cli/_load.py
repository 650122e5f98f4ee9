"""``rxcql load``: CSV or JSON lines into a table, through one prepared INSERT and rxcql.execute."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Unpack

from cassandra.metadata import protect_name
from cassandra.query import UNSET_VALUE, BoundStatement

import rxcql
from rxcql._gc import tune_for_bulk
from rxcql._options import RunKeywords
from rxcql._pool import Serialized

from . import _values
from ._connect import Connection, connect
from ._display import Display
from ._records import Dialect, Feed, Record, csv_records, json_records, quoted_fields

#: Messages about single bad rows printed before only counting them.
SHOWN_ERRORS = 50
PARSE_ERROR = "ParseError"


class CliUsageError(Exception):
    """Wrong options or input as a whole (exit status 2)."""


class ErrorLimitError(Exception):
    """More errors than --max-errors allows."""


@dataclass(frozen=True)
class LoadOptions:
    keyspace: str
    table: str
    file: str
    format: str
    header: bool
    columns: list[str] | None
    dialect: Dialect
    null_value: str
    text_escapes: bool
    encoding: str
    batch: Literal["replica", "partition"] | None
    batch_size: int
    concurrency: int | Literal["auto"]
    max_rate: float | None
    retry: int
    max_errors: int | float | None
    checkpoint: str | None
    resume: bool
    failed: str | None
    quiet: bool
    #: Worker processes that run the statements (rxcql.ProcessPool); 0: this process.
    processes: int = 0


def max_errors_option(text: str | None) -> int | float | None:
    """``N`` (a count) or ``P%`` (a share of the rows read); ``-1`` or none: no limit."""
    if text is None:
        return None
    text = text.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 <= share <= 1:
                raise ValueError
            return share
        count = int(text)
    except ValueError:
        raise CliUsageError(f"--max-errors takes a count or a percentage, not {text!r}") from None
    return None if count < 0 else count


def table_metadata(cluster: Any, keyspace: str, table: str) -> Any:
    keyspaces = cluster.metadata.keyspaces
    if keyspace not in keyspaces:
        raise CliUsageError(f"no keyspace {keyspace!r}")
    tables = keyspaces[keyspace].tables
    if table not in tables:
        raise CliUsageError(f"no table {keyspace}.{table}")
    return tables[table]


def resolve_columns(table: Any, names: list[str], where: str) -> list[str]:
    """The table's names of ``names`` (exact, else case-insensitive); unknown ones fail."""
    known = list(table.columns)
    lowered = {name.lower(): name for name in known}
    resolved = []
    for name in names:
        stripped = name.strip()
        if stripped.startswith('"') and stripped.endswith('"') and len(stripped) > 1:
            stripped = stripped[1:-1]
        found = stripped if stripped in table.columns else lowered.get(stripped.lower())
        if found is None:
            raise CliUsageError(
                f"{where}: unknown column {stripped!r} (the table has: {', '.join(known)})"
            )
        resolved.append(found)
    duplicates = {name for name in resolved if resolved.count(name) > 1}
    if duplicates:
        raise CliUsageError(f"{where}: column(s) named twice: {', '.join(sorted(duplicates))}")
    return resolved


class FailedFile:
    """The ``--failed`` file, for the lines that do not parse (the engine writes the rows
    the cluster refused to the same file, through its own handle; both append whole lines)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(self._fd, 0o600)

    def record(self, record: Record, column: str | None, message: str) -> None:
        line = json.dumps(
            {
                "format": 1,
                "line": record.line,
                "raw": record.raw,
                "column": column,
                "error": PARSE_ERROR,
                "message": message,
            }
        )
        os.write(self._fd, (line + "\n").encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)


def earlier_failures(path: str | None) -> tuple[set[int], int]:
    """In a failed file a resumed run appends to: the lines already logged as not parsing,
    and the rows the cluster refused."""
    lines: set[int] = set()
    refused = 0
    if path is None or not Path(path).exists():
        return lines, refused
    with open(path, encoding="utf-8") as file:
        for text in file:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("error") == PARSE_ERROR and isinstance(record.get("line"), int):
                lines.add(record["line"])
            elif "cql" in record:
                refused += 1
    return lines, refused


class BadRowError(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Converter:
    """A record's fields to the INSERT's values, by the columns' types."""

    def __init__(
        self,
        options: LoadOptions,
        names: list[str],
        types: list[Any],
        table: Any,
        insert: Any = None,
        protocol_version: int = 5,
    ) -> None:
        self.names = names
        self.width = len(names)
        self.null = options.null_value
        self.dialect = options.dialect
        self.pair = options.dialect.quote * 2
        keys = {column.name for column in table.primary_key}
        self.key_positions = [i for i, name in enumerate(names) if name in keys]
        kinds = [_values.base(t) for t in types]
        self.texts = [
            str(getattr(k, "typename", "")) in ("ascii", "text", "varchar") for k in kinds
        ]
        self.parsers = [_values.parser(t, options.text_escapes) for t in types]
        self.serializers = [_values.serializer(t, protocol_version) for t in types]
        self.insert = insert
        self.json_parsers = {
            name: _values.json_parser(t) for name, t in zip(names, types, strict=True)
        }
        self.positions = {name: i for i, name in enumerate(names)}
        self.table_columns = set(table.columns)
        #: CSV with a header and --columns: where each wanted column is in the header.
        self.select: list[int] | None = None
        self.header_width: int | None = None

    def from_csv(self, record: Record) -> list[Any]:
        fields = record.fields
        if self.select is not None:
            if len(fields) != self.header_width:
                raise BadRowError(None, f"{len(fields)} fields, the header has {self.header_width}")
            fields = [fields[i] for i in self.select]
        elif len(fields) != self.width:
            raise BadRowError(
                None,
                f"{len(fields)} fields, expected {self.width} ({', '.join(self.names)})",
            )
        quoted: list[bool] | None = None
        if "" in fields and self.pair in record.raw:
            flags = quoted_fields(record.raw, self.dialect)
            if self.select is not None and len(flags) == self.header_width:
                quoted = [flags[i] for i in self.select]
            elif len(flags) == self.width:
                quoted = flags
        values: list[Any] = []
        null = self.null
        for i, text in enumerate(fields):
            if text == "":
                if self.texts[i] and (null != "" or (quoted is not None and quoted[i])):
                    values.append("")
                else:
                    values.append(None)
                continue
            if text == null:
                values.append(None)
                continue
            try:
                values.append(self.parsers[i](text))
            except _values.BadValueError as exc:
                raise BadRowError(self.names[i], str(exc)) from None
        self._check_keys(values)
        return values

    def from_json(self, record: Record) -> list[Any]:
        values: list[Any] = [UNSET_VALUE] * self.width
        positions = self.positions
        for key, value in record.fields.items():
            at = positions.get(key)
            if at is None:
                if key not in self.table_columns:
                    raise BadRowError(key, f"unknown column {key!r}")
                continue  # a column of the table left out by --columns
            if value is None:
                values[at] = None
                continue
            try:
                values[at] = self.json_parsers[key](value)
            except _values.BadValueError as exc:
                raise BadRowError(key, str(exc)) from None
        self._check_keys(values)
        return values

    def bind(self, values: list[Any]) -> BoundStatement:
        """The INSERT bound to ``values``, serialized here (what ``bind`` does, faster)."""
        unset = UNSET_VALUE
        try:
            serialized = [
                value if value is None or value is unset else serialize(value)
                for serialize, value in zip(self.serializers, values, strict=True)
            ]
        except Exception:
            for i, value in enumerate(values):  # again, to name the column
                try:
                    if value is not None and value is not unset:
                        self.serializers[i](value)
                except Exception as exc:
                    raise BadRowError(self.names[i], f"{type(exc).__name__}: {exc}") from None
            raise
        bound = BoundStatement(self.insert)
        bound.values = serialized
        bound.raw_values = values
        return bound

    def _check_keys(self, values: list[Any]) -> None:
        for i in self.key_positions:
            if values[i] is None or values[i] is UNSET_VALUE:
                raise BadRowError(self.names[i], "a primary key column cannot be null or missing")


def open_input(path: str, stack: ExitStack) -> tuple[IO[bytes], int | None]:
    """The input as bytes, and its size when it is a regular file."""
    if path == "-":
        return sys.stdin.buffer, None
    try:
        stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise CliUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = os.fstat(stream.fileno()).st_size
    return stream, size if Path(path).is_file() else None


def run(options: LoadOptions, connection: Connection) -> int:
    """Load; the exit status (0 every row loaded, 1 some failed)."""
    if options.resume and not options.checkpoint:
        raise CliUsageError("--resume needs --checkpoint FILE")
    with ExitStack() as stack:
        stream, size = open_input(options.file, stack)
        cluster, session = connect(connection)
        stack.callback(cluster.shutdown)
        tune_for_bulk()
        return _load(options, session, cluster, stream, size, stack, connection)
    raise AssertionError("unreachable")  # pragma: no cover


def _load(
    options: LoadOptions,
    session: Any,
    cluster: Any,
    stream: IO[bytes],
    size: int | None,
    stack: ExitStack,
    connection: Connection,
) -> int:
    table = table_metadata(cluster, options.keyspace, options.table)
    counters = [c.name for c in table.columns.values() if c.cql_type == "counter"]
    if counters:
        raise CliUsageError(
            f"{options.keyspace}.{options.table} is a counter table ({', '.join(counters)}): "
            "rxcql load writes with INSERT, which counters do not take"
        )
    feed = Feed(stream, options.encoding)
    records: Iterator[Record]
    header_names: list[str] | None = None
    if options.format == "csv":
        records = csv_records(feed, options.dialect)
        if options.header:
            first = next(records, None)
            if first is None:
                raise CliUsageError(f"{options.file}: no header line: the input is empty")
            if first.fields is None:
                raise CliUsageError(
                    f"{options.file}, line {first.line} (the header): {first.error}"
                )
            header_names = resolve_columns(table, first.fields, f"line {first.line} (the header)")
    else:
        records = json_records(feed)
    if options.columns is not None:
        names = resolve_columns(table, options.columns, "--columns")
    elif header_names is not None:
        names = header_names
    else:
        names = list(table.columns)
    target = f"{protect_name(options.keyspace)}.{protect_name(options.table)}"
    insert = session.prepare(
        f"INSERT INTO {target} ({', '.join(protect_name(n) for n in names)}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    insert.is_idempotent = True
    types = [column.type for column in insert.column_metadata]
    try:
        converter = Converter(options, names, types, table, insert, insert.protocol_version or 5)
    except _values.UnsupportedTypeError as exc:
        raise CliUsageError(str(exc)) from None
    if header_names is not None and options.columns is not None:
        missing = [n for n in names if n not in header_names]
        if missing:
            raise CliUsageError(f"--columns names {', '.join(missing)}, not in the header")
        converter.select = [header_names.index(n) for n in names]
        converter.header_width = len(header_names)
    convert = converter.from_csv if options.format == "csv" else converter.from_json
    bind = converter.bind

    failed_file: FailedFile | None = None
    logged_lines: set[int] = set()
    refused_before = 0
    done_before = 0
    if options.resume:
        logged_lines, refused_before = earlier_failures(options.failed)
        done_before = _checkpoint_state(options.checkpoint)
    if options.failed:
        failed_file = FailedFile(options.failed)
        stack.callback(failed_file.close)

    state = _State()
    display = Display(
        f"load {options.keyspace}.{options.table}",
        rows=lambda: state.loaded,
        fraction=(lambda: feed.bytes / size) if size else None,
        failures=lambda: state.bad_lines + state.refused,
        quiet=options.quiet,
    )
    limit = options.max_errors

    def over_limit() -> bool:
        errors = state.bad_lines + state.refused
        if limit is None:
            return False
        if isinstance(limit, int):
            return bool(errors > limit)
        return bool(state.records >= 100 and errors > limit * state.records)

    def report(line: int, column: str | None, message: str) -> None:
        state.shown += 1
        if state.shown <= SHOWN_ERRORS:
            where = f"line {line}" + (f", column {column}" if column else "")
            display.message(f"{where}: {message}", style="red")
        elif state.shown == SHOWN_ERRORS + 1:
            display.message(
                "... more errors are counted, not shown"
                + (f" (all are in {options.failed})" if options.failed else ""),
                style="red",
            )

    # (input index, line) of rows not answered yet
    lines: deque[tuple[int, int]] = deque()
    pooled = options.processes > 0
    keep_bound = pooled and options.failed is not None
    insert_text = insert.query_string

    def items() -> Iterator[tuple[Any, Any]]:
        index = 0
        for record in records:
            state.records += 1
            try:
                if record.error is not None:
                    raise BadRowError(None, record.error)
                bound = bind(convert(record))
            except BadRowError as bad:
                if index < done_before or record.line in logged_lines:
                    state.bad_before += 1  # counted (and logged) by the run this one resumes
                    continue
                state.bad_lines += 1
                if failed_file is not None:
                    failed_file.record(record, bad.column, bad.message)
                report(record.line, bad.column, bad.message)
                if over_limit():
                    raise ErrorLimitError() from None
                continue
            lines.append((index, record.line))
            index += 1
            if pooled:
                # The workers prepare the text and send these bytes as they are; the failed
                # log (in this process) records the values the bound row decodes to.
                serialized = Serialized(bound.values)
                if keep_bound:
                    serialized.bound = bound
                yield insert_text, serialized
            else:
                yield bound, None

    # Checkpoints and the failed log are the engine's in one process, and the pool's parent's
    # (this process's) with --processes: the same files, so either may resume the other.
    long_run = RunKeywords(
        checkpoint=options.checkpoint,
        resume=options.resume,
        run_id=f"rxcql load {options.keyspace}.{options.table}",
        failed_log=options.failed,
    )
    observable: Any
    if pooled:
        pool = stack.enter_context(
            rxcql.ProcessPool(
                functools.partial(_worker_session, connection, options.keyspace),
                processes=options.processes,
            )
        )
        # Each worker prepares the INSERT itself (unmarked): a plain INSERT is idempotent.
        keywords = _run_keywords(options, idempotent_only=False)
        keywords.update(long_run)
        observable = pool.execute(items(), **keywords)
    else:
        keywords = _run_keywords(options, progress=display.update, progress_interval=0.25)
        keywords.update(long_run)
        observable = rxcql.execute(session, items(), **keywords)
    stopped = None
    with display, rxcql.iterate(observable) as results:
        try:
            for result in results:
                while lines and lines[0][0] < result.index:
                    lines.popleft()
                entry = lines.popleft() if lines and lines[0][0] == result.index else None
                if pooled and not (state.loaded + state.refused) % 2048:
                    display.tick()
                if result.success:
                    state.loaded += 1
                    continue
                state.refused += 1
                error = result.result_or_exc
                report(entry[1] if entry else 0, None, f"{type(error).__name__}: {error}")
                if over_limit():
                    stopped = "too many errors"
                    break
        except ErrorLimitError:
            stopped = "too many errors"
        except rxcql.CheckpointError as exc:
            raise CliUsageError(str(exc)) from None
    return _summary(options, display, state, stopped, done_before, refused_before)


def _run_keywords(
    options: LoadOptions, *, idempotent_only: bool = True, **extra: Unpack[RunKeywords]
) -> RunKeywords:
    """The engine's keywords every load takes from the options (batching, concurrency, retries:
    ``--retry N`` is N retries after the first attempt, the rate, failures as results), and
    ``extra``."""
    return RunKeywords(
        **extra,
        concurrency=options.concurrency,
        batch=options.batch,
        batch_size=options.batch_size,
        retry=(
            rxcql.Retry(attempts=options.retry + 1, idempotent_only=idempotent_only)
            if options.retry > 0
            else None
        ),
        max_rate=options.max_rate,
        raise_on_first_error=False,
    )


def _worker_session(connection: Connection, keyspace: str) -> Any:
    """A ``--processes`` worker's session: connected as this process is, to the keyspace."""
    _, session = connect(connection)  # the pool shuts its cluster down at exit
    session.set_keyspace(keyspace)
    return session


def _checkpoint_state(path: str | None) -> int:
    from rxcql._longrun import read_checkpoint

    try:
        state = read_checkpoint(path) if path else None
    except rxcql.CheckpointError as exc:
        raise CliUsageError(str(exc)) from None
    return state.done if state is not None else 0


class _State:
    __slots__ = ("bad_before", "bad_lines", "loaded", "records", "refused", "shown")

    def __init__(self) -> None:
        self.bad_before = 0
        self.records = 0
        self.loaded = 0
        self.bad_lines = 0
        self.refused = 0
        self.shown = 0


def _summary(
    options: LoadOptions,
    display: Display,
    state: _State,
    stopped: str | None,
    done_before: int,
    refused_before: int,
) -> int:
    elapsed = display.elapsed()
    target = f"{options.keyspace}.{options.table}"
    rate = state.loaded / elapsed if elapsed > 0 else 0.0
    say: Callable[..., None] = display.message
    resumed = f" (resumed after {done_before:,} rows)" if options.resume and done_before else ""
    say(
        f"loaded {state.loaded:,} rows into {target} in {elapsed:.1f} s ({rate:,.0f} rows/s)"
        f"{resumed}; {state.bad_lines:,} lines did not parse, {state.refused:,} rows failed"
    )
    earlier = refused_before + state.bad_before
    if earlier:
        kept = f" (in {options.failed})" if options.failed else ""
        say(f"{earlier:,} rows failed in the run(s) this one resumed{kept}")
    if stopped:
        limit = options.max_errors
        shown = f"{limit:.1%}" if isinstance(limit, float) else str(limit)
        say(f"stopped: more errors than --max-errors {shown}", style="red")
    failures = state.bad_lines + state.refused + earlier
    if failures or stopped:
        where = (
            f"; they are in {options.failed}"
            if options.failed
            else "; use --failed FILE to keep them"
        )
        say(f"{failures:,} rows were not loaded{where}", style="red")
        return 1
    return 0


def replay(options: LoadOptions, path: str, connection: Connection) -> int:
    """``--replay FILE``: the rows of a failed file the cluster refused, run again."""
    parse_errors = sum(1 for _ in _parse_records(path))
    with ExitStack() as stack:
        cluster, session = connect(connection)
        stack.callback(cluster.shutdown)
        state = _State()
        display = Display(
            f"replay {path}",
            rows=lambda: state.loaded,
            failures=lambda: state.refused,
            quiet=options.quiet,
        )
        try:
            observable = rxcql.replay_failed(
                session,
                path,
                **_run_keywords(
                    options,
                    progress=display.update,
                    progress_interval=0.25,
                    failed_log=options.failed,
                ),
            )
        except ValueError as exc:
            raise CliUsageError(f"cannot replay {path}: {exc}") from None
        with display, rxcql.iterate(observable) as results:
            for result in results:
                if result.success:
                    state.loaded += 1
                    continue
                state.refused += 1
                error = result.result_or_exc
                state.shown += 1
                if state.shown <= SHOWN_ERRORS:
                    display.message(
                        f"record {result.index + 1}: {type(error).__name__}: {error}", style="red"
                    )
        display.message(
            f"replayed {state.loaded + state.refused:,} rows from {path}: {state.loaded:,} "
            f"loaded, {state.refused:,} failed"
            + (f" (in {options.failed})" if options.failed and state.refused else "")
        )
        if parse_errors:
            display.message(
                f"{parse_errors:,} lines in {path} did not parse and are not replayed: fix their "
                "'raw' text and load them with rxcql load",
                style="red",
            )
        return 1 if state.refused or parse_errors else 0


def _parse_records(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        for text in file:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("error") == PARSE_ERROR:
                yield record
