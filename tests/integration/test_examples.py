"""Every example runs to completion against the real node (with small sizes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cassandra.cluster import Cluster

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = [
    ("main.py", ["--rows", "20000"], "rows back"),
    ("bulk_load.py", ["--rows", "20000", "--max-rate", "20000"], "0 failed"),
    ("fanout_pipeline.py", ["--orders", "5000"], "customers"),
    ("unordered.py", ["--keys", "5000"], "5,000 results"),
    ("asyncio_service.py", ["--requests", "8", "--lookups", "200"], "1,600 lookups"),
    ("stream_table.py", ["--rows", "20000", "--fetch-size", "300"], "async iteration: 20,000"),
    ("replace_driver.py", ["--rows", "3000"], "3,000 read back in order"),
    ("pool_load.py", ["--rows", "20000"], "0 failed"),
    ("ray_roundtrip.py", ["--rows", "10000"], "10,000 distinct ids"),
]


@pytest.mark.parametrize(("script", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_example_runs(cluster: Cluster, script: str, args: list[str], expected: str) -> None:
    hosts = ",".join(
        f"{point[0]}:{point[1]}" if isinstance(point, tuple) else f"{point}:{cluster.port}"
        for point in cluster.contact_points
    )
    env = {**os.environ, "RXCQL_CONTACT_POINTS": hosts}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert expected in completed.stdout, completed.stdout
