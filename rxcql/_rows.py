"""Row streaming across pages: the rows of one large query, or of many, with bounded memory.

The driver pages a query (``fetch_size`` rows a page); a ResponseFuture calls its callbacks again
for every page fetched with ``start_fetching_next_page()``. :class:`_PagesRun` keeps, for all
the queries of a stream together, at most ``max_pages`` pages *ahead of the consumer*: requested
from the server, or fetched and not yet consumed. Page k+1 of a query is requested only when
the consumer has room for it, like the Java driver's reactive result set (which queues at most
4 pages). With ``concurrency`` > 1 several queries (one per token range or partition, say) run at
once; the pages of different queries interleave, the rows of one query stay in order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.query import BoundStatement, PreparedStatement, SimpleStatement
from reactivex import abc

from ._controls import RunStatistics
from ._future import detach, release_timer
from ._options import check_iterable, check_session
from ._skeleton import DemandShell, RunSkeleton
from ._source import IterableSource
from ._types import SessionLike

log = logging.getLogger("rxcql")


class Page(list[Any]):
    """The rows of one page of one query (a list), with the query's position in the input."""

    __slots__ = ("query_index",)

    def __init__(self, rows: Iterable[Any], query_index: int) -> None:
        super().__init__(rows)
        self.query_index = query_index


