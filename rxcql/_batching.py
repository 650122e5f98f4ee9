"""Grouped batching of writes: a stage of the run between the source and the bounded flat-map.

With ``batch="partition"`` or ``batch="replica"`` the run does not send every pulled statement
as a request of its own: :class:`Batcher` groups modifications into UNLOGGED batches, as dsbulk,
the Spark connector and cqlsh COPY do, and hands the flat-map *requests* (a batch, or one
statement). ``concurrency`` then counts requests in flight; the window still counts statements.

What may share a batch (facts checked on Cassandra 5.0.8, see docs/bulk.md):

* only ``INSERT`` / ``UPDATE`` / ``DELETE`` of a prepared statement whose routing key is known,
  without an ``IF`` condition (a conditional batch may not span partitions, and each
  conditional write keeps its own ``[applied]`` row); anything else runs alone;
* counter updates only with counter updates (a ``COUNTER`` batch);
* ``"partition"``: statements of one table and partition; ``"replica"``: statements whose
  partitions have the same replica set (the driver's token map), so the coordinator the
  token-aware policy picks is a replica of every row;
* never two statements that could collide on a row (the same primary key, or a partition-level
  delete and anything in that partition): the statements of a batch share one client timestamp,
  and then the larger value (or the tombstone) wins, not the later one. A colliding statement
  seals the open batch it collides with, so that one is sent first and gets the earlier
  timestamp, and starts a new one;
* at most ``batch_size`` statements and ``batch_bytes`` bytes of bound values; a statement too
  big for any batch runs alone.

A write that runs alone (conditional, unroutable, too big) first seals every open batch, so that
writes are sent in input order whatever their kind. Nothing waits on a timer: the run flushes the
open batches whenever the source has nothing more ready, the window is full or the input ended.
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cassandra.query import (
    BatchStatement,
    BatchType,
    BoundStatement,
    PreparedStatement,
    SimpleStatement,
)

log = logging.getLogger("rxcql")

BatchMode = Literal["partition", "replica"]
BATCH_MODES: Final = ("partition", "replica")
DEFAULT_BATCH_SIZE: Final = 32
#: Bound-value bytes per batch: the server fails batches over ``batch_size_fail_threshold``
#: (50 KiB by default, counted on the mutations, which are larger than their values).
DEFAULT_BATCH_BYTES: Final = 32 * 1024

_STRINGS = re.compile(r"'(?:[^']|'')*'|\$\$.*?\$\$", re.DOTALL)
_CONDITION = re.compile(r"\bIF\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"\s*(\w+)")
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE"})


def _verb(query: str) -> str:
    match = _FIRST_WORD.match(query)
    return match.group(1).upper() if match else ""


@dataclass(frozen=True, slots=True)
class _Shape:
    """What rxcql knows of a prepared statement (computed once per prepared statement)."""

    write: bool
    batchable: bool
    counter: bool
    keyspace: str | None
    table: str | None
    #: Positions of the primary-key columns among the bound values, partition key first; None
    #: when the statement does not bind the whole primary key (a partition-level delete, a
    #: literal in the CQL text, no schema metadata): it then collides with its whole partition.
    row_positions: tuple[int, ...] | None


def _shape(session: Any, prepared: PreparedStatement) -> _Shape:
    query = prepared.query_string or ""
    write = _verb(query) in _WRITES
    conditional = bool(_CONDITION.search(_STRINGS.sub("''", query)))
    columns = list(prepared.column_metadata or ())
    keyspace = columns[0].keyspace_name if columns else prepared.keyspace
    table = columns[0].table_name if columns else None
    counter = any(getattr(c.type, "typename", "") == "counter" for c in columns)
    routable = bool(prepared.routing_key_indexes)
    row_positions: tuple[int, ...] | None = None
    try:
        meta = session.cluster.metadata.keyspaces[keyspace].tables[table]
        names = [c.name for c in columns]
        row_positions = tuple(names.index(c.name) for c in meta.primary_key)
    except (AttributeError, KeyError, TypeError, ValueError):
        row_positions = None  # the schema is not known, or the key is not all bound
    return _Shape(
        write=write,
        batchable=write and routable and not conditional and table is not None,
        counter=counter,
        keyspace=keyspace,
        table=table,
        row_positions=row_positions,
    )


@dataclass(slots=True)
class Request:
    """What the flat-map sends as one request: one statement, or a batch of several.

    ``items`` are ``(statement, parameters)`` pairs (bound statements carry their values);
    ``indexes`` their input positions. ``timestamp`` is set for statements sent again after
    their batch was refused: they keep the client timestamp the batch had.
    """

    indexes: list[int]
    items: list[tuple[Any, Any]]
    counter: bool = False
    timestamp: int | None = None
    #: Whether a failure of the whole batch may be retried statement by statement.
    batched: bool = False
    #: Attempts so far (retries, see :mod:`rxcql._retry`).
    attempts: int = 1
    #: When this attempt was sent, on the run's clock (for latency: ``concurrency="auto"``,
    #: progress reports).
    sent: float = 0.0

    def statement(self) -> tuple[Any, Any]:
        """What to hand to ``execute_async``: the one statement, or an UNLOGGED (or COUNTER)
        batch of all."""
        if len(self.items) == 1:
            return self.items[0]
        batch = BatchStatement(BatchType.COUNTER if self.counter else BatchType.UNLOGGED)
        first = self.items[0][0]
        batch.consistency_level = first.consistency_level
        batch.serial_consistency_level = first.serial_consistency_level
        batch.is_idempotent = all(bound.is_idempotent for bound, _ in self.items)
        for bound, _ in self.items:
            batch.add(bound)
        return batch, None

    def alone(self) -> list[Request]:
        """The statements of a refused batch, each a request of its own, keeping its timestamp."""
        return [
            Request([index], [item], self.counter, self.timestamp)
            for index, item in zip(self.indexes, self.items, strict=True)
        ]

    def with_timestamp(self, timestamp: int | None) -> Request:
        return Request(self.indexes, self.items, self.counter, timestamp, self.batched)

    def again(self, timestamp: int | None) -> Request:
        """The next attempt of this request, with the client timestamp of its first one."""
        return Request(
            self.indexes, self.items, self.counter, timestamp, self.batched, self.attempts + 1
        )

    def before(self, index: int) -> Request | None:
        """Only the statements before input position ``index`` (None if there are none)."""
        if self.indexes[-1] < index:
            return self
        kept = [(i, item) for i, item in zip(self.indexes, self.items, strict=True) if i < index]
        if not kept:
            return None
        return Request(
            [i for i, _ in kept],
            [item for _, item in kept],
            self.counter,
            self.timestamp,
            self.batched and len(kept) > 1,
            self.attempts,
        )


@dataclass(slots=True)
class _Group:
    key: Any
    counter: bool
    indexes: list[int] = field(default_factory=list)
    items: list[tuple[Any, Any]] = field(default_factory=list)
    size: int = 0
    rows: set[Any] = field(default_factory=set)
    partitions: set[Any] = field(default_factory=set)
    wide: set[Any] = field(default_factory=set)

    def collides(self, partition: Any, row: Any) -> bool:
        if self.counter:
            return False  # increments add up in any order, in one batch too
        if row is None:
            return partition in self.partitions or partition in self.wide
        return row in self.rows or partition in self.wide

    def request(self) -> Request:
        return Request(self.indexes, self.items, self.counter, batched=len(self.items) > 1)


class _ReplicaSets:
    """Replica-set keys of partition keys, through the driver's token map; the ring is read as
    plain ints once per token map (a Murmur3 ring), so a lookup is a hash and a bisect."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._map: Any = None
        self._ring: list[int] = []
        self._keys: dict[int, Any] = {}
        self._murmur3: Any = None

    def key(self, keyspace: str, routing_key: bytes) -> Any:
        metadata = getattr(getattr(self._session, "cluster", None), "metadata", None)
        token_map = getattr(metadata, "token_map", None)
        if token_map is None:
            return None
        if token_map is not self._map:
            self._reset(token_map)
        if self._murmur3 is not None:
            point = bisect_left(self._ring, self._murmur3(routing_key))
            if point == len(self._ring):
                point = 0
            cached = self._keys.get(point)
            if cached is not None and cached[0] == keyspace:
                return cached[1]
            token = token_map.ring[point]
            replicas = frozenset(token_map.get_replicas(keyspace, token))
            self._keys[point] = (keyspace, replicas)
            return replicas
        return frozenset(
            token_map.get_replicas(keyspace, token_map.token_class.from_key(routing_key))
        )

    def _reset(self, token_map: Any) -> None:
        self._map = token_map
        self._keys = {}
        self._murmur3 = None
        try:
            from cassandra.metadata import Murmur3Token
            from cassandra.murmur3 import murmur3
        except ImportError:  # pragma: no cover - the driver's C extension is missing
            return
        if token_map.token_class is Murmur3Token:
            self._ring = [token.value for token in token_map.ring]
            self._murmur3 = murmur3


