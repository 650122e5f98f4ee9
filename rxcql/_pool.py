"""``rxcql.ProcessPool``: the engine across worker processes, past the GIL's ceiling.

The shape is the engine's own, twice. In the parent, :class:`PoolObservable` is a run of the
engine (:class:`rxcql._engine.ExecuteObservable`) whose "statements" are numbered *chunks* of
the input, read lazily, and whose session (:class:`_PoolSession`) hands each chunk to the least
busy worker and returns a future of its outcomes. So the parent keeps the engine's demand-driven
source, its bounded flat-map (at most ``chunks_out`` chunks out at once: backpressure across the
process boundary) and its reorder stage (chunks back in input order, or by completion); each
chunk's outcomes are then one :class:`~rxcql.Page` of :class:`~rxcql.ExecutionResult`, flattened
by the consumers as the row streams' pages are. In each worker, one run of the engine per job
is fed by a push source: a worker's ``concurrency``, batching, retries and adaptive limit apply
across the chunks it is given.

Last write wins in input order across workers: the parent gives each chunk the client
timestamps of its statements (increasing in input order) and the worker's run sends every
request with them (``Options.timestamps``), so a later statement's write wins over an earlier
one's whichever worker sends it first.

Threads and processes: workers are started with ``forkserver`` (POSIX) or ``spawn``, never
``fork`` (a live cluster's threads and sockets do not survive it). Each worker has a receiving
thread (chunks into its runs' push sources; statements are prepared there, once per text) and
a sending thread (outcomes out, rows copied there: iterating a multi-page ResultSet fetches
pages, which must not happen on the driver's IO thread). The parent has one reading thread,
which completes chunk futures (so the parent's run is driven from it, as the driver's IO thread
drives an in-process run) and notices a worker that died.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from operator import itemgetter
from typing import Any, Final, Unpack, cast

from cassandra.cluster import EXEC_PROFILE_DEFAULT, ResultSet
from cassandra.query import UNSET_VALUE, BoundStatement
from reactivex import abc

from ._controls import ErrorBudget
from ._engine import ExecuteObservable, _new_result
from ._errors import InvalidItemError, RxcqlError
from ._gc import tune_for_bulk
from ._longrun import (
    NO_MORE,
    CheckpointWriter,
    FailedLog,
    Watermark,
    check_resume,
    read_checkpoint,
    skip_done,
    start_writer,
)
from ._options import Options, RunKeywords, check_iterable
from ._results import ExecutionResult
from ._rows import Page, _RowsObserver
from ._scan import _Routed, bind_range, range_statements, select_list, token_ranges
from ._skeleton import DemandShell
from ._source import _PLAIN_PARAMETERS as _SOURCE_PLAIN_PARAMETERS
from ._source import END, IterableSource, PushSource, check_item

log = logging.getLogger("rxcql")

_dumps = ForkingPickler.dumps

#: Statements per chunk by default: large enough that crossing processes costs little per
#: statement, small enough that a chunk's results are a small message.
DEFAULT_CHUNK_SIZE: Final = 500
#: Chunks out at once per worker by default: one running, one queued behind it.
DEFAULT_CHUNKS_PER_WORKER: Final = 2
#: Seconds a worker may take to connect before the pool gives up on it.
CONNECT_TIMEOUT: Final = 120.0

#: The keywords of :func:`rxcql.execute` the pool passes on to its workers' runs.
_WORKER_KEYWORDS: Final = frozenset(
    {"concurrency", "batch", "batch_size", "batch_bytes", "retry", "max_rate", "execution_profile"}
)
#: The keywords the pool applies in the parent.
_PARENT_KEYWORDS: Final = frozenset(
    {
        "ordered",
        "raise_on_first_error",
        "max_errors",
        "window",
        "scheduler",
        "checkpoint",
        "resume",
        "checkpoint_interval",
        "run_id",
        "failed_log",
    }
)


class Serialized(tuple):  # type: ignore[type-arg]
    """Parameters already serialized for the statement's prepared form (the bytes a
    ``BoundStatement`` sends; None for null, ``cassandra.query.UNSET_VALUE`` for unset): the
    worker binds them without encoding anything. For a caller that serializes as it parses
    (``rxcql load --processes``), so that a value that does not encode is its own error.

    ``bound``, if the caller sets it (it does not cross to the workers), is the
    ``BoundStatement`` the bytes came from: the failed log then records the values decoded by
    the columns' types, as the engine does, instead of the bytes."""

    bound: BoundStatement | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # UNSET_VALUE is a singleton the driver tests by identity: it crosses as a marker.
        return (_serialized, (tuple(_UNSET_MARK if v is UNSET_VALUE else v for v in self),))


_UNSET_MARK: Final = "\x00rxcql-unset"


def _serialized(values: tuple[Any, ...]) -> Serialized:
    return Serialized(UNSET_VALUE if v == _UNSET_MARK else v for v in values)


class WorkerError(RxcqlError):
    """A worker of a :class:`ProcessPool` failed: it died (killed, out of memory) or its
    ``connect`` failed. The message names the worker and the chunks (input positions) that were
    lost; their statements may or may not have been applied."""


class RemoteError(RxcqlError):
    """An exception raised in a worker that cannot be rebuilt in the parent (its class does not
    pickle): its type and message, as text."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteError, (self.type_name, str(self)[len(self.type_name) + 2 :]))


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling as the same type, else a :class:`RemoteError` of it."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if type(copy) is type(exc):
            return exc
    except Exception:  # an exception class whose __init__ does not take its args back
        pass
    kind = type(exc)
    return RemoteError(f"{kind.__module__}.{kind.__qualname__}", str(exc))


# -- the worker process -------------------------------------------------------------------


@dataclass(slots=True)
class _WorkerChunk:
    number: int
    run_start: int
    count: int
    first_timestamp: int
    results: list[Any]
    remaining: int
    #: The chunk offset of each statement run (None: all of them, in order); statements
    #: whose CQL text failed to prepare are not run: their results are already in place.
    offsets: list[int] | None = None

    def offset(self, index: int) -> int:
        """The chunk offset of the run's statement ``index``."""
        k = index - self.run_start
        return k if self.offsets is None else self.offsets[k]