class _Query:
    __slots__ = ("future", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.future: Any = None


def _with_fetch_size(statement: Any, parameters: Any, fetch_size: int | None) -> Any:
    if fetch_size is None:
        return statement
    if isinstance(statement, str):
        return SimpleStatement(statement, fetch_size=fetch_size)
    if isinstance(statement, PreparedStatement):
        bound = statement.bind(parameters)
        bound.fetch_size = fetch_size
        return bound
    if isinstance(statement, SimpleStatement | BoundStatement):
        statement.fetch_size = fetch_size
    return statement


class _PagesRun(RunSkeleton):
    """One subscription of a row stream: queries in flight, pages ahead, and the drain loop
    (over the shared :class:`~rxcql._skeleton.RunSkeleton`).

    ``max_pages`` bounds the pages ahead of the consumer; a page is acknowledged when the
    consumer has taken its rows (at once after emission in the plain Observable form; when the
    iterator moves past it in the iterator forms).
    """

    def __init__(
        self,
        session: SessionLike,
        queries: Iterable[Any],
        observer: abc.ObserverBase[Page],
        *,
        concurrency: int,
        max_pages: int,
        fetch_size: int | None,
        execution_profile: Any,
        manual: bool,
    ) -> None:
        super().__init__(session, observer, manual)
        self._source = IterableSource(queries)
        self._concurrency = concurrency
        self._max_pages = max_pages
        self._fetch_size = fetch_size
        self._profile = execution_profile
        self._queue: deque[Page] = deque()
        self._can_fetch: deque[_Query] = deque()
        self._active = 0
        self._ahead = 0  # pages requested, or fetched and not yet acknowledged
        self._pulled = 0
        self._input_done = False
        self._error: Exception | None = None
        #: Pages requested from the server so far, and pages (rows) handed to the consumer.
        self.pages_fetched = 0
        self.pages_delivered = 0
        self.rows_delivered = 0
        #: The most pages ahead of the consumer at once, and the most rows that held.
        self.max_pages_ahead = 0
        self.max_rows_buffered = 0
        #: The most queries running at once.
        self.max_active = 0
        self._rows_buffered = 0

    # -- signals ------------------------------------------------------------------------------

    def start(self) -> None:
        self.signal()

    def request(self, n: int) -> None:
        """The consumer is done with ``n`` more pages: room to fetch as many."""
        with self._lock:
            self._ahead -= n
        self.signal()

    def signal(self) -> None:
        with self._lock:
            if self._terminated:
                return
            self._wip += 1
            if self._wip != 1:
                return
        self.signal_running()

    def statistics(self) -> RunStatistics:
        """The run's counters now, in queries and pages (see :class:`~rxcql.RunStatistics`)."""
        return RunStatistics(
            issued=self._pulled,
            in_flight=self._active,
            delivered=self.pages_delivered,
            failed=0,
            ahead=self._ahead,
            max_in_flight=self.max_active,
            max_ahead=self.max_pages_ahead,
            pages_fetched=self.pages_fetched,
            rows_delivered=self.rows_delivered,
            max_rows_buffered=self.max_rows_buffered,
        )

    def _drop_queued(self) -> None:
        self._queue.clear()

    def _release(self) -> None:
        # After termination nothing is added to _can_fetch (_on_page checks under the lock).
        can_fetch = list(self._can_fetch)
        self._can_fetch.clear()
        for query in can_fetch:
            detach(query.future)
        self._source.close()

    def _on_page(self, rows: Any, query: _Query) -> None:
        # The driver's IO thread (or synchronously inside add_callbacks). Never raises.
        try:
            page = Page(rows or (), query.index)
            # Only the bool True: a mocked future answers with a truthy Mock.
            more = getattr(query.future, "has_more_pages", False) is True
            release_timer(query.future)  # a cancelled timer: see _future.release_timer
            if not more:
                detach(query.future)
        except Exception as exc:
            self._on_failure(exc, query)
            return
        with self._lock:
            if self._terminated:
                return
            self._queue.append(page)
            self._rows_buffered += len(page)
            if self._rows_buffered > self.max_rows_buffered:
                self.max_rows_buffered = self._rows_buffered
            if more:
                self._can_fetch.append(query)
            else:
                self._active -= 1
            self._wip += 1
            if self._wip != 1:
                return
        self.signal_running()

    def _on_failure(self, exc: Any, query: _Query) -> None:
        detach(query.future)
        with self._lock:
            if self._terminated:
                return
            if self._error is None:
                self._error = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            self._wip += 1
            if self._wip != 1:
                return
        self.signal_running()

    def signal_running(self) -> None:
        """This thread raised ``_wip`` from 0: it runs the drain loop."""
        try:
            self._drain()
        except BaseException as exc:
            self._crashed(exc, "row stream")

    # -- the drain loop ------------------------------------------------------------------------

    def _drain(self) -> None:
        missed = 1
        while True:
            with self._lock:
                if self._terminated:
                    return
                if self._error is not None:
                    error: Exception | None = self._error
                    break
                pages = list(self._queue)
                self._queue.clear()
                # Continue the queries already running before starting new ones.
                fetch: list[_Query] = []
                while self._can_fetch and self._ahead < self._max_pages:
                    fetch.append(self._can_fetch.popleft())
                    self._ahead += 1
                start = 0
                while (
                    not self._input_done
                    and self._active + start < self._concurrency
                    and self._ahead < self._max_pages
                ):
                    start += 1
                    self._ahead += 1
                self._active += start
                if self._active > self.max_active:
                    self.max_active = self._active
                if self._ahead > self.max_pages_ahead:
                    self.max_pages_ahead = self._ahead
                if not pages and not fetch and not start:
                    if self._input_done and self._active == 0 and not self._can_fetch:
                        error = None
                        break
                    self._wip -= missed
                    missed = self._wip
                    if missed == 0:
                        return
                    continue

            if pages and self._emit_batch(pages, False, self._page_taken, _describe_page) < 0:
                return
            for query in fetch:
                try:
                    self.pages_fetched += 1
                    query.future.start_fetching_next_page()
                except Exception as exc:
                    self._on_failure(exc, query)
            for started in range(start):
                if not self._start_query():
                    unused = start - started - 1  # the failed pull gave its own slot back
                    if unused:
                        with self._lock:
                            self._active -= unused
                            self._ahead -= unused
                    break
        self._finish(error)

    def _page_taken(self, page: Page) -> None:
        with self._lock:
            self._rows_buffered -= len(page)
            self.pages_delivered += 1
            self.rows_delivered += len(page)
            if not self._manual:
                self._ahead -= 1  # emitted is consumed: the page is acknowledged

    def _start_query(self) -> bool:
        """Pull the next query and send it; False (credits given back) at the end of input."""
        try:
            pulled = self._source.pull()
        except Exception as exc:
            with self._lock:
                self._input_done = True
                self._active -= 1
                self._ahead -= 1
                if self._error is None:
                    self._error = exc
            return False
        if not isinstance(pulled, tuple):  # END
            with self._lock:
                self._input_done = True
                self._active -= 1
                self._ahead -= 1
            return False
        query = _Query(self._pulled)
        self._pulled += 1
        statement, parameters = pulled
        try:
            statement = _with_fetch_size(statement, parameters, self._fetch_size)
            if isinstance(statement, BoundStatement):
                parameters = None
            self.pages_fetched += 1
            query.future = self._session.execute_async(
                statement, parameters, execution_profile=self._profile
            )
            query.future.add_callbacks(
                self._on_page, self._on_failure, callback_args=(query,), errback_args=(query,)
            )
        except Exception as exc:
            closed = self._closed_error(exc, "the session was shut down while streaming rows")
            if closed is not None:
                exc = closed
            with self._lock:
                if self._error is None:
                    self._error = exc
            return False
        return True


def _describe_page(page: Page) -> str:
    return "a page of rows"


class _RowsObserver(abc.ObserverBase[Page]):
    """Flattens pages into their items (rows, or a pool's results) for a plain reactivex
    observer."""

    __slots__ = ("_observer",)

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self._observer = observer

    @property
    def is_stopped(self) -> bool:
        return bool(getattr(self._observer, "is_stopped", False))

    def on_next(self, value: Page) -> None:
        on_next = self._observer.on_next
        for row in value:
            on_next(row)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


class RowsObservable(DemandShell[Any]):
    """The Observable of rows returned by :func:`rxcql.stream_rows` and
    :func:`rxcql.stream_rows_many`.

    A cold ``reactivex.Observable`` of the driver's rows (named tuples by default, whatever the
    session's ``row_factory`` makes). Iterate it with :func:`rxcql.iterate` or
    :func:`rxcql.aiterate` for consumer-paced fetching.

    With a plain ``subscribe``, rows are emitted on the driver's IO thread (or the subscriber's,
    for a page that is ready at once), or on ``scheduler`` when one was given; errors arrive as
    ``on_error``.
    """

    def __init__(
        self,
        session: SessionLike,
        queries: Callable[[], Iterable[Any]],
        *,
        concurrency: int,
        max_pages: int,
        fetch_size: int | None,
        execution_profile: Any,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        super().__init__(session, scheduler)
        self._queries = queries
        self._concurrency = concurrency
        self._max_pages = max_pages
        self._fetch_size = fetch_size
        self._profile = execution_profile

    @property
    def ack_every(self) -> int:
        return 1  # pages are acknowledged one by one

    @property
    def flatten(self) -> bool:
        return True

    def _make_run(self, observer: abc.ObserverBase[Page], manual: bool) -> _PagesRun:
        return _PagesRun(
            self._session,
            self._queries(),
            observer,
            concurrency=self._concurrency,
            max_pages=self._max_pages,
            fetch_size=self._fetch_size,
            execution_profile=self._profile,
            manual=manual,
        )

    def _start(self, run: _PagesRun, demand: int | None) -> None:
        run.start()  # demand is the page window, counted by the run itself

    def _plain(self, observer: abc.ObserverBase[Any]) -> abc.ObserverBase[Any]:
        return _RowsObserver(observer)

    def subscribe_with_demand(
        self, observer: abc.ObserverBase[Page], initial_demand: int | None = None
    ) -> _PagesRun | None:
        """Run with explicit demand: ``observer`` receives :class:`Page` lists of rows, and each
        page must be acknowledged with ``handle.request(1)`` once consumed; at most
        ``max_pages`` pages are ever fetched ahead of the acknowledgements. ``observer`` is
        called on the thread that completes a page or calls ``request``."""
        run: _PagesRun | None = super().subscribe_with_demand(observer, initial_demand)
        return run


def _check_knobs(concurrency: int, max_pages: int | None, fetch_size: int | None) -> int:
    for name, value in (("concurrency", concurrency), ("max_pages", max_pages)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than 0, got {value}")
    if fetch_size is not None and (
        isinstance(fetch_size, bool) or not isinstance(fetch_size, int) or fetch_size <= 0
    ):
        raise ValueError(f"fetch_size must be a positive int or None, got {fetch_size!r}")
    if max_pages is None:
        return max(4, 2 * concurrency)
    return max_pages


def stream_rows(
    session: SessionLike,
    statement: Any,
    parameters: Any = None,
    *,
    fetch_size: int | None = None,
    max_pages: int = 4,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    scheduler: abc.SchedulerBase | None = None,
) -> RowsObservable:
    """The rows of one (large) query, as a cold Observable, fetched page by page on demand.

    At most ``max_pages`` pages are ahead of the consumer at any time: requested from Cassandra
    or fetched and not yet consumed (the Java driver's reactive result set queues 4). With a
    plain ``subscribe`` the rows are emitted on the driver's IO thread and the next page is
    requested while the current one is emitted; with :func:`rxcql.iterate`,
    :func:`rxcql.aiterate` or ``scheduler=``, a slow consumer holds back the fetching of pages, so
    memory stays at ``max_pages * fetch_size`` rows whatever the size of the result.

    Args:
        session: a connected :class:`cassandra.cluster.Session`.
        statement: a str, SimpleStatement, PreparedStatement or BoundStatement.
        parameters: its parameters (a sequence, a mapping or None).
        fetch_size: rows per page; None keeps the statement's (or the session's default, 5000).
        max_pages: pages ahead of the consumer, at least 1.
        execution_profile: passed to ``session.execute_async``.
        scheduler: deliver rows on this reactivex scheduler (see :func:`rxcql.execute`).

    Returns:
        A :class:`RowsObservable` of rows.

    Raises:
        TypeError, ValueError: (immediately) for bad arguments.
        Exception: (as ``on_error``) the driver's exception for the query or for fetching a page
            (after the rows before it).
        ObserverError, SessionClosedError: (as ``on_error``) see :func:`rxcql.execute`.

    Example:
        >>> rows = rxcql.stream_rows(session, "SELECT * FROM big", fetch_size=500)
        >>> for row in rxcql.iterate(rows):
        ...     process(row)
    """
    check_session(session)
    max_pages = _check_knobs(1, max_pages, fetch_size)
    IterableSource([(statement, parameters)]).pull()  # validates the pair now, not at subscribe
    return RowsObservable(
        session,
        lambda: [(statement, parameters)],
        concurrency=1,
        max_pages=max_pages,
        fetch_size=fetch_size,
        execution_profile=execution_profile,
        scheduler=scheduler,
    )


def stream_rows_many(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    *,
    concurrency: int = 8,
    fetch_size: int | None = None,
    max_pages: int | None = None,
    execution_profile: Any = EXEC_PROFILE_DEFAULT,
    scheduler: abc.SchedulerBase | None = None,
) -> RowsObservable:
    """The rows of many queries (one per token range or partition, say), with bounded concurrency.

    At most ``concurrency`` queries run at once, and at most ``max_pages`` pages (default
    ``max(4, 2 * concurrency)``) are ahead of the consumer across all of them. Pages of different
    queries interleave as they arrive; the rows of each query stay in order. The input is pulled
    lazily, one query per free slot. Each emitted row is a plain driver row; use
    :func:`rxcql.iterate` / :func:`rxcql.aiterate` for consumer-paced fetching. With a plain
    ``subscribe``, rows are emitted on the driver's IO thread.

    Args:
        session: a connected :class:`cassandra.cluster.Session`.
        statements_and_parameters: an iterable of ``(statement, parameters)`` pairs.
        concurrency: the most queries in flight at once.
        fetch_size: rows per page; None keeps each statement's own.
        max_pages: pages ahead of the consumer across all queries.
        execution_profile: passed to ``session.execute_async``.
        scheduler: deliver rows on this reactivex scheduler.

    Returns:
        A :class:`RowsObservable` of rows.

    Raises:
        TypeError, ValueError: (immediately) for bad arguments.
        Exception: (as ``on_error``) the first failing query's exception (the stream stops).
        InvalidItemError, ObserverError, SessionClosedError: (as ``on_error``) see
            :func:`rxcql.execute`; an exception of the input iterator comes out as itself.
    """
    check_session(session)
    check_iterable(statements_and_parameters)
    pages = _check_knobs(concurrency, max_pages, fetch_size)
    return RowsObservable(
        session,
        lambda: statements_and_parameters,
        concurrency=concurrency,
        max_pages=pages,
        fetch_size=fetch_size,
        execution_profile=execution_profile,
        scheduler=scheduler,
    )