class Batcher:
    """Groups a run's statements into requests. Used by one thread at a time (the run's drain
    loop); holds at most the statements pulled and not yet sent, which the window bounds."""

    def __init__(
        self, session: Any, mode: BatchMode | None, batch_size: int, batch_bytes: int
    ) -> None:
        self._session = session
        #: None: no grouping, every statement its own request (a run with retries only).
        self._grouping = mode is not None
        self._max = batch_size
        self._max_bytes = batch_bytes
        self._groups: dict[Any, _Group] = {}
        self._ready: deque[Request] = deque()
        self._shapes: dict[int, tuple[PreparedStatement, _Shape]] = {}
        self._replicas = _ReplicaSets(session) if mode == "replica" else None
        self._fell_back = False
        #: Statements held: pulled, not yet handed out as a request.
        self.held = 0

    def add(self, index: int, statement: Any, parameters: Any) -> None:
        """Take one pulled statement. Raises what binding raises (the statement's failure)."""
        if not self._grouping:
            self.held += 1
            self._ready.append(Request([index], [(statement, parameters)]))
            return
        if isinstance(statement, PreparedStatement):
            statement, parameters = statement.bind(parameters), None
        self.held += 1
        if not isinstance(statement, BoundStatement):
            self._alone(index, statement, parameters, _is_write(statement))
            return
        bound = statement
        shape = self._shape_of(bound.prepared_statement)
        routing_key = bound.routing_key if shape.batchable else None
        if routing_key is None:
            self._alone(index, bound, None, shape.write)
            return
        size = sum(len(v) for v in bound.values if type(v) is bytes)
        if size > self._max_bytes:
            self._alone(index, bound, None, True)
            return
        key = self._group_key(shape, bound, routing_key)
        partition = (shape.table, routing_key)
        positions = shape.row_positions
        row = None if positions is None else (shape.table, *[bound.values[i] for i in positions])
        group = self._groups.get(key)
        if group is not None and (
            group.collides(partition, row) or group.size + size > self._max_bytes
        ):
            self._seal(group)
            group = None
        if group is None:
            group = self._groups[key] = _Group(key, shape.counter)
        group.indexes.append(index)
        group.items.append((bound, None))
        group.size += size
        if row is None:
            group.wide.add(partition)
        else:
            group.rows.add(row)
            group.partitions.add(partition)
        if len(group.items) >= self._max:
            self._seal(group)

    def take(self, flush: bool) -> Request | None:
        """The next request to send: sealed ones first, in the order they were sealed; then,
        with ``flush``, the open batches, oldest first. None if nothing may go now."""
        if self._ready:
            request = self._ready.popleft()
        elif flush and self._groups:
            group = self._groups.pop(next(iter(self._groups)))
            request = group.request()
        else:
            return None
        self.held -= len(request.indexes)
        return request

    def sendable(self, flush: bool) -> bool:
        return bool(self._ready) or (flush and bool(self._groups))

    def resend_alone(self, refused: list[Request]) -> None:
        """The statements of refused batches go out again one by one, before anything else."""
        alone = [single for request in refused for single in request.alone()]
        for request in reversed(alone):
            self._ready.appendleft(request)
        self.held += len(alone)

    # -- internals ---------------------------------------------------------------------------

    def _shape_of(self, prepared: PreparedStatement) -> _Shape:
        cached = self._shapes.get(id(prepared))
        if cached is not None and cached[0] is prepared:
            return cached[1]
        shape = _shape(self._session, prepared)
        self._shapes[id(prepared)] = (prepared, shape)
        return shape

    def _group_key(self, shape: _Shape, bound: BoundStatement, routing_key: bytes) -> Any:
        level = (bound.consistency_level, bound.serial_consistency_level, shape.counter)
        if self._replicas is not None and shape.keyspace is not None:
            replicas = self._replicas.key(shape.keyspace, routing_key)
            if replicas:
                return (shape.keyspace, replicas, *level)
            if not self._fell_back:
                self._fell_back = True
                log.warning(
                    "rxcql: batch='replica' without the driver's token map (token metadata "
                    "disabled, or not known yet): grouping by partition instead, as "
                    "batch='partition'"
                )
        return (shape.table, routing_key, *level)

    def _seal(self, group: _Group) -> None:
        del self._groups[group.key]
        self._ready.append(group.request())

    def _alone(self, index: int, statement: Any, parameters: Any, write: bool) -> None:
        if write:
            # Sent after every open batch, so that writes go out in input order.
            for group in list(self._groups.values()):
                self._seal(group)
        self._ready.append(Request([index], [(statement, parameters)]))


