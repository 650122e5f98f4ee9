"""Drop-in replacements for ``cassandra.concurrent``, as thin consumers of :func:`rxcql.execute`.

Same names, argument order and defaults as cassandra-driver 3.30. ``docs/compatibility.md`` lists
every place where the behaviour differs, and why.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from concurrent.futures import Future, InvalidStateError
from typing import Any, Literal, Unpack, overload

from cassandra.cluster import EXEC_PROFILE_DEFAULT
from reactivex import abc

from ._adaptive import Concurrency
from ._consumers import ResultIterator
from ._engine import ExecuteObservable, execute_driver_tuples
from ._options import Extensions, check_iterable
from ._results import DriverExecutionResult
from ._source import _STATEMENT_TYPES
from ._threads import ensure_not_io_thread
from ._types import SessionLike


class _ListCollector(abc.ObserverBase[DriverExecutionResult]):
    """Collects every result into a list and resolves ``future`` at the end.

    On the IO thread it only appends to a list; the future is resolved on the thread that
    delivers the last result.
    """

    rxcql_internal = True  # never raises, runs no user code

    def __init__(self) -> None:
        self.results: list[DriverExecutionResult] = []
        self.future: Future[list[DriverExecutionResult]] = Future()
        # The engine binds on_next once per run: let it be the list's own append (one Python
        # call less per statement).
        self.on_next = self.results.append  # type: ignore[method-assign, assignment]

    def on_next(self, value: DriverExecutionResult) -> None:
        self.results.append(value)

    def on_error(self, error: Exception) -> None:
        with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
            self.future.set_exception(error)

    def on_completed(self) -> None:
        with contextlib.suppress(InvalidStateError):
            self.future.set_result(self.results)


def _collect(
    observable: ExecuteObservable[DriverExecutionResult],
) -> Future[list[DriverExecutionResult]]:
    """Start the run; a future of its list of results. Cancelling the future stops the run."""
    collector = _ListCollector()
    subscription = observable.run_direct(collector)

    def cancelled(done: Future[list[DriverExecutionResult]]) -> None:
        if done.cancelled():
            subscription.dispose()

    collector.future.add_done_callback(cancelled)
    return collector.future


@overload
def execute_concurrent(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    results_generator: Literal[False] = ...,
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult]: ...


@overload
def execute_concurrent(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    *,
    results_generator: Literal[True],
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> ResultIterator[DriverExecutionResult]: ...


@overload
def execute_concurrent(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency,
    raise_on_first_error: bool,
    results_generator: Literal[True],
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> ResultIterator[DriverExecutionResult]: ...


@overload
def execute_concurrent(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    results_generator: bool = ...,
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult] | ResultIterator[DriverExecutionResult]: ...


def execute_concurrent(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency = 100,
    raise_on_first_error: bool = True,
    results_generator: bool = False,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult] | ResultIterator[DriverExecutionResult]:
    """Execute statements concurrently and wait for the results; ``cassandra.concurrent``'s call.

    Args:
        session: a connected :class:`cassandra.cluster.Session`.
        statements_and_parameters: an iterable of ``(statement, parameters)`` pairs; a generator
            is pulled lazily, one item per free slot.
        concurrency: the most statements in flight at once; or ``"auto"`` /
            :class:`~rxcql.AdaptiveConcurrency`, a limit that follows the cluster (an rxcql
            extension, as for :func:`rxcql.execute`).
        raise_on_first_error: True: raise the first failure's own exception (the first in input
            order), after stopping the issuing of statements. False: failures are returned in
            place as ``ExecutionResult(False, exc)``.
        results_generator: False: return a list once everything completed. True: return an
            iterator that yields results in input order as they become available; statements are
            issued only within a window of ``2 * concurrency`` ahead of the loop reading it, and
            closing or dropping the iterator stops the issuing.
        execution_profile: passed to ``session.execute_async``.
        **extensions: rxcql's keyword-only extensions, whose defaults keep the driver's
            behaviour: ``batch``, ``batch_size`` and ``batch_bytes``, grouped batching of writes
            as for :func:`rxcql.execute` (``batch=None``: one request per statement), and
            ``retry`` (retries with backoff, default None: none).

    Returns:
        A list of the driver's ``ExecutionResult`` tuples in input order (the list position is
        the input index), or, with ``results_generator=True``, a :class:`~rxcql.ResultIterator`
        of the same tuples in input order.

    Raises:
        ValueError: ``concurrency <= 0``.
        TypeError: wrong argument types.
        Exception: the driver's exception (``raise_on_first_error=True``).
        InvalidItemError: a malformed item.
        Exception: the very exception the input iterator raised (same object, type and
            traceback), after the results before it, with a PEP 678 note saying how many
            statements had been pulled; nothing more was issued.
        SessionClosedError: the session is shut down.
        IOThreadBlockingError: when called on the driver's IO thread (it would deadlock).

    Results are delivered on the calling thread; the driver's IO thread only queues them.
    """
    observable = execute_driver_tuples(
        session,
        statements_and_parameters,
        concurrency,
        raise_on_first_error,
        execution_profile,
        **extensions,
    )
    if not isinstance(results_generator, bool):
        raise TypeError(f"results_generator must be a bool, got {type(results_generator).__name__}")
    if results_generator:
        # The driver's own tuples in both modes: the loop count (or list position) is the index.
        return ResultIterator[DriverExecutionResult](observable)
    ensure_not_io_thread("execute_concurrent")
    future = _collect(observable)
    try:
        return future.result()
    finally:
        future.cancel()  # interrupted (KeyboardInterrupt): stop issuing; a no-op once done


def _with_args(statement: Any, parameters: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
    if not isinstance(statement, _STATEMENT_TYPES):
        raise TypeError(
            "statement must be a str, Statement or PreparedStatement, "
            f"got {type(statement).__name__}"
        )
    check_iterable(parameters)
    return zip(itertools.repeat(statement), parameters)


@overload
def execute_concurrent_with_args(
    session: SessionLike,
    statement: Any,
    parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    results_generator: Literal[False] = ...,
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult]: ...


@overload
def execute_concurrent_with_args(
    session: SessionLike,
    statement: Any,
    parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    *,
    results_generator: Literal[True],
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> ResultIterator[DriverExecutionResult]: ...


@overload
def execute_concurrent_with_args(
    session: SessionLike,
    statement: Any,
    parameters: Iterable[Any],
    concurrency: Concurrency,
    raise_on_first_error: bool,
    results_generator: Literal[True],
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> ResultIterator[DriverExecutionResult]: ...


@overload
def execute_concurrent_with_args(
    session: SessionLike,
    statement: Any,
    parameters: Iterable[Any],
    concurrency: Concurrency = ...,
    raise_on_first_error: bool = ...,
    results_generator: bool = ...,
    execution_profile: Any = ...,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult] | ResultIterator[DriverExecutionResult]: ...


def execute_concurrent_with_args(
    session: SessionLike,
    statement: Any,
    parameters: Iterable[Any],
    concurrency: Concurrency = 100,
    raise_on_first_error: bool = True,
    results_generator: bool = False,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    **extensions: Unpack[Extensions],
) -> list[DriverExecutionResult] | ResultIterator[DriverExecutionResult]:
    """Execute one statement with many parameter sets; ``cassandra.concurrent``'s call.

    ``execute_concurrent(session, zip(repeat(statement), parameters), ...)``: the other
    arguments (in the same positions), the return value, the errors and the threads are those of
    :func:`execute_concurrent`.

    Raises:
        TypeError: (at once) if ``statement`` is not a str, Statement or PreparedStatement, or
            ``parameters`` is not iterable; otherwise as :func:`execute_concurrent`.

    Example:
        >>> insert = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)")
        >>> execute_concurrent_with_args(session, insert, ((i, str(i)) for i in range(10**6)))
    """
    return execute_concurrent(
        session,
        _with_args(statement, parameters),
        concurrency,
        raise_on_first_error,
        results_generator,
        execution_profile,
        **extensions,
    )


def execute_concurrent_async(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency = 100,
    raise_on_first_error: bool = False,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    **extensions: Unpack[Extensions],
) -> Future[list[DriverExecutionResult]]:
    """Start executing statements and return at once a future of the list of results.

    Args:
        session, statements_and_parameters, concurrency: as for :func:`execute_concurrent`.
        raise_on_first_error: as for :func:`execute_concurrent` (note the driver's default
            ``raise_on_first_error=False`` here).
        execution_profile: as for :func:`execute_concurrent`.

    Returns:
        A :class:`concurrent.futures.Future` that resolves to the list of results in input order
        (an empty input resolves at once), or to the first failure's exception when
        ``raise_on_first_error=True``. Cancelling it stops the issuing of statements.

    Raises:
        ValueError, TypeError: at once, for bad arguments.

    The future is resolved on the thread that delivers the last result (usually the driver's IO
    thread): callbacks added with ``add_done_callback`` run there, so keep them short. This call
    never blocks, so it is safe inside driver callbacks.
    """
    observable = execute_driver_tuples(
        session,
        statements_and_parameters,
        concurrency,
        raise_on_first_error,
        execution_profile,
        **extensions,
    )
    return _collect(observable)
