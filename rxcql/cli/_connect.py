"""Connection options, spelled as cqlsh and dsbulk spell them, and the driver Cluster they make."""

from __future__ import annotations

import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

CONTACT_POINTS_ENV = "RXCQL_CONTACT_POINTS"
PASSWORD_ENV = "RXCQL_PASSWORD"
DEFAULT_PORT = 9042
CONSISTENCY_LEVELS = (
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "LOCAL_ONE",
)

F = TypeVar("F", bound=Callable[..., Any])


class CannotConnectError(Exception):
    """The cluster could not be reached, or refused the login (exit status 2)."""


@dataclass(frozen=True)
class Connection:
    """What the connection options say."""

    hosts: tuple[str, ...]
    port: int
    username: str | None
    password: str | None
    ssl: bool
    ssl_ca: str | None
    ssl_cert: str | None
    ssl_key: str | None
    ssl_no_verify: bool
    consistency: str
    request_timeout: float
    connect_timeout: float
    local_dc: str | None
    protocol_version: int | None

    def contact_points(self) -> list[tuple[str, int]]:
        """``(host, port)`` pairs: ``-h`` (each may be ``host:port``, several may be given or
        comma-separated), else ``RXCQL_CONTACT_POINTS``, else 127.0.0.1."""
        value = ",".join(self.hosts) or os.environ.get(CONTACT_POINTS_ENV, "").strip()
        return parse_contact_points(value or "127.0.0.1", self.port)


def parse_contact_points(value: str, default_port: int = DEFAULT_PORT) -> list[tuple[str, int]]:
    """``host[:port],...`` into pairs; an IPv6 address with a port goes in brackets."""
    points: list[tuple[str, int]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        else:
            host, port_text = item, ""
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise click.BadParameter(f"bad port in contact point {item!r}") from None
        points.append((host, port))
    if not points:
        raise click.BadParameter(f"no contact points in {value!r}")
    return points


def connection_options(function: F) -> F:
    """The connection options of every command."""
    options = [
        click.option(
            "-h",
            "--host",
            "hosts",
            multiple=True,
            metavar="HOST[:PORT]",
            help=f"Contact point; repeat or separate with commas. Default: ${CONTACT_POINTS_ENV}, "
            "else 127.0.0.1.",
        ),
        click.option("--port", default=DEFAULT_PORT, show_default=True, help="CQL native port."),
        click.option("-u", "--username", help="Log in as this role (PasswordAuthenticator)."),
        click.option(
            "-p",
            "--password",
            envvar=PASSWORD_ENV,
            show_envvar=True,
            help=f"The role's password; prefer ${PASSWORD_ENV}. Asked for on a terminal if "
            "-u is given without one.",
        ),
        click.option("--ssl", "use_ssl", is_flag=True, help="Connect with TLS."),
        click.option(
            "--ssl-ca",
            type=click.Path(exists=True, dir_okay=False),
            help="CA certificate(s) (PEM) to verify the nodes with (default: the system's).",
        ),
        click.option(
            "--ssl-cert",
            type=click.Path(exists=True, dir_okay=False),
            help="Client certificate (PEM), for nodes that require one.",
        ),
        click.option(
            "--ssl-key",
            type=click.Path(exists=True, dir_okay=False),
            help="The client certificate's private key (PEM).",
        ),
        click.option(
            "--ssl-no-verify",
            is_flag=True,
            help="Do not verify the nodes' certificates or host names (testing only).",
        ),
        click.option(
            "--consistency",
            type=click.Choice(CONSISTENCY_LEVELS, case_sensitive=False),
            default="LOCAL_ONE",
            show_default=True,
            help="Consistency level of every request.",
        ),
        click.option(
            "--request-timeout",
            type=float,
            default=60.0,
            show_default=True,
            help="Seconds the driver waits for a request's answer.",
        ),
        click.option(
            "--connect-timeout",
            type=float,
            default=10.0,
            show_default=True,
            help="Seconds to wait for the first connection.",
        ),
        click.option("--local-dc", help="The local datacenter (default: the first node's)."),
        click.option(
            "--protocol-version",
            type=click.IntRange(3, 6),
            help="Native protocol version (default: negotiated).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def connection_from(options: dict[str, Any]) -> Connection:
    """Pop the connection options out of a command's keyword arguments."""
    username = options.pop("username")
    password = options.pop("password")
    if username and password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"-u/--username needs a password: -p/--password or ${PASSWORD_ENV}"
            )
        password = click.prompt("Password", hide_input=True, err=True)
    return Connection(
        hosts=tuple(options.pop("hosts")),
        port=options.pop("port"),
        username=username,
        password=password,
        ssl=options.pop("use_ssl"),
        ssl_ca=options.pop("ssl_ca"),
        ssl_cert=options.pop("ssl_cert"),
        ssl_key=options.pop("ssl_key"),
        ssl_no_verify=options.pop("ssl_no_verify"),
        consistency=options.pop("consistency").upper(),
        request_timeout=options.pop("request_timeout"),
        connect_timeout=options.pop("connect_timeout"),
        local_dc=options.pop("local_dc"),
        protocol_version=options.pop("protocol_version"),
    )


def ssl_context(connection: Connection) -> ssl.SSLContext | None:
    wanted = connection.ssl or connection.ssl_ca or connection.ssl_cert
    if not wanted:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=connection.ssl_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if connection.ssl_no_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if connection.ssl_cert:
        context.load_cert_chain(connection.ssl_cert, connection.ssl_key)
    return context


def connect(connection: Connection, row_factory: Any = None) -> tuple[Any, Any]:
    """A connected ``(cluster, session)``: token-aware routing, the consistency level and
    timeout of the options, rows as tuples unless ``row_factory`` says otherwise.

    Raises:
        CannotConnectError: no contact point answered, or the login or TLS handshake failed.
    """
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import tuple_factory

    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(connection.local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[connection.consistency],
        request_timeout=connection.request_timeout,
        row_factory=row_factory or tuple_factory,
    )
    keywords: dict[str, Any] = {}
    if connection.protocol_version is not None:
        keywords["protocol_version"] = connection.protocol_version
    if connection.username:
        keywords["auth_provider"] = PlainTextAuthProvider(
            connection.username, connection.password or ""
        )
    points = connection.contact_points()
    try:
        context = ssl_context(connection)
    except (OSError, ssl.SSLError) as exc:
        raise CannotConnectError(f"cannot set up TLS: {exc}") from exc
    cluster = Cluster(
        contact_points=points,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        ssl_context=context,
        connect_timeout=connection.connect_timeout,
        control_connection_timeout=connection.connect_timeout,
        **keywords,
    )
    driver_log = logging.getLogger("cassandra")
    level = driver_log.level
    driver_log.setLevel(logging.CRITICAL)  # a failure is reported below, in one line
    try:
        session = cluster.connect()
    except Exception as exc:
        cluster.shutdown()
        shown = ", ".join(f"{host}:{port}" for host, port in points)
        raise CannotConnectError(f"cannot connect to {shown}: {_reason(exc)}") from exc
    finally:
        driver_log.setLevel(level)
    return cluster, session


def _reason(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return "; ".join(f"{host}: {error}" for host, error in errors.items())
    return f"{type(exc).__name__}: {exc}"
