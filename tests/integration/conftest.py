"""Fixtures for tests that talk to a real Cassandra.

Where the cluster comes from, in order:

1. ``RXCQL_CONTACT_POINTS=host:port,host:port`` set: that cluster; nothing is started or stopped.
2. A node already answering CQL on 127.0.0.1:9042 (e.g. ``scripts/cassandra start``): used, and
   left running.
3. Otherwise a node is started with ``scripts/cassandra_node.py`` and stopped when the session
   ends (an ``atexit`` guard stops it too if pytest dies on the way).

The node is provisioned once, after collection, when integration tests were selected, so its
start-up does not count against a test's timeout. When Cassandra cannot be reached or started,
every integration test fails with the reason; they are never skipped (in CI or elsewhere).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import cassandra_node
import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy

PORT = cassandra_node.DEFAULT_PORT


@dataclass
class _Provision:
    done: bool = False
    contact_points: list[tuple[str, int]] = field(default_factory=list)
    started_port: int | None = None
    error: str | None = None


_provision = _Provision()


def _report(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message)


def _provide_cassandra(config: pytest.Config) -> _Provision:
    if _provision.done:
        return _provision
    _provision.done = True
    try:
        from_env = cassandra_node.contact_points_from_env()
        if from_env is not None:
            _provision.contact_points = from_env
            _report(config, f"cassandra: using {cassandra_node.CONTACT_POINTS_ENV}={from_env}")
            return _provision
        host = cassandra_node.HOST
        version = cassandra_node.probe_cql(host, PORT)
        if version:
            _report(config, f"cassandra: using the {version} node already on {host}:{PORT}")
        else:
            info = cassandra_node.start(PORT, echo=lambda line: _report(config, line))
            if info.started:
                _provision.started_port = PORT
                cassandra_node.stop_at_exit(PORT)
                _report(
                    config,
                    f"cassandra {info.version} ready on {host}:{PORT} "
                    f"in {info.startup_seconds:.1f} s",
                )
        _provision.contact_points = [(host, PORT)]
    except Exception as error:
        _provision.error = (
            f"Cassandra is not available: {error}\n"
            f"Start one with `scripts/cassandra start` or point "
            f"{cassandra_node.CONTACT_POINTS_ENV}=host:port at a cluster."
        )
    return _provision


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("integration") for item in session.items):
        _provide_cassandra(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    port = _provision.started_port
    if port is not None:
        _provision.started_port = None
        cassandra_node.stop(port)
        _report(session.config, f"\ncassandra on port {port} stopped")


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """A connected driver ``Cluster`` (protocol v5, round-robin load balancing)."""
    provision = _provide_cassandra(pytestconfig)
    if provision.error is not None:
        pytest.fail(provision.error, pytrace=False)
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60.0)
    result = Cluster(
        contact_points=provision.contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        result.connect().shutdown()
    except Exception as error:
        result.shutdown()
        pytest.fail(f"cannot connect to {provision.contact_points}: {error}", pytrace=False)
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
