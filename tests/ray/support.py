"""What the Ray worker processes import: a ``connect`` for the test node (a module-level
function, pickled by reference into the tasks with ``functools.partial``)."""

from __future__ import annotations

from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy


def connect(contact_points: list[Any], keyspace: str | None = None) -> Any:
    """A session on the test node, as the tests' ``cluster`` fixture configures it."""
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60.0)
    cluster = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    return cluster.connect(keyspace)