def _is_write(statement: Any) -> bool:
    """Whether a statement rxcql cannot batch might write (only a SELECT surely does not)."""
    if isinstance(statement, str):
        query = statement
    elif isinstance(statement, SimpleStatement):
        query = statement.query_string
    else:
        return True
    return _verb(query) != "SELECT"


def check_batch_knobs(batch: Any, batch_size: Any, batch_bytes: Any) -> None:
    """Raise TypeError / ValueError naming a bad batching knob."""
    if batch is not None and batch not in BATCH_MODES:
        raise ValueError(f'batch must be None, "partition" or "replica", got {batch!r:.100}')
    for name, value in (("batch_size", batch_size), ("batch_bytes", batch_bytes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than 0, got {value}")
    if batch_size > 0xFFFF:
        raise ValueError(
            f"batch_size must be at most 65535 (the protocol's limit), got {batch_size}"
        )


# -- the server's warnings about rxcql's own batches ------------------------------------------

_PROTOCOL_LOGGER = "cassandra.protocol"
_KINDS: Final = (
    ("Unlogged batch covering", "unlogged batch across partitions"),
    ("Batch for", "batch size over the warn threshold"),
)


def _warning_text(record: logging.LogRecord) -> str | None:
    """The server warning a driver log record carries, if it is one that batches draw."""
    if record.msg != "Server warning: %s" or not record.args:
        return None
    args = record.args if isinstance(record.args, tuple) else (record.args,)
    text = str(args[0])
    if any(text.startswith(prefix) for prefix, _ in _KINDS):
        return text
    return None


class _HoldBack(logging.Filter):
    """On the driver's ``cassandra.protocol`` logger while batched runs are active.

    The driver logs each server warning on its IO thread as it decodes a response, just before
    it runs that response's callbacks on the same thread. A batch-like warning is held back
    here until that is known: if the next callback on the thread is one of rxcql's batches and
    the warning is among its future's warnings, it is rxcql's (counted, reported once per run);
    otherwise it is released to the log unchanged (the user's own request drew it) at the next
    warning on that thread, or when the last batched run ends.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.active = 0
        self.held: dict[int, list[logging.LogRecord]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.active == 0 or getattr(record, "rxcql_released", False):
            return True
        if _warning_text(record) is None:
            return True
        with self.lock:
            earlier = self.held.pop(threading.get_ident(), [])
            self.held[threading.get_ident()] = [record]
        _release(earlier)
        return False

    def claim(self, warnings: list[str]) -> list[str]:
        """On the IO thread, in a batch's callback: the held warnings that are this batch's."""
        with self.lock:
            held = self.held.pop(threading.get_ident(), [])
        mine: list[str] = []
        others: list[logging.LogRecord] = []
        remaining = list(warnings)
        for record in held:
            text = _warning_text(record)
            if text in remaining:
                remaining.remove(text)
                mine.append(text)
            else:
                others.append(record)
        _release(others)
        return mine

    def start(self) -> None:
        with self.lock:
            self.active += 1
            if self.active == 1:
                logging.getLogger(_PROTOCOL_LOGGER).addFilter(self)

    def stop(self) -> None:
        with self.lock:
            self.active -= 1
            if self.active:
                return
            logging.getLogger(_PROTOCOL_LOGGER).removeFilter(self)
            held = [record for records in self.held.values() for record in records]
            self.held.clear()
        _release(held)


def _release(records: list[logging.LogRecord]) -> None:
    for record in records:
        record.rxcql_released = True
        logging.getLogger(record.name).handle(record)


_HOLD_BACK = _HoldBack()


class BatchWarnings:
    """One run's count of the server warnings its batches drew, reported in one log record."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._requests = 0
        self._open = True
        _HOLD_BACK.start()

    def seen(self, future: Any) -> None:
        """A batch of this run succeeded (on the IO thread, in its callback)."""
        try:
            warnings = list(getattr(future, "warnings", None) or ())
        except Exception:  # a fake future, or one that cannot tell
            warnings = []
        mine = _HOLD_BACK.claim(warnings) if warnings else []
        if not warnings:
            return
        self._requests += 1
        for text in warnings:
            kind = next((name for prefix, name in _KINDS if text.startswith(prefix)), "other")
            self._counts[kind] = self._counts.get(kind, 0) + 1
        del mine

    def close(self) -> None:
        """The run ended: one record with the counts, and the driver's log back to normal."""
        if not self._open:
            return
        self._open = False
        _HOLD_BACK.stop()
        if self._requests:
            kinds = ", ".join(f"{kind}: {count:,}" for kind, count in self._counts.items())
            log.warning(
                "rxcql: the server warned about %s of this run's batches (%s). rxcql kept these "
                "warnings of its own batches out of the cassandra.protocol log; each is on its "
                "result's ResultSet (result.result_or_exc.response_future.warnings).",
                f"{self._requests:,}",
                kinds,
            )
