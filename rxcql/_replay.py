"""``rxcql.replay_failed``: run the statements of a failed log again."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, Unpack

from cassandra.query import BoundStatement

from ._engine import ExecuteObservable, execute
from ._longrun import PathLike, read_failed_log
from ._options import RunKeywords, check_session
from ._results import ExecutionResult
from ._types import SessionLike

log = logging.getLogger("rxcql")


def replay_failed(
    session: SessionLike, path: PathLike, **options: Unpack[RunKeywords]
) -> ExecuteObservable[ExecutionResult]:
    """Run the statements of a failed log (``failed_log=`` of an earlier run) again.

    Each distinct CQL text is prepared once, here, on the caller's thread (with the keyspace it
    was logged with), and its logged parameters are bound to it; statements logged from plain
    strings are sent as strings. The records are read lazily as the run pulls them, so a log of
    any size runs in bounded memory. ``options`` are :func:`rxcql.execute`'s: give a new
    ``failed_log=`` to collect what fails again (not the file being replayed).

    Results come in the log's order; ``result.index`` is the position in the log (line order),
    and the original input index of each is in the log itself.

    Records of input lines that did not parse (``"error": "ParseError"``, with ``"line"`` and
    ``"raw"`` and no CQL text: ``rxcql load`` writes them to the same file) hold no statement:
    they are skipped (and counted once in the ``rxcql`` log), and do not take a position.

    Raises:
        ValueError: (immediately) a line that is not an rxcql failed-log record, or
            ``failed_log`` naming the file being replayed.
        Exception: (immediately) what ``session.prepare`` raises for a logged CQL text.
    """
    check_session(session)
    source = os.path.realpath(path)
    again = options.get("failed_log")
    if again is not None and os.path.realpath(again) == source:
        raise ValueError("replay_failed: failed_log= must be another file than the one replayed")
    prepared: dict[tuple[str, str | None], Any] = {}
    skipped = 0
    for record in read_failed_log(path):  # a first pass: prepare each statement once
        if _unparsed_line(record):
            skipped += 1
            continue
        cql, keyspace, prepare = _statement_of(record)
        if prepare and (cql, keyspace) not in prepared:
            prepared[cql, keyspace] = _prepare(session, cql, keyspace)
    if skipped:
        log.warning(
            "replay_failed: %d record(s) of %s are input lines that did not parse (no "
            "statement): skipped",
            skipped,
            os.fspath(path),
        )

    def items() -> Iterator[tuple[Any, Any]]:
        for record in read_failed_log(path):
            if _unparsed_line(record):
                continue
            cql, keyspace, prepare = _statement_of(record)
            if not prepare:
                yield cql, _codec().decode_parameters(record.get("parameters"))
                continue
            statement = prepared[cql, keyspace]
            if "serialized" in record:
                bound = BoundStatement(statement)
                bound.values = _codec().decode_serialized(record["serialized"])
                yield bound, None
            else:
                yield statement, _codec().decode_parameters(record.get("parameters"))

    return execute(session, items(), **options)


def _unparsed_line(record: dict[str, Any]) -> bool:
    """A record of an input line that did not parse (``rxcql load``): nothing to run."""
    return record.get("error") == "ParseError" and "cql" not in record


def _statement_of(record: dict[str, Any]) -> tuple[str, str | None, bool]:
    cql = record.get("cql")
    if not isinstance(cql, str):
        raise ValueError(f"a failed-log record without its CQL text (index {record.get('index')})")
    keyspace = record.get("keyspace")
    # Statements logged from bound or prepared statements carry their keyspace; those sent as
    # plain strings (no markers bound by the server) are sent as strings again.
    prepare = record.get("prepared", True) is not False
    return cql, keyspace if isinstance(keyspace, str) else None, prepare


def _prepare(session: Any, cql: str, keyspace: str | None) -> Any:
    """Prepare in the logged keyspace where the protocol lets a request carry one (v5 and
    later); otherwise in the session's keyspace (or the one the CQL names)."""
    version = getattr(getattr(session, "cluster", None), "protocol_version", None)
    if (
        keyspace is None
        or keyspace == getattr(session, "keyspace", None)
        or not isinstance(version, int)
        or version < 5
    ):
        return session.prepare(cql)
    return session.prepare(cql, keyspace=keyspace)


def _codec() -> Any:
    from . import _paramcodec  # imported when first needed

    return _paramcodec
