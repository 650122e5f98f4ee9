"""Memory stays flat: ``rxcql load`` and ``rxcql unload`` of 200,000 rows peak within a few
MB of the same commands on 20,000 rows (the peak RSS of the command's process, its VmHWM):
ten times the rows, nothing proportional to them held.

Sized for CI (the brief keeps million-row runs in bench/): the 1,000,000-row load and unload,
with their peak RSS against cqlsh's, are ``python -m bench --only cli``. Lean on purpose (two
columns, replica batches, a fixed concurrency so that the window is the same in both runs)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from cassandra import ReadFailure, ReadTimeout
from cassandra.cluster import Session

import rxcql

from .conftest import Runner, describe

pytestmark = [pytest.mark.integration, pytest.mark.cli, pytest.mark.slow]

SMALL, LARGE = 20_000, 200_000
#: How much more the 200,000-row run may peak at than the 20,000-row one.
SLACK_KB = 6 * 1024


#: Runs the command (``python -m rxcql.cli``) and writes its own peak RSS at exit. Not
#: ``wait4``'s ``ru_maxrss``: on Linux that also counts the memory of the forked copy of this
#: pytest process from before the ``exec``, which is larger than the command's own peak.
MEASURED = """
import os, runpy, sys
sys.argv[0] = "rxcql"
try:
    runpy.run_module("rxcql.cli", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
"""


def peak_rss_kb(runner: Runner, peak_file: Path, *args: str) -> tuple[int, float]:
    """Run the command to its end; its exit status must be 0. Its peak RSS (KiB) and seconds."""
    began = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        env={**runner.env, "PEAK_FILE": str(peak_file)},
        capture_output=True,
        timeout=540,
        check=False,
    )
    assert completed.returncode == 0, describe(completed)
    return int(peak_file.read_text()), time.monotonic() - began


def count(session: Session, table: str) -> int:
    """The table's rows, in many short range queries, read again after a failure: right after
    a million-row load the node is busy flushing and compacting, and a few long range queries
    time out (seen on the shared two-core machine)."""
    for attempt in range(3):
        try:
            return rxcql.count_table(session, table, splits=256)
        except (ReadFailure, ReadTimeout):
            if attempt == 2:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


@pytest.mark.timeout(600)
def test_memory_is_flat_from_100k_to_1m_rows(
    rxcql_cli: Runner, session: Session, keyspace: str, tmp_path: Path
) -> None:
    session.execute(f"CREATE TABLE {keyspace}.flat (k bigint PRIMARY KEY, v int)")
    table = f"{keyspace}.flat"
    peaks: dict[str, dict[int, int]] = {"load": {}, "unload": {}}
    seconds: dict[str, float] = {}
    for n in (SMALL, LARGE):
        data = tmp_path / f"rows{n}.csv"
        with data.open("w") as out:
            out.write("k,v\n")
            out.writelines(f"{k},{k % 1000}\n" for k in range(n))
        peaks["load"][n], seconds[f"load {n}"] = peak_rss_kb(
            rxcql_cli,
            tmp_path / "peak",
            "load",
            "-t",
            table,
            "-f",
            str(data),
            "-q",
            "--concurrency",
            "32",
        )
        assert count(session, table) == n
        out_file = tmp_path / f"out{n}.csv"
        peaks["unload"][n], seconds[f"unload {n}"] = peak_rss_kb(
            rxcql_cli, tmp_path / "peak", "unload", "-t", table, "-f", str(out_file), "-q"
        )
        with out_file.open() as unloaded:
            assert sum(1 for _ in unloaded) == n + 1
        data.unlink()
        out_file.unlink()
    print(f"peak RSS KiB: {peaks}; seconds: {seconds}")
    for command, by_size in peaks.items():
        growth = by_size[LARGE] - by_size[SMALL]
        assert growth < SLACK_KB, f"{command}: {by_size} (+{growth} KiB from 100k to 1M rows)"
