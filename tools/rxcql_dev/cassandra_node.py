"""The single local Cassandra 5.0 node of rxcql's tests, CI, examples and benchmarks.

A node of :mod:`rxcql_dev.cassandra_server` on ``127.0.0.1:<port>`` (9042 by default), a cluster
of its own (``rxcql-test``) whose storage port is derived from the CQL port (7000 for 9042).

Command line (through the ``scripts/cassandra`` shim)::

    scripts/cassandra start [--port 9042] [--wait-timeout 180] [--keep-data] [--version V]
    scripts/cassandra status [--port 9042]
    scripts/cassandra stop [--port 9042]

From Python::

    info = cassandra_node.start(port=9042)  # idempotent; waits until CQL answers
    cassandra_node.is_running(9042)
    cassandra_node.stop(9042)

Environment:
    RXCQL_CACHE_DIR: where the jars go (default ``~/.cache/rxcql``); one
        ``cassandra-<version>/lib`` per version.
    RXCQL_NODE_DIR: the node's directory (data, pid file, log); default
        ``~/.cache/rxcql/node-<port>``.
    RXCQL_CASSANDRA_VERSION: pin a version instead of taking the newest 5.0.x that resolves.
    JAVA17_HOME, JAVA_HOME: the JDK 17 to use (``JAVA_HOME`` only when it is a 17).
    RXCQL_CONTACT_POINTS: ``host:port,host:port`` of an existing cluster; tests then use it and
        start nothing (see :func:`contact_points_from_env`).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cli
from .cassandra_server import (
    NodeInfo,
    NodeSpec,
    node_process,
    probe_cql,
    start_node,
)
from .jvm import HOST, Echo, JvmProcess, accepts_tcp, cache_root, default_echo

__all__ = [
    "CONTACT_POINTS_ENV",
    "DEFAULT_PORT",
    "DEFAULT_WAIT_TIMEOUT",
    "HOST",
    "Found",
    "contact_points_from_env",
    "find_or_start",
    "is_running",
    "main",
    "parse_contact_points",
    "start",
    "stop",
    "stop_at_exit",
]

DEFAULT_PORT = 9042
DEFAULT_WAIT_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
CONTACT_POINTS_ENV = "RXCQL_CONTACT_POINTS"


# --------------------------------------------------------------------------------------------
# Contact points


def parse_contact_points(value: str, default_port: int = DEFAULT_PORT) -> list[tuple[str, int]]:
    """Parse ``host:port,host:port`` (the port is optional) into ``(host, port)`` pairs.

    IPv6 addresses go in brackets: ``[::1]:9042``.

    Raises:
        ValueError: The value is empty or a port is not a number.
    """
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
            raise ValueError(f"bad port in contact point {item!r}") from None
        points.append((host, port))
    if not points:
        raise ValueError(f"no contact points in {value!r}")
    return points


def contact_points_from_env() -> list[tuple[str, int]] | None:
    """Contact points from ``RXCQL_CONTACT_POINTS``, or ``None`` when it is unset or empty."""
    value = os.environ.get(CONTACT_POINTS_ENV, "").strip()
    return parse_contact_points(value) if value else None


# --------------------------------------------------------------------------------------------
# The node


def _node_dir(port: int) -> Path:
    configured = os.environ.get("RXCQL_NODE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return cache_root() / f"node-{port}"


def _process(port: int) -> JvmProcess:
    return node_process("cassandra", HOST, port, _node_dir(port))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_storage_port(port: int) -> int:
    """Storage (gossip) port: 7000 for CQL 9042, shifted alike for other ports, else any free."""
    preferred = port - 2042
    if 1024 < preferred < 65536 and preferred != port and _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def is_running(port: int = DEFAULT_PORT) -> bool:
    """Whether a node started by this module (pid file of ``port``) is alive."""
    return _process(port).running_pid() is not None


def start(
    port: int = DEFAULT_PORT,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    keep_data: bool = False,
    version: str | None = None,
    heap: str = "1g",
    echo: Echo = default_echo,
) -> NodeInfo:
    """Start a node on ``127.0.0.1:port`` and wait until it answers CQL.

    Idempotent: a node of this module already running on ``port`` is waited for and reused.

    Args:
        port: CQL port. The storage port is derived (7000 for 9042) or any free one.
        wait_timeout: Seconds to wait for CQL after the JVM is launched.
        keep_data: Keep the data of an earlier run instead of starting empty.
        version: Pin a cassandra-all 5.0.x version (see
            :func:`rxcql_dev.cassandra_server.ensure_server_jars`).
        heap: ``-Xms``/``-Xmx`` value.
        echo: Receives progress messages.

    Returns:
        The running node.

    Raises:
        CassandraNodeError: No Java 17, no jars, the port is taken by something else, or the
            node did not come up in time (the JVM is then killed; ``echo`` gets the log tail).
    """
    storage_port = _pick_storage_port(port)
    spec = NodeSpec(
        name="cassandra",
        host=HOST,
        port=port,
        storage_port=storage_port,
        jmx_port=None,
        seeds=f"{HOST}:{storage_port}",
        cluster_name="rxcql-test",
        initial_token="0",
        node_dir=_node_dir(port),
        heap=heap,
        auto_bootstrap=True,
    )
    return start_node(
        spec,
        wait_timeout=wait_timeout,
        keep_data=keep_data,
        version=version,
        in_use_hint=f"; use it with {CONTACT_POINTS_ENV}={HOST}:{port} or pick another --port",
        echo=echo,
    )


def stop(port: int = DEFAULT_PORT, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the node of ``port`` (SIGTERM, then SIGKILL after ``timeout`` seconds).

    Returns:
        ``True`` if a node was running and has been stopped.
    """
    return _process(port).stop(timeout)


