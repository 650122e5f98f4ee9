"""Fixtures for fault-injection tests: Simulacron (protocol-level faults) and scratch nodes.

Simulacron comes from, in order:

1. ``RXCQL_SIMULACRON_URL=http://host:port`` set: that Simulacron; nothing is started or stopped.
2. One started by ``scripts/simulacron start`` (its pid file on the default admin port): used and
   left running.
3. Otherwise one is started with ``rxcql_dev.simulacron_node`` and stopped when the session ends
   (an ``atexit`` guard stops it too if pytest dies on the way).

It is provisioned once, after collection, when a selected test uses the ``simulacron`` fixture
(see ``tests/_provision.py``). When it cannot be reached or started, those tests fail with the
reason; they are never skipped.

Each test gets its own simulated cluster (``sim_cluster``, one node, deleted afterwards) and its
own driver ``Cluster`` connected to it (``sim_session``), so a test that closes connections or
marks the host down leaves nothing behind for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import FallthroughRetryPolicy, RoundRobinPolicy
from rxcql_dev import simulacron as sim
from rxcql_dev import simulacron_node

from .._provision import Provided, Provision, Report

#: Execution profile of ``sim_session`` with a short client-side timeout.
SHORT_TIMEOUT_PROFILE = "short_timeout"
SHORT_TIMEOUT = 0.5
#: Client-side timeout of the default profile of ``sim_session``.
DEFAULT_TIMEOUT = 10.0


def _provide_simulacron(report: Report) -> Provided[str]:
    from_env = sim.url_from_env()
    if from_env is not None:
        if not sim.Simulacron(from_env).is_up():
            raise sim.SimulacronError(f"{from_env} does not answer")
        report(f"simulacron: using {sim.URL_ENV}={from_env}")
        return Provided(from_env)
    info = simulacron_node.start(echo=report)
    if not info.started:
        report(f"simulacron: using the one already on {info.url}")
        return Provided(info.url)
    simulacron_node.stop_at_exit(info.http_port)
    report(f"simulacron ready on {info.url} in {info.startup_seconds:.1f} s")
    return Provided(
        info.url,
        stop=lambda: simulacron_node.stop(info.http_port),
        stopped=f"simulacron on port {info.http_port} stopped",
    )


_simulacron = Provision(
    "Simulacron",
    _provide_simulacron,
    hint=f"Start it with `scripts/simulacron start` or point {sim.URL_ENV} at one.",
    wanted=lambda item: "simulacron" in getattr(item, "fixturenames", ()),
)


def pytest_collection_finish(session: pytest.Session) -> None:
    _simulacron.collection_finish(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _simulacron.session_finish(session)


@pytest.fixture(scope="session")
def simulacron(pytestconfig: pytest.Config) -> sim.Simulacron:
    """The Simulacron admin API client."""
    return sim.Simulacron(_simulacron.get(pytestconfig))


@pytest.fixture
def sim_cluster(simulacron: sim.Simulacron) -> Iterator[sim.SimCluster]:
    """A one-node simulated cluster of this test, deleted afterwards."""
    with sim.cluster(simulacron, 1) as created:
        yield created


def fault_profile(request_timeout: float) -> ExecutionProfile:
    """Round robin, no retries (the driver's default policy would retry some faults away)."""
    return ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(),
        retry_policy=FallthroughRetryPolicy(),
        request_timeout=request_timeout,
    )


@pytest.fixture
def sim_session(sim_cluster: sim.SimCluster) -> Iterator[Session]:
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
