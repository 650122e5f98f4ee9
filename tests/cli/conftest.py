"""Fixtures for the ``rxcql`` command's tests: the real node of tests/integration (the same
provisioning: ``RXCQL_CONTACT_POINTS``, else a node on 127.0.0.1:9042, else one started for the
session), and a way to run the command as a user does, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Cluster

from ..integration.conftest import _cassandra, cluster, keyspace, session

__all__ = ["cluster", "keyspace", "session"]

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_finish(session: pytest.Session) -> None:
    _cassandra.collection_finish(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _cassandra.session_finish(session)


def contact_points(cluster: Cluster) -> str:
    return ",".join(
        f"{point[0]}:{point[1]}" if isinstance(point, tuple) else f"{point}:{cluster.port}"
        for point in cluster.contact_points
    )


class Runner:
    """Runs ``python -m rxcql.cli ...`` against the test node."""

    def __init__(self, cluster: Cluster) -> None:
        self.env = {**os.environ, "RXCQL_CONTACT_POINTS": contact_points(cluster)}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "rxcql.cli", *args]

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float = 240,
        check: int | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        completed = subprocess.run(
            self.command(*args),
            input=input,
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check is not None:
            assert completed.returncode == check, describe(completed)
        return completed

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(*args), env=self.env, cwd=ROOT, **kwargs)


def describe(completed: subprocess.CompletedProcess[bytes]) -> str:
    out = completed.stdout[-3000:].decode(errors="replace")
    err = completed.stderr[-5000:].decode(errors="replace")
    return f"exit {completed.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


@pytest.fixture(scope="session")
def rxcql_cli(cluster: Cluster) -> Runner:
    return Runner(cluster)


def lines_of(text: Sequence[str]) -> str:
    return "".join(line + "\n" for line in text)
