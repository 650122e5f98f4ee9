"""Kill and resume, for real: a loader process writes 300,000 rows into the node with a
checkpoint, is SIGKILLed at about half way, and the same command with ``--resume`` finishes.
Every row must be in the table with its value, and the statements applied twice (each row
counts its applications in a list column) must be at most the window plus one checkpoint
interval's worth of statements."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cassandra.cluster import Cluster, Session

from .resume_loader import BATCH_SIZE, WINDOW_CONCURRENCY

pytestmark = pytest.mark.integration

ROWS = 300_000
INTERVAL = 0.5
ROOT = Path(__file__).resolve().parents[2]


def loader(
    cluster: Cluster, keyspace: str, table: str, checkpoint: Path, resume: bool
) -> list[str]:
    host = cluster.contact_points[0]
    host, port = host if isinstance(host, tuple) else (host, cluster.port)
    command = [
        sys.executable,
        "-m",
        "tests.integration.resume_loader",
        f"--host={host}",
        f"--port={port}",
        f"--keyspace={keyspace}",
        f"--table={table}",
        f"--rows={ROWS}",
        f"--checkpoint={checkpoint}",
        f"--interval={INTERVAL}",
    ]
    return [*command, "--resume"] if resume else command


def test_a_killed_load_resumes_from_its_checkpoint(
    cluster: Cluster, keyspace: str, session: Session, tmp_path: Path
) -> None:
    table = f"resume_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {table} (k int PRIMARY KEY, v text, runs list<int>)")
    checkpoint = tmp_path / "load.checkpoint"
    first = subprocess.Popen(
        loader(cluster, keyspace, table, checkpoint, resume=False),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    reports: list[tuple[int, float]] = []
    try:
        for line in first.stdout:  # blocks on the child's output: no sleeps
            if line.startswith("progress "):
                _, completed, elapsed = line.split()
                reports.append((int(completed), float(elapsed)))
                if int(completed) >= ROWS // 2:
                    first.send_signal(signal.SIGKILL)
                    break
    finally:
        first.kill()
        first.wait(timeout=60)
        first.stdout.close()
    assert first.returncode == -signal.SIGKILL, "the loader finished before it was killed"
    killed_at = reports[-1][0]
    done_at_kill = _checkpoint_done(checkpoint)
    assert 0 < done_at_kill <= killed_at

    second = subprocess.run(
        loader(cluster, keyspace, table, checkpoint, resume=True),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert "done failed=0" in second.stdout

    rows = session.execute(f"SELECT k, v, runs FROM {table}", timeout=120)
    applied = {}
    for row in rows:
        assert row.v == f"value {row.k}"
        applied[row.k] = len(row.runs)
    assert sorted(applied) == list(range(ROWS))  # every row, none lost
    twice = sum(1 for n in applied.values() if n > 1)
    assert max(applied.values()) <= 2
    # The bound: what was in flight or waiting in the window when the process died, plus what
    # finished in one checkpoint interval (the most that finished in any interval of the run).
    window = 2 * WINDOW_CONCURRENCY * BATCH_SIZE
    per_interval = max(b[0] - a[0] for a, b in itertools.pairwise(reports))
    assert twice <= window + per_interval, (twice, window, per_interval)
    print(f"killed at {killed_at:,}, checkpoint {done_at_kill:,}, applied twice {twice:,}")


def _checkpoint_done(path: Path) -> int:
    data = json.loads(path.read_text())
    assert data["format"] == 1
    return int(data["done"])
