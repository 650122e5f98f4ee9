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
    """A ``progress=`` callback for :func:`rxcql.execute` that draws a bar on stderr."""

    def __init__(self, total: int, label: str = "", width: int = 30) -> None:
        self.total = total
        self.label = label
        self.width = width

    def __call__(self, progress: rxcql.Progress) -> None:
        share = progress.completed / self.total if self.total else 1.0
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        line = (
            f"\r{self.label}[{bar}] {progress.completed:>9,}/{self.total:,} "
            f"{progress.rate:>9,.0f}/s  in flight {progress.in_flight:>4}  "
            f"failed {progress.failed}"
        )
        print(line, end="\n" if progress.done else "", file=sys.stderr, flush=True)
