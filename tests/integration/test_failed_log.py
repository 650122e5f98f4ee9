"""The failed log on the real node: a run with a 70,000-byte key (refused by the server), a
bind error (refused by the driver) and writes to a table that does not exist yet. The log holds
exactly those statements, readable by its owner only; once the causes are removed (the table
created, the two bad values corrected in the log, as a user would), ``replay_failed`` lands
every one of them."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Session

import rxcql
from rxcql._longrun import read_failed_log

pytestmark = pytest.mark.integration

ROWS = 2_000
TOO_LONG, BAD_TYPE = 10, 20
MISSING = range(30, 35)


@pytest.mark.parametrize("batch", [None, "replica"])
def test_the_failed_log_holds_exactly_the_failures_and_replay_lands_them(
    session: Session, tmp_path: Path, batch: str | None
) -> None:
    suffix = uuid.uuid4().hex[:8]
    table, missing = f"flog_{suffix}", f"flog_missing_{suffix}"
    session.execute(f"CREATE TABLE {table} (k text PRIMARY KEY, v int)")
    insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
    to_missing = f"INSERT INTO {missing} (k, v) VALUES (%s, %s)"  # a plain string statement
    items: list[tuple[object, tuple[object, object]]] = [
        (insert, (f"key {i}", i)) for i in range(ROWS)
    ]
    items[TOO_LONG] = (insert, ("x" * 70_000, TOO_LONG))
    items[BAD_TYPE] = (insert, (f"key {BAD_TYPE}", "not an int"))
    for i in MISSING:
        items[i] = (to_missing, (f"key {i}", i))
    failed = tmp_path / "failed.jsonl"
    results = list(
        rxcql.iterate(
            rxcql.execute(
                session,
                items,
                raise_on_first_error=False,
                failed_log=failed,
                batch=batch,  # type: ignore[arg-type]
            )
        )
    )
    failed_indexes = {r.index for r in results if not r.success}
    assert failed_indexes == {TOO_LONG, BAD_TYPE, *MISSING}
    assert stat.S_IMODE(os.stat(failed).st_mode) == 0o600
    records = {r["index"]: r for r in read_failed_log(failed)}
    assert set(records) == failed_indexes  # exactly the failures, each once
    assert records[TOO_LONG]["error"] == InvalidRequest.__name__
    assert records[TOO_LONG]["keyspace"] == session.keyspace
    assert records[BAD_TYPE]["error"] == TypeError.__name__
    assert all(records[i]["cql"] == to_missing for i in MISSING)
    assert all(records[i]["prepared"] is False for i in MISSING)

    # Remove the causes: the table, and the two values (edited in the log's JSON, by hand).
    session.execute(f"CREATE TABLE {missing} (k text PRIMARY KEY, v int)")
    lines = []
    for index, record in sorted(records.items()):
        if index == TOO_LONG:
            record["parameters"] = _with_first(record["parameters"], "short again")
        if index == BAD_TYPE:
            record["parameters"] = _with_second(record["parameters"], BAD_TYPE)
        lines.append(json.dumps(record))
    failed.write_text("\n".join(lines) + "\n")
    again = tmp_path / "failed-again.jsonl"
    replayed = list(rxcql.iterate(rxcql.replay_failed(session, failed, failed_log=again)))
    assert [r.success for r in replayed] == [True] * len(records)
    assert again.read_text() == ""
    assert session.execute(f"SELECT v FROM {table} WHERE k = 'short again'").one().v == TOO_LONG
    assert session.execute(f"SELECT v FROM {table} WHERE k = 'key 20'").one().v == BAD_TYPE
    assert len(list(session.execute(f"SELECT k FROM {missing}"))) == len(MISSING)
    assert len(list(session.execute(f"SELECT k FROM {table}"))) == ROWS - len(MISSING)


def _with_first(encoded: object, value: object) -> object:
    from rxcql import _paramcodec

    decoded = list(_paramcodec.decode_parameters(encoded))
    decoded[0] = value
    return _paramcodec.encode_parameters(decoded)


def _with_second(encoded: object, value: object) -> object:
    from rxcql import _paramcodec

    decoded = list(_paramcodec.decode_parameters(encoded))
    decoded[1] = value
    return _paramcodec.encode_parameters(decoded)
