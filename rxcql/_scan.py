"""``rxcql.scan_table``: a parallel full-table scan by token ranges.

The ring comes from the driver's token map: every vnode range ``(previous token, token]``, the
wrap-around one cut in two (above the last token, and up to the first), each divided into
equal parts until there are at least ``splits`` ranges. Each range is one query,
``SELECT ... WHERE token(pk) > ? AND token(pk) <= ?``, sent to a live replica of that range
(``execute_async(host=...)``), and the ranges run through :func:`rxcql.stream_rows_many`:
bounded concurrency, a bounded page window, every consumer. Ranges are disjoint and cover the
ring, so every row of the table comes out exactly once.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.metadata import protect_name
from reactivex import abc

from ._options import check_session
from ._rows import RowsObservable, stream_rows_many
from ._types import SessionLike

#: The token ranges of the partitioners rxcql can split: (lowest, highest) token.
_TOKEN_BOUNDS = {
    "org.apache.cassandra.dht.Murmur3Partitioner": (-(2**63), 2**63 - 1),
    "org.apache.cassandra.dht.RandomPartitioner": (-1, 2**127),
}
#: Ranges per node when ``splits`` is not given (at least; every vnode range counts).
SPLITS_PER_NODE = 16


@dataclass(frozen=True)
class TokenRange:
    """``start < token(pk) <= end``; ``start`` None: from the lowest token (inclusive)."""

    start: int | None
    end: int
    replicas: tuple[Any, ...]


def token_ranges(
    session: SessionLike, keyspace: str, splits: int | None = None
) -> list[TokenRange]:
    """The ring of ``keyspace`` as at least ``splits`` disjoint ranges covering every token,
    in token order, each with the replicas that own it."""
    cluster = getattr(session, "cluster", None)
    metadata = getattr(cluster, "metadata", None)
    token_map = getattr(metadata, "token_map", None)
    partitioner = getattr(metadata, "partitioner", None)
    if token_map is None or not token_map.ring:
        raise ValueError(
            "scan_table needs the driver's token map (Cluster(token_metadata_enabled=True), the "
            "default) and a connected cluster"
        )
    if partitioner not in _TOKEN_BOUNDS:
        raise ValueError(f"scan_table cannot split the ring of partitioner {partitioner!r}")
    lowest, highest = _TOKEN_BOUNDS[partitioner]
    ring = token_map.ring
    tokens = [token.value for token in ring]
    vnode: list[tuple[int | None, int, Any]] = []
    # The wrap-around range (last, first]: above the last token, and from the lowest up to
    # the first. Both belong to the first token's replicas. A first token that is the lowest
    # leaves nothing below it, and must not be a bound: Cassandra reads "token <= lowest" as
    # the whole ring (the minimum token as a range's end means no end).
    if tokens[0] != lowest:
        vnode.append((None, tokens[0], ring[0]))
    for previous, token in zip(tokens, ring[1:], strict=False):
        vnode.append((previous, token.value, token))
    if tokens[-1] < highest:
        vnode.append((tokens[-1], highest, ring[0]))
    hosts = len({host for host in getattr(metadata, "all_hosts", lambda: [])()}) or 1
    wanted = splits if splits is not None else SPLITS_PER_NODE * hosts
    parts = max(1, -(-wanted // len(vnode)))  # ceiling division
    ranges: list[TokenRange] = []
    for start, end, owner in vnode:
        replicas = tuple(token_map.get_replicas(keyspace, owner))
        low = lowest if start is None else start
        width = end - low
        pieces = min(parts, max(1, width))
        bounds = [low + (width * k) // pieces for k in range(pieces)] + [end]
        for k in range(pieces):
            piece_start: int | None = bounds[k]
            if k == 0 and start is None:
                piece_start = None
            ranges.append(TokenRange(piece_start, bounds[k + 1], replicas))
    return ranges


class _Routed:
    """The session, sending each range query to a live replica of its range (the statement's
    ``rxcql_replicas``); the driver's own choice when none is up."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._rng = random.Random()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def execute_async(self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        replicas = [h for h in getattr(query, "rxcql_replicas", ()) if h.is_up is not False]
        if replicas:
            kwargs["host"] = self._rng.choice(replicas)
        return self._session.execute_async(query, parameters, *args, **kwargs)


def _split_name(table: str, session: Any) -> tuple[str, str]:
    if "." in table:
        keyspace, name = table.split(".", 1)
    else:
        keyspace, name = getattr(session, "keyspace", None) or "", table
    if not keyspace:
        raise ValueError(
            f"scan_table needs 'keyspace.table' (the session has no keyspace): {table!r}"
        )
    return keyspace.strip('"'), name.strip('"')


def table_metadata(session: SessionLike, keyspace: str, name: str, who: str) -> Any:
    """The driver's metadata of ``keyspace.name``. A table created a moment ago (by another
    client, or by this one) reaches the driver's schema through a debounced event: when it is
    missing, refresh that table once before calling it unknown."""
    cluster = session.cluster  # type: ignore[attr-defined]
    for attempt in range(2):
        try:
            return cluster.metadata.keyspaces[keyspace].tables[name]
        except KeyError:
            if attempt == 0:
                # The refresh raises when the table does not exist; the lookup then says so.
                with contextlib.suppress(Exception):
                    cluster.refresh_table_metadata(keyspace, name)
    raise ValueError(f"{who}: no table {keyspace}.{name} in the driver's schema")


