"""rxcql's pipeable operators, for ``source.pipe(...)``.

Example:
    >>> from rxcql import operators as cql_ops
    >>> reactivex.from_iterable(ids).pipe(
    ...     cql_ops.execute(session, select_by_id, concurrency=64),
    ...     ops.map(lambda r: r.result_or_exc.one()),
    ... )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import reactivex

from .._engine import execute_operator
from .._options import Options, RunKeywords
from .._reorder import reorder as reorder
from .._results import ExecutionResult
from .._types import SessionLike

__all__ = ["execute", "reorder"]


def execute(
    session: SessionLike,
    statement: Any = None,
    **options: Unpack[RunKeywords],
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[ExecutionResult]]:
    """Execute each item of an Observable as a CQL statement; the engine as an operator.

    Items are ``(statement, parameters)`` pairs, or, when ``statement`` is given, the parameters
    for it. Each subscription subscribes to the source once and runs its items through the same
    engine as :func:`rxcql.execute`: at most ``concurrency`` in flight, results in input order
    (``ordered=True``) as :class:`~rxcql.ExecutionResult`, the same error rules.

    Buffering: an Observable pushes, it cannot be asked to wait. Items that arrive while
    ``concurrency`` statements are in flight, or while ``window`` results wait for a slow
    statement or a slow ``scheduler`` consumer, are queued inside the operator, in memory,
    without bound. For input larger than memory, give :func:`rxcql.execute` an iterable or a
    generator instead: it is pulled only as fast as the cluster and the consumer go.

    Args:
        session: a connected :class:`cassandra.cluster.Session`.
        statement: if given, every item is the parameters for this statement.
        concurrency, raise_on_first_error, ordered, execution_profile: as for
            :func:`rxcql.execute`.
        window, scheduler, max_rate, max_errors, progress, progress_interval: as for
            :func:`rxcql.execute`.

    Returns:
        An operator ``Observable[Any] -> Observable[ExecutionResult]``.

    Raises:
        TypeError, ValueError: (immediately) as for :func:`rxcql.execute`.
        Exception: (as ``on_error``) the source's own error (after the results of the items
            before it), and everything :func:`rxcql.execute` reports. The source is disposed
            when the stream ends.

    Emissions happen on the driver's IO thread unless ``scheduler`` is given, exactly as for
    :func:`rxcql.execute`.
    """
    return execute_operator(session, statement, Options.build(**options))
