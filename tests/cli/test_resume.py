"""``rxcql load --checkpoint --resume`` after a SIGKILL: the command is killed half way
through a file, run again with ``--resume``, and every row is in the table with its value;
the lines that do not parse are in the failed file once each, and the exit status counts
them. The checkpoint is the same file whether the load runs in one process or with
``--processes`` (the pool's, kept in the parent): one case kills a load in one process and
resumes it with ``--processes 2``, the other the reverse."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cassandra.cluster import Session

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli]

ROWS = 80_000
BAD = {10: "ten", 30_000: "thirty thousand", 70_000: "seventy thousand"}


@pytest.mark.parametrize(("processes", "resumed_with"), [(0, 2), (2, 0)])
def test_a_killed_load_resumes_from_its_checkpoint(
    rxcql_cli: Runner,
    session: Session,
    keyspace: str,
    tmp_path: Path,
    processes: int,
    resumed_with: int,
) -> None:
    table = f"{keyspace}.resumed{processes}"
    session.execute(f"CREATE TABLE {table} (k int PRIMARY KEY, v text)")
    data = tmp_path / "rows.csv"
    with data.open("w") as out:
        out.write("k,v\n")
        for k in range(ROWS):
            out.write(f"{BAD[k]},x\n" if k in BAD else f"{k},value {k}\n")
    checkpoint = tmp_path / "load.checkpoint"
    failed = tmp_path / "load.failed"
    command = [
        "load", "-t", table, "-f", str(data), "-q", "--concurrency", "32",
        "--checkpoint", str(checkpoint), "--failed", str(failed),
    ]  # fmt: skip
    first = rxcql_cli.popen(
        *command,
        "--processes",
        str(processes),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    done = 0
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.poll() is None:
            if checkpoint.exists():
                done = json.loads(checkpoint.read_text())["done"]
                if done >= ROWS // 2:
                    first.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        first.kill()
        _, err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, f"not killed ({first.returncode}): {err!r}"
    assert ROWS // 2 <= done < ROWS - len(BAD)
    loaded_before = session.execute(f"SELECT count(*) FROM {table}").one()[0]
    assert loaded_before < ROWS - len(BAD)

    second = rxcql_cli(*command, "--processes", str(resumed_with), "--resume", timeout=300)
    assert second.returncode == 1, describe(second)  # three lines never parse
    summary = second.stderr.decode()
    assert "resumed after" in summary, describe(second)
    assert f"{len(BAD)} rows were not loaded; they are in {failed}" in summary, describe(second)
    final = json.loads(checkpoint.read_text())
    assert final["complete"] is True
    assert final["done"] == ROWS - len(BAD)

    rows = {row.k: row.v for row in session.execute(f"SELECT k, v FROM {table}")}
    assert len(rows) == ROWS - len(BAD)
    assert all(rows[k] == f"value {k}" for k in range(ROWS) if k not in BAD)
    logged = [json.loads(line) for line in failed.read_text().splitlines()]
    assert sorted(r["line"] for r in logged) == sorted(k + 2 for k in BAD)  # once each
