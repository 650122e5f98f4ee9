"""Run Simulacron, the CQL protocol simulator, for rxcql's fault-injection tests.

The process side of :mod:`rxcql_dev.simulacron` (which talks to its admin API). Simulacron comes
from Maven Central as a runnable jar (``com.datastax.oss.simulacron:simulacron-standalone``
0.12.0), fetched once with ``mvn dependency:copy`` into the cache directory, and runs through the
package's JVM launcher on the same JDK 17 as the Cassandra node.

Command line (through the ``scripts/simulacron`` shim)::

    scripts/simulacron start [--http-port 18187] [--native-port 19242]
    scripts/simulacron status [--http-port 18187]
    scripts/simulacron stop [--http-port 18187]

From Python (standard library only)::

    info = simulacron_node.start()                  # idempotent; waits until HTTP answers
    api = simulacron.Simulacron(info.url)
    simulacron_node.stop()

Environment:
    RXCQL_CACHE_DIR: where the jar goes (default ``~/.cache/rxcql``).
    RXCQL_SIMULACRON_ARTIFACT: ``group:artifact:version`` to use instead of the list below.
    JAVA17_HOME, JAVA_HOME: as for the Cassandra node.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cli, maven
from .jvm import HOST, Echo, JvmProcess, cache_root, default_echo, find_java17
from .simulacron import URL_ENV, SimulacronError, http_ok

__all__ = [
    "ARTIFACTS",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_NATIVE_PORT",
    "SimulacronInfo",
    "ensure_jar",
    "is_running",
    "main",
    "start",
    "stop",
    "stop_at_exit",
]

#: ``(group, artifact, version)``, in order of preference: the first Maven resolves is used.
#: ScyllaDB's fork was looked for as ``com.scylladb.oss.simulacron:simulacron-standalone``
#: 0.14.0.0 and 0.13.0.0: Maven Central has neither (jar nor pom), so it is not listed; pin any
#: other build with ``RXCQL_SIMULACRON_ARTIFACT``.
ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("com.datastax.oss.simulacron", "simulacron-standalone", "0.12.0"),
)
DEFAULT_HTTP_PORT = 18187
#: First CQL port of the simulated nodes (never 9042: the real node's).
DEFAULT_NATIVE_PORT = 19242
DEFAULT_WAIT_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
ARTIFACT_ENV = "RXCQL_SIMULACRON_ARTIFACT"


@dataclass(frozen=True)
class SimulacronInfo:
    """A Simulacron whose admin API answers.

    Attributes:
        url: Admin API base URL (``http://127.0.0.1:18187``).
        http_port: Admin API port.
        native_port: First CQL port handed to simulated nodes.
        pid: JVM process id, or ``None`` when not started by this module.
        started: ``True`` when this call launched the JVM.
        startup_seconds: From launch until the admin API answered (0 when already running).
        jar: The jar that runs (``None`` when not started by this call).
        log_path: JVM stdout and stderr.
    """

    url: str
    http_port: int
    native_port: int
    pid: int | None
    started: bool
    startup_seconds: float
    jar: Path | None
    log_path: Path


# --------------------------------------------------------------------------------------------
# The jar from Maven Central


def _parse_artifact(value: str) -> tuple[str, str, str]:
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise SimulacronError(f"{ARTIFACT_ENV} must be group:artifact:version, got {value!r}")
    return parts[0], parts[1], parts[2]


def _jar_fetch(group: str, artifact: str, version: str) -> maven.Fetch:
    vendor = group.split(".")[1] if group.count(".") >= 1 else group
    coordinates = f"{group}:{artifact}:{version}"
    return maven.Fetch(
        label=coordinates,
        directory=cache_root() / f"simulacron-{vendor}-{version}",
        arguments=("dependency:copy", f"-Dartifact={coordinates}"),
    )


def ensure_jar(
    artifact: str | None = None, echo: Echo = default_echo
) -> tuple[tuple[str, str, str], Path]:
    """Return ``((group, artifact, version), jar)``, fetching the jar when it is not cached.

    Args:
        artifact: ``group:artifact:version`` to use; ``None`` takes ``RXCQL_SIMULACRON_ARTIFACT``
            if set, else the first of :data:`ARTIFACTS` that is cached or that Maven resolves.
        echo: Receives progress messages.

    Raises:
        SimulacronError: No candidate could be fetched.
    """
    chosen = artifact or os.environ.get(ARTIFACT_ENV) or None
    candidates = (_parse_artifact(chosen),) if chosen else ARTIFACTS
    coords, fetch = maven.ensure(
        {coords: _jar_fetch(*coords) for coords in candidates},
        lock_name=".simulacron-download.lock",
        error=SimulacronError,
        nothing="no Simulacron artifact could be fetched",
        echo=echo,
    )
    return coords, fetch.jars()[0]


# --------------------------------------------------------------------------------------------
# The process


def _process(http_port: int) -> JvmProcess:
    return JvmProcess(
        kind="simulacron",
        name="simulacron",
        address=f"http://{HOST}:{http_port}",
        run_dir=cache_root() / f"simulacron-run-{http_port}",
        marker=b"simulacron-standalone",
        error=SimulacronError,
        kill_timeout=5.0,
    )


def is_running(http_port: int = DEFAULT_HTTP_PORT) -> bool:
    """Whether a Simulacron started by this module (pid file of ``http_port``) is alive."""
    return _process(http_port).running_pid() is not None


def start(
    http_port: int = DEFAULT_HTTP_PORT,
    *,
    native_port: int = DEFAULT_NATIVE_PORT,
    ip: str = HOST,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    artifact: str | None = None,
    echo: Echo = default_echo,
) -> SimulacronInfo:
    """Start Simulacron with its admin API on ``127.0.0.1:http_port``; wait until it answers.

    Idempotent: a Simulacron of this module already running on ``http_port`` is reused.

    Args:
        http_port: Admin API port.
        native_port: First CQL port of simulated nodes (``--starting-port``).
        ip: Address of simulated nodes (``--ip``).
        wait_timeout: Seconds to wait for the admin API.
        artifact: ``group:artifact:version`` (see :func:`ensure_jar`).
        echo: Receives progress messages.

    Raises:
        SimulacronError: No Java 17, no jar, the port is taken by something else, or it did not
            answer in time (the JVM is then killed; ``echo`` gets the log tail).
    """
    process = _process(http_port)
    url = process.address
    jars: list[Path] = []

    def prepare() -> list[str]:
        java_home = find_java17(SimulacronError)
        coords, jar = ensure_jar(artifact, echo)
        jars.append(jar)
        echo(f"starting {':'.join(coords)} on {url} (log {process.log_path})")
        return [
            str(java_home / "bin" / "java"),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+ExitOnOutOfMemoryError",
            "-jar",
            str(jar),
            "--loglevel",
            "ERROR",
            "--httpintf",
            HOST,
            "--httpport",
            str(http_port),
            "--ip",
            ip,
            "--starting-port",
            str(native_port),
        ]

    launched = process.start(
        prepare,
        lambda remaining: url if http_ok(url, timeout=1.0) else None,
        ports=[(HOST, http_port)],
        wait_timeout=wait_timeout,
        interval=0.1,
        in_use_hint=f"; use it with {URL_ENV}={url} or pick another --http-port",
        echo=echo,
    )
    return SimulacronInfo(
        url,
        http_port,
        native_port,
        launched.pid,
        launched.started,
        launched.seconds,
        jars[0] if jars else None,
        process.log_path,
    )


def stop(http_port: int = DEFAULT_HTTP_PORT, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the Simulacron of ``http_port`` (SIGTERM, SIGKILL after ``timeout`` seconds).

    Returns:
        ``True`` if one was running and has been stopped.
    """
    return _process(http_port).stop(timeout)


def stop_at_exit(http_port: int) -> None:
    """Register an ``atexit`` guard that stops the Simulacron of ``http_port``."""
    _process(http_port).stop_at_exit(STOP_TIMEOUT)


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser, subs = cli.parser_with_commands(
        "simulacron",
        "Run Simulacron (CQL protocol simulator) for rxcql's tests.",
        (
            ("start", "start Simulacron (idempotent) and wait until its admin API answers"),
            ("stop", "stop it"),
            ("status", "exit 0 if it is running and its admin API answers, else 1"),
        ),
    )
    for sub in subs.values():
        sub.add_argument(
            "--http-port",
            type=int,
            default=DEFAULT_HTTP_PORT,
            help=f"admin API port ({DEFAULT_HTTP_PORT})",
        )
    start_command = subs["start"]
    start_command.add_argument(
        "--native-port",
        type=int,
        default=DEFAULT_NATIVE_PORT,
        help=f"first CQL port of simulated nodes ({DEFAULT_NATIVE_PORT})",
    )
    cli.add_wait_timeout(start_command, DEFAULT_WAIT_TIMEOUT, "seconds to wait")
    start_command.add_argument("--artifact", help="group:artifact:version to run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return cli.run(_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    http_port: int = args.http_port
    url = f"http://{HOST}:{http_port}"
    if args.command == "start":
        info = start(
            http_port,
            native_port=args.native_port,
            wait_timeout=args.wait_timeout,
            artifact=args.artifact,
        )
        if info.started:
            print(
                f"simulacron ready on {info.url} in {info.startup_seconds:.1f} s "
                f"(pid {info.pid}, nodes from {HOST}:{info.native_port})"
            )
        else:
            print(f"simulacron already running on {info.url} (pid {info.pid})")
        return 0
    if args.command == "stop":
        print(f"simulacron on {url} stopped" if stop(http_port) else "simulacron not running")
        return 0
    pid = _process(http_port).running_pid()
    if pid is None:
        print(f"simulacron not running on {url}")
        return 1
    if not http_ok(url):
        print(f"simulacron pid {pid} alive but {url} does not answer (starting?)")
        return 1
    print(f"simulacron running on {url} (pid {pid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
