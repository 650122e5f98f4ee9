"""``CassandraDatasink``: a Ray Data datasink that writes each task's rows through rxcql's engine.

Each write task turns its blocks into parameter tuples (a slice of a block at a time, as plain
Python values through Arrow), runs them through :func:`rxcql.execute` on its process's session
(see ``_sessions``) and returns a :class:`WriteReport`. ``on_write_complete`` runs in the driver
on the sink the user passed: it adds the reports up, checks them against the row count Ray
measured, keeps the sum in ``sink.report`` and applies the dataset-wide error budget.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, Unpack

from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import Datasink, WriteResult

from .._consumers import iterate
from .._controls import ErrorBudget
from .._engine import execute
from .._errors import RxcqlError, TooManyErrorsError
from .._options import Options
from .._results import ExecutionResult
from ._sessions import Connect, prepared_for, session_for

if TYPE_CHECKING:
    from ray.data._internal.execution.interfaces import TaskContext

#: Rows turned into Python values at once: bounds a task's memory beside Ray's block.
_SLICE_ROWS = 4096


class SinkOptions(TypedDict, total=False):
    """The keywords of :func:`rxcql.execute` that each write task passes through (per task)."""

    concurrency: Any
    window: int | None
    max_rate: float | None
    batch: Any
    batch_size: int
    batch_bytes: int
    retry: Any
    execution_profile: Any


class FailedRow(NamedTuple):
    """One row that failed to be written.

    Attributes:
        key: the row's key columns and their values (the user's data, handed back to the user;
            rxcql puts it in no log record and no exception message).
        error: the exception's type name (``InvalidRequest``, ``WriteTimeout``, ...).
        message: the exception's text, as the driver or the server wrote it.
    """

    key: dict[str, Any]
    error: str
    message: str


@dataclass(frozen=True)
class WriteReport:
    """What write tasks did: one task's, or the sum over a dataset (``sink.report``).

    ``rows == succeeded + failed + abandoned`` always holds.

    Attributes:
        rows: rows handed to the task(s).
        succeeded: rows the cluster acknowledged.
        failed: rows that failed (after the retries of ``retry=``).
        abandoned: rows of a task that stopped once its failures passed an int ``max_errors``:
            never sent, or sent with no outcome known (they may have been written).
        tasks: write tasks counted.
        errors_by_type: failures per exception type name.
        first_errors: the first failed rows (at most ``keep_errors`` per task and in the sum).
    """

    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0
    tasks: int = 0
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    first_errors: tuple[FailedRow, ...] = ()

    @classmethod
    def combine(cls, reports: Iterable[WriteReport], keep_errors: int) -> WriteReport:
        """The sum of ``reports``, keeping the first ``keep_errors`` failed rows."""
        rows = succeeded = failed = abandoned = tasks = 0
        by_type: Counter[str] = Counter()
        first: list[FailedRow] = []
        for report in reports:
            rows += report.rows
            succeeded += report.succeeded
            failed += report.failed
            abandoned += report.abandoned
            tasks += report.tasks
            by_type.update(report.errors_by_type)
            first.extend(report.first_errors[: max(0, keep_errors - len(first))])
        return cls(rows, succeeded, failed, abandoned, tasks, dict(by_type), tuple(first))


class WriteCountError(RxcqlError):
    """The write tasks' reports do not add up to the rows Ray handed them (a report was lost, or
    a task counted wrongly): the sink cannot say what was written. ``report`` holds the sum."""

    def __init__(self, message: str, report: WriteReport) -> None:
        super().__init__(message)
        self.report = report


class TooManyWriteErrorsError(TooManyErrorsError):
    """More rows failed than the sink's ``max_errors`` allows, over the whole dataset.

    Raised by ``Dataset.write_datasink`` (from ``on_write_complete``) once every task has ended.
    The message carries counts and exception type names only; ``report`` holds the first failed
    rows with their keys.
    """

    def __init__(self, message: str, report: WriteReport) -> None:
        super().__init__(message)
        self.report = report


def _describe_errors(by_type: Mapping[str, int]) -> str:
    ranked = sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} x {count:,}" for name, count in ranked) or "none"


def _key_columns(session: Any, insert: Any, columns: Sequence[str]) -> list[str]:
    """The primary key columns of the table ``insert`` writes, among ``columns``."""
    bound = getattr(insert, "column_metadata", None) or []
    try:
        keyspace, table = bound[0].keyspace_name, bound[0].table_name
        meta = session.cluster.metadata.keyspaces[keyspace].tables[table]
        primary = [column.name for column in meta.primary_key]
    except (AttributeError, IndexError, KeyError):
        return list(columns[:1])
    return [name for name in columns if name in primary] or list(columns[:1])


class _TaskWrite:
    """The state of one write task: the rows pulled so far, the keys of those in flight, the
    counts and the first failures."""

    def __init__(
        self, insert: Any, columns: Sequence[str], key: Sequence[str], keep_errors: int
    ) -> None:
        self._insert = insert
        self._columns = list(columns)
        self._key_positions = [self._columns.index(name) for name in key]
        self._key = list(key)
        self._keep_errors = keep_errors
        self._in_flight: dict[int, tuple[Any, ...]] = {}
        self._pulled = 0
        self.rows = 0
        self.succeeded = 0
        self.failed = 0
        self.by_type: Counter[str] = Counter()
        self.first_errors: list[FailedRow] = []

    def statements(self, blocks: Iterator[Block]) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """``(insert, values)`` pairs of every row of ``blocks``, pulled by the engine."""
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            self.rows += table.num_rows
            missing = [name for name in self._columns if name not in table.column_names]
            if missing:
                raise ValueError(
                    f"CassandraDatasink: the dataset has no column(s) {missing} "
                    f"(its columns: {table.column_names})"
                )
            for start in range(0, table.num_rows, _SLICE_ROWS):
                piece = table.slice(start, _SLICE_ROWS)
                values = [piece.column(name).to_pylist() for name in self._columns]
                for row in zip(*values, strict=True):
                    self._in_flight[self._pulled] = tuple(row[i] for i in self._key_positions)
                    self._pulled += 1
                    yield self._insert, row

    def record(self, result: ExecutionResult) -> None:
        key = self._in_flight.pop(result.index, ())
        if result.success:
            self.succeeded += 1
            return
        self.failed += 1
        error = result.result_or_exc
        name = type(error).__name__
        self.by_type[name] += 1
        if len(self.first_errors) < self._keep_errors:
            named = dict(zip(self._key, key, strict=True))
            self.first_errors.append(FailedRow(named, name, str(error)))

    def report(self) -> WriteReport:
        return WriteReport(
            rows=self.rows,
            succeeded=self.succeeded,
            failed=self.failed,
            abandoned=self.rows - self.succeeded - self.failed,
            tasks=1,
            errors_by_type=dict(self.by_type),
            first_errors=tuple(self.first_errors),
        )


class CassandraDatasink(Datasink[WriteReport]):
    """Write a Ray Dataset to Cassandra: ``dataset.write_datasink(CassandraDatasink(...))``.

    Every write task runs its rows through :func:`rxcql.execute` (``raise_on_first_error=False``)
    on one session per worker process, made by ``connect`` on the process's first task and shut
    down when the process exits. The keywords of :class:`SinkOptions` (``concurrency``,
    ``batch``, ``retry``, ``max_rate``, ...) pass through to each task's run: they are per task,
    so the statements in flight are up to ``tasks x concurrency`` and the rate up to
    ``tasks x max_rate``.

    After the write, ``sink.report`` (a :class:`WriteReport`) holds the rows handed to the
    tasks, those written, those failed and the first failed rows with their key columns. The
    reports must add up to the rows Ray counted (else :class:`WriteCountError`), and the
    failures must stay within ``max_errors`` (else :class:`TooManyWriteErrorsError`).

    Ray runs a task again when its worker dies (and on the errors of ``retry_exceptions``):
    rows are then written at least once, so the statement must be idempotent (a plain INSERT
    is), or pass ``ray_remote_args={"max_retries": 0}`` to ``write_datasink``.

    Args:
        connect: a picklable callable with no arguments returning a connected
            ``cassandra.cluster.Session`` (a module-level function, or a ``functools.partial``
            of one): it runs in the worker processes.
        cql: the statement, with one ``?`` marker per column (``INSERT INTO ks.t (a, b) VALUES
            (?, ?)``); prepared once per process.
        columns: the dataset's columns bound to the markers, in order.
        key: the columns that name a row in ``report.first_errors`` (default: those of the
            table's primary key among ``columns``).
        max_errors: the failed rows allowed over the whole dataset: an int (a count), or a
            float in (0, 1) (a share of the rows). With an int a task also stops early once its
            own failures pass it (its remaining rows are ``abandoned``).
        keep_errors: the failed rows kept in a report.
        **options: per-task keywords of :func:`rxcql.execute` (see :class:`SinkOptions`).

    Raises:
        TypeError, ValueError: (at once) a bad ``max_errors``, ``columns`` or option.

    Example:
        >>> ds.write_datasink(CassandraDatasink(connect, insert_cql, ["id", "name"],
        ...                   batch="replica", retry=4, max_errors=0.001))
    """

    def __init__(
        self,
        connect: Connect,
        cql: str,
        columns: Sequence[str],
        *,
        key: Sequence[str] | None = None,
        max_errors: int | float = 0,
        keep_errors: int = 20,
        **options: Unpack[SinkOptions],
    ) -> None:
        if not callable(connect):
            raise TypeError(f"connect must be a callable returning a Session, got {connect!r:.80}")
        if not isinstance(cql, str):
            raise TypeError("cql must be the statement's CQL text")
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError("columns must be a list of column names")
        if not columns:
            raise ValueError("columns must name at least one column")
        if key is not None and not set(key) <= set(columns):
            raise ValueError(f"key {list(key)} must be among columns {list(columns)}")
        ErrorBudget(max_errors)  # validates
        if isinstance(keep_errors, bool) or not isinstance(keep_errors, int) or keep_errors < 0:
            raise ValueError(f"keep_errors must be an int >= 0, got {keep_errors!r}")
        unknown = sorted(set(options) - set(SinkOptions.__annotations__))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        Options.build(**options)  # validates, as rxcql.execute would
        self._connect = connect
        self._cql = cql
        self._columns = list(columns)
        self._key = None if key is None else list(key)
        self._max_errors = max_errors
        self._keep_errors = keep_errors
        self._options = options
        self.report: WriteReport | None = None

    def get_name(self) -> str:
        return "Cassandra"

    def write(self, blocks: Iterable[Block], ctx: TaskContext) -> WriteReport:
        """One write task (in a worker process): every row of ``blocks``, through the engine."""
        session = session_for(self._connect)
        insert = prepared_for(self._connect, self._cql)
        key = self._key if self._key is not None else _key_columns(session, insert, self._columns)
        task = _TaskWrite(insert, self._columns, key, self._keep_errors)
        remaining = iter(blocks)
        # An int budget passed by one task is passed by the dataset: the task stops there. A
        # share can only be judged over the whole dataset, in on_write_complete.
        per_task = self._max_errors if isinstance(self._max_errors, int) else None
        run = execute(
            session,
            task.statements(remaining),
            raise_on_first_error=False,
            max_errors=per_task,
            **self._options,
        )
        try:
            for result in iterate(run):
                task.record(result)
        except TooManyErrorsError:
            for block in remaining:
                task.rows += BlockAccessor.for_block(block).num_rows()
        return task.report()

    def on_write_complete(self, write_result: WriteResult[WriteReport]) -> None:
        """In the driver, after every task: add the reports up, check them, apply the budget."""
        reports = [r for r in write_result.write_returns if isinstance(r, WriteReport)]
        report = WriteReport.combine(reports, self._keep_errors)
        self.report = report
        if report.rows != write_result.num_rows:
            raise WriteCountError(
                f"the write tasks reported {report.rows:,} rows, Ray counted "
                f"{write_result.num_rows:,} in the dataset ({len(reports)} reports of "
                f"{len(write_result.write_returns)} tasks)",
                report,
            )
        if isinstance(self._max_errors, int):
            over = report.failed > self._max_errors
            allowed = f"max_errors={self._max_errors:,}"
        else:
            over = report.failed > self._max_errors * report.rows
            allowed = f"max_errors={self._max_errors:.2%} of the rows"
        if over or report.abandoned:
            share = report.failed / report.rows if report.rows else 0.0
            raise TooManyWriteErrorsError(
                f"{report.failed:,} of {report.rows:,} rows failed ({share:.2%}), more than "
                f"{allowed}; {report.abandoned:,} rows abandoned by tasks that stopped; "
                f"errors by type: {_describe_errors(report.errors_by_type)} (the failed rows' "
                "keys are in .report.first_errors)",
                report,
            )
