"""``rxcql load --processes N``: this process reads and parses, worker processes run the rows
(rxcql.ProcessPool, the values crossing already serialized): the same table contents as a load
in one process, refused rows in the failed file and replayable. (A killed ``--processes`` load
resumes from its checkpoint: tests/cli/test_resume.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cassandra.cluster import Session

import rxcql

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli]

COLUMNS = "id int PRIMARY KEY, name text, born date, tags set<text>, score decimal, big varint"


def test_the_same_contents_as_a_load_in_one_process(
    rxcql_cli: Runner, session: Session, keyspace: str, tmp_path: Path
) -> None:
    rows = 3_000
    data = tmp_path / "people.csv"
    data.write_text(
        "id,name,born,tags,score,big\n"
        + "".join(
            f"{i},name {i},{1950 + i % 70}-0{1 + i % 9}-1{i % 10},"
            + ("" if i % 5 == 0 else f"\"{{'t{i % 4}', 'x'}}\"")
            + f",{i}.{i % 100:02d},{10**30 + i}\n"
            for i in range(rows)
        )
    )
    contents = {}
    for name, extra in (("one", []), ("pooled", ["--processes", "2"])):
        session.execute(f"CREATE TABLE {keyspace}.{name} ({COLUMNS})")
        run = rxcql_cli("load", "-t", f"{keyspace}.{name}", "-f", str(data), *extra)
        assert run.returncode == 0, describe(run)
        assert f"loaded {rows:,} rows" in run.stderr.decode(), describe(run)
        contents[name] = sorted(session.execute(f"SELECT * FROM {keyspace}.{name}"))
    assert len(contents["pooled"]) == rows
    assert contents["pooled"] == contents["one"]


def test_refused_rows_go_to_the_failed_file_and_replay(
    rxcql_cli: Runner, session: Session, keyspace: str, tmp_path: Path
) -> None:
    session.execute(f"CREATE TABLE {keyspace}.pkeys (k text PRIMARY KEY, v int)")
    huge = "k" * 70_000  # over the server's limit for a key: refused
    data = "k,v\n" + "".join(f"key{n},{n}\n" for n in range(500)) + f"{huge},1\nbad,notint\n"
    failed = tmp_path / "pkeys.failed"
    run = rxcql_cli(
        "load",
        "-t",
        f"{keyspace}.pkeys",
        "-f",
        "-",
        "--processes",
        "2",
        "--failed",
        str(failed),
        input=data.encode(),
    )
    assert run.returncode == 1, describe(run)
    err = run.stderr.decode()
    assert "loaded 500 rows" in err, describe(run)
    assert "1 lines did not parse, 1 rows failed" in err, describe(run)
    assert huge not in err  # values never in messages
    logged = [json.loads(line) for line in failed.read_text().splitlines()]
    refused = [r for r in logged if "cql" in r]
    assert [r["parameters"] for r in refused] == [[huge, 1]]
    assert [r["line"] for r in logged if r.get("error") == "ParseError"] == [503]

    fixed = tmp_path / "fixed.failed"
    fixed.write_text(json.dumps({**refused[0], "parameters": ["short", 1]}) + "\n")
    results = list(rxcql.iterate(rxcql.replay_failed(session, fixed)))
    assert [r.success for r in results] == [True]
    assert session.execute(f"SELECT v FROM {keyspace}.pkeys WHERE k = 'short'").one().v == 1
    assert session.execute(f"SELECT count(*) FROM {keyspace}.pkeys").one()[0] == 501