def select_list(columns: Any, splits: Any) -> str:
    """The select list of a scan's ``columns`` (``*`` for None), after checking them and
    ``splits`` (a positive int or None)."""
    if columns is not None and (
        isinstance(columns, str) or not all(isinstance(c, str) for c in columns)
    ):
        raise TypeError("columns must be a list of column names or None")
    if splits is not None and (
        isinstance(splits, bool) or not isinstance(splits, int) or splits < 1
    ):
        raise ValueError(f"splits must be a positive int or None, got {splits!r}")
    return "*" if not columns else ", ".join(protect_name(c) for c in columns)


def range_statements(
    session: SessionLike, table: str, select: str, where: str | None
) -> tuple[str, Any, Any]:
    """The keyspace, and the prepared range queries of a table: from the lowest token up to a
    bound, and between two bounds."""
    keyspace, name = _split_name(table, session)
    table_meta = table_metadata(session, keyspace, name, "scan_table")
    key = ", ".join(protect_name(column.name) for column in table_meta.partition_key)
    target = f"{protect_name(keyspace)}.{protect_name(name)}"
    extra = f" AND ({where}) ALLOW FILTERING" if where else ""
    first = session.prepare(  # type: ignore[attr-defined]
        f"SELECT {select} FROM {target} WHERE token({key}) <= ?{extra}"
    )
    middle = session.prepare(  # type: ignore[attr-defined]
        f"SELECT {select} FROM {target} WHERE token({key}) > ? AND token({key}) <= ?{extra}"
    )
    return keyspace, first, middle


def bind_range(
    session: SessionLike,
    statements: tuple[str, Any, Any],
    start: int | None,
    end: int,
    replicas: tuple[Any, ...] | None = None,
) -> Any:
    """The query of one range ``start < token <= end``, carrying the replicas it is sent to
    (those of the token map when not given)."""
    keyspace, first, middle = statements
    bound = first.bind((end,)) if start is None else middle.bind((start, end))
    if replicas is None:
        token_map = session.cluster.metadata.token_map  # type: ignore[attr-defined]
        replicas = tuple(token_map.get_replicas(keyspace, token_map.token_class(end)))
    bound.rxcql_replicas = replicas
    return bound


def range_queries(
    session: SessionLike,
    table: str,
    select: str,
    where: str | None,
    splits: int | None,
) -> Iterator[tuple[Any, tuple[int, ...]]]:
    """``(bound statement, ())`` pairs: one query per token range, in token order."""
    statements = range_statements(session, table, select, where)
    for piece in token_ranges(session, statements[0], splits):
        yield bind_range(session, statements, piece.start, piece.end, piece.replicas), ()


def scan_table(
    session: SessionLike,
    table: str,
    columns: list[str] | None = None,
    where: str | None = None,
    splits: int | None = None,
    concurrency: int = 8,
    fetch_size: int | None = 5000,
    ordered: bool = False,
    max_pages: int | None = None,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    scheduler: abc.SchedulerBase | None = None,
) -> RowsObservable:
    """Every row of a table, by parallel token-range queries.

    The ring is cut into at least ``splits`` ranges (default: every vnode range, divided until
    there are at least 16 per node); each range is one query sent to a live replica of it, and
    the queries run as :func:`rxcql.stream_rows_many` runs them: at most ``concurrency`` at
    once, at most ``max_pages`` pages ahead of the consumer (bounded memory for any table
    size). Every row of the table comes out exactly once (rows written during the scan may or
    may not be seen, as with any Cassandra read).

    Args:
        session: a connected session (the driver's token map and schema metadata on).
        table: ``"keyspace.table"``, or ``"table"`` in the session's keyspace.
        columns: the columns to select (quoted as needed); None for all.
        where: a filter added to each range query as ``AND (where) ALLOW FILTERING``: the
            server evaluates it, so it needs ``ALLOW FILTERING`` semantics (or a secondary or
            SAI index) on the server's side; it reads the whole table either way.
        splits: the least number of ranges.
        concurrency: range queries at once.
        fetch_size: rows per page.
        ordered: False: pages of different ranges interleave as they arrive. True: ranges are
            read one after another in token order (``concurrency`` is then 1).
        max_pages, execution_profile, scheduler: as for :func:`rxcql.stream_rows_many`.

    Returns:
        A :class:`RowsObservable` of rows (iterate / aiterate / collect / subscribe).

    Raises:
        ValueError: (immediately) a table the driver's schema does not know, a partitioner
            rxcql cannot split, no token map.
    """
    check_session(session)
    select = select_list(columns, splits)
    queries = list(range_queries(session, table, select, where, splits))
    return stream_rows_many(
        _Routed(session),
        queries,
        concurrency=1 if ordered else concurrency,
        fetch_size=fetch_size,
        max_pages=max_pages,
        execution_profile=execution_profile,
        scheduler=scheduler,
    )


def count_table(
    session: SessionLike,
    table: str,
    where: str | None = None,
    splits: int | None = None,
    concurrency: int = 8,
) -> int:
    """``SELECT count(*)`` of a table, as the sum of one count per token range (each range a
    short query to a replica of it, instead of one query over the whole table that the
    coordinator must finish within its timeout)."""
    rows = stream_rows_many(
        _Routed(session),
        list(range_queries(session, table, "count(*)", where, splits)),
        concurrency=concurrency,
    )
    from ._consumers import iterate

    return sum(row[0] for row in iterate(rows))
