"""Fixtures for fault-injection tests: Simulacron (protocol-level faults) and scratch nodes.

Simulacron comes from, in order:

1. ``RXCQL_SIMULACRON_URL=http://host:port`` set: that Simulacron; nothing is started or stopped.
2. One started by ``scripts/simulacron start`` (its pid file on the default admin port): used and
   left running.
3. Otherwise one is started with ``scripts/simulacron_node.py`` and stopped when the session ends
   (an ``atexit`` guard stops it too if pytest dies on the way).

It is provisioned once, after collection, when a selected test uses the ``simulacron`` fixture,
so its start-up does not count against a test's timeout. When it cannot be reached or started,
those tests fail with the reason; they are never skipped.

Each test gets its own simulated cluster (``sim_cluster``, one node, deleted afterwards) and its
own driver ``Cluster`` connected to it (``sim_session``), so a test that closes connections or
marks the host down leaves nothing behind for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import simulacron_node
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import FallthroughRetryPolicy, RoundRobinPolicy

#: Execution profile of ``sim_session`` with a short client-side timeout.
SHORT_TIMEOUT_PROFILE = "short_timeout"
SHORT_TIMEOUT = 0.5
#: Client-side timeout of the default profile of ``sim_session``.
DEFAULT_TIMEOUT = 10.0


def pytest_configure(config: pytest.Config) -> None:
    # Registered here as well as (ideally) in pyproject, so --strict-markers accepts it either way.
    config.addinivalue_line(
        "markers",
        "faults: fault injection (Simulacron, or scratch Cassandra nodes that get paused or "
        "stopped)",
    )


@dataclass
class _Provision:
    done: bool = False
    url: str | None = None
    started_port: int | None = None
    error: str | None = None


_provision = _Provision()


def _report(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message)


def _provide_simulacron(config: pytest.Config) -> _Provision:
    if _provision.done:
        return _provision
    _provision.done = True
    try:
        from_env = simulacron_node.url_from_env()
        if from_env is not None:
            if not simulacron_node.Simulacron(from_env).is_up():
                raise simulacron_node.SimulacronError(f"{from_env} does not answer")
            _provision.url = from_env
            _report(config, f"simulacron: using {simulacron_node.URL_ENV}={from_env}")
            return _provision
        info = simulacron_node.start(echo=lambda line: _report(config, line))
        if info.started:
            _provision.started_port = info.http_port
            simulacron_node.stop_at_exit(info.http_port)
            _report(config, f"simulacron ready on {info.url} in {info.startup_seconds:.1f} s")
        else:
            _report(config, f"simulacron: using the one already on {info.url}")
        _provision.url = info.url
    except Exception as error:
        _provision.error = (
            f"Simulacron is not available: {error}\n"
            f"Start it with `scripts/simulacron start` or point {simulacron_node.URL_ENV} at one."
        )
    return _provision


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("simulacron" in getattr(item, "fixturenames", ()) for item in session.items):
        _provide_simulacron(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    port = _provision.started_port
    if port is not None:
        _provision.started_port = None
        simulacron_node.stop(port)
        _report(session.config, f"\nsimulacron on port {port} stopped")


@pytest.fixture(scope="session")
def simulacron(pytestconfig: pytest.Config) -> simulacron_node.Simulacron:
    """The Simulacron admin API client."""
    provision = _provide_simulacron(pytestconfig)
    if provision.error is not None or provision.url is None:
        pytest.fail(provision.error or "Simulacron is not available", pytrace=False)
    return simulacron_node.Simulacron(provision.url)


@pytest.fixture
def sim_cluster(simulacron: simulacron_node.Simulacron) -> Iterator[simulacron_node.SimCluster]:
    """A one-node simulated cluster of this test, deleted afterwards."""
    with simulacron_node.cluster(simulacron, 1) as created:
        yield created


def fault_profile(request_timeout: float) -> ExecutionProfile:
    """Round robin, no retries (the driver's default policy would retry some faults away)."""
    return ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(),
        retry_policy=FallthroughRetryPolicy(),
        request_timeout=request_timeout,
    )


@pytest.fixture
def sim_session(sim_cluster: simulacron_node.SimCluster) -> Iterator[Session]:
    """A driver session on ``sim_cluster``: protocol v4 (Simulacron's newest), no retries.

    Profiles: the default one (request timeout 10 s) and ``SHORT_TIMEOUT_PROFILE`` (0.5 s).
    """
    cluster = Cluster(
        contact_points=sim_cluster.contact_points,
        protocol_version=4,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: fault_profile(DEFAULT_TIMEOUT),
            SHORT_TIMEOUT_PROFILE: fault_profile(SHORT_TIMEOUT),
        },
        connect_timeout=10,
        control_connection_timeout=10,
    )
    try:
        session = cluster.connect()
    except Exception as error:
        cluster.shutdown()
        pytest.fail(f"cannot connect to Simulacron at {sim_cluster.contact_points}: {error}")
    try:
        yield session
    finally:
        cluster.shutdown()
