"""Shared by the examples: a session on the configured cluster, or on a local node started here.

``RXCQL_CONTACT_POINTS=host:port,...`` points the examples at an existing cluster. Without it they
use a node already answering on 127.0.0.1:9042, or start one with the project's
``scripts/cassandra`` machinery (the ``rxcql_dev`` tooling package of the checkout, installed by
``pip install -e .``: Cassandra 5.0 from Maven Central) and stop it when they exit.
"""

from __future__ import annotations

import atexit
import sys

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rxcql_dev import cassandra_node

import rxcql

KEYSPACE = "rxcql_examples"


def connect(keyspace: str = KEYSPACE) -> Session:
    """A session on ``keyspace`` (created if missing, SimpleStrategy RF 1)."""
    contact_points = cassandra_node.find_or_start(echo=_to_stderr).contact_points
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60)
    cluster = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    atexit.register(cluster.shutdown)
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.set_keyspace(keyspace)
    return session


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


class ProgressBar:
    """A ``progress=`` callback for :func:`rxcql.execute` that draws a rich progress bar on
    stderr: rows, rate, time left, requests in flight, failures. On a terminal it redraws in
    place; elsewhere (a pipe, CI) it prints its last state once, at the end."""

    def __init__(self, total: int, label: str = "", width: int = 30) -> None:
        self.total = total
        self.label = label
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=width),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9,.0f}/s"),
            TimeRemainingColumn(),
            TextColumn("in flight {task.fields[in_flight]:>4}  failed {task.fields[failed]}"),
            console=Console(stderr=True),
        )
        self._task: TaskID | None = None

    def __call__(self, progress: rxcql.Progress) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(
                self.label, total=self.total, rate=0.0, in_flight=0, failed=0
            )
        self._bar.update(
            self._task,
            completed=progress.completed,
            rate=progress.rate,
            in_flight=progress.in_flight,
            failed=progress.failed,
        )
        if progress.done:
            self._bar.stop()
