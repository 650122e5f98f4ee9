"""``read_cassandra``: a table as a Ray Dataset, one read task per group of token ranges.

The driver process splits the ring as :func:`rxcql.scan_table` does (``_scan.token_ranges``),
with a session from ``connect``, and deals the ranges out to read tasks in token order. Each
task, in a worker process, runs its range queries through :func:`rxcql.stream_rows_many` on
the process's session (each query sent to a replica of its range) and yields an Arrow table of
at most ``block_rows`` rows whenever it has that many: a task holds at most the page window and
one block, whatever the size of its ranges.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray.data
from cassandra.metadata import protect_name
from ray.data.block import BlockMetadata
from ray.data.datasource.datasource import Datasource, ReadTask

from .._consumers import iterate
from .._rows import stream_rows_many
from .._scan import SPLITS_PER_NODE, _Routed, _split_name, table_metadata, token_ranges
from ._sessions import Connect, prepared_for, session_for

_Convert = Callable[[Any], Any]

#: CQL types with an Arrow type of their own, and how a driver value becomes an Arrow value.
_SCALARS: dict[str, tuple[pa.DataType, _Convert | None]] = {
    "ascii": (pa.string(), None),
    "text": (pa.string(), None),
    "varchar": (pa.string(), None),
    "tinyint": (pa.int8(), None),
    "smallint": (pa.int16(), None),
    "int": (pa.int32(), None),
    "bigint": (pa.int64(), None),
    "counter": (pa.int64(), None),
    "float": (pa.float32(), None),
    "double": (pa.float64(), None),
    "boolean": (pa.bool_(), None),
    "blob": (pa.binary(), None),
    "timestamp": (pa.timestamp("ms"), None),
    "date": (pa.date32(), lambda value: value.days_from_epoch),
    "time": (pa.time64("ns"), lambda value: value.nanosecond_time),
    # No Arrow type holds these exactly: their text, as cqlsh prints it.
    "uuid": (pa.string(), str),
    "timeuuid": (pa.string(), str),
    "inet": (pa.string(), str),
    "varint": (pa.string(), str),
    "decimal": (pa.string(), str),
    "duration": (pa.string(), str),
}


def _unfrozen(cql_type: str) -> str:
    cql_type = cql_type.strip()
    while cql_type.startswith("frozen<") and cql_type.endswith(">"):
        cql_type = cql_type[len("frozen<") : -1].strip()
    return cql_type


def _split_pair(inner: str) -> tuple[str, str] | None:
    depth = 0
    for position, char in enumerate(inner):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            return inner[:position].strip(), inner[position + 1 :].strip()
    return None


def _optional(convert: _Convert | None) -> _Convert | None:
    if convert is None:
        return None
    return lambda value: None if value is None else convert(value)


def _same(value: Any) -> Any:
    return value


def _each(convert: _Convert | None) -> _Convert:
    element = convert or _same
    return lambda values: [element(value) for value in values]


def _pairs(key: _Convert | None, value: _Convert | None) -> _Convert:
    convert_key, convert_value = key or _same, value or _same
    return lambda mapping: [(convert_key(k), convert_value(v)) for k, v in mapping.items()]


def arrow_column(cql_type: str) -> tuple[pa.DataType, _Convert | None]:
    """The Arrow type of a CQL type and the conversion of a driver value to it (None: as is).

    Scalars map to their Arrow type; lists and sets of scalars to lists, maps of scalars to
    maps; anything else (UDTs, tuples, nested collections) to its text.
    """
    cql_type = _unfrozen(cql_type)
    if cql_type in _SCALARS:
        arrow_type, convert = _SCALARS[cql_type]
        return arrow_type, _optional(convert)
    for prefix in ("list<", "set<"):
        if cql_type.startswith(prefix) and cql_type.endswith(">"):
            element = _unfrozen(cql_type[len(prefix) : -1])
            if element in _SCALARS:
                element_type, element_convert = _SCALARS[element]
                return pa.list_(element_type), _optional(_each(_optional(element_convert)))
    if cql_type.startswith("map<") and cql_type.endswith(">"):
        pair = _split_pair(cql_type[len("map<") : -1])
        if pair is not None:
            key, value = (_unfrozen(part) for part in pair)
            if key in _SCALARS and value in _SCALARS:
                key_type, key_convert = _SCALARS[key]
                value_type, value_convert = _SCALARS[value]
                return pa.map_(key_type, value_type), _optional(
                    _pairs(_optional(key_convert), _optional(value_convert))
                )
    return pa.string(), _optional(str)


@dataclass(frozen=True)
class _Range:
    """``start < token <= end`` (``start`` None: from the lowest token), and the addresses of
    the replicas that own it (Host objects do not travel to the workers; addresses do)."""

    start: int | None
    end: int
    replicas: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    """What a read task needs, picklable: no session, no driver objects."""

    connect: Connect
    target: str
    partition_key: str
    select: tuple[str, ...]
    types: tuple[str, ...]
    where: str | None
    concurrency: int
    fetch_size: int | None
    max_pages: int | None
    block_rows: int

    def schema(self) -> pa.Schema:
        pairs = zip(self.select, self.types, strict=True)
        return pa.schema([(name, arrow_column(cql)[0]) for name, cql in pairs])


def _block_metadata() -> BlockMetadata:
    # The fields of BlockMetadata differ between Ray releases (``schema`` left it in 2.4x);
    # what the sink does not know it leaves None.
    known = {field.name for field in dataclasses.fields(BlockMetadata)}
    values = {
        "num_rows": None,
        "size_bytes": None,
        "schema": None,
        "input_files": None,
        "exec_stats": None,
    }
    return BlockMetadata(**{name: value for name, value in values.items() if name in known})


def _read(plan: _Plan, ranges: Sequence[_Range]) -> Iterator[pa.Table]:
    """One read task (in a worker process): the rows of ``ranges``, a block at a time."""
    session = session_for(plan.connect)
    columns = ", ".join(protect_name(name) for name in plan.select)
    extra = f" AND ({plan.where}) ALLOW FILTERING" if plan.where else ""
    token = f"token({plan.partition_key})"
    middle = prepared_for(
        plan.connect,
        f"SELECT {columns} FROM {plan.target} WHERE {token} > ? AND {token} <= ?{extra}",
    )
    first = prepared_for(
        plan.connect, f"SELECT {columns} FROM {plan.target} WHERE {token} <= ?{extra}"
    )
    metadata = session.cluster.metadata
    queries = []
    for piece in ranges:
        if piece.start is None:
            bound = first.bind((piece.end,))
        else:
            bound = middle.bind((piece.start, piece.end))
        hosts = [metadata.get_host(address) for address in piece.replicas]
        bound.rxcql_replicas = tuple(host for host in hosts if host is not None)
        queries.append((bound, ()))
    schema = plan.schema()
    converts = [arrow_column(cql)[1] for cql in plan.types]
    names = list(plan.select)
    width = len(names)

    def block(columns: list[list[Any]]) -> pa.Table:
        arrays = []
        for values, convert, arrow_field in zip(columns, converts, schema, strict=True):
            if convert is not None:
                values = [convert(value) for value in values]
            arrays.append(pa.array(values, type=arrow_field.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    rows = stream_rows_many(
        _Routed(session),
        queries,
        concurrency=plan.concurrency,
        fetch_size=plan.fetch_size,
        max_pages=plan.max_pages,
    )
    pending: list[list[Any]] = [[] for _ in range(width)]
    count = 0
    emitted = False
    for row in iterate(rows):
        if isinstance(row, dict):
            for position, name in enumerate(names):
                pending[position].append(row[name])
        else:
            for position in range(width):
                pending[position].append(row[position])
        count += 1
        if count == plan.block_rows:
            yield block(pending)
            emitted = True
            pending = [[] for _ in range(width)]
            count = 0
    if count or not emitted:
        yield block(pending)


class CassandraDatasource(Datasource):
    """The Ray Data datasource behind :func:`read_cassandra` (see there for the arguments).

    Made in the driver process: it reads the table's schema and splits the ring there, with a
    session from ``connect`` (kept for the process, shut down at exit).
    """

    def __init__(
        self,
        connect: Connect,
        table: str,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        *,
        parallelism: int | None = None,
        splits: int | None = None,
        concurrency: int = 4,
        fetch_size: int | None = 5000,
        max_pages: int | None = 4,
        block_rows: int = 5000,
    ) -> None:
        if not callable(connect):
            raise TypeError(f"connect must be a callable returning a Session, got {connect!r:.80}")
        if columns is not None and (
            isinstance(columns, str) or not all(isinstance(c, str) for c in columns)
        ):
            raise TypeError("columns must be a list of column names or None")
        for name, value in (("parallelism", parallelism), ("splits", splits)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive int, got {block_rows!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        session = session_for(connect)
        keyspace, name = _split_name(table, session)
        table_meta = table_metadata(session, keyspace, name, "read_cassandra")
        known = {column: meta.cql_type for column, meta in table_meta.columns.items()}
        select = list(known) if columns is None else list(columns)
        unknown = [column for column in select if column not in known]
        if unknown:
            raise ValueError(f"read_cassandra: {keyspace}.{name} has no column(s) {unknown}")
        hosts = len(list(session.cluster.metadata.all_hosts())) or 1
        wanted = max(splits or SPLITS_PER_NODE * hosts, parallelism or 0)
        self._ranges = [
            _Range(piece.start, piece.end, tuple(str(host.address) for host in piece.replicas))
            for piece in token_ranges(session, keyspace, wanted)
        ]
        self._tasks = min(parallelism or len(self._ranges), len(self._ranges))
        self._plan = _Plan(
            connect=connect,
            target=f"{protect_name(keyspace)}.{protect_name(name)}",
            partition_key=", ".join(protect_name(c.name) for c in table_meta.partition_key),
            select=tuple(select),
            types=tuple(known[column] for column in select),
            where=where,
            concurrency=concurrency,
            fetch_size=fetch_size,
            max_pages=max_pages,
            block_rows=block_rows,
        )

    @property
    def tasks(self) -> int:
        """The number of read tasks."""
        return self._tasks

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the blocks."""
        return self._plan.schema()

    def get_name(self) -> str:
        return "Cassandra"

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        """``self.tasks`` read tasks (Ray's ``parallelism`` is the one read_cassandra asked
        for), each over a run of neighbouring token ranges."""
        count = len(self._ranges)
        tasks = max(1, min(self._tasks, count))
        groups = [self._ranges[count * k // tasks : count * (k + 1) // tasks] for k in range(tasks)]
        return [
            ReadTask(functools.partial(_read, self._plan, group), _block_metadata())
            for group in groups
        ]


def read_cassandra(
    connect: Connect,
    table: str,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    *,
    parallelism: int | None = None,
    splits: int | None = None,
    concurrency: int = 4,
    fetch_size: int | None = 5000,
    max_pages: int | None = 4,
    block_rows: int = 5000,
    ray_remote_args: dict[str, Any] | None = None,
) -> ray.data.Dataset:
    """A Cassandra table as a :class:`ray.data.Dataset`, read by token ranges in Ray tasks.

    The driver process splits the ring as :func:`rxcql.scan_table` does (with a session from
    ``connect``, kept for the process); the ranges are dealt out in token order to
    ``parallelism`` read tasks. Each task streams its ranges' pages through
    :func:`rxcql.stream_rows_many` (at most ``concurrency`` queries and ``max_pages`` pages
    at once, each query sent to a replica of its range) and yields Arrow blocks of at most
    ``block_rows`` rows as they fill: memory per task stays bounded for any table. Every row
    comes out once (rows written during the read may or may not be seen).

    Column types: CQL scalars map to their Arrow types (``int`` to int32, ``timestamp`` to
    timestamp[ms], ``date`` to date32, ...); ``uuid``, ``timeuuid``, ``inet``, ``varint``,
    ``decimal`` and ``duration`` to their text; lists and sets of scalars to lists, maps of
    scalars to maps; UDTs, tuples and nested collections to their text.

    Args:
        connect: a picklable callable with no arguments returning a connected
            ``cassandra.cluster.Session`` (a module-level function, or a ``functools.partial``
            of one): it runs in the driver and in the worker processes.
        table: ``"keyspace.table"``, or ``"table"`` in the session's keyspace.
        columns: the columns to read; None for all.
        where: a filter added to each range query as ``AND (where) ALLOW FILTERING``.
        parallelism: the number of read tasks (default: one per token range, at least 16 per
            node); the ring is split into at least this many ranges.
        splits: the least number of token ranges.
        concurrency: range queries at once, per task.
        fetch_size: rows per page.
        max_pages: pages waiting in memory, per task.
        block_rows: the most rows in one block.
        ray_remote_args: passed to ``ray.data.read_datasource`` (``num_cpus``, ``max_retries``...).

    Returns:
        A lazy :class:`ray.data.Dataset`: nothing is read until it is consumed.

    Raises:
        TypeError, ValueError: (at once) a bad argument, a table or column the driver's schema
            does not know, a partitioner rxcql cannot split.
    """
    datasource = CassandraDatasource(
        connect,
        table,
        columns,
        where,
        parallelism=parallelism,
        splits=splits,
        concurrency=concurrency,
        fetch_size=fetch_size,
        max_pages=max_pages,
        block_rows=block_rows,
    )
    keywords: dict[str, Any] = {"override_num_blocks": datasource.tasks}
    if ray_remote_args is not None:
        keywords["ray_remote_args"] = ray_remote_args
    dataset: ray.data.Dataset = ray.data.read_datasource(datasource, **keywords)
    return dataset