def stop_at_exit(port: int) -> None:
    """Register an ``atexit`` guard that stops the node of ``port`` if it is still running."""
    _process(port).stop_at_exit(STOP_TIMEOUT)


@dataclass(frozen=True)
class Found:
    """Where :func:`find_or_start` found the cluster.

    Attributes:
        contact_points: ``(host, port)`` pairs to connect to.
        started: The node this call started (the caller stops it), or None.
    """

    contact_points: list[tuple[str, int]]
    started: NodeInfo | None = None


def find_or_start(port: int = DEFAULT_PORT, echo: Echo = default_echo) -> Found:
    """The cluster the tests, examples and benchmarks use, in order: ``RXCQL_CONTACT_POINTS``
    (nothing started), a node already answering CQL on ``127.0.0.1:port`` (left running), or a
    node started here (with an ``atexit`` guard that stops it; ``Found.started`` says so)."""
    from_env = contact_points_from_env()
    if from_env is not None:
        echo(f"cassandra: using {CONTACT_POINTS_ENV}={from_env}")
        return Found(from_env)
    version = probe_cql(HOST, port)
    if version:
        echo(f"cassandra: using the {version} node already on {HOST}:{port}")
        return Found([(HOST, port)])
    echo(f"cassandra: no node on {HOST}:{port}, starting one (rxcql_dev.cassandra_node)")
    info = start(port, echo=echo)
    if not info.started:  # another process started it meanwhile
        return Found([(HOST, port)])
    stop_at_exit(port)
    echo(f"cassandra {info.version} ready on {HOST}:{port} in {info.startup_seconds:.1f} s")
    return Found([(HOST, port)], info)


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser, subs = cli.parser_with_commands(
        "cassandra",
        "Run a local Cassandra 5.0 node for rxcql's tests.",
        (
            ("start", "start a node (idempotent) and wait until CQL answers"),
            ("stop", "stop the node"),
            ("status", "exit 0 if the node is running and accepts CQL connections, else 1"),
        ),
    )
    for sub in subs.values():
        sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="CQL port (9042)")
    start_command = subs["start"]
    cli.add_wait_timeout(start_command, DEFAULT_WAIT_TIMEOUT, "seconds to wait for CQL")
    start_command.add_argument("--keep-data", action="store_true", help="do not wipe the data")
    start_command.add_argument("--version", help="cassandra-all version (newest 5.0.x)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return cli.run(_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    port: int = args.port
    if args.command == "start":
        info = start(
            port,
            wait_timeout=args.wait_timeout,
            keep_data=args.keep_data,
            version=args.version,
        )
        if info.started:
            print(
                f"cassandra {info.version} ready on {info.host}:{info.port} "
                f"in {info.startup_seconds:.1f} s (pid {info.pid})"
            )
        else:
            print(
                f"cassandra {info.version} already running on {info.host}:{info.port} "
                f"(pid {info.pid})"
            )
        return 0
    if args.command == "stop":
        stopped = stop(port)
        print(f"cassandra on {HOST}:{port} stopped" if stopped else "cassandra not running")
        return 0
    pid = _process(port).running_pid()
    if pid is None:
        print(f"cassandra not running on {HOST}:{port}")
        return 1
    if not accepts_tcp(HOST, port):
        print(f"cassandra pid {pid} alive but not accepting CQL on {HOST}:{port} (starting?)")
        return 1
    print(f"cassandra running on {HOST}:{port} (pid {pid}, dir {_node_dir(port)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
