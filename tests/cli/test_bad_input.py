"""Bad input through the ``rxcql`` command: every reason a line is refused is named with its
line and column, logged with its raw text, counted against --max-errors; exit statuses 0, 1
and 2; the failed file replayed (``rxcql load --replay`` and ``rxcql.replay_failed``)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session

import rxcql

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli]


@pytest.fixture(scope="module")
def table(session: Session, keyspace: str) -> str:
    session.execute(
        f"CREATE TABLE {keyspace}.people (id int PRIMARY KEY, name text, born date, tags set<text>)"
    )
    return f"{keyspace}.people"


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_kind_of_bad_csv_line(
    rxcql_cli: Runner, session: Session, table: str, tmp_path: Path
) -> None:
    text = (
        "id,name,born,tags\n"  # line 1
        "1,ann,2000-01-31,\"{'a'}\"\n"  # 2: fine
        "2,bob,2000-02-30,\n"  # 3: not a date
        "x,cy,2000-01-01,\n"  # 4: not an int
        "4,dee\n"  # 5: too few fields
        "5,eve,2000-01-01,,extra\n"  # 6: too many
        ",fay,2000-01-01,\n"  # 7: null key
        "7,gus,2000-01-01,\"{'a', \"\n"  # 8: a set with a missing item
        '8,"hal\n'  # 9-10: a quoted field over two lines, fine
        'two lines",2000-01-01,\n'
        "9,ivy,,\n"  # 11: fine (nulls)
    )
    data = tmp_path / "people.csv"
    data.write_text(text)
    failed = tmp_path / "people.failed"
    run = rxcql_cli("load", "-t", table, "-f", str(data), "--failed", str(failed))
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    for expected in (
        "line 3, column born: '2000-02-30' is not a valid date",
        "line 4, column id: 'x' is not an integer",
        "line 5: 2 fields, expected 4 (id, name, born, tags)",
        "line 6: 5 fields, expected 4",
        "line 7, column id: a primary key column cannot be null or missing",
        "line 8, column tags: a null is not allowed here at position 7",
        "loaded 3 rows",
        "6 lines did not parse, 0 rows failed",
        f"6 rows were not loaded; they are in {failed}",
    ):
        assert expected in err, describe(run)
    logged = records(failed)
    assert [r["line"] for r in logged] == [3, 4, 5, 6, 7, 8]
    assert all(r["error"] == "ParseError" and "cql" not in r for r in logged)
    assert logged[0]["raw"] == "2,bob,2000-02-30,"
    assert logged[0]["column"] == "born"
    assert logged[2]["column"] is None
    assert stat.S_IMODE(os.stat(failed).st_mode) == 0o600
    rows = {row.id: row for row in session.execute(f"SELECT * FROM {table}")}
    assert set(rows) >= {1, 8, 9}
    assert rows[8].name == "hal\ntwo lines"
    assert rows[9].born is None
    assert rows[9].tags is None


def test_every_kind_of_bad_json_line(rxcql_cli: Runner, table: str, tmp_path: Path) -> None:
    text = (
        '{"id": 20, "name": "ok"}\n'
        '{"id": 21, "nickname": "x"}\n'  # an unknown column
        "{not json}\n"
        "[1, 2]\n"  # not an object
        '{"id": "twenty"}\n'
        '{"id": 24, "tags": "{\'a\'"}\n'
        "\n"  # a blank line: no row, no error
        '{"id": 25, "born": 7}\n'
    )
    failed = tmp_path / "json.failed"
    run = rxcql_cli(
        "load",
        "-t",
        table,
        "-f",
        "-",
        "--format",
        "json",
        "--failed",
        str(failed),
        input=text.encode(),
    )
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    for expected in (
        "line 2, column nickname: unknown column 'nickname'",
        "line 3: not JSON",
        "line 4: not a JSON object",
        "line 5, column id: 'twenty' is not an integer",
        "line 6, column tags:",
        "line 8, column born: a JSON number is not a date",
        "loaded 1 rows",
    ):
        assert expected in err, describe(run)
    assert [r["line"] for r in records(failed)] == [2, 3, 4, 5, 6, 8]


def test_undecodable_bytes_and_an_unclosed_quote_at_the_end(
    rxcql_cli: Runner, table: str, tmp_path: Path
) -> None:
    data = b'id,name,born,tags\n30,caf\xe9,,\n31,ok,,\n32,"never closed,,\n'
    run = rxcql_cli("load", "-t", table, "-f", "-", input=data)
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    assert "line 2: not valid utf-8: invalid continuation byte at byte 7" in err, describe(run)
    # csv reads a quote left open at the end as a field that runs to the end of the input
    assert "line 4: 2 fields, expected 4" in err, describe(run)
    assert "loaded 1 rows" in err


def test_max_errors_stops_the_load(rxcql_cli: Runner, table: str, tmp_path: Path) -> None:
    lines = ["id,name,born,tags"] + [f"{100 + n},x,bad,\n" for n in range(50)]
    run = rxcql_cli(
        "load", "-t", table, "-f", "-", "--max-errors", "3", input="\n".join(lines).encode()
    )
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    assert "stopped: more errors than --max-errors 3" in err, describe(run)
    assert "4 lines did not parse" in err, describe(run)
    share = rxcql_cli(
        "load",
        "-t",
        table,
        "-f",
        "-",
        "--max-errors",
        "10%",
        input="\n".join(
            ["id,name,born,tags"] + [f"{200 + n},x,,\n" for n in range(200)] + ["z,x,,"] * 5
        ).encode(),
    )
    assert share.returncode == 1, describe(share)  # 5 of 205 is under 10%: all counted
    assert "loaded 200 rows" in share.stderr.decode()
    assert "stopped" not in share.stderr.decode()


def test_exit_status_two_for_usage_and_connection_errors(
    rxcql_cli: Runner, table: str, tmp_path: Path
) -> None:
    keyspace, name = table.split(".")
    good = tmp_path / "good.csv"
    good.write_text("id,name,born,tags\n40,x,,\n")
    cases: list[tuple[list[str], str]] = [
        (["load", "-t", table], "give -f FILE"),
        (["load", "-t", table, "-f", str(good), "--bogus"], "No such option"),
        (["load", "-t", name, "-f", str(good)], "give the keyspace"),
        (["load", "-t", f"{keyspace}.nope", "-f", str(good)], f"no table {keyspace}.nope"),
        (["load", "-t", "nope.nope", "-f", str(good)], "no keyspace 'nope'"),
        (["load", "-t", table, "-f", str(tmp_path / "missing.csv")], "cannot read"),
        (["load", "-t", table, "-f", str(good), "--columns", "id,wat"], "unknown column 'wat'"),
        (["load", "-t", table, "-f", str(good), "--concurrency", "lots"], "--concurrency"),
        (["load", "-t", table, "-f", str(good), "--max-errors", "many"], "--max-errors"),
        (["load", "-t", table, "-f", str(good), "--resume"], "--resume needs --checkpoint"),
        (
            ["load", "-t", table, "-f", str(good), "-h", "127.0.0.1", "--port", "1"],
            "cannot connect to",
        ),
        (["load", "-t", table, "-f", str(good), "-h", "127.0.0.1:1"], "cannot connect to"),
        (["unload", "-t", table, "-f", "-", "--where", "nope = 1"], "refused the query"),
        (["count", "-t", f"{keyspace}.nope"], "no table"),
    ]
    for args, expected in cases:
        run = rxcql_cli(*args, input=b"")
        assert run.returncode == 2, (args, describe(run))
        assert expected in run.stderr.decode(), (args, describe(run))
        assert b"Traceback" not in run.stderr, (args, describe(run))
    header = tmp_path / "header.csv"
    header.write_text("id,name,shoe_size\n1,x,44\n")
    run = rxcql_cli("load", "-t", table, "-f", str(header))
    assert run.returncode == 2
    assert "line 1 (the header): unknown column 'shoe_size'" in run.stderr.decode()
    assert rxcql_cli("load", "-t", table, "-f", str(good), "-q").returncode == 0
    assert rxcql_cli("count", "-t", table).stdout.strip().isdigit()


def test_refused_rows_are_logged_and_replayed(
    rxcql_cli: Runner, session: Session, keyspace: str, tmp_path: Path
) -> None:
    """A key over the server's 65,535-byte limit is refused (its batch is refused, then each
    row is sent alone: only that row fails); a line that does not parse sits beside it in the
    failed file. Fixing the logged value by hand and replaying loads the row, with
    ``rxcql load --replay`` and with ``rxcql.replay_failed``, which skip the unparsed line."""
    session.execute(f"CREATE TABLE {keyspace}.keys (k text PRIMARY KEY, v int)")
    huge = "k" * 70_000
    data = "k,v\n" + "".join(f"key{n},{n}\n" for n in range(100)) + f"{huge},1\nbad,notint\n"
    failed = tmp_path / "keys.failed"
    run = rxcql_cli(
        "load",
        "-t",
        f"{keyspace}.keys",
        "-f",
        "-",
        "--failed",
        str(failed),
        input=data.encode(),
    )
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    assert "line 102: InvalidRequest" in err, describe(run)
    assert "loaded 100 rows" in err
    assert "1 lines did not parse, 1 rows failed" in err
    logged = records(failed)
    refused = [r for r in logged if "cql" in r]
    assert len(refused) == 1
    assert refused[0]["parameters"][0] == huge
    assert [r["line"] for r in logged if r["error"] == "ParseError"] == [103]

    # Fix the refused row in the file (shorten its key) and replay it.
    fixed = tmp_path / "fixed.failed"
    fixed.write_text(
        "".join(
            json.dumps({**r, "parameters": ["short", r["parameters"][1]]} if "cql" in r else r)
            + "\n"
            for r in logged
        )
    )
    again = tmp_path / "again.failed"
    replay = rxcql_cli(
        "load", "-t", f"{keyspace}.keys", "--replay", str(fixed), "--failed", str(again)
    )
    assert replay.returncode == 1, describe(replay)  # the unparsed line is still not loaded
    out = replay.stderr.decode()
    assert "1 loaded, 0 failed" in out, describe(replay)
    assert "1 lines in" in out
    assert "did not parse and are not replayed" in out
    assert session.execute(f"SELECT v FROM {keyspace}.keys WHERE k = 'short'").one().v == 1
    assert not again.exists() or again.read_text() == ""

    session.execute(f"DELETE FROM {keyspace}.keys WHERE k = 'short'")
    results = list(rxcql.iterate(rxcql.replay_failed(session, fixed)))
    assert [r.success for r in results] == [True]
    assert session.execute(f"SELECT v FROM {keyspace}.keys WHERE k = 'short'").one().v == 1


def test_replay_failed_names_the_skipped_lines(
    session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "only-parse-errors.failed"
    path.write_text(
        json.dumps({"format": 1, "line": 3, "raw": "x", "error": "ParseError", "message": "m"})
        + "\n"
    )
    with caplog.at_level(logging.WARNING, logger="rxcql"):
        results = list(rxcql.iterate(rxcql.replay_failed(session, path)))
    assert results == []
    assert "1 record(s)" in caplog.text
    assert "did not parse" in caplog.text
    bad = tmp_path / "no-cql.failed"
    bad.write_text(json.dumps({"format": 1, "index": 0, "error": "Other"}) + "\n")
    with pytest.raises(ValueError, match="without its CQL text"):
        rxcql.replay_failed(session, bad)