class _WorkerJob:
    """One ``pool.execute`` run in a worker: an engine run over a push source that the
    receiving thread fills with the chunks it is given; completed chunks go to the sender."""

    rxcql_internal = True  # its on_next only records: it runs on the driver's IO thread

    def __init__(
        self,
        job: int,
        session: Any,
        keywords: dict[str, Any],
        outbox: queue.SimpleQueue[Any],
        stamped: bool = True,
    ) -> None:
        self._job = job
        self._outbox = outbox
        self._lock = threading.Lock()
        self._chunks: list[_WorkerChunk] = []  # by run_start, ascending
        self._starts: list[int] = []
        self._pulled = 0
        self._stamping: _WorkerChunk | None = None  # the chunk _timestamp_of used last
        self._emitting: _WorkerChunk | None = None  # the chunk on_next used last
        #: The error the run ended with: later chunks of this job are refused.
        self.failed: BaseException | None = None
        self._source = PushSource()
        options = Options.build(**keywords, ordered=False, raise_on_first_error=False, window=None)
        if stamped:
            options = _replace(options, timestamps=self._timestamp_of)
        shell = ExecuteObservable[ExecutionResult](session, lambda: self._source, options)
        self._run: Any = None
        run, self._subscription = shell._launch(cast(abc.ObserverBase[Any], self))
        self._run = run

    def _timestamp_of(self, index: int) -> int:
        # On the issuing thread, in index order: almost always the chunk of the index before.
        chunk = self._stamping
        if chunk is None or not chunk.run_start <= index < chunk.run_start + chunk.count:
            with self._lock:
                chunk = self._chunks[bisect_right(self._starts, index) - 1]
            self._stamping = chunk
        return chunk.first_timestamp + chunk.offset(index)

    def add(
        self,
        number: int,
        first_timestamp: int,
        items: list[tuple[Any, Any]],
        size: int,
        offsets: list[int] | None = None,
        failures: dict[int, BaseException] | None = None,
    ) -> bool:
        """Run ``items``, the statements of a chunk of ``size`` (at ``offsets`` of it, or all
        in order); ``failures`` are the outcomes of the rest. False: this job's run has ended
        (with an error), it runs nothing more."""
        results: list[Any] = [None] * size
        for offset, error in (failures or {}).items():
            results[offset] = (False, error)
        with self._lock:
            if self.failed is not None:
                return False
            if items:
                self._chunks.append(
                    _WorkerChunk(
                        number,
                        self._pulled,
                        len(items),
                        first_timestamp,
                        results,
                        len(items),
                        offsets,
                    )
                )
                self._starts.append(self._pulled)
                self._pulled += len(items)
        if not items:
            self._outbox.put(("done", self._job, number, results))
            return True
        push = self._source.push
        for item in items:
            push(item)
        if self._run is not None:
            self._run.signal()
        return True

    def finish(self) -> None:
        self._source.finish()
        if self._run is not None:
            self._run.signal()

    def cancel(self) -> None:
        self._subscription.dispose()

    # The observer of the worker's run (on the driver's IO thread: record, never block). The
    # run calls it from one thread at a time; the lock guards the chunk list against ``add``.
    def on_next(self, result: Any) -> None:
        index = result.index
        chunk = self._emitting  # almost always the chunk of the result before
        if chunk is None or not chunk.run_start <= index < chunk.run_start + chunk.count:
            with self._lock:
                chunk = self._chunks[bisect_right(self._starts, index) - 1]
            self._emitting = chunk
        chunk.results[chunk.offset(index)] = result
        chunk.remaining -= 1
        if chunk.remaining:
            return
        self._emitting = None
        with self._lock:
            position = bisect_right(self._starts, chunk.run_start) - 1
            del self._chunks[position]
            del self._starts[position]
        self._outbox.put(("done", self._job, chunk.number, chunk.results))

    def on_error(self, error: Exception) -> None:
        error = portable(error)  # type: ignore[assignment]
        with self._lock:
            self.failed = error
        self._outbox.put(("failed", self._job, error))

    def on_completed(self) -> None:
        self._outbox.put(("ended", self._job))


def _replace(options: Options, **changes: Any) -> Options:
    from dataclasses import replace

    return replace(options, **changes)


def _outcomes(results: list[Any]) -> tuple[list[Any] | None, dict[int, BaseException]]:
    """A chunk's results as they cross to the parent: the rows of each statement as plain
    tuples (None for all when no statement returned rows) and the failures by offset. Runs on
    the sending thread: copying a ResultSet may fetch its next pages."""
    rows: list[Any] = []
    failures: dict[int, BaseException] = {}
    any_rows = False
    empty: Any = None  # the last answer seen without rows (a batch's, shared by its statements)
    for offset, result in enumerate(results):
        success, value = result[0], result[1]
        if not success:
            failures[offset] = portable(value)
            rows.append(None)
            continue
        if value is None or value is empty:
            rows.append([])
            continue
        if isinstance(value, ResultSet) and not value.current_rows and not value.has_more_pages:
            empty = value
            rows.append([])  # a write's answer: no rows, nothing to fetch
            continue
        try:
            copied = [row if isinstance(row, dict) else tuple(row) for row in value]
        except Exception as exc:  # fetching a next page failed: the statement's failure
            failures[offset] = portable(exc)
            rows.append(None)
            continue
        any_rows = any_rows or bool(copied)
        rows.append(copied)
    return (rows if any_rows else None), failures


def _sender(conn: Connection, outbox: queue.SimpleQueue[Any]) -> None:
    while True:
        message = outbox.get()
        if message is None:
            return
        try:
            if message[0] == "done":
                _, job, number, results = message
                rows, failures = _outcomes(results)
                message = ("done", job, number, rows, failures)
            payload = _dumps(message)
        except Exception as exc:  # rows that do not pickle: this thread must go on
            payload = _dumps(_unsendable(message, exc))
        try:
            conn.send_bytes(payload)
        except (OSError, ValueError):  # the parent is gone
            return


def _unsendable(message: tuple[Any, ...], exc: Exception) -> tuple[Any, ...]:
    """What to send instead of ``message``, which did not pickle: the statements whose rows do
    not pickle fail (with the pickling error's type and message, never the values); what
    cannot be told apart fails as a whole."""
    kind = message[0]
    if kind == "done" and len(message) == 5:
        _, job, number, rows, failures = message
        failures = dict(failures)
        rows = list(rows) if rows is not None else None
        for offset, statement_rows in enumerate(rows or ()):
            try:
                pickle.dumps(statement_rows)
            except Exception as problem:
                rows[offset] = None  # type: ignore[index]
                failures[offset] = RemoteError(
                    type(problem).__qualname__,
                    f"the statement's rows cannot cross to the parent process: {problem}",
                )
        candidate = ("done", job, number, rows, failures)
        with contextlib.suppress(Exception):
            pickle.dumps(candidate)
            return candidate
    error = RemoteError(type(exc).__qualname__, f"cannot cross to the parent process: {exc}")
    if kind == "done":
        return ("chunk-failed", message[1], message[2], error)
    if kind == "reply":
        return ("reply", message[1], False, error)
    if kind == "failed":
        return ("failed", message[1], error)
    return ("fatal", error, "")


#: The statement text of a pool scan's range query (never sent as CQL: see _Statements).
_SCAN_MARK: Final = "\x00rxcql-scan-range"


