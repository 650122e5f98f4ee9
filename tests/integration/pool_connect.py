"""The ``connect`` of the pool tests' workers: module level, so worker processes import it."""

from __future__ import annotations

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session


def connect(contact_points: list[tuple[str, int]], keyspace: str) -> Session:
    profile = ExecutionProfile(request_timeout=60.0)
    cluster = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    return cluster.connect(keyspace)
