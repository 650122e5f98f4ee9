"""Fixtures for rxcql through a secured node: password authentication, roles and client TLS.

The node is :mod:`rxcql_dev.secure_node`'s (127.0.0.8:19145, TLS only, a cluster of its own; never
the shared node on 9042). The module fixture :func:`secured_node` starts it, or reuses one already
running (``scripts/cassandra-secure start``) and leaves that one running: it stops only a node it
started. When the node cannot start, every test fails with the reason; they are never skipped.

:func:`roles` logs in as the default superuser over TLS, creates the keyspace :data:`KEYSPACE`
with the table ``rows (id int PRIMARY KEY, payload text)`` (dropped first, so each run starts
empty), and the roles ``writer`` (``MODIFY`` and ``SELECT`` on the keyspace) and ``reader``
(``SELECT`` only), each with a new random password.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from rxcql_dev import secure_node
from rxcql_dev.cassandra_server import NodeInfo

KEYSPACE = "rxcql_secure"
#: Schema and role changes on a loaded two-core machine can take seconds.
SCHEMA_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Login:
    """A role that can log in, and its password."""

    user: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)


@dataclass(frozen=True)
class Roles:
    """The roles of this run (see the module docstring)."""

    writer: Login
    reader: Login


def new_cluster(
    auth: tuple[str, str] | None, *, tls: ssl.SSLContext | None, timeout: float = 10.0
) -> Cluster:
    """A driver ``Cluster`` for the secured node, not connected yet: protocol v5, round robin,
    ``PlainTextAuthProvider(*auth)`` unless ``auth`` is None, TLS with ``tls`` unless None."""
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), request_timeout=REQUEST_TIMEOUT
    )
    return Cluster(
        contact_points=[secure_node.contact_point()],
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=PlainTextAuthProvider(*auth) if auth is not None else None,
        ssl_context=tls,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
    )


@pytest.fixture(scope="module")
def secured_node() -> Iterator[NodeInfo]:
    """The secured node, running and accepting a superuser login over TLS."""
    host, port = secure_node.contact_point()
    failure = None
    try:
        info = secure_node.start(echo=lambda line: None)
    except Exception as error:
        failure = f"the secured node on {host}:{port} did not start: {error}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield info
    finally:
        if info.started:
            secure_node.stop()


@pytest.fixture(scope="module")
def tls(secured_node: NodeInfo) -> ssl.SSLContext:
    """The client TLS context: the node's certificate is verified against the test CA."""
    return secure_node.ssl_context()


@pytest.fixture(scope="module")
def admin_session(tls: ssl.SSLContext) -> Iterator[Session]:
    """The default superuser's session, over TLS."""
    cluster = new_cluster(secure_node.SUPERUSER, tls=tls)
    try:
        session = cluster.connect()
    except Exception as error:
        cluster.shutdown()
        pytest.fail(f"the superuser cannot log in over TLS: {error}", pytrace=False)
    try:
        yield session
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def roles(admin_session: Session) -> Roles:
    """The keyspace, its table and the ``writer`` and ``reader`` roles (see the module doc)."""
    run = admin_session.execute
    run(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=SCHEMA_TIMEOUT)
    run(
        f"CREATE KEYSPACE {KEYSPACE} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        timeout=SCHEMA_TIMEOUT,
    )
    run(f"CREATE TABLE {KEYSPACE}.rows (id int PRIMARY KEY, payload text)", timeout=SCHEMA_TIMEOUT)
    logins = Roles(
        writer=Login("writer", secrets.token_urlsafe(16)),
        reader=Login("reader", secrets.token_urlsafe(16)),
    )
    grants = {logins.writer: ("MODIFY", "SELECT"), logins.reader: ("SELECT",)}
    for login, permissions in grants.items():
        run(f"DROP ROLE IF EXISTS {login.user}", timeout=SCHEMA_TIMEOUT)
        run(
            f"CREATE ROLE {login.user} WITH PASSWORD = %s AND LOGIN = true",
            (login.password,),
            timeout=SCHEMA_TIMEOUT,
        )
        for permission in permissions:
            run(
                f"GRANT {permission} ON KEYSPACE {KEYSPACE} TO {login.user}", timeout=SCHEMA_TIMEOUT
            )
    return logins


def _login(login: Login, tls: ssl.SSLContext) -> Iterator[Session]:
    cluster = new_cluster(login.auth, tls=tls)
    try:
        session = cluster.connect(KEYSPACE)
    except Exception as error:
        cluster.shutdown()
        pytest.fail(f"{login.user} cannot log in over TLS: {error}", pytrace=False)
    try:
        yield session
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def writer_session(roles: Roles, tls: ssl.SSLContext) -> Iterator[Session]:
    """``writer``'s session over TLS, in :data:`KEYSPACE`."""
    yield from _login(roles.writer, tls)


@pytest.fixture(scope="module")
def reader_session(roles: Roles, tls: ssl.SSLContext) -> Iterator[Session]:
    """``reader``'s session over TLS, in :data:`KEYSPACE`."""
    yield from _login(roles.reader, tls)