class _Statements:
    """Per worker: CQL text prepared once; a scan's range as its bound, routed query."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._prepared: dict[Any, Any] = {}

    def chunk(
        self, items: list[tuple[str, Any]] | tuple[str, list[Any]]
    ) -> tuple[list[tuple[Any, Any]], list[int] | None, dict[int, BaseException]]:
        """A chunk's items (pairs, or one text and its parameters: see ``_columns``) ready to
        run, their offsets (None: all, in order), and the failures of the items whose CQL text
        did not prepare (only those: the rest still run)."""
        if type(items) is tuple:
            return self._one_text(*items)
        ready: list[tuple[Any, Any]] = []
        failures: dict[int, BaseException] = {}
        refused: dict[Any, BaseException] = {}  # per chunk: a failed prepare is tried again
        for offset, (statement, parameters) in enumerate(items):
            error = refused.get(statement)
            if error is None:
                try:
                    ready.append(self.item(statement, parameters))
                    continue
                except Exception as exc:
                    error = refused[statement] = portable(exc)
            failures[offset] = error
        if not failures:
            return ready, None, failures
        offsets = [offset for offset in range(len(items)) if offset not in failures]
        return ready, offsets, failures

    def _one_text(
        self, statement: str, parameters: list[Any]
    ) -> tuple[list[tuple[Any, Any]], list[int] | None, dict[int, BaseException]]:
        if statement == _SCAN_MARK or Serialized in set(map(type, parameters)):
            return self.chunk([(statement, p) for p in parameters])
        try:
            prepared = self._prepare(statement)
        except Exception as exc:
            error = portable(exc)
            return [], [], dict.fromkeys(range(len(parameters)), error)
        return [(prepared, p) for p in parameters], None, {}

    def item(self, statement: str, parameters: Any) -> tuple[Any, Any]:
        if statement == _SCAN_MARK:
            return self._range(*parameters), None
        prepared = self._prepare(statement)
        if type(parameters) is Serialized:
            bound = BoundStatement(prepared)
            bound.values = list(parameters)
            return bound, None
        return prepared, parameters

    def _prepare(self, statement: str) -> Any:
        """The statement's prepared form, prepared on first use (raises if it does not)."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = self._session.prepare(statement)
        return prepared

    def _range(self, spec: tuple[Any, ...], start: int | None, end: int) -> Any:
        table, select, where, fetch_size = spec
        statements = self._prepared.get(spec)
        if statements is None:
            statements = self._prepared[spec] = range_statements(
                self._session, table, select, where
            )
        bound = bind_range(self._session, statements, start, end)
        bound.fetch_size = fetch_size
        return bound


def _list_ranges(
    session: Any, table: str, select: str, where: str | None, splits: int
) -> list[tuple[int | None, int]]:
    keyspace = range_statements(session, table, select, where)[0]  # checks the table
    return [(piece.start, piece.end) for piece in token_ranges(session, keyspace, splits)]


def _keyspace_of(session: Any) -> str | None:
    keyspace = getattr(session, "keyspace", None)
    return keyspace if isinstance(keyspace, str) else None


#: What the parent may ask a worker directly (``_PoolCore.call``).
_CALLS: Final[dict[str, Callable[..., Any]]] = {"ranges": _list_ranges}


class _FailedJob:
    """A job whose run could not start in this worker: its chunks are answered with this."""

    def __init__(self, error: BaseException) -> None:
        self.failed: BaseException | None = error

    def finish(self) -> None:
        pass

    def cancel(self) -> None:
        pass


