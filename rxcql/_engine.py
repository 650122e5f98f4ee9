"""The engine: ``rxcql.execute(...)``.

The design card, stage by stage::

    iterable of (statement, params)
      -> demand-driven source        _source.IterableSource / PushSource: pulled only on credit
      -> bounded flat-map            _Run: at most `concurrency` futures in flight, each one
                                     an inner "observable" over its ResponseFuture (its
                                     callback pair, _Run._on_success / _on_failure)
      -> reorder                     _reorder.OrderedBuffer: (index, result) back into input order
      -> Observable[ExecutionResult]

The bounded flat-map is the equivalent of ``ops.map(to_future_observable)`` followed by
``ops.merge(max_concurrent=concurrency)``, written as a credit loop because reactivex's merge
drains its source into an unbounded list and costs a full subscription per statement.

Credits. Two invariants hold at every moment of a run:

* ``in_flight <= concurrency`` (the driver's meaning of concurrency);
* ``issued - delivered <= window`` (``window >= concurrency``): a statement is issued only if its
  result will have room downstream, so a slow consumer or a slow statement 0 (head-of-line
  blocking) stops the pulling of new input instead of filling memory.

Completions, deliveries, demand and the start each signal the drain loop. It runs on one thread
at a time (the queue-drain pattern: a work-in-progress counter, under a lock): a signal that
arrives while it runs, including a future that completes synchronously inside ``add_callbacks``,
only bumps the counter and the loop already running picks it up. So the stack depth stays
constant for any input size, and the user's iterator and observer are never called concurrently.

The hot path (measured by ``python -m bench``): a completion takes the lock once to merge its
result and, when no loop is running, to reserve the first pass of the loop it then runs; one more
lock round ends the pass. Callbacks are bound methods of the run, the buffer hands an in-order
result straight through, and everything the loop needs is looked up once per run.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Unpack

import reactivex
from cassandra import InvalidRequest, Unauthorized
from reactivex import abc

from ._adaptive import OVERLOAD_ERRORS, AdaptiveLimit, Concurrency
from ._batching import Batcher, BatchWarnings, Request
from ._controls import ErrorBudget, Progress, RateLimiter, RunStatistics
from ._delivery import ack_interval
from ._errors import SessionClosedError
from ._future import detach, execute_with_timestamp, request_timestamp, result_set
from ._longrun import (
    NO_MORE,
    CheckpointWriter,
    FailedLog,
    Watermark,
    check_resume,
    read_checkpoint,
    skip_done,
    start_writer,
    statement_text,
)
from ._options import (
    Extensions,
    Options,
    RunKeywords,
    check_iterable,
    check_session,
    session_closed,
)
from ._reorder import NONE_READY, ArrivalBuffer, OrderedBuffer
from ._results import DriverExecutionResult, ExecutionResult
from ._retry import RetryTimer, own_clock, timer_factory
from ._skeleton import DemandShell, RunSkeleton
from ._source import EMPTY, END, IterableSource, PushSource
from ._types import SessionLike

log = logging.getLogger("rxcql")
Buffer = OrderedBuffer[DriverExecutionResult] | ArrivalBuffer[DriverExecutionResult]
_new_result = tuple.__new__  # ExecutionResult(...) without its Python-level __new__ (hot path)


def _describe_result(result: Any) -> str:
    return f"the result of statement {getattr(result, 'index', '?')}"


class _Run(RunSkeleton):
    """One subscription: the bounded flat-map with its credit loop, feeding the reorder buffer.

    It is also the subscription handle: :meth:`request` grants demand (in manual-demand mode),
    :meth:`dispose` stops the run and :meth:`statistics` reads its counters. The drain counter,
    termination, emission and the guard are the shared :class:`~rxcql._skeleton.RunSkeleton`.
    """

    __slots__ = (
        "_ahead_cap",
        "_batcher",
        "_budget",
        "_buffer",
        "_clock",
        "_concurrency",
        "_execute_async",
        "_in_flight",
        "_indexed",
        "_input_done",
        "_input_error",
        "_internal",
        "_issued",
        "_latencies",
        "_latency_seen",
        "_limit",
        "_limiter",
        "_next_progress",
        "_on_stop",
        "_per_request",
        "_profile",
        "_progress",
        "_progress_interval",
        "_pull",
        "_raise",
        "_rate",
        "_sample_rng",
        "_source",
        "_stamp_of",
        "_started",
        "_stop_issuing",
        "_timed",
        "_timer_pending",
        "_window",
        "delivered",
        "failed",
        "max_buffered",
        "max_in_flight",
    )

    def __init__(
        self,
        session: SessionLike,
        source: IterableSource | PushSource,
        observer: abc.ObserverBase[Any],
        options: Options,
        manual_demand: bool = False,
        on_stop: Callable[[], None] | None = None,
        indexed: bool = True,
    ) -> None:
        super().__init__(session, observer, manual_demand)
        self._execute_async = session.execute_async
        self._source = source
        self._pull = source.pull
        #: rxcql's own observers (collectors, mailboxes) only queue: no user code, never raise.
        self._internal = bool(getattr(observer, "rxcql_internal", False))
        adaptive = options.adaptive
        #: The limit on requests in flight: fixed, or moved by the adaptive limiter.
        self._concurrency = options.concurrency if adaptive is None else adaptive.initial
        self._profile = options.execution_profile
        #: Preset client timestamps by input position (the process pool's workers), or None.
        self._stamp_of = options.timestamps
        self._raise = options.raise_on_first_error
        self._indexed = indexed
        self._buffer: (
            OrderedBuffer[DriverExecutionResult] | ArrivalBuffer[DriverExecutionResult]
        ) = OrderedBuffer() if options.ordered else ArrivalBuffer()
        self._on_stop = on_stop
        #: The grouping stage of a batched run (_RequestRun); None: one request per statement.
        self._batcher: Batcher | None = None
        self._issued = 0
        self._in_flight = 0
        self._limit = 0
        self._stop_issuing = False
        self._input_done = False
        self._input_error: Exception | None = None
        self._rate = RateLimiter(options.max_rate) if options.max_rate is not None else None
        self._timer_pending = False
        self._budget = (
            ErrorBudget(options.max_errors)
            if options.max_errors is not None and not options.raise_on_first_error
            else None
        )
        self._progress = options.progress
        self._progress_interval = options.progress_interval
        self._started = time.perf_counter()
        self._next_progress = self._started + options.progress_interval
        #: Requests are timed (send to answer) for the limiter (concurrency="auto") and for the
        #: latency of progress reports, on the run's clock (a fake session's manual one).
        self._timed = options.adaptive is not None or options.progress is not None
        self._clock = timer_factory(session)[1] if self._timed else time.monotonic
        #: concurrency="auto": the limiter that moves ``_concurrency`` (under the lock).
        #: It reads the process's CPU time to tell a client that is its own bottleneck; a fake
        #: session (its own clock) only through its ``cpu_clock``, if any (a modelled client).
        self._limiter = (
            AdaptiveLimit(
                options.adaptive,
                self._clock(),
                getattr(session, "cpu_clock", None) if own_clock(session) else time.process_time,
            )
            if options.adaptive is not None
            else None
        )
        #: Statements per request at most, and the window: with an adaptive limit, the window
        #: follows it (``_ahead_cap``, twice the limit's worth of requests), within the window
        #: of the options (sized for the limit's max).
        self._per_request = options.batch_size if options.batch is not None else 1
        self._window = options.window
        self._ahead_cap = self._cap_for(self._concurrency)
        #: Request latencies of the current progress interval (a bounded sample).
        self._latencies: list[float] = []
        self._latency_seen = 0
        self._sample_rng = random.Random()
        #: Results handed to the observer so far (for tests and progress reporting).
        self.delivered = 0
        #: Statements that failed so far.
        self.failed = 0
        #: High-water marks, kept for tests and benchmarks: the most futures in flight at once,
        #: and the most statements issued but not yet delivered at once.
        self.max_in_flight = 0
        self.max_buffered = 0

    # -- signals ---------------------------------------------------------------------------

    def start(self, demand: int) -> None:
        """Grant the first ``demand`` credits and start pulling, on the caller's thread."""
        self.request(demand)

    def request(self, n: int) -> None:
        """Allow ``n`` more statements to be issued ahead of delivery (manual-demand mode)."""
        with self._lock:
            if self._terminated:
                return
            self._limit += n
            self._wip += 1
            if self._wip != 1:
                return
            # This thread runs the drain loop; its first pass is reserved in this lock round.
            ready = self._buffer.take_ready()
            credits = self._reserve()
            first = self._issued - credits
        self._drain(ready, credits, first)

    def signal(self) -> None:
        """Something changed (e.g. a push source got an item): run the drain loop."""
        self.request(0)

    # -- the inner observables: one per statement, over its ResponseFuture ------------------
    #
    # Each issued statement's inner "observable" is its ResponseFuture with this callback pair
    # attached (``add_callbacks(self._on_success, self._on_failure, (future, index))``): the lean
    # form of ``_future.from_response_future``, one outcome per future, pushed into the merge
    # below. They run on the driver's IO thread, or synchronously inside ``add_callbacks`` when
    # the result was already there. The driver swallows exceptions from callbacks, so none may
    # escape them: an escaped one would be a slot that never frees and a stream that never ends.

    def _on_success(self, rows: Any, future: Any, index: int, sent: float = 0.0) -> None:
        try:
            value = result_set(future, rows)
        except Exception as exc:  # a future that cannot build its ResultSet is a failure
            self._complete(index, False, exc, sent)
            return
        self._complete(index, True, value, sent)

    def _on_failure(self, exc: Any, future: Any, index: int, sent: float = 0.0) -> None:
        detach(future)
        self._complete(index, False, exc, sent, isinstance(exc, OVERLOAD_ERRORS))

    def _complete(
        self, index: int, success: bool, value: Any, sent: float = 0.0, overloaded: bool = False
    ) -> None:
        """The merge: one statement finished. Its result goes to the reorder buffer, and if no
        thread is running the drain loop, this one does (its first pass reserved in the same lock
        round as the bookkeeping: on the common path, one completion costs two lock rounds)."""
        result: DriverExecutionResult
        if self._indexed:
            indexed = _new_result(ExecutionResult, (success, value))
            indexed.index = index
            result = indexed
        else:
            result = _new_result(DriverExecutionResult, (success, value))
        with self._lock:
            if self._terminated:
                return
            if sent:
                self._sample_latency(sent, 1, overloaded)
            self._in_flight -= 1
            if not success:
                self._count_failure(index)
            if self._wip:
                # The loop is running (on another thread, or this statement completed inside
                # add_callbacks on the loop's own thread): it picks this result up.
                self._buffer.put(index, result)
                self._wip += 1
                return
            self._wip = 1
            ready = self._buffer.put_take(index, result)
            credits = self._reserve()
            first = self._issued - credits
        self._drain(ready, credits, first)

    def _count_failure(self, index: int) -> None:
        """Under the lock: a statement failed; decide whether issuing (or the run) stops."""
        self.failed += 1
        if self._raise:
            self._stop_issuing = True
        elif self._input_error is None and session_closed(self._session):
            # The driver fails every later statement of a shut-down session at once: end the run
            # (after the results already issued) instead of a million of those.
            self._stop_issuing = self._input_done = True
            self._input_error = SessionClosedError(
                f"the session was shut down while statement {index} was in flight"
            )
        elif self._budget is not None:
            too_many = self._budget.exceeded(self.failed, self.completed)
            if too_many is not None and self._input_error is None:
                self._stop_issuing = self._input_done = True
                self._input_error = too_many

    def _cap_for(self, limit: int) -> int:
        if self._limiter is None:
            return self._window
        return min(self._window, 2 * limit * self._per_request)

    def _sample_latency(self, sent: float, statements: int, overloaded: bool) -> None:
        """Under the lock: a request sent at ``sent`` finished (or failed with an overload
        error): its latency goes to the limiter and to the progress interval's sample."""
        now = self._clock()
        latency = now - sent
        limiter = self._limiter
        if limiter is not None:
            limiter.sample(now, latency, statements, self._in_flight, overloaded)
            limit = limiter.limit
            if limit != self._concurrency:
                self._concurrency = limit
                self._ahead_cap = self._cap_for(limit)
        if self._progress is not None and not overloaded:
            # A bounded uniform sample of the interval (reservoir sampling).
            self._latency_seen += 1
            if len(self._latencies) < _LATENCY_SAMPLE:
                self._latencies.append(latency)
            else:
                slot = self._sample_rng.randrange(self._latency_seen)
                if slot < _LATENCY_SAMPLE:
                    self._latencies[slot] = latency

    @property
    def limit_changes(self) -> list[tuple[float, int, str]]:
        """``concurrency="auto"``: the limit's changes so far, as (time, limit, reason)."""
        return list(self._limiter.changes) if self._limiter is not None else []

    def _reserve(self) -> int:
        """Under the lock: reserve every credit free now (``min`` of the free concurrency slots
        and the window's room, and what the rate limit allows); the caller issues that many."""
        if self._stop_issuing or self._input_done:
            return 0
        credits = self._concurrency - self._in_flight
        room = self._limit - self._issued
        if room < credits:
            credits = room
        if self._limiter is not None:
            ahead = self._ahead_cap - (self._issued - self.delivered)
            if ahead < credits:
                credits = ahead
        if credits <= 0:
            return 0
        if self._rate is not None:
            credits, wake_in = self._rate.take(credits)
            if wake_in and not self._timer_pending:
                self._timer_pending = True
                self._wake_later(wake_in)
            if credits <= 0:
                return 0
        self._issued += credits
        in_flight = self._in_flight = self._in_flight + credits
        if in_flight > self.max_in_flight:
            self.max_in_flight = in_flight
        ahead = self._issued - self.delivered
        if ahead > self.max_buffered:
            self.max_buffered = ahead
        return credits

    def _drop_queued(self) -> None:
        self._buffer.clear()

    def statistics(self) -> RunStatistics:
        """The run's counters now (see :class:`~rxcql.RunStatistics`)."""
        issued = self._issued
        return RunStatistics(
            issued=issued,
            in_flight=self._in_flight,
            delivered=self.delivered,
            failed=self.failed,
            ahead=issued - self.delivered,
            max_in_flight=self.max_in_flight,
            max_ahead=self.max_buffered,
        )

    @property
    def issued(self) -> int:
        return self._issued

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def completed(self) -> int:
        """Statements finished so far (issued and no longer in flight)."""
        return self._issued - self._in_flight

    # -- the drain loop -------------------------------------------------------------------

    def _drain(self, ready: list[Any], credits: int, first: int) -> None:
        """The drain loop, run by one thread at a time, starting with a pass already reserved:
        ``ready`` results to deliver, ``credits`` statements to issue from index ``first``.

        Each later pass takes one lock round for all the bookkeeping: it records what was
        delivered, takes every result whose turn has come, and reserves the credits for new
        statements. The observer, the user's iterator and execute_async run outside the lock.
        """
        try:
            buffer = self._buffer
            batcher = self._batcher
            stamp = self._clock if self._timed else None  # timed requests carry their send time
            stamp_of = self._stamp_of
            missed = 1
            starved = False
            while True:
                delivered = 0
                if ready:
                    if self._progress is not None:
                        self._maybe_report(time.perf_counter())
                    # Reorder stage: hand over the results whose turn has come, in order.
                    if self._internal:
                        # rxcql's own consumers only queue or collect: no user code runs here.
                        for result in ready:
                            if not result[0] and self._raise:
                                self._finish(result[1])
                                return
                            self._on_next(result)
                        delivered = len(ready)
                    else:
                        delivered = self._emit_batch(ready, self._raise, None, _describe_result)
                        if delivered < 0:
                            return

                if batcher is not None:
                    # Source, grouping and bounded flat-map stages with batching (_RequestRun).
                    starved = self._issue_batched(credits, first)
                    credits = 0
                # Source and bounded flat-map stage: one statement per reserved credit, each mapped
                # onto its ResponseFuture's callbacks (the inner observable, see _on_success).
                index = first
                while credits:
                    try:
                        pulled = self._pull()
                    except Exception as exc:
                        self._give_back(credits, exc)
                        break
                    if pulled is END or pulled is EMPTY:
                        self._give_back(credits, None if pulled is END else EMPTY)
                        # Nothing to pull until the push source signals again: do not spin.
                        starved = pulled is EMPTY
                        break
                    credits -= 1
                    try:
                        if stamp_of is None:
                            future = self._execute_async(
                                pulled[0], pulled[1], execution_profile=self._profile
                            )
                        else:
                            future = execute_with_timestamp(
                                self._session, pulled[0], pulled[1], self._profile, stamp_of(index)
                            )
                        args = (future, index) if stamp is None else (future, index, stamp())
                        future.add_callbacks(
                            self._on_success,
                            self._on_failure,
                            callback_args=args,
                            errback_args=args,
                        )
                    except Exception as exc:
                        closed = self._closed_error(
                            exc,
                            f"the session was shut down before statement {index} could be issued",
                        )
                        if closed is not None:
                            # Not a failure of this statement: the run cannot go on. The results of
                            # the statements already issued come first, then this error.
                            self._give_back(credits + 1, closed)
                            break
                        # A synchronous failure (bind error, ...) is a result like any other; the
                        # drain loop is running, so this only queues it: no recursion.
                        self._complete(index, False, exc)
                    index += 1

                with self._lock:
                    if self._terminated:
                        return
                    if delivered:
                        self.delivered += delivered
                        if not self._manual:
                            self._limit += delivered
                    ready = buffer.take_ready() if buffer.pending else NONE_READY
                    credits = (
                        0 if starved or self._in_flight >= self._concurrency else self._reserve()
                    )
                    if ready or credits:
                        first = self._issued - credits
                        continue
                    if self._in_flight == 0 and self._input_done and not len(buffer):
                        final = self._input_error
                        break
                    self._wip -= missed
                    missed = self._wip
                    if missed == 0:
                        return
                    starved = False  # a new signal: a push source may have an item now
            self._finish(final, complete=final is None)
        except BaseException as exc:  # a bug of ours must not become a silently wedged run
            self._crashed(exc, "engine")

    def _issue_batched(self, credits: int, first: int) -> bool:
        raise NotImplementedError  # _RequestRun

    def _give_back(self, credits: int, reason: Any) -> None:
        """Return unused reserved credits; ``reason`` None or an error ends the input, EMPTY
        (a push source with nothing buffered yet) does not."""
        with self._lock:
            self._issued -= credits
            if self._batcher is None:  # batched runs reserve the window's room only, no slots
                self._in_flight -= credits
            if reason is not EMPTY:
                self._input_done = True
                if self._input_error is None:
                    self._input_error = reason

    def _wake_later(self, delay: float) -> None:
        """The rate limit ran out of permits: run the drain loop again when one is due."""

        def wake() -> None:
            with self._lock:
                self._timer_pending = False
            self.signal()

        timer = threading.Timer(delay, wake)
        timer.daemon = True
        timer.start()

    def snapshot(self, done: bool = False) -> Progress:
        """The run's counters now, as a :class:`Progress` (the latency percentiles over the
        requests that finished since the previous snapshot)."""
        p50 = p99 = None
        if self._timed:
            with self._lock:
                latencies, self._latencies = self._latencies, []
                self._latency_seen = 0
            if latencies:
                latencies.sort()
                p50 = latencies[len(latencies) // 2]
                p99 = latencies[min(len(latencies) - 1, (len(latencies) * 99) // 100)]
        return Progress(
            issued=self._issued,
            completed=self.completed,
            failed=self.failed,
            in_flight=self._in_flight,
            delivered=self.delivered,
            elapsed=time.perf_counter() - self._started,
            done=done,
            concurrency=self._concurrency,
            latency_p50=p50,
            latency_p99=p99,
        )

    def _maybe_report(self, now: float) -> None:
        # Only the thread running the drain loop gets here (outside the lock): the counters are
        # read without it, a snapshot that may be a statement or two behind.
        if now < self._next_progress:
            return
        self._next_progress = now + self._progress_interval
        self._report(self.snapshot())

    def _report(self, progress: Progress) -> None:
        callback = self._progress
        if callback is None:
            return
        try:
            callback(progress)
        except Exception:
            # Progress is a side channel: a failing callback is reported and switched off, the
            # statements go on.
            self._progress = None
            log.exception("an rxcql progress callback raised; progress reporting is off")

    def _before_end(self) -> None:
        if self._progress is not None:
            self._report(self.snapshot(done=True))

    def _release(self) -> None:
        self._source.close()
        on_stop, self._on_stop = self._on_stop, None
        if on_stop is not None:
            on_stop()


#: Request latencies kept per progress interval (a uniform sample of them beyond this many).
_LATENCY_SAMPLE = 4096

#: Errors that say a request itself was refused as invalid: nothing of a batch that drew one was
#: applied, so its statements are sent again one by one, each to get its own outcome.
_REFUSED = (InvalidRequest, Unauthorized)


class _RequestRun(_Run):
    """A run of requests: with grouped batching (``batch="partition"`` or ``"replica"``),
    retries (``retry=``), or both.

    The same drain loop, credits and reorder stage as :class:`_Run`, with the grouping stage
    (:class:`~rxcql._batching.Batcher`, a pass-through without ``batch=``) between the source
    and the flat-map: a pass pulls as many statements as the window allows into the batcher,
    then sends as many requests (batches or single statements) as there are free concurrency
    slots. ``concurrency`` and ``in_flight`` count requests; ``issued`` and the window count
    statements. A request that failed with an error that may pass waits for its retry on the
    run's one timer (:class:`~rxcql._retry.RetryTimer`), keeping its slot and window place.
    """

    __slots__ = (
        "_checkpoint",
        "_done",
        "_due",
        "_failed_at",
        "_failed_log",
        "_long_run",
        "_offset",
        "_prepared_long_run",
        "_resend",
        "_retry",
        "_retry_timer",
        "_rng",
        "_timed",
        "_waiting",
        "_warnings",
        "_watermark",
        "_window",
        "retries",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: Options = args[3]
        self._batcher = Batcher(
            self._session, options.batch, options.batch_size, options.batch_bytes
        )
        self._retry = options.retry
        create_timer, clock = timer_factory(self._session)
        self._retry_timer = RetryTimer(create_timer, clock, self._retries_due)
        self._rng = random.Random()
        #: Long runs (checkpoint=, failed_log=): set up by the first drain pass
        #: (:meth:`_prepare_long_run`); ``_offset`` input items were skipped by a resume, and
        #: result indexes count from the input's start.
        self._long_run = options if options.checkpoint or options.failed_log else None
        self._prepared_long_run = self._long_run is None
        self._offset = 0
        self._watermark: Watermark | None = None
        self._checkpoint: CheckpointWriter | None = None
        self._failed_log: FailedLog | None = None
        #: Requests whose retry is due (filled on the timer's thread, sent by the drain loop;
        #: each still holds the concurrency slot of its failed attempt).
        self._due: deque[Request] = deque()
        #: Requests sent again so far, and statements waiting for a retry now.
        self.retries = 0
        self._waiting = 0
        #: Statements with a result so far (``completed``: in_flight counts requests here).
        self._done = 0
        #: With raise_on_first_error: the first failed index (held statements after it are
        #: never sent).
        self._failed_at = -1
        #: Requests of refused batches, to send again one by one (filled on the IO thread, taken
        #: by the drain loop, which alone uses the batcher).
        self._resend: deque[Request] = deque()
        self._warnings = BatchWarnings() if options.batch is not None else None

    @property
    def completed(self) -> int:
        return self._done

    def _reserve(self) -> int:
        """Under the lock: reserve the window's room (statements), rate limited."""
        if self._stop_issuing or self._input_done:
            return 0
        credits = self._limit - self._issued
        room = self._ahead_cap - (self._issued - self.delivered)
        if room < credits:
            credits = room
        if credits <= 0:
            return 0
        if self._rate is not None:
            credits, wake_in = self._rate.take(credits)
            if wake_in and not self._timer_pending:
                self._timer_pending = True
                self._wake_later(wake_in)
            if credits <= 0:
                return 0
        self._issued += credits
        ahead = self._issued - self.delivered
        if ahead > self.max_buffered:
            self.max_buffered = ahead
        return credits

    def _count_failure(self, index: int) -> None:
        if self._raise and (self._failed_at < 0 or index < self._failed_at):
            self._failed_at = index
        super()._count_failure(index)

    def _issue_batched(self, credits: int, first: int) -> bool:
        """One pass of the grouping and flat-map stages: pull ``credits`` statements into the
        batcher, then send what may go now. True if a push source had nothing ready."""
        batcher = self._batcher
        assert batcher is not None
        if not self._prepared_long_run:
            self._prepared_long_run = True
            try:
                self._prepare_long_run()
            except Exception as exc:  # a doubtful checkpoint, an unwritable file: nothing runs
                self._give_back(credits, exc)
                return False
        starved = False
        resend = self._resend
        if resend:
            batcher.resend_alone([resend.popleft() for _ in range(len(resend))])
        due = self._due
        while due:
            self._send_retry(due.popleft())
        index = first
        while credits:
            try:
                pulled = self._pull()
            except Exception as exc:
                self._give_back(credits, exc)
                break
            if pulled is END or pulled is EMPTY:
                self._give_back(credits, None if pulled is END else EMPTY)
                starved = pulled is EMPTY
                break
            credits -= 1
            if index == 0 and self._checkpoint is not None and self._checkpoint.statement is None:
                self._checkpoint.statement = statement_text(pulled[0])
            try:
                batcher.add(index, pulled[0], pulled[1])
            except Exception as exc:  # binding failed: the statement's own failure
                self._complete_requests([(index, False, exc)], 0, items=[pulled])
            index += 1
        # Open batches go out unless more may still come this pass: only a rate limit that has
        # room left in the window holds them (until its timer wakes the loop).
        flush = self._rate is None or starved or self._stop_issuing or self._input_done
        if not flush:
            flush = self._limit - self._issued <= 0
        if not batcher.sendable(flush):
            return starved
        with self._lock:
            slots = self._concurrency - self._in_flight
            if slots <= 0:
                return starved
            self._in_flight += slots
        sent = 0
        while sent < slots:
            request = batcher.take(flush)
            if request is None:
                break
            if self._stop_issuing and self._failed_at >= 0:
                # raise_on_first_error: what comes after the failure is never sent; the stream
                # ends with the failure before any of it would be delivered.
                request = request.before(self._failed_at)
                if request is None:
                    continue
            sent += 1
            self._send(request)
        with self._lock:
            self._in_flight -= slots - sent
            if self._in_flight > self.max_in_flight:
                self.max_in_flight = self._in_flight
        return starved

    def _send_retry(self, request: Request) -> None:
        """Send a request whose retry is due; it still holds its concurrency slot."""
        if self._stop_issuing and self._failed_at >= 0:
            kept = request.before(self._failed_at)
            if kept is None:
                self._complete_requests([], 1)  # never sent again: give its slot back
                return
            request = kept
        with self._lock:
            self.retries += 1
        self._send(request)

    def _retries_due(self, requests: list[Request]) -> None:
        """On the timer's thread: these retries are due; the drain loop sends them."""
        with self._lock:
            if self._terminated:
                return
            self._due.extend(requests)
            self._waiting -= sum(len(r.indexes) for r in requests)
            self._wip += 1
            if self._wip != 1:
                return
            ready = self._buffer.take_ready() if self._buffer.pending else NONE_READY
            credits = self._reserve()
            first = self._issued - credits
        self._drain(ready, credits, first)

    def _send(self, request: Request) -> None:
        if self._timed:
            request.sent = self._clock()
        if request.timestamp is None and self._stamp_of is not None:
            # A batch takes its latest statement's timestamp: a statement it collides with
            # sealed an earlier batch, all of whose statements came before (see _batching).
            request.timestamp = self._stamp_of(max(request.indexes))
        try:
            statement, parameters = request.statement()
            if request.timestamp is None:
                future = self._execute_async(statement, parameters, execution_profile=self._profile)
            else:
                future = execute_with_timestamp(
                    self._session, statement, parameters, self._profile, request.timestamp
                )
            args = (future, request)
            future.add_callbacks(
                self._on_request_success,
                self._on_request_failure,
                callback_args=args,
                errback_args=args,
            )
        except Exception as exc:
            closed = self._closed_error(
                exc, f"the session was shut down before statement {request.indexes[0]} was sent"
            )
            if closed is None:
                self._complete_requests([(i, False, exc) for i in request.indexes], 1, request)
                return
            # The run cannot go on: this request's statements and every one still held fail
            # with the error, after the results already in, and the stream ends with it.
            with self._lock:
                self._stop_issuing = self._input_done = True
                if self._input_error is None:
                    self._input_error = closed
            batcher = self._batcher
            assert batcher is not None
            held = list(request.indexes)
            items = list(request.items)
            while (other := batcher.take(True)) is not None:
                held.extend(other.indexes)
                items.extend(other.items)
            self._complete_requests([(i, False, closed) for i in held], 1, items=items)

    # -- completions: one request, one or many statements -----------------------------------

    def _on_request_success(self, rows: Any, future: Any, request: Request) -> None:
        try:
            value = result_set(future, rows)
        except Exception as exc:
            self._on_request_failure(exc, future, request)
            return
        if request.batched and self._warnings is not None:
            self._warnings.seen(future)
        self._complete_requests([(i, True, value) for i in request.indexes], 1, request)

    def _on_request_failure(self, exc: Any, future: Any, request: Request) -> None:
        detach(future)
        if self._timed and isinstance(exc, OVERLOAD_ERRORS):
            with self._lock:
                self._sample(request, True)
        timestamp = request.timestamp or request_timestamp(future)
        if request.batched and isinstance(exc, _REFUSED):
            # Refused as a whole, so nothing of it was applied: each statement again, alone,
            # with the batch's client timestamp (its place in the order of writes).
            self._resend.append(request.with_timestamp(timestamp))
            self._complete_requests([], 1)
            return
        retry = self._retry
        if (
            retry is not None
            and request.attempts < retry.attempts
            and retry.allows(exc, [statement for statement, _ in request.items])
            and not session_closed(self._session)
        ):
            with self._lock:
                if self._terminated:
                    return
                self._waiting += len(request.indexes)
            # The slot and the window place stay taken while it waits: retries slow the run
            # down instead of piling up. Same client timestamp: an older write cannot win.
            delay = retry.delay(request.attempts, self._rng)
            self._retry_timer.schedule(request.again(timestamp), delay)
            return
        self._complete_requests([(i, False, exc) for i in request.indexes], 1, request)

    def _sample(self, request: Request, overloaded: bool) -> None:
        """Under the lock: a sent request finished (or failed with an overload error)."""
        if request.sent:
            self._sample_latency(request.sent, len(request.indexes), overloaded)
            request.sent = 0.0  # one sample per attempt

    def _complete_requests(
        self,
        outcomes: list[tuple[int, bool, Any]],
        requests: int,
        request: Request | None = None,
        items: list[tuple[Any, Any]] | None = None,
    ) -> None:
        """``requests`` requests finished with these statement outcomes (the merge, for many);
        ``request``: the one that was sent (timed, and its statements logged if they failed);
        ``items``: the statements of the outcomes, when there is no request."""
        results: list[tuple[int, DriverExecutionResult]] = []
        offset = self._offset
        for index, success, value in outcomes:
            if self._indexed:
                indexed = _new_result(ExecutionResult, (success, value))
                indexed.index = index + offset
                results.append((index, indexed))
            else:
                results.append((index, _new_result(DriverExecutionResult, (success, value))))
        logged: set[int] | None = None
        if self._failed_log is not None:
            logged = self._log_failures(outcomes, request, items)
        with self._lock:
            if self._terminated:
                return
            if request is not None and self._timed:
                self._sample(request, False)
            self._in_flight -= requests
            self._done += len(results)
            buffer = self._buffer
            watermark = self._watermark
            for index, result in results:
                if not result[0]:
                    self._count_failure(index)
                    if watermark is not None and logged is not None and index in logged:
                        watermark.mark(index + offset)
                elif watermark is not None:
                    watermark.mark(index + offset)
                buffer.put(index, result)
            self._wip += 1
            if self._wip != 1:
                return
            ready = buffer.take_ready()
            credits = self._reserve()
            first = self._issued - credits
        self._drain(ready, credits, first)

    def _log_failures(
        self,
        outcomes: list[tuple[int, bool, Any]],
        request: Request | None,
        items: list[tuple[Any, Any]] | None,
    ) -> set[int]:
        """Write the failed statements of ``outcomes`` to the failed log (outside the lock:
        file writes, on the completing thread; failures only). The indexes written."""
        failed_log = self._failed_log
        assert failed_log is not None
        logged: set[int] = set()
        if items is None:
            items = request.items if request is not None else []
        attempts = request.attempts if request is not None else 1
        for (index, success, value), (statement, parameters) in zip(outcomes, items, strict=False):
            if success:
                continue
            try:
                failed_log.record(index + self._offset, statement, parameters, value, attempts)
            except Exception as exc:
                # Not logged, so not final: the checkpoint stays before it and a resume runs it
                # again. Said once per statement, without its values.
                log.error(
                    "rxcql could not write statement %d to the failed log %s: %s",
                    index + self._offset,
                    failed_log.path,
                    type(exc).__name__,
                )
                continue
            logged.add(index)
        return logged

    def _prepare_long_run(self) -> None:
        """The first pass of a run with checkpoint= or failed_log=: open the failed log, read
        the checkpoint and skip what it says is done, start the checkpoint writer."""
        options = self._long_run
        assert options is not None
        if options.failed_log is not None:
            keyspace = getattr(self._session, "keyspace", None)
            self._failed_log = FailedLog(
                options.failed_log, keyspace if isinstance(keyspace, str) else None
            )
        if options.checkpoint is None:
            return
        state = None
        if options.resume:
            state = check_resume(
                read_checkpoint(options.checkpoint), options.checkpoint, options.run_id
            )
        skip = state.done if state is not None else 0

        def pull() -> Any:
            pulled = self._pull()
            return NO_MORE if pulled is END or pulled is EMPTY else pulled

        first = skip_done(
            pull,
            skip,
            state.statement if state is not None else None,
            options.checkpoint,
            lambda pulled: statement_text(pulled[0]),
        )
        self._offset = skip
        self._watermark = Watermark(skip)
        # The first statement is None until pulled (below) when nothing was skipped.
        self._checkpoint = start_writer(options, self._watermark, first)

    def _drop_queued(self) -> None:
        super()._drop_queued()
        self._resend.clear()

    def _close_long_run(self) -> None:
        """At termination (before the observer hears of it): the final checkpoint, complete if
        the input ended and every statement's outcome is final; close the failed log."""
        checkpoint, self._checkpoint = self._checkpoint, None
        if checkpoint is not None:
            watermark = self._watermark
            complete = (
                self._input_done
                and self._input_error is None
                and watermark is not None
                and watermark.low == self._offset + self._issued
            )
            checkpoint.close(complete=complete)
        failed_log, self._failed_log = self._failed_log, None
        if failed_log is not None:
            failed_log.close()

    def _release(self) -> None:
        super()._release()
        self._retry_timer.close()
        if self._warnings is not None:
            self._warnings.close()
        self._close_long_run()

    def snapshot(self, done: bool = False) -> Progress:
        progress = super().snapshot(done)
        return dataclasses.replace(progress, retries=self.retries, waiting=self._waiting)


#: What an :class:`ExecuteObservable` emits: rxcql's :class:`~rxcql.ExecutionResult` (from
#: :func:`execute`), or the driver's plain tuple (inside the drop-in calls).
_R_co = TypeVar("_R_co", bound=DriverExecutionResult, covariant=True)


class ExecuteObservable(DemandShell[_R_co]):
    """The Observable returned by :func:`rxcql.execute`: ``ExecuteObservable[ExecutionResult]``.

    A cold ``reactivex.Observable[ExecutionResult]``: compose it with ``pipe`` like any other.
    It adds :meth:`subscribe_with_demand`, through which rxcql's blocking and asyncio consumers
    drive the same engine with explicit demand.

    Emissions happen on the driver's IO thread unless ``scheduler=`` was given; errors arrive
    as ``on_error``; ``subscribe`` itself does not raise.
    """

    def __init__(
        self,
        session: SessionLike,
        source: Callable[[], IterableSource | PushSource],
        options: Options,
        indexed: bool = True,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(session, options.scheduler)
        self._make_source = source
        self._options = options
        #: Each result is an rxcql.ExecutionResult with ``.index``; False: the driver's plain
        #: tuple. The drop-in calls want the plain one: a list keeps every result until the end,
        #: and the per-result attribute dictionary then costs the garbage collector about 1.7 us
        #: per statement (measured, bench/). Fixed when the observable is made, used per run.
        self._indexed = indexed
        self._on_stop = on_stop

    @property
    def options(self) -> Options:
        return self._options

    @property
    def ack_every(self) -> int:
        return ack_interval(self._options.window, self._options.concurrency)

    def _make_run(self, observer: abc.ObserverBase[Any], manual: bool) -> _Run:
        options = self._options
        plain = (
            options.batch is None
            and options.retry is None
            and options.checkpoint is None
            and options.failed_log is None
        )
        run_type = _Run if plain else _RequestRun
        return run_type(
            self._session,
            self._make_source(),
            observer,
            self._options,
            manual,
            on_stop=self._on_stop,
            indexed=self._indexed,
        )

    def _start(self, run: _Run, demand: int | None) -> None:
        run.start(self._options.window if demand is None else demand)

    def subscribe_with_demand(
        self, observer: abc.ObserverBase[_R_co], initial_demand: int | None = None
    ) -> _Run | None:
        """Run with explicit demand, reactive-streams style.

        At most ``initial_demand`` (default: the window) statements are issued before the caller
        grants more with ``handle.request(n)``; each delivered result should be answered with a
        request for one more. ``observer`` is called directly (no reactivex auto-detach wrapper),
        on the thread that completes a future or that calls ``request``.

        Returns:
            The run handle, with ``request(n)``, ``dispose()`` and ``statistics()``; None if the
            session was already shut down (``observer.on_error`` has then been called).
        """
        run: _Run | None = super().subscribe_with_demand(observer, initial_demand)
        return run


def execute(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    **options: Unpack[RunKeywords],
) -> ExecuteObservable[ExecutionResult]:
    """Run statements concurrently, as a cold ``Observable[ExecutionResult]``.

    Nothing runs until you subscribe; every subscription runs the statements once (a generator
    can be consumed only once, a list any number of times).

    Args:
        session: a connected :class:`cassandra.cluster.Session`.
        statements_and_parameters: an iterable of ``(statement, parameters)`` pairs (a list, or a
            generator of millions: it is pulled lazily, one item per free slot). ``statement`` is a
            str, SimpleStatement, PreparedStatement or BoundStatement; ``parameters`` a sequence,
            a mapping for named markers, or None.
        concurrency: the most statements (requests, with ``batch=``) in flight at once: an
            int; or ``"auto"`` (``AdaptiveConcurrency()``) or an
            :class:`~rxcql.AdaptiveConcurrency` with explicit bounds: a limit that follows the
            cluster, growing while throughput gains and shrinking on ``Overloaded`` errors,
            timeouts and latency far above its floor; the window then follows the limit. See
            docs/retries.md.
        raise_on_first_error: True: the first failure (in input order when ``ordered``) ends the
            stream with ``on_error(exc)`` after every result before it; nothing new is issued once
            a failure is known. False: failures are emitted in place as
            ``ExecutionResult(False, exc)``.
        ordered: True: results in input order. False: results as they complete; each carries its
            input position as ``result.index``.
        execution_profile: passed to ``session.execute_async`` for every statement.
        window: the most statements issued but not yet delivered (default ``2 * concurrency``,
            at least ``concurrency``). It bounds memory when a consumer or statement 0 is slow.
        scheduler: deliver results on this reactivex scheduler instead of the driver's IO thread
            (see Threads below).
        max_rate: the most statements issued per second (a token bucket with bursts of a tenth
            of a second's worth); None for no limit.
        max_errors: with ``raise_on_first_error=False``, end the stream with
            :class:`~rxcql.TooManyErrorsError` once more than this many statements failed (an
            int), or more than this share of the completed ones (a float in (0, 1), judged after
            100 completions). Nothing new is issued after that; the results before it are
            delivered first.
        progress: called with a :class:`~rxcql.Progress` snapshot at most every
            ``progress_interval`` seconds while results arrive, and once more (``done=True``)
            when the stream ends. It runs on whichever thread runs the engine: usually the
            driver's IO thread, sometimes a consumer's thread as it grants demand; keep it short.
            If it raises, the error is logged and reporting stops.
        progress_interval: seconds between progress reports.
        batch: ``None`` (one request per statement, the default), ``"partition"`` (writes of one
            table and partition share UNLOGGED batches) or ``"replica"`` (writes whose
            partitions have the same replica set share batches, through the driver's token
            map; without one it groups by partition and says so once in the log). Only
            INSERT/UPDATE/DELETE of prepared statements without ``IF`` are batched; the rest
            runs alone. ``concurrency`` then counts requests (a batch is one); the window still
            counts statements (default ``2 * concurrency * batch_size``). See docs/bulk.md.
        batch_size: the most statements in one batch (default 32).
        batch_bytes: the most bytes of bound values in one batch (default 32 KiB, under the
            server's 50 KiB ``batch_size_fail_threshold``); a bigger statement runs alone.
        retry: None (no retries by rxcql, the default), a :class:`~rxcql.Retry`, or an int
            (``Retry(attempts=n)``): statements that failed with an error that may pass
            (timeouts, ``Unavailable``, ``Overloaded``, ...) are sent again after a backoff,
            keeping their concurrency slot, window place and client timestamp; only idempotent
            ones by default. Each still yields one result, its last outcome. See
            docs/retries.md.

    Returns:
        An :class:`ExecuteObservable` emitting one :class:`~rxcql.ExecutionResult` per
        statement, then completing; or ending with ``on_error``.

    Raises:
        TypeError: (immediately) a session without ``execute_async``, a non-iterable input, or a
            wrong type for a knob.
        ValueError: (immediately) ``concurrency <= 0``, ``window < concurrency``,
            ``max_rate <= 0``, a ``max_errors`` out of range, an unknown ``batch`` mode or a
            ``batch_size`` / ``batch_bytes`` that is not positive.
        Exception: (as ``on_error``) the driver's own exception, with
            ``raise_on_first_error=True``. Each ``on_error`` below comes after the results of
            the statements issued before it.
        ~rxcql.InvalidItemError: (as ``on_error``) for a malformed item.
        Exception: (as ``on_error``) the very exception the input iterator raised, unchanged
            but for a PEP 678 note saying how many statements had been pulled.
        ~rxcql.ObserverError: (as ``on_error``) when ``on_next`` raises.
        ~rxcql.SessionClosedError: (as ``on_error``) for a shut-down session.
        ~rxcql.TooManyErrorsError: (as ``on_error``) past ``max_errors``.

    Threads:
        By default results are emitted on the thread that completes a future: the driver's IO
        thread (or the subscribing thread, for results that are ready at once). That is the
        cheapest path, but while ``on_next`` runs, no other request of the session makes
        progress: keep it short and never block in it (iterating a multi-page ResultSet there
        deadlocks). With ``scheduler=`` the IO thread only queues results and the scheduler's
        thread delivers them; a slow observer then slows the issuing of statements (real
        backpressure), never the IO thread. Do not use ``observe_on`` for that: it buffers
        without bound. The blocking calls and the asyncio consumers deliver on their own thread.

    Example:
        >>> rxcql.execute(session, ((insert, (i, str(i))) for i in range(1_000_000))).pipe(
        ...     ops.filter(lambda r: not r.success)).subscribe(print)
    """
    check_session(session)
    check_iterable(statements_and_parameters)
    return ExecuteObservable(
        session, lambda: IterableSource(statements_and_parameters), Options.build(**options)
    )


def execute_driver_tuples(
    session: SessionLike,
    statements_and_parameters: Iterable[Any],
    concurrency: Concurrency,
    raise_on_first_error: bool,
    execution_profile: Any,
    **extensions: Unpack[Extensions],
) -> ExecuteObservable[DriverExecutionResult]:
    """:func:`execute` with the drop-in calls' knobs, emitting the driver's plain tuples."""
    check_session(session)
    check_iterable(statements_and_parameters)
    unknown = sorted(set(extensions) - set(Extensions.__annotations__))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    options = Options.build(
        concurrency=concurrency,
        raise_on_first_error=raise_on_first_error,
        execution_profile=execution_profile,
        **extensions,
    )
    return ExecuteObservable(
        session, lambda: IterableSource(statements_and_parameters), options, indexed=False
    )


def execute_operator(
    session: SessionLike, statement: Any, options: Options
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[ExecutionResult]]:
    """The engine as a pipeable operator; see :func:`rxcql.operators.execute`. Each subscription
    is one run of an :class:`ExecuteObservable` over a push source fed by the upstream."""
    check_session(session)

    def operator(upstream: reactivex.Observable[Any]) -> reactivex.Observable[ExecutionResult]:
        def subscribe(
            observer: abc.ObserverBase[ExecutionResult],
            sched: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            source = PushSource(statement)
            upstream_subscription = reactivex.disposable.SingleAssignmentDisposable()
            shell = ExecuteObservable[ExecutionResult](
                session, lambda: source, options, on_stop=upstream_subscription.dispose
            )
            run, subscription = shell._launch(observer)
            if run is None:
                return subscription

            def on_next(item: Any) -> None:
                source.push(item)
                run.signal()

            def on_error(error: Exception) -> None:
                source.finish(error)
                run.signal()

            def on_completed() -> None:
                source.finish()
                run.signal()

            upstream_subscription.disposable = upstream.subscribe(
                on_next, on_error, on_completed, scheduler=sched
            )
            return subscription

        return reactivex.Observable(subscribe)

    return operator
