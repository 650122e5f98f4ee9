"""Fixtures for tests that talk to a real Cassandra.

Where the cluster comes from, in order:

1. ``RXCQL_CONTACT_POINTS=host:port,host:port`` set: that cluster; nothing is started or stopped.
2. A node already answering CQL on 127.0.0.1:9042 (e.g. ``scripts/cassandra start``): used, and
   left running.
3. Otherwise a node is started with ``rxcql_dev.cassandra_node`` and stopped when the session
   ends (an ``atexit`` guard stops it too if pytest dies on the way).

The node is provisioned once, after collection, when integration tests were selected (see
``tests/_provision.py``). When Cassandra cannot be reached or started, every integration test
fails with the reason; they are never skipped (in CI or elsewhere).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from rxcql_dev import cassandra_node

from .._provision import Provided, Provision, Report

HOST, PORT = cassandra_node.HOST, cassandra_node.DEFAULT_PORT


def _provide_cassandra(report: Report) -> Provided[list[tuple[str, int]]]:
    found = cassandra_node.find_or_start(PORT, echo=report)
    if found.started is None:
        return Provided(found.contact_points)
    return Provided(
        found.contact_points,
        stop=lambda: cassandra_node.stop(PORT),
        stopped=f"cassandra on port {PORT} stopped",
    )


_cassandra = Provision(
    "Cassandra",
    _provide_cassandra,
    hint=(
        f"Start one with `scripts/cassandra start` or point "
        f"{cassandra_node.CONTACT_POINTS_ENV}=host:port at a cluster."
    ),
    wanted=lambda item: item.get_closest_marker("integration") is not None,
)


def pytest_collection_finish(session: pytest.Session) -> None:
    _cassandra.collection_finish(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _cassandra.session_finish(session)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """A connected driver ``Cluster`` (protocol v5, round-robin load balancing)."""
    contact_points = _cassandra.get(pytestconfig)
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60.0)
    result = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        result.connect().shutdown()
    except Exception as error:
        result.shutdown()
        pytest.fail(f"cannot connect to {contact_points}: {error}", pytrace=False)
    yield result
    result.shutdown()


@pytest.fixture(scope="session")
def keyspace(cluster: Cluster) -> Iterator[str]:
    """Name of a keyspace (SimpleStrategy, RF 1) created for this test run and dropped after it."""
    name = f"rxcql_test_{uuid.uuid4().hex[:12]}"
    admin = cluster.connect()
    admin.execute(
        f"CREATE KEYSPACE {name} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    try:
        yield name
    finally:
        admin.execute(f"DROP KEYSPACE IF EXISTS {name}")
        admin.shutdown()


@pytest.fixture(scope="session")
def session(cluster: Cluster, keyspace: str) -> Iterator[Session]:
    """A driver ``Session`` whose keyspace is :func:`keyspace`."""
    result = cluster.connect(keyspace)
    yield result
    result.shutdown()