def worker_main(conn: Connection, connect: Callable[[], Any], number: int) -> None:
    """A worker process: connect, then run the jobs and chunks the parent sends."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        session = connect()
    except BaseException as exc:
        conn.send(("fatal", portable(exc), traceback.format_exc(limit=5)))
        conn.close()
        return
    tune_for_bulk()  # a worker is rxcql's own process (see rxcql._gc)
    outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    sender = threading.Thread(target=_sender, args=(conn, outbox), name="rxcql-pool-send")
    sender.start()
    conn.send(("ready", os.getpid(), _keyspace_of(session)))
    jobs: dict[int, _WorkerJob | _FailedJob] = {}
    statements = _Statements(session)
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            kind = message[0]
            if kind == "chunk":
                _, job, number, first_timestamp, payload = message
                worker_job = jobs.get(job)
                if worker_job is None or worker_job.failed is not None:
                    # Cancelled (the parent waits for nothing), or the job never started or
                    # has ended with an error: the parent must hear it, or it waits forever.
                    error = worker_job.failed if worker_job is not None else None
                    outbox.put(("failed", job, error or RxcqlError("the worker has no run for it")))
                    continue
                try:
                    # The items cross pickled apart from the message, so that one the worker
                    # cannot unpickle (a class only the parent has) fails its chunk, not the worker.
                    items = pickle.loads(payload)
                except Exception as exc:
                    outbox.put(("chunk-failed", job, number, portable(exc)))
                    continue
                ready, offsets, failures = statements.chunk(items)
                size = len(items[1]) if type(items) is tuple else len(items)
                assert isinstance(worker_job, _WorkerJob)  # a _FailedJob has .failed
                if not worker_job.add(number, first_timestamp, ready, size, offsets, failures):
                    outbox.put(("failed", job, worker_job.failed))
            elif kind == "job":
                _, job, keywords = message
                try:
                    routed = keywords.pop("routed", False)
                    jobs[job] = _WorkerJob(
                        job,
                        _Routed(session) if routed else session,
                        keywords,
                        outbox,
                        stamped=not routed,  # reads: no client timestamps to keep
                    )
                except Exception as exc:
                    outbox.put(("failed", job, portable(exc)))
                    jobs[job] = _FailedJob(portable(exc))
            elif kind == "call":
                _, call, name, args = message
                try:
                    outbox.put(("reply", call, True, _CALLS[name](session, *args)))
                except Exception as exc:
                    outbox.put(("reply", call, False, portable(exc)))
            elif kind == "end":
                worker_job = jobs.get(message[1])
                if worker_job is not None:
                    worker_job.finish()
            elif kind == "cancel":
                worker_job = jobs.pop(message[1], None)
                if worker_job is not None:
                    worker_job.cancel()
            elif kind == "forget":
                jobs.pop(message[1], None)
            elif kind == "close":
                break
    finally:
        for worker_job in jobs.values():
            worker_job.cancel()
        outbox.put(None)
        sender.join(timeout=10)
        with contextlib.suppress(Exception):
            cluster = getattr(session, "cluster", None)
            if cluster is not None:
                cluster.shutdown()
            else:
                session.shutdown()
        conn.close()


# -- the parent ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """A numbered chunk of the input: ``count`` statements from ``first``. ``items``, their
    (CQL text, parameters), are dropped once sent unless ``keep`` (a failed log records a
    failure's statement): statements that live only until they are pickled die young, and the
    parent's garbage collector never walks them."""

    number: int
    first: int
    count: int
    items: list[tuple[str, Any]] | None
    first_timestamp: int
    keep: bool = False

    def describe(self) -> str:
        return f"chunk {self.number} (statements {self.first}..{self.first + self.count - 1})"


@dataclass(slots=True)
class _Outcomes:
    """What a worker sent back for a chunk."""

    chunk: _Chunk
    rows: list[Any] | None
    failures: dict[int, BaseException]


class _ChunkFuture:
    """The future of a chunk sent to a worker, in the driver's future shape
    (``add_callbacks``), completed on the pool's reading thread."""

    __slots__ = ("_args", "_callback", "_errback", "_lock", "_outcome", "chunk", "worker")

    def __init__(self, chunk: _Chunk, worker: _Worker) -> None:
        self.chunk = chunk
        self.worker = worker
        self._lock = threading.RLock()  # reentrant: see RunSkeleton's
        self._callback: Any = None
        self._errback: Any = None
        self._args: tuple[Any, ...] = ()
        self._outcome: tuple[bool, Any] | None = None

    def add_callbacks(
        self,
        callback: Callable[..., None],
        errback: Callable[..., None],
        callback_args: tuple[Any, ...] = (),
        errback_args: tuple[Any, ...] = (),
    ) -> None:
        with self._lock:
            outcome = self._outcome
            if outcome is None:
                self._callback, self._errback, self._args = callback, errback, callback_args
                return
        # Already done (as the driver does, the callback runs at once on this thread).
        (callback if outcome[0] else errback)(outcome[1], *callback_args)

    def complete(self, ok: bool, value: Any) -> None:
        with self._lock:
            if self._outcome is not None:
                return
            self._outcome = (ok, value)
            callback = self._callback if ok else self._errback
            args = self._args
            self._callback = self._errback = None
        if callback is not None:
            callback(value, *args)


class _Worker:
    """The parent's end of one worker process."""

    def __init__(self, number: int, process: Any, conn: Connection) -> None:
        self.number = number
        self.process = process
        self.conn = conn
        self.send_lock = threading.RLock()  # reentrant: see RunSkeleton's
        #: Chunks out at this worker: (job, chunk number) -> future.
        self.out: dict[tuple[int, int], _ChunkFuture] = {}
        #: Jobs whose run ended in this worker with an error: their next chunks fail at once.
        self.failed_jobs: dict[int, BaseException] = {}
        #: Why the parent stopped this worker itself (a message it could not read), or None.
        self.failure: str | None = None
        self.alive = True

    def send(self, message: Any) -> None:
        with self.send_lock:
            self.conn.send(message)

    def describe(self) -> str:
        return f"worker {self.number} (pid {self.process.pid})"


class _PoolCore:
    """The workers, the reading thread and the jobs: what the pool's finalizer closes (the
    :class:`ProcessPool` itself is only its face, so that garbage collection can close it)."""

    def __init__(
        self, connect: Callable[[], Any], processes: int, start_method: str | None
    ) -> None:
        method = start_method or (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        if method == "fork":
            raise ValueError(
                "ProcessPool never forks (a live cluster's threads and sockets do not survive "
                "it): use start_method='forkserver' or 'spawn'"
            )
        context: Any = multiprocessing.get_context(method)
        self._lock = threading.RLock()  # reentrant: see RunSkeleton's
        self.closed = False
        self.broken: WorkerError | None = None
        self.jobs: dict[int, _PoolSession] = {}
        self._job_numbers = itertools.count()
        self._last_timestamp = 0
        self.workers: list[_Worker] = []
        self._calls: dict[int, tuple[threading.Event, list[Any], _Worker]] = {}
        self._call_numbers = itertools.count()
        self._reader: threading.Thread | None = None
        #: The workers' sessions' keyspace (where CQL text without one runs), from the first
        #: worker to connect: the failed log records it.
        self.keyspace: str | None = None
        try:
            for number in range(processes):
                parent_end, child_end = context.Pipe(duplex=True)
                process = context.Process(
                    target=worker_main,
                    args=(child_end, connect, number),
                    name=f"rxcql-pool-worker-{number}",
                    daemon=True,
                )
                process.start()
                child_end.close()
                self.workers.append(_Worker(number, process, parent_end))
            self._await_ready()
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read, name="rxcql-pool-read", daemon=True)
        self._reader.start()

    def _await_ready(self) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        for worker in self.workers:
            while not worker.conn.poll(0.05):
                if not worker.process.is_alive():
                    raise WorkerError(
                        f"{worker.describe()} exited with code {worker.process.exitcode} "
                        "before it connected"
                    )
                if time.monotonic() > deadline:
                    raise WorkerError(
                        f"{worker.describe()} did not connect within {CONNECT_TIMEOUT:.0f} s"
                    )
            try:
                message = worker.conn.recv()
            except EOFError:
                raise WorkerError(f"{worker.describe()} exited before it connected") from None
            if message[0] == "fatal":
                error = WorkerError(f"connect() failed in {worker.describe()}: {message[1]}")
                error.__cause__ = message[1]
                raise error
            if self.keyspace is None and len(message) > 2:
                self.keyspace = message[2]

    def call(self, name: str, *args: Any, timeout: float = 120.0) -> Any:
        """Run ``_CALLS[name](session, *args)`` in a worker and return its value (or raise its
        error)."""
        with self._lock:
            self._check_usable()
            worker = min(self.workers, key=lambda w: len(w.out))
            call = next(self._call_numbers)
            done = threading.Event()
            answer: list[Any] = []
            self._calls[call] = (done, answer, worker)
        worker.send(("call", call, name, args))
        if not done.wait(timeout):
            with self._lock:
                self._calls.pop(call, None)
            raise WorkerError(f"{worker.describe()} did not answer within {timeout:.0f} s")
        ok, value = answer
        if not ok:
            raise value
        return value

    # -- timestamps -------------------------------------------------------------------------

    def timestamps(self, count: int) -> int:
        """The first of ``count`` client timestamps (microseconds), after every one given out
        before: statements get increasing timestamps in the order their chunks were read."""
        with self._lock:
            first = max(time.time_ns() // 1000, self._last_timestamp + 1)
            self._last_timestamp = first + count - 1
        return first

    # -- jobs -------------------------------------------------------------------------------

    def open_job(self, session: _PoolSession, keywords: dict[str, Any]) -> int:
        with self._lock:
            self._check_usable()
            job = next(self._job_numbers)
            self.jobs[job] = session
        try:
            for worker in self.workers:
                worker.send(("job", job, keywords))
        except Exception:
            self.stop_job(job, cancel=True)  # the workers that got it drop it
            raise
        return job

    def _check_usable(self) -> None:
        if self.closed:
            raise RxcqlError("the ProcessPool is closed")
        if self.broken is not None:
            raise RxcqlError(f"the ProcessPool lost a worker and cannot run more: {self.broken}")

    def send_chunk(self, job: int, chunk: _Chunk) -> _ChunkFuture:
        # Pickled apart from the message: a worker that cannot unpickle them fails the chunk.
        payload = pickle.dumps(_columns(chunk.items), pickle.HIGHEST_PROTOCOL)
        if not chunk.keep:
            chunk.items = None
        with self._lock:
            self._check_usable()
            failed = next((w.failed_jobs[job] for w in self.workers if job in w.failed_jobs), None)
            worker = min(self.workers, key=lambda w: len(w.out))
            future = _ChunkFuture(chunk, worker)
            if failed is None:
                worker.out[(job, chunk.number)] = future
        if failed is not None:  # the run ended in a worker: it takes no more chunks
            future.complete(False, failed)
            return future
        try:
            worker.send(("chunk", job, chunk.number, chunk.first_timestamp, payload))
        except Exception:
            with self._lock:
                worker.out.pop((job, chunk.number), None)
            raise
        return future

    def end_job(self, job: int) -> None:
        self._broadcast(("end", job))

    def stop_job(self, job: int, cancel: bool) -> None:
        with self._lock:
            if self.jobs.pop(job, None) is None:
                return
            for worker in self.workers:
                worker.failed_jobs.pop(job, None)
                for key in [key for key in worker.out if key[0] == job]:
                    del worker.out[key]
        self._broadcast(("cancel" if cancel else "forget", job))

    def _broadcast(self, message: Any) -> None:
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(OSError, ValueError):
                    worker.send(message)

    # -- the reading thread -----------------------------------------------------------------

    def _read(self) -> None:
        by_conn = {worker.conn: worker for worker in self.workers}
        by_sentinel = {worker.process.sentinel: worker for worker in self.workers}
        waiting: list[Any] = [*by_conn, *by_sentinel]
        while waiting and not self.closed:
            try:
                ready = wait(waiting, timeout=0.5)
            except OSError:
                break
            for handle in ready:
                worker = by_conn.get(handle)  # type: ignore[call-overload]
                if worker is None:
                    worker = by_sentinel[handle]
                    waiting.remove(handle)
                    # Drain what it sent before it died, then fail what is still out.
                    self._drain(worker)
                    if worker.conn in waiting:
                        waiting.remove(worker.conn)
                    self._lost(worker)
                    continue
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    waiting.remove(handle)
                    continue
                except Exception as exc:
                    # A message this process cannot unpickle: which chunk it answered is
                    # unknown, so the worker is stopped and its chunks fail as lost.
                    worker.failure = f"sent a message the parent cannot read ({exc!r})"
                    worker.process.kill()
                    continue
                try:
                    self._dispatch(worker, message)
                except Exception:  # this thread must go on, or every run waits forever
                    log.exception("rxcql ProcessPool: handling a worker's message failed")

    def _drain(self, worker: _Worker) -> None:
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll():
                self._dispatch(worker, worker.conn.recv())

    def _dispatch(self, worker: _Worker, message: Any) -> None:
        kind = message[0]
        if kind in ("done", "chunk-failed"):
            if kind == "done":
                _, job, number, rows, failures = message
            else:
                _, job, number, error = message
                rows = None
            with self._lock:
                future = worker.out.pop((job, number), None)
            if future is not None:
                if kind == "chunk-failed":  # every statement of it
                    failures = dict.fromkeys(range(future.chunk.count), error)
                future.complete(True, _Outcomes(future.chunk, rows, failures))
        elif kind == "reply":
            _, call, ok, value = message
            with self._lock:
                waiter = self._calls.pop(call, None)
            if waiter is not None:
                waiter[1].extend((ok, value))
                waiter[0].set()
        elif kind == "failed":
            _, job, error = message
            with self._lock:
                if job in self.jobs:
                    worker.failed_jobs[job] = error
                lost = [(k, f) for k, f in worker.out.items() if k[0] == job]
                for key, _ in lost:
                    del worker.out[key]
            for _, future in lost:
                future.complete(False, error)

    def _lost(self, worker: _Worker) -> None:
        worker.alive = False
        if self.closed:
            return
        code = worker.process.exitcode
        how = f"exit code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                how = f"signal {signal.Signals(-code).name}"
        if worker.failure is not None:
            how = f"stopped by the pool: it {worker.failure}"
        with self._lock:
            lost = list(worker.out.values())
            worker.out.clear()
            chunks = ", ".join(future.chunk.describe() for future in lost) or "no chunk"
            error = WorkerError(
                f"{worker.describe()} died ({how}); lost {chunks}: their statements may or may "
                "not have been applied"
            )
            if self.broken is None:
                self.broken = error
            calls = [c for c in self._calls.values() if c[2] is worker]
        log.error("rxcql ProcessPool: %s", error)
        for future in lost:
            future.complete(False, error)
        for done, answer, _ in calls:
            answer.extend((False, error))
            done.set()

    # -- closing ----------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            lost = [f for w in self.workers for f in w.out.values()]
            for worker in self.workers:
                worker.out.clear()
        # "close" goes out from a helper thread: a send can block (a worker that stopped
        # reading, its pipe full, or another thread's send stuck on one), and only ending that
        # worker, below, unblocks it. Nothing here waits on a send for long.
        closer = threading.Thread(
            target=self._broadcast, args=(("close",),), name="rxcql-pool-close", daemon=True
        )
        closer.start()
        closer.join(min(timeout, 2.0))
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5)
            with contextlib.suppress(OSError):
                worker.conn.close()
        # The runs still going end now (their stop sends nothing that can block: the
        # connections are closed).
        for future in lost:
            future.complete(False, RxcqlError("the ProcessPool was closed"))
        # The reading thread sees the pool closed within its 0.5 s poll. Waited for: at
        # interpreter exit (a Ctrl-C) a daemon thread still running is frozen where it stands,
        # perhaps holding a run's lock that a finalizer (the run's disposal) then waits on.
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
        closer.join(1.0)


class _PoolSession:
    """The session of the parent's run: "executing" a chunk sends it to a worker."""

    def __init__(self, core: _PoolCore, keywords: dict[str, Any], owner: Any = None) -> None:
        self._core = core
        self._owner = owner  # the ProcessPool: kept alive while a run uses it
        self._keywords = keywords
        self.job: int | None = None

    @property
    def is_shutdown(self) -> bool:
        return self._core.closed

    def open(self) -> None:
        self.job = self._core.open_job(self, self._keywords)

    def execute_async(self, chunk: _Chunk, parameters: Any = None, **_: Any) -> _ChunkFuture:
        assert self.job is not None
        try:
            return self._core.send_chunk(self.job, chunk)
        except RxcqlError:
            raise
        except Exception as exc:
            raise RxcqlError(f"could not send {chunk.describe()} to a worker: {exc!r}") from exc

    def input_ended(self) -> None:
        if self.job is not None:
            self._core.end_job(self.job)

    def stop(self, cancel: bool) -> None:
        if self.job is not None:
            self._core.stop_job(self.job, cancel)


class _PoolLongRun:
    """``checkpoint=`` and ``failed_log=`` of a pool run, kept in the parent, which sees every
    chunk's outcomes: the same files and rules as the engine's (rxcql/_longrun.py). A chunk is
    final when each of its statements succeeded or was written to the failed log; the
    checkpoint's low watermark moves over final chunks only (so a failure that was not logged
    holds it before its chunk, and a resume runs that chunk again)."""

    def __init__(self, options: Options, core: _PoolCore) -> None:
        self._options = options
        self.failed_log: FailedLog | None = None
        #: Input statements a resume skips (the checkpoint's count).
        self.skip = 0
        self._first: str | None = None
        self._watermark: Watermark | None = None
        self._writer: CheckpointWriter | None = None
        self._closed = False
        if options.failed_log is not None:
            # Where a statement of CQL text runs: the workers' sessions' keyspace.
            self.failed_log = FailedLog(options.failed_log, core.keyspace)
        if options.checkpoint is None:
            return
        try:
            state = (
                check_resume(
                    read_checkpoint(options.checkpoint), options.checkpoint, options.run_id
                )
                if options.resume
                else None
            )
        except BaseException:
            self.close(ended=False)
            raise
        if state is not None:
            self.skip = state.done
            self._first = state.statement
        self._watermark = Watermark(self.skip)

    def skip_input(self, iterator: Iterator[Any]) -> None:
        """Read past what the checkpoint says is done; check that it is the same input."""
        if self._options.checkpoint is not None:
            self._first = skip_done(
                lambda: next(iterator, NO_MORE),
                self.skip,
                self._first,
                self._options.checkpoint,
                lambda item: _checked(0, item)[0],
            )

    def first_statement(self, text: str) -> None:
        """The input's first statement, read (the checkpoint records it)."""
        self._first = text
        if self._writer is not None:
            self._writer.statement = text

    def start(self) -> None:
        """Start writing the checkpoint (after a resume's skip; the input's first statement
        is filled in when it is read)."""
        options = self._options
        if options.checkpoint is None or self._writer is not None or self._closed:
            return
        assert self._watermark is not None
        self._writer = start_writer(options, self._watermark, self._first)

    def chunk_done(self, chunk: _Chunk, failures: dict[int, BaseException]) -> None:
        """A chunk's outcomes are in: log its failures; move the watermark if all are final."""
        final = True
        failed_log = self.failed_log
        for offset, error in failures.items():
            if failed_log is None:
                final = False
                break
            assert chunk.items is not None  # kept for the failed log
            statement, parameters = chunk.items[offset]
            index = chunk.first + offset
            try:
                if isinstance(parameters, Serialized):
                    if parameters.bound is not None:
                        failed_log.record(index, parameters.bound, None, error, 0)
                    else:
                        failed_log.record(
                            index, statement, parameters, error, 0, prepared=True, serialized=True
                        )
                else:
                    failed_log.record(index, statement, parameters, error, 0, prepared=True)
            except Exception as exc:
                final = False  # not logged, so not final (said once, without its values)
                log.error(
                    "rxcql could not write statement %d to the failed log %s: %s",
                    index,
                    failed_log.path,
                    type(exc).__name__,
                )
        if final and self._watermark is not None:
            self._watermark.mark_span(chunk.first, chunk.first + chunk.count)

    def close(self, ended: bool, read: int = -1) -> None:
        """The final checkpoint (complete if the input ``ended`` and every one of the ``read``
        statements is final) and the failed log closed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            watermark = self._watermark
            writer.close(complete=ended and watermark is not None and watermark.low == read)
        if self.failed_log is not None:
            self.failed_log.close()


class _Chunker:
    """The parent's source: the user's iterable read lazily into numbered chunks."""

    def __init__(
        self,
        items: Iterable[Any],
        size: int,
        core: _PoolCore,
        session: _PoolSession,
        long_run: _PoolLongRun | None = None,
    ) -> None:
        self._iterator: Iterator[Any] = iter(items)
        self._size = size
        self._core = core
        self._session = session
        self._long_run = long_run
        #: Chunks keep their statements after sending only for a failed log.
        self._keep = long_run is not None and long_run.failed_log is not None
        self._numbers = itertools.count()
        self._position = 0
        self._error: BaseException | None = None
        #: The input ended (every statement was read into a chunk).
        self.ended = False

    @property
    def position(self) -> int:
        """Statements read so far (those a resume skipped included)."""
        return self._position

    def __iter__(self) -> Iterator[tuple[_Chunk, None]]:
        long_run = self._long_run
        if long_run is not None:
            try:
                long_run.skip_input(self._iterator)
                long_run.start()
            except BaseException:
                self._session.input_ended()
                raise
            self._position = long_run.skip
        while True:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            items: list[tuple[str, Any]] = []
            try:
                for item in itertools.islice(self._iterator, self._size):
                    items.append(_checked(self._position + len(items), item))
            except InvalidItemError as exc:
                if not items:
                    self._session.input_ended()
                    raise
                self._error = exc
            except Exception as exc:
                # The caller's own exception, unchanged but for a note (as rxcql.execute does).
                exc.add_note(
                    f"rxcql had pulled {self._position + len(items)} statements from "
                    "statements_and_parameters when its iterator raised this; nothing more was "
                    "issued"
                )
                if not items:
                    self._session.input_ended()
                    raise
                self._error = exc  # after the statements read before it
            if not items:
                self.ended = True
                self._session.input_ended()
                return
            first = self._position
            if first == 0 and long_run is not None:
                long_run.first_statement(items[0][0])
            self._position += len(items)
            yield (
                _Chunk(
                    next(self._numbers),
                    first,
                    len(items),
                    items,
                    self._core.timestamps(len(items)),
                    self._keep,
                ),
                None,
            )


class _ChunkSource:
    """The parent run's source: the chunker's chunks, already checked."""

    __slots__ = ("_chunks",)

    def __init__(self, chunker: _Chunker) -> None:
        self._chunks: Iterator[Any] = iter(chunker)

    def pull(self) -> Any:
        try:
            return next(self._chunks)
        except StopIteration:
            self._chunks = iter(())
            return END

    def close(self) -> None:
        self._chunks = iter(())


def _columns(items: Any) -> Any:
    """A chunk's items as they cross to a worker: ``(text, [parameters, ...])`` when they all
    have one CQL text (the common case: a third less to pickle and unpickle, one prepared-cache
    lookup), else the ``(text, parameters)`` pairs as they are."""
    texts = set(map(_first, items))
    if len(texts) == 1:
        return (texts.pop(), list(map(_second, items)))
    return items


_first = itemgetter(0)
_second = itemgetter(1)

#: Parameters that need no further check (check_item's plain kinds, and Serialized).
_PLAIN_PARAMETERS: Final = _SOURCE_PLAIN_PARAMETERS | {Serialized}


def _checked(index: int, item: Any) -> tuple[str, Any]:
    if (
        type(item) is tuple
        and len(item) == 2
        and type(item[0]) is str
        and type(item[1]) in _PLAIN_PARAMETERS
    ):
        return item  # the common case, the item itself: no second tuple per statement
    statement, parameters = check_item(index, item)
    if not isinstance(statement, str):
        raise InvalidItemError(
            index,
            item,
            "has a statement that is not CQL text: a ProcessPool prepares CQL text in each "
            f"worker (got {type(statement).__name__})",
        )
    return statement, parameters


class _ChunkPages(abc.ObserverBase[Any]):
    """Turns each chunk's outcomes into a :class:`~rxcql.Page` of results (global indexes),
    applying ``raise_on_first_error`` and ``max_errors`` per statement."""

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        session: _PoolSession,
        raise_on_first_error: bool,
        max_errors: int | float | None,
        rows_only: bool,
        long_run: _PoolLongRun | None = None,
        chunker: _Chunker | None = None,
    ) -> None:
        self._observer = observer
        self._session = session
        self._long_run = long_run
        self._chunker = chunker
        self._raise = raise_on_first_error
        self._budget = (
            ErrorBudget(max_errors) if max_errors is not None and not raise_on_first_error else None
        )
        self._rows_only = rows_only
        self.rxcql_internal = bool(getattr(observer, "rxcql_internal", False))
        self.run: Any = None
        self._failed = 0
        self._completed = 0
        self._ended = False

    @property
    def is_stopped(self) -> bool:
        return self._ended or bool(getattr(self._observer, "is_stopped", False))

    def on_next(self, value: Any) -> None:
        if self._ended:
            return
        outcomes: _Outcomes = value[1]
        chunk = outcomes.chunk
        rows = outcomes.rows
        failures = outcomes.failures
        first = chunk.first
        page = Page([], chunk.number)
        error: BaseException | None = None
        if self._long_run is not None:
            self._long_run.chunk_done(chunk, failures)
        if self._rows_only:
            if failures:
                offset = min(failures)
                error = failures[offset]
            else:
                for statement_rows in rows or ():
                    page.extend(statement_rows)
        elif not failures:  # the common case, in one loop
            count = chunk.count
            append = page.append
            if rows is None:
                for i in range(first, first + count):
                    result = _new_result(ExecutionResult, (True, []))
                    result.index = i
                    append(result)
            else:
                for i, statement_rows in enumerate(rows, first):
                    result = _new_result(ExecutionResult, (True, statement_rows))
                    result.index = i
                    append(result)
            self._completed += count
        else:
            for offset in range(chunk.count):
                failure = failures.get(offset)
                if failure is None:
                    page.append(
                        ExecutionResult(True, [] if rows is None else rows[offset], first + offset)
                    )
                    continue
                if self._raise:
                    error = failure
                    break
                self._failed += 1
                page.append(ExecutionResult(False, failure, first + offset))
                if self._budget is not None:
                    error = self._budget.exceeded(self._failed, self._completed + offset + 1)
                    if error is not None:
                        break
            self._completed += chunk.count
        if page:
            self._observer.on_next(page)
        if error is not None:
            self._fail(error)

    def close_long_run(self) -> None:
        """The final checkpoint (complete if the input ended and every statement read is
        final) and the failed log closed: at the run's end, before the observer hears of it,
        or at its disposal."""
        long_run = self._long_run
        chunker = self._chunker
        if long_run is not None and chunker is not None:
            long_run.close(chunker.ended, chunker.position)

    def _fail(self, error: BaseException) -> None:
        self._ended = True
        if self.run is not None:
            self.run.dispose()
        self._session.stop(cancel=True)
        self.close_long_run()
        self._observer.on_error(error if isinstance(error, Exception) else RxcqlError(repr(error)))

    def on_error(self, error: Exception) -> None:
        if self._ended:
            return
        self._ended = True
        self._session.stop(cancel=True)
        self.close_long_run()
        self._observer.on_error(error)

    def on_completed(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._session.stop(cancel=False)
        self.close_long_run()
        self._observer.on_completed()


class PoolObservable(DemandShell[Any]):
    """The Observable returned by :meth:`ProcessPool.execute` (of
    :class:`~rxcql.ExecutionResult`) and :meth:`ProcessPool.scan_table` (of rows as tuples).

    A cold ``reactivex.Observable``: iterate it with :func:`rxcql.iterate`, :func:`rxcql.aiterate`
    or :func:`rxcql.collect`, or subscribe. Every subscription is one run across the pool's
    workers. Items are emitted on the pool's reading thread unless ``scheduler=`` was given.
    """

    def __init__(
        self,
        pool: ProcessPool,
        items: Callable[[], Iterable[Any]],
        worker_keywords: dict[str, Any],
        parent: dict[str, Any],
        chunk_size: int,
        chunks_out: int,
        rows_only: bool = False,
        long_run: Options | None = None,
    ) -> None:
        super().__init__(None, parent.get("scheduler"))
        # The pool's finalizer closes it when the pool is collected: an Observable (and each
        # of its runs, through its session) keeps it alive while in use.
        self._pool = pool
        self._core = pool._core
        self._items = items
        self._worker_keywords = worker_keywords
        self._raise = parent.get("raise_on_first_error", True)
        self._max_errors = parent.get("max_errors")
        #: The run's options when checkpoint= or failed_log= was given (None: neither), every
        #: knob as the caller gave it (the checkpoint records them).
        self._long_run_options = (
            long_run
            if long_run is not None
            and (long_run.checkpoint is not None or long_run.failed_log is not None)
            else None
        )
        self._chunk_size = chunk_size
        self._rows_only = rows_only
        window = parent.get("window")
        self._options = Options.build(
            concurrency=chunks_out,
            window=2 * chunks_out if window is None else max(chunks_out, -(-window // chunk_size)),
            ordered=parent.get("ordered", True),
            raise_on_first_error=True,
        )

    @property
    def ack_every(self) -> int:
        return 1  # pages (chunks) are acknowledged one by one

    @property
    def flatten(self) -> bool:
        return True

    def _new_run(self, observer: abc.ObserverBase[Any], manual: bool) -> Any:
        return self._make_run(observer, manual)

    def _make_run(self, observer: abc.ObserverBase[Any], manual: bool) -> Any:
        session = _PoolSession(self._core, self._worker_keywords, self._pool)
        long_run: _PoolLongRun | None = None
        if self._long_run_options is not None:
            try:
                long_run = _PoolLongRun(self._long_run_options, self._core)
            except Exception as exc:  # a doubtful checkpoint, an unwritable file: nothing runs
                observer.on_error(exc)
                return None
        try:
            session.open()
        except Exception as exc:
            if long_run is not None:
                long_run.close(ended=False)
            if not isinstance(exc, RxcqlError):
                # a worker's pipe broke before the reader saw it die
                exc = WorkerError(f"could not start the run on the workers: {exc!r}")
            observer.on_error(exc)
            return None
        chunker = _Chunker(self._items(), self._chunk_size, self._core, session, long_run)
        pages = _ChunkPages(
            observer, session, self._raise, self._max_errors, self._rows_only, long_run, chunker
        )

        def stop() -> None:
            session.stop(cancel=True)
            pages.close_long_run()

        shell = ExecuteObservable[ExecutionResult](
            session,  # type: ignore[arg-type]
            lambda: cast(IterableSource, _ChunkSource(chunker)),
            self._options,
            on_stop=stop,
        )
        run = shell._make_run(pages, manual)
        pages.run = run
        return run

    def _start(self, run: Any, demand: int | None) -> None:
        run.start(self._options.window if demand is None else demand)

    def _plain(self, observer: abc.ObserverBase[Any]) -> abc.ObserverBase[Any]:
        return _RowsObserver(observer)


class ProcessPool:
    """Run statements across worker processes, each with its own session and engine.

    One Python process is capped by the GIL (the driver spends tens of microseconds of client
    CPU per request); the pool spreads the work over ``processes`` workers and merges their
    results back into one stream with the engine's guarantees: one result per statement, in
    input order (or by completion), bounded memory and backpressure across the process
    boundary. See docs/scaling.md.

    Args:
        connect: a picklable callable (a module-level function) that returns a connected
            ``Session``; each worker calls it once, and shuts its cluster down at exit.
        processes: worker processes (default: the CPU count).
        chunk_size: statements per chunk handed to a worker.
        chunks_per_worker: chunks out at each worker at once (the parent's concurrency is
            ``processes * chunks_per_worker`` chunks).
        start_method: ``"forkserver"`` (the default where available) or ``"spawn"``; never
            ``"fork"``.

    Example:
        >>> def connect():
        ...     return Cluster(["10.0.0.1"]).connect("ks")
        >>> with rxcql.ProcessPool(connect, processes=4) as pool:
        ...     for result in rxcql.iterate(pool.execute(("INSERT ...", row) for row in rows)):
        ...         ...

    Raises:
        WorkerError: a worker's ``connect`` failed or it exited before connecting.
        ValueError, TypeError: bad arguments.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        processes: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunks_per_worker: int = DEFAULT_CHUNKS_PER_WORKER,
        start_method: str | None = None,
    ) -> None:
        if not callable(connect):
            raise TypeError(f"connect must be a callable that returns a Session, got {connect!r}")
        try:
            pickle.dumps(connect)
        except Exception as exc:
            raise TypeError(
                "connect must be picklable (a module-level function, not a lambda or a closure): "
                f"{exc}"
            ) from exc
        count = (os.cpu_count() or 1) if processes is None else processes
        for name, value in (
            ("processes", count),
            ("chunk_size", chunk_size),
            ("chunks_per_worker", chunks_per_worker),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.processes = count
        self.chunk_size = chunk_size
        self.chunks_per_worker = chunks_per_worker
        self._core = _PoolCore(connect, count, start_method)
        self._finalizer = weakref.finalize(self, self._core.close)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (their sessions are shut down); runs still going end with an
        error. Idempotent; also done when the pool is garbage collected."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [worker.process.pid for worker in self._core.workers]

    def execute(
        self, statements_and_parameters: Iterable[Any], **options: Unpack[RunKeywords]
    ) -> PoolObservable:
        """Run ``(CQL text, parameters)`` pairs across the workers, as a cold Observable of
        :class:`~rxcql.ExecutionResult` (one per statement).

        The same keywords as :func:`rxcql.execute`, applied where they mean the same thing:
        ``concurrency``, ``batch``, ``batch_size``, ``batch_bytes``, ``retry`` and
        ``execution_profile`` (a name) in each worker (``concurrency`` is per worker);
        ``max_rate`` for the whole pool (split evenly over the workers); ``ordered``,
        ``raise_on_first_error``, ``max_errors``, ``window``, ``scheduler`` and the long-run
        keywords (``checkpoint``, ``resume``, ``checkpoint_interval``, ``run_id``,
        ``failed_log``) in the parent, which sees every chunk's outcomes: the checkpoint moves
        over whole chunks whose statements all succeeded or were logged, and the failed log
        records a statement's attempts as 0 (not known in the parent). A success's
        ``result_or_exc`` is a list of the statement's rows as plain tuples (a
        ResultSet cannot cross processes): ``[]`` for a write. The workers prepare the CQL
        text without marking it idempotent, so ``retry`` retries nothing unless given
        ``Retry(..., idempotent_only=False)`` (never for counters or conditional writes).

        Raises:
            TypeError: (immediately) a keyword the pool does not take (``progress``,
                ``progress_interval``), or a wrong type.
            ~rxcql.InvalidItemError: (as ``on_error``) an item that is not a pair of CQL text
                and parameters.
            WorkerError: (as ``on_error``) a worker died; the chunks it held are named.
        """
        check_iterable(statements_and_parameters)
        worker, parent, built = self._split(options)
        return PoolObservable(
            self,
            lambda: statements_and_parameters,
            worker,
            parent,
            self.chunk_size,
            self.processes * self.chunks_per_worker,
            long_run=built,
        )

    def execute_concurrent_with_args(
        self,
        statement: str,
        parameters: Iterable[Any],
        concurrency: int = 100,
        raise_on_first_error: bool = True,
        results_generator: bool = False,
    ) -> Any:
        """The drop-in shape of ``cassandra.concurrent.execute_concurrent_with_args``: a list
        of ``(success, result_or_exc)`` (a generator with ``results_generator=True``) in input
        order; with ``raise_on_first_error`` the first failure is raised."""
        if not isinstance(statement, str):
            raise TypeError(f"statement must be CQL text, got {type(statement).__name__}")
        check_iterable(parameters)
        observable = self.execute(
            ((statement, p) for p in parameters),
            concurrency=concurrency,
            raise_on_first_error=raise_on_first_error,
        )
        from ._consumers import iterate

        results = iterate(observable)
        if results_generator:
            return results
        with results:
            return list(results)

    def scan_table(
        self,
        table: str,
        columns: list[str] | None = None,
        where: str | None = None,
        splits: int | None = None,
        fetch_size: int | None = 5000,
        ordered: bool = False,
        scheduler: abc.SchedulerBase | None = None,
    ) -> PoolObservable:
        """Every row of a table (as plain tuples), its token ranges spread over the workers:
        each range is one query in a worker, its rows cross as one message (so ``splits``
        bounds the memory a range takes; default at least 32 ranges per worker). See
        :func:`rxcql.scan_table`."""
        select = select_list(columns, splits)
        wanted = splits if splits is not None else 32 * self.processes
        # The ranges are listed (and the table checked) by a worker, now.
        ranges = self._core.call("ranges", table, select, where, wanted)
        spec = (table, select, where, fetch_size)
        return PoolObservable(
            self,
            lambda: [(_SCAN_MARK, (spec, start, end)) for start, end in ranges],
            {"concurrency": 1, "routed": True},
            {"ordered": ordered, "scheduler": scheduler},
            1,
            self.processes * self.chunks_per_worker,
            rows_only=True,
        )

    def _split(self, options: RunKeywords) -> tuple[dict[str, Any], dict[str, Any], Options]:
        unknown = sorted(set(options) - _WORKER_KEYWORDS - _PARENT_KEYWORDS)
        if unknown:
            raise TypeError(
                f"ProcessPool.execute does not take {', '.join(unknown)} (see docs/scaling.md)"
            )
        built = Options.build(**options)  # validates every knob here, in the caller's thread
        worker: dict[str, Any] = {k: v for k, v in options.items() if k in _WORKER_KEYWORDS}
        parent: dict[str, Any] = {k: v for k, v in options.items() if k in _PARENT_KEYWORDS}
        if worker.get("max_rate") is not None:
            worker["max_rate"] = worker["max_rate"] / self.processes
        profile = worker.get("execution_profile", EXEC_PROFILE_DEFAULT)
        if profile is EXEC_PROFILE_DEFAULT:
            worker.pop("execution_profile", None)
        elif not isinstance(profile, str):
            raise TypeError("ProcessPool.execute takes execution_profile as a profile's name")
        try:
            pickle.dumps(worker)
        except Exception as exc:
            raise TypeError(f"the worker keywords must be picklable: {exc}") from exc
        return worker, parent, built
