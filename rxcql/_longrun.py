"""Runs that survive being killed: checkpoints, resume, and a log of failed statements.

**Checkpoint.** The reorder stage knows which input positions are finished. The checkpoint
records the *low watermark*: the number of leading input statements whose outcome is final (a
success; or a failure written to the failed log, when there is one: without a failed log a
failure is final only in memory, so the watermark stops at it and a resume runs it again). It
is correct whether results are delivered ordered or not. A writer thread writes it atomically
(a temporary file, fsync, rename, fsync of the directory) every ``checkpoint_interval`` seconds
while it moves, and the run writes it once more when it ends; the IO thread only moves an int.

**Resume.** ``resume=True`` reads the checkpoint and skips that many items of the (same,
deterministic) input before issuing anything; their results are not delivered, and the
results after them keep their input positions (``result.index``). A missing file starts from
0. A checkpoint of another ``run_id``, of another first statement, or that cannot be read is a
:class:`~rxcql.CheckpointError`, never a silent skip. After a crash, at most the window plus
what finished in one checkpoint interval runs twice: resume assumes idempotent writes.

**Failed log.** One JSON line per failed statement (input index, CQL text, keyspace, the bound
parameters in the lossless encoding of :mod:`rxcql._paramcodec`, the error's type and message,
the attempts), flushed line by line (a kill loses nothing already failed). The file is created
readable by its owner only (mode 0600): it holds user data. It is the one place where rxcql
writes bound values; rxcql's own log records and exception messages never carry them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cassandra.query import UNSET_VALUE, BoundStatement, PreparedStatement, SimpleStatement

from ._errors import CheckpointError

if TYPE_CHECKING:
    from ._options import Options

log = logging.getLogger("rxcql")

CHECKPOINT_FORMAT = 1
FAILED_LOG_FORMAT = 1

PathLike = str | os.PathLike[str]


def statement_text(statement: Any) -> str | None:
    """The CQL text of a statement, as the failed log and the checkpoint record it."""
    if isinstance(statement, str):
        return statement
    if isinstance(statement, BoundStatement):
        return str(statement.prepared_statement.query_string)
    if isinstance(statement, PreparedStatement | SimpleStatement):
        return str(statement.query_string)
    text = getattr(statement, "query_string", None)
    return text if isinstance(text, str) else None


def _keyspace(statement: Any) -> str | None:
    """The keyspace a statement runs in, when it says (a prepared statement says it through
    its bind markers' metadata)."""
    keyspace = getattr(statement, "keyspace", None)
    if isinstance(keyspace, str):
        return keyspace
    if isinstance(statement, BoundStatement):
        statement = statement.prepared_statement
    metadata = getattr(statement, "column_metadata", None)
    if metadata:
        name = getattr(metadata[0], "keyspace_name", None)
        if isinstance(name, str):
            return name
    return None


# -- the checkpoint ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint file says."""

    done: int
    run_id: str | None
    statement: str | None
    complete: bool


def read_checkpoint(path: PathLike) -> CheckpointState | None:
    """The checkpoint at ``path``; None if there is no file. Raises CheckpointError if it cannot
    be read or is not an rxcql checkpoint."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint {os.fspath(path)!r}: {exc}") from exc
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an rxcql checkpoint of format 1")
        done = data["done"]
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise ValueError("its 'done' is not a count")
        run_id = data.get("run_id")
        statement = data.get("statement")
        if run_id is not None and not isinstance(run_id, str):
            raise ValueError("its 'run_id' is not a string")
        if statement is not None and not isinstance(statement, str):
            raise ValueError("its 'statement' is not a string")
        return CheckpointState(done, run_id, statement, bool(data.get("complete", False)))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"the checkpoint {os.fspath(path)!r} is corrupt or not rxcql's ({exc}); "
            "delete it to start over, or point checkpoint= at the right file"
        ) from exc


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new
    one, never a mix: a temporary file beside it, fsync, rename, fsync of the directory."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


class Watermark:
    """The low watermark: how many leading positions (from ``start``) are final. ``mark`` is
    called under the engine's lock; what it holds is bounded by the window. (A process pool's
    parent marks whole chunks instead, with ``mark_span``; a run uses one or the other.)"""

    __slots__ = ("_above", "_spans", "low")

    def __init__(self, start: int) -> None:
        self.low = start
        self._above: set[int] = set()
        self._spans: dict[int, int] = {}

    def mark(self, index: int) -> None:
        if index != self.low:
            self._above.add(index)
            return
        low = index + 1
        above = self._above
        while low in above:
            above.remove(low)
            low += 1
        self.low = low

    def mark_span(self, start: int, stop: int) -> None:
        """Positions ``start`` to ``stop - 1`` are final."""
        if start != self.low:
            self._spans[start] = stop
            return
        spans = self._spans
        while stop in spans:
            stop = spans.pop(stop)
        self.low = stop


class CheckpointWriter:
    """Writes a run's checkpoint: on its own thread every ``interval`` seconds while the
    watermark moves, and once more (on the caller's thread) at :meth:`close`."""

    def __init__(
        self,
        path: PathLike,
        interval: float,
        watermark: Watermark,
        run_id: str | None,
        options: Mapping[str, Any],
    ) -> None:
        self.path = Path(path)
        self._interval = interval
        self._watermark = watermark
        self._run_id = run_id
        self._options = dict(options)
        self.statement: str | None = None
        self._written = -1
        self._lock = threading.RLock()  # reentrant: see RunSkeleton's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Checkpoints written so far (for tests).
        self.writes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rxcql-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write(complete=False)
            except Exception:
                # A full disk must not kill the run; the next interval tries again, and the
                # final write at the end reports its own failure.
                log.exception("rxcql could not write the checkpoint %s", self.path)

    def write(self, complete: bool) -> None:
        with self._lock:
            done = self._watermark.low
            if done == self._written and not complete:
                return
            record = {
                "format": CHECKPOINT_FORMAT,
                "done": done,
                "complete": complete,
                "run_id": self._run_id,
                "statement": self.statement,
                "options": self._options,
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_atomically(self.path, json.dumps(record, indent=1) + "\n")
            self._written = done
            self.writes += 1

    def close(self, complete: bool) -> None:
        """Stop the thread and write the final checkpoint."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        try:
            self.write(complete=complete)
        except Exception:
            log.exception("rxcql could not write the final checkpoint %s", self.path)


def recorded_options(options: Options) -> dict[str, Any]:
    """The knobs a checkpoint records (for the reader; a resume does not need them equal)."""
    retry = options.retry
    return {
        "concurrency": "auto" if options.adaptive is not None else options.concurrency,
        "ordered": options.ordered,
        "raise_on_first_error": options.raise_on_first_error,
        "batch": options.batch,
        "batch_size": options.batch_size,
        "retry_attempts": retry.attempts if retry is not None else None,
        "failed_log": os.fspath(options.failed_log) if options.failed_log is not None else None,
    }


def start_writer(options: Options, watermark: Watermark, statement: str | None) -> CheckpointWriter:
    """The run's checkpoint writer, started (``statement``: the input's first, None until it
    is read)."""
    assert options.checkpoint is not None
    writer = CheckpointWriter(
        options.checkpoint,
        options.checkpoint_interval,
        watermark,
        options.run_id,
        recorded_options(options),
    )
    writer.statement = statement
    writer.start()
    return writer


#: What :func:`skip_done`'s ``pull`` returns once the input has no more items.
NO_MORE: Final = object()


def skip_done(
    pull: Callable[[], Any],
    done: int,
    first: str | None,
    path: PathLike,
    text_of: Callable[[Any], str | None],
) -> str | None:
    """Read past the ``done`` leading items a checkpoint says are final, checking that the
    input is the one it was written for (its first statement's text, ``first`` if known, and
    its length). The input's first statement's text (``first`` when nothing is skipped)."""
    for position in range(done):
        item = pull()
        if item is NO_MORE:
            raise CheckpointError(
                f"the checkpoint {os.fspath(path)!r} says {done} statements are done, but the "
                f"input ended after {position}: not the same input"
            )
        if position == 0:
            text = text_of(item)
            if first is not None and text != first:
                raise CheckpointError(
                    f"the checkpoint {os.fspath(path)!r} is of a run whose first statement "
                    "differs from this input's: not the same input"
                )
            first = text
    return first


def check_resume(
    state: CheckpointState | None, path: PathLike, run_id: str | None
) -> CheckpointState | None:
    """Raise CheckpointError if ``state`` belongs to another run."""
    if state is None:
        return None
    if state.run_id != run_id:
        raise CheckpointError(
            f"the checkpoint {os.fspath(path)!r} is of run_id={state.run_id!r}, not "
            f"run_id={run_id!r}: refusing to skip {state.done} statements of another run"
        )
    return state


# -- the failed log ----------------------------------------------------------------------------


class FailedLog:
    """An append-only JSON-lines file of failed statements, mode 0600, flushed per line."""

    def __init__(self, path: PathLike, default_keyspace: str | None = None) -> None:
        self.path = Path(path)
        #: The session's keyspace: where a plain string statement ran.
        self._default_keyspace = default_keyspace
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing file keeps no wider mode either
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise
        self._lock = threading.RLock()  # reentrant: see RunSkeleton's
        #: Lines written by this run.
        self.written = 0

    def record(
        self,
        index: int,
        statement: Any,
        parameters: Any,
        error: BaseException,
        attempts: int,
        *,
        prepared: bool | None = None,
        serialized: bool = False,
    ) -> None:
        """Append one failed statement (``attempts`` 0: not known). ``prepared``: the CQL
        text is to be prepared on replay (by default: whether ``statement`` is a prepared or
        bound one); ``serialized``: ``parameters`` are serialized values (bytes) of the
        prepared form, recorded as they are. Raises if the line cannot be written."""
        try:
            encoded = (
                {"serialized": _codec().encode_serialized(parameters)}
                if serialized
                else _encoded_parameters(statement, parameters)
            )
        except Exception as exc:
            # Values the codec cannot encode (often what made the bind fail): the record says
            # so, with their types and without the values.
            encoded = {
                "parameters_unencodable": f"{type(exc).__name__}: {exc}",
                "parameter_types": _type_names(parameters),
            }
        line = json.dumps(
            {
                "format": FAILED_LOG_FORMAT,
                "index": index,
                "cql": statement_text(statement),
                "keyspace": _keyspace(statement) or self._default_keyspace,
                "prepared": (
                    isinstance(statement, BoundStatement | PreparedStatement)
                    if prepared is None
                    else prepared
                ),
                **encoded,
                "error": type(error).__name__,
                "message": str(error),
                "attempts": attempts,
            },
            allow_nan=False,  # ensure_ascii stays on: a lone surrogate in a str survives
        )
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def _encoded_parameters(statement: Any, parameters: Any) -> dict[str, Any]:
    if isinstance(statement, BoundStatement):
        # Bound by the caller or by the batching stage: its values are serialized. Decode them
        # by the columns' types, which binds back to the same bytes.
        values = _deserialized(statement)
        if values is not None:
            return {"parameters": _codec().encode_parameters(values)}
        return {"serialized": _codec().encode_serialized(list(statement.values))}
    return {"parameters": _codec().encode_parameters(parameters)}


def _type_names(parameters: Any) -> Any:
    if isinstance(parameters, Mapping):
        return {str(name): type(value).__name__ for name, value in parameters.items()}
    if isinstance(parameters, list | tuple):
        return [type(value).__name__ for value in parameters]
    return type(parameters).__name__


def _deserialized(bound: BoundStatement) -> list[Any] | None:
    prepared = bound.prepared_statement
    metadata = prepared.column_metadata or []
    version = getattr(prepared, "protocol_version", None)
    if version is None or len(metadata) < len(bound.values):
        return None
    values: list[Any] = []
    try:
        for column, raw in zip(metadata, bound.values, strict=False):
            if raw is None or raw is UNSET_VALUE:
                values.append(raw)
            else:
                values.append(column.type.from_binary(raw, version))
    except Exception:
        return None
    return values


def read_failed_log(path: PathLike) -> Iterator[dict[str, Any]]:
    """The records of a failed log, one dict per line (blank lines skipped)."""
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(
                    f"line {number} of the failed log {os.fspath(path)!r} is not JSON "
                    "(a line cut by a kill mid-write?)"
                ) from exc
            if not isinstance(record, dict) or record.get("format") != FAILED_LOG_FORMAT:
                raise ValueError(
                    f"line {number} of {os.fspath(path)!r} is not an rxcql failed-log record"
                )
            yield record


def _codec() -> Any:
    from . import _paramcodec  # imported when first needed

    return _paramcodec
