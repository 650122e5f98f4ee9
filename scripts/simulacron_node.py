"""Run Simulacron, the CQL protocol simulator, for rxcql's fault-injection tests.

Simulacron (the simulator the DataStax drivers test with) answers the CQL native protocol like a
Cassandra cluster, and an HTTP admin API tells it what to answer: a chosen result, error, delay
or closed connection for a chosen query. It comes from Maven Central as a runnable jar
(``com.datastax.oss.simulacron:simulacron-standalone`` 0.12.0), fetched once with
``mvn dependency:copy`` into the cache directory, and runs on the same JDK 17 as the Cassandra
node.

Command line (through the ``scripts/simulacron`` shim)::

    scripts/simulacron start [--http-port 18187] [--native-port 19242]
    scripts/simulacron status [--http-port 18187]
    scripts/simulacron stop [--http-port 18187]

From Python (standard library only)::

    info = simulacron_node.start()                  # idempotent; waits until HTTP answers
    sim = simulacron_node.Simulacron(info.url)
    cluster = sim.create_cluster(nodes=1)          # simulated nodes on 127.0.0.1:19242, ...
    cluster.prime("SELECT v FROM t WHERE k = 1", simulacron_node.read_timeout(delay_ms=50))
    cluster.query_log(); cluster.clear_primes(); cluster.close_connections(); cluster.delete()
    simulacron_node.stop()

Facts checked against simulacron-standalone 0.12.0 and cassandra-driver 3.30.1:

* The simulated nodes speak protocol v3 and v4 (Cassandra 3.0.12 by default): connect with
  ``protocol_version=4``.
* Without ``--starting-port`` every simulated node listens on port 9042 of its own address
  (127.0.0.1, .2, ...): that is the real node's port, so this module always passes
  ``--starting-port`` (nodes then share one address and take consecutive ports).
* A ``success`` result must declare at least one column: a rows result with no column makes the
  driver's Cython row parser fail (``ValueError: Invalid shape in axis 0: 0``) and defunct the
  connection. :func:`success` therefore always declares one.
* A prepared statement needs a prime with ``param_types``, whose names become the bind markers
  the PREPARE answer declares; ``params`` then select one binding. Types are Simulacron's names:
  ``varchar``, not ``text`` (with ``text`` the PREPARE is never answered and the driver times
  out).
* Primes match in the order they were made and the first match wins; priming the same query again
  does not replace it. Prime specific bindings (``params``) before a catch-all, and
  :meth:`SimCluster.clear_primes` to start over.
* An EXECUTE that matches no prime is not answered (client timeout); an unprimed QUERY gets an
  empty result. Prime every statement a test runs.

Environment:
    RXCQL_CACHE_DIR: where the jar goes (default ``~/.cache/rxcql``).
    RXCQL_SIMULACRON_URL: admin URL of a Simulacron already running (e.g.
        ``http://127.0.0.1:18187``); the tests then use it and start nothing.
    RXCQL_SIMULACRON_ARTIFACT: ``group:artifact:version`` to use instead of the list below.
    JAVA17_HOME, JAVA_HOME: as for ``cassandra_node``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cassandra_node

__all__ = [
    "ARTIFACTS",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_NATIVE_PORT",
    "URL_ENV",
    "LoggedQuery",
    "SimCluster",
    "Simulacron",
    "SimulacronError",
    "SimulacronInfo",
    "close_connection",
    "cluster",
    "ensure_jar",
    "error",
    "is_bootstrapping",
    "is_running",
    "main",
    "no_result",
    "overloaded",
    "read_failure",
    "read_timeout",
    "server_error",
    "start",
    "stop",
    "stop_at_exit",
    "success",
    "unavailable",
    "url_from_env",
    "write_failure",
    "write_timeout",
]

#: ``(group, artifact, version)``, in order of preference: the first Maven resolves is used.
#: ScyllaDB's fork was looked for as ``com.scylladb.oss.simulacron:simulacron-standalone``
#: 0.14.0.0 and 0.13.0.0: Maven Central has neither (jar nor pom), so it is not listed; pin any
#: other build with ``RXCQL_SIMULACRON_ARTIFACT``.
ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("com.datastax.oss.simulacron", "simulacron-standalone", "0.12.0"),
)
HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 18187
#: First CQL port of the simulated nodes (never 9042: the real node's).
DEFAULT_NATIVE_PORT = 19242
DEFAULT_WAIT_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
URL_ENV = "RXCQL_SIMULACRON_URL"
ARTIFACT_ENV = "RXCQL_SIMULACRON_ARTIFACT"

_MAIN_MARKER = b"simulacron-standalone"
_COMPLETE_MARKER = ".complete"

Echo = Callable[[str], None]
Json = Any


class SimulacronError(RuntimeError):
    """Simulacron could not be obtained, started or reached, or refused a request."""


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
        jar: The jar that runs (``None`` when not started by this module).
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


def url_from_env() -> str | None:
    """The admin URL in ``RXCQL_SIMULACRON_URL``, or ``None`` when unset or empty."""
    value = os.environ.get(URL_ENV, "").strip()
    return value.rstrip("/") if value else None


def _default_echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The jar from Maven Central


def _parse_artifact(value: str) -> tuple[str, str, str]:
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise SimulacronError(f"{ARTIFACT_ENV} must be group:artifact:version, got {value!r}")
    return parts[0], parts[1], parts[2]


def _jar_dir(group: str, version: str) -> Path:
    vendor = group.split(".")[1] if group.count(".") >= 1 else group
    return cassandra_node._cache_root() / f"simulacron-{vendor}-{version}"


def _maven_copy(group: str, artifact: str, version: str) -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SimulacronError("Maven (mvn) is not on PATH; it is needed once to fetch the jar")
    target = _jar_dir(group, version)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "dependency:copy",
        f"-Dartifact={group}:{artifact}:{version}",
        f"-DoutputDirectory={partial}",
    ]
    env = dict(os.environ)
    java17 = cassandra_node._java17_or_none()
    if java17 is not None:
        env.setdefault("JAVA_HOME", str(java17))
    # dependency:copy needs no project; run it where no pom.xml can be picked up by accident.
    result = subprocess.run(
        command, cwd=partial, env=env, capture_output=True, text=True, check=False
    )
    jars = sorted(partial.glob("*.jar"))
    if result.returncode != 0 or not jars:
        shutil.rmtree(partial, ignore_errors=True)
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        lines = text.strip().splitlines()
        errors = [line for line in lines if line.startswith("[ERROR]") and len(line) > 12]
        detail = (errors or lines or ["(no output)"])[0].removeprefix("[ERROR] ")
        raise SimulacronError(f"mvn could not fetch {group}:{artifact}:{version}: {detail}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    (target / _COMPLETE_MARKER).write_text(f"{group}:{artifact}:{version}\n", encoding="utf-8")
    return target / jars[0].name


def _cached_jar(group: str, artifact: str, version: str) -> Path | None:
    directory = _jar_dir(group, version)
    jar = directory / f"{artifact}-{version}.jar"
    if (directory / _COMPLETE_MARKER).is_file() and jar.is_file():
        return jar
    return None


def ensure_jar(
    artifact: str | None = None, echo: Echo = _default_echo
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
    with cassandra_node._locked(cassandra_node._cache_root() / ".simulacron-download.lock"):
        for coords in candidates:
            jar = _cached_jar(*coords)
            if jar is not None:
                return coords, jar
        failures: list[str] = []
        for coords in candidates:
            echo(f"fetching {':'.join(coords)} with Maven ...")
            began = time.monotonic()
            try:
                jar = _maven_copy(*coords)
            except SimulacronError as error:
                echo(f"  {error}")
                failures.append(str(error))
                continue
            echo(f"  {jar} ({time.monotonic() - began:.1f} s)")
            return coords, jar
    raise SimulacronError("no Simulacron artifact could be fetched:\n" + "\n".join(failures))


# --------------------------------------------------------------------------------------------
# The process


def _run_dir(http_port: int) -> Path:
    return cassandra_node._cache_root() / f"simulacron-run-{http_port}"


def _pid_file(http_port: int) -> Path:
    return _run_dir(http_port) / "simulacron.pid"


def _running_pid(http_port: int) -> int | None:
    try:
        pid = int(_pid_file(http_port).read_text().strip())
    except (OSError, ValueError):
        return None
    child = cassandra_node._children.get(pid)
    if child is not None:
        return pid if child.poll() is None else None
    if not cassandra_node._alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if _MAIN_MARKER in cmdline else None


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/cluster", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def is_running(http_port: int = DEFAULT_HTTP_PORT) -> bool:
    """Whether a Simulacron started by this module (pid file of ``http_port``) is alive."""
    return _running_pid(http_port) is not None


def start(
    http_port: int = DEFAULT_HTTP_PORT,
    *,
    native_port: int = DEFAULT_NATIVE_PORT,
    ip: str = HOST,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    artifact: str | None = None,
    echo: Echo = _default_echo,
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
    run_dir = _run_dir(http_port)
    log_path = run_dir / "simulacron.log"
    url = f"http://{HOST}:{http_port}"
    with cassandra_node._locked(run_dir / ".lock"):
        pid = _running_pid(http_port)
        if pid is not None:
            if not _wait_http(url, pid, wait_timeout):
                raise SimulacronError(f"simulacron pid {pid} is alive but {url} does not answer")
            return SimulacronInfo(url, http_port, native_port, pid, False, 0.0, None, log_path)
        _pid_file(http_port).unlink(missing_ok=True)
        if cassandra_node._accepts_tcp(HOST, http_port):
            raise SimulacronError(
                f"{HOST}:{http_port} is in use by a process this script did not start; use it "
                f"with {URL_ENV}={url} or pick another --http-port"
            )
        try:
            java_home = cassandra_node.find_java17()
        except cassandra_node.CassandraNodeError as error:
            raise SimulacronError(str(error)) from None
        coords, jar = ensure_jar(artifact, echo)
        command = [
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
        (run_dir / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
        echo(f"starting {':'.join(coords)} on {url} (log {log_path})")
        began = time.monotonic()
        child = cassandra_node.launch(command, run_dir, log_path, _pid_file(http_port))
        try:
            if not _wait_http(url, child.pid, wait_timeout):
                exited = child.poll()
                reason = (
                    f"the JVM exited with status {exited}"
                    if exited is not None
                    else f"no answer within {wait_timeout:.0f} s"
                )
                echo(f"--- {log_path} ---\n{cassandra_node._tail(log_path)}---")
                raise SimulacronError(f"simulacron did not start on {url}: {reason}")
        except BaseException:
            cassandra_node._terminate(child.pid, timeout=5.0)
            _pid_file(http_port).unlink(missing_ok=True)
            raise
        elapsed = time.monotonic() - began
        return SimulacronInfo(url, http_port, native_port, child.pid, True, elapsed, jar, log_path)


def _wait_http(url: str, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cassandra_node._alive(pid):
            return False
        if _http_ok(url, timeout=1.0):
            return True
        time.sleep(0.1)
    return False


def stop(http_port: int = DEFAULT_HTTP_PORT, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the Simulacron of ``http_port`` (SIGTERM, SIGKILL after ``timeout`` seconds).

    Returns:
        ``True`` if one was running and has been stopped.
    """
    run_dir = _run_dir(http_port)
    with cassandra_node._locked(run_dir / ".lock"):
        pid = _running_pid(http_port)
        if pid is not None:
            cassandra_node._terminate(pid, timeout)
        _pid_file(http_port).unlink(missing_ok=True)
    return pid is not None


def stop_at_exit(http_port: int) -> None:
    """Register an ``atexit`` guard that stops the Simulacron of ``http_port``."""
    atexit.register(_stop_quietly, http_port)


def _stop_quietly(http_port: int) -> None:
    with contextlib.suppress(Exception):
        stop(http_port)


# --------------------------------------------------------------------------------------------
# What a prime answers ("then"): builders for the admin API's result objects


def success(
    rows: Sequence[Mapping[str, Any]] = (),
    column_types: Mapping[str, str] | None = None,
    *,
    delay_ms: int = 0,
) -> dict[str, Json]:
    """A rows result. ``column_types`` maps column name to CQL type (default ``{"ok": "int"}``:
    at least one column is needed, see the module docstring); each row maps column to value."""
    types = dict(column_types) if column_types else {"ok": "int"}
    return {
        "result": "success",
        "delay_in_ms": delay_ms,
        "rows": [dict(row) for row in rows],
        "column_types": types,
    }


def read_timeout(
    *,
    consistency: str = "ONE",
    received: int = 0,
    block_for: int = 1,
    data_present: bool = False,
    delay_ms: int = 0,
) -> dict[str, Json]:
    """A read timeout (the driver raises :class:`cassandra.ReadTimeout`)."""
    return {
        "result": "read_timeout",
        "delay_in_ms": delay_ms,
        "consistency_level": consistency,
        "received": received,
        "block_for": block_for,
        "data_present": data_present,
    }


def write_timeout(
    *,
    consistency: str = "ONE",
    received: int = 0,
    block_for: int = 1,
    write_type: str = "SIMPLE",
    delay_ms: int = 0,
) -> dict[str, Json]:
    """A write timeout (the driver raises :class:`cassandra.WriteTimeout`)."""
    return {
        "result": "write_timeout",
        "delay_in_ms": delay_ms,
        "consistency_level": consistency,
        "received": received,
        "block_for": block_for,
        "write_type": write_type,
    }


def unavailable(
    *, consistency: str = "ONE", alive: int = 0, required: int = 1, delay_ms: int = 0
) -> dict[str, Json]:
    """Not enough replicas alive (the driver raises :class:`cassandra.Unavailable`)."""
    return {
        "result": "unavailable",
        "delay_in_ms": delay_ms,
        "consistency_level": consistency,
        "alive": alive,
        "required": required,
    }


def read_failure(
    *, consistency: str = "ONE", received: int = 0, block_for: int = 1, delay_ms: int = 0
) -> dict[str, Json]:
    """A replica failed a read (the driver raises :class:`cassandra.ReadFailure`)."""
    return {
        "result": "read_failure",
        "delay_in_ms": delay_ms,
        "consistency_level": consistency,
        "received": received,
        "block_for": block_for,
        "failure_reasons": {},
        "data_present": False,
    }


def write_failure(
    *,
    consistency: str = "ONE",
    received: int = 0,
    block_for: int = 1,
    write_type: str = "SIMPLE",
    delay_ms: int = 0,
) -> dict[str, Json]:
    """A replica failed a write (the driver raises :class:`cassandra.WriteFailure`)."""
    return {
        "result": "write_failure",
        "delay_in_ms": delay_ms,
        "consistency_level": consistency,
        "received": received,
        "block_for": block_for,
        "failure_reasons": {},
        "write_type": write_type,
    }


def overloaded(message: str = "overloaded (simulated)", *, delay_ms: int = 0) -> dict[str, Json]:
    """Coordinator overloaded (the driver raises ``cassandra.protocol.OverloadedErrorMessage``)."""
    return {"result": "overloaded", "delay_in_ms": delay_ms, "message": message}


def server_error(
    message: str = "server error (simulated)", *, delay_ms: int = 0
) -> dict[str, Json]:
    """A server error (the driver raises ``cassandra.protocol.ServerError``)."""
    return {"result": "server_error", "delay_in_ms": delay_ms, "message": message}


def is_bootstrapping(*, delay_ms: int = 0) -> dict[str, Json]:
    """Coordinator bootstrapping (``cassandra.protocol.IsBootstrappingErrorMessage``)."""
    return {"result": "is_bootstrapping", "delay_in_ms": delay_ms}


def error(result: str, *, delay_ms: int = 0, **fields: Any) -> dict[str, Json]:
    """Any error result by Simulacron's name, with its fields (see its swagger.yaml).

    Example: ``error("invalid", message="no such table")``, ``error("syntax_error",
    message="...")``, ``error("unauthorized", message="...")``, ``error("already_exists",
    message="...", keyspace="ks", table="t")``, ``error("truncate_error", message="...")``.
    """
    return {"result": result, "delay_in_ms": delay_ms, **fields}


def close_connection(
    *, scope: str = "connection", close_type: str = "disconnect", delay_ms: int = 0
) -> dict[str, Json]:
    """Close the client connection(s) instead of answering.

    Args:
        scope: ``connection`` (the one the query came on), ``node``, ``data_center`` or
            ``cluster``.
        close_type: ``disconnect``, ``shutdown_read`` or ``shutdown_write``.
        delay_ms: Wait this long first.
    """
    return {
        "result": "close_connection",
        "delay_in_ms": delay_ms,
        "scope": scope,
        "close_type": close_type,
    }


def no_result(*, delay_ms: int = 0) -> dict[str, Json]:
    """Never answer (the driver's request timeout then fires: ``OperationTimedOut``)."""
    return {"result": "no_result", "delay_in_ms": delay_ms}


# --------------------------------------------------------------------------------------------
# The admin API


@dataclass(frozen=True)
class LoggedQuery:
    """One request a simulated node received (its activity log).

    Attributes:
        query: The CQL text (for EXECUTE, the prepared statement's text), or the message type.
        type: ``QUERY``, ``EXECUTE``, ``PREPARE``, ``BATCH``, ``OPTIONS``, ``STARTUP``, ...
        primed: Whether a prime answered it.
        connection: The client's ``address:port``.
        consistency: Consistency level, if any.
        node_id: Id of the simulated node that received it.
        received_ms: Server receive time, ms since the epoch.
    """

    query: str
    type: str
    primed: bool
    connection: str
    consistency: str | None
    node_id: int
    received_ms: int


class Simulacron:
    """Client of a Simulacron admin API (standard library ``urllib`` only).

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:18187``.
        timeout: Seconds per HTTP request.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Json = None,
        query: Mapping[str, Any] | None = None,
    ) -> Json:
        """Send one admin request; return the decoded JSON answer (``None`` when empty).

        Raises:
            SimulacronError: Not reachable, or an HTTP error status (with Simulacron's message).
        """
        target = self.url + path
        if query:
            target += "?" + urllib.parse.urlencode(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}
            )
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            target,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace").strip()
            raise SimulacronError(f"{method} {path} -> HTTP {error.code}: {detail[:500]}") from None
        except OSError as error:
            raise SimulacronError(f"{method} {target} failed: {error}") from None
        if not raw.strip():
            return None
        return json.loads(raw)

    def is_up(self) -> bool:
        """Whether the admin API answers."""
        return _http_ok(self.url)

    def create_cluster(
        self,
        nodes: int | Sequence[int] = 1,
        *,
        name: str | None = None,
        cassandra_version: str | None = None,
        activity_log: bool = True,
    ) -> SimCluster:
        """Provision a simulated cluster.

        Args:
            nodes: Nodes of a single data center, or one count per data center.
            name: Cluster name (Simulacron's default is ``cluster<id>``).
            cassandra_version: The version the nodes report (default 3.0.12: protocol v3-v4).
            activity_log: Keep a log of received requests (:meth:`SimCluster.query_log`).
        """
        counts = [nodes] if isinstance(nodes, int) else list(nodes)
        query: dict[str, Any] = {
            "data_centers": ",".join(str(n) for n in counts),
            "activity_log": activity_log,
        }
        if name is not None:
            query["name"] = name
        if cassandra_version is not None:
            query["cassandra_version"] = cassandra_version
        return SimCluster._from_json(self, self.request("POST", "/cluster", query=query))

    def clusters(self) -> list[SimCluster]:
        """Every cluster Simulacron has."""
        answer = self.request("GET", "/cluster")
        return [SimCluster._from_json(self, item) for item in answer or []]

    def delete_all_clusters(self) -> None:
        """Remove every cluster (their listening ports are released)."""
        self.request("DELETE", "/cluster")


@dataclass
class SimCluster:
    """A simulated cluster; its methods call the admin API.

    Attributes:
        sim: The admin API client.
        id: Simulacron's id for it.
        name: Its name.
        contact_points: ``(host, port)`` of every node, for ``cassandra.cluster.Cluster``.
    """

    sim: Simulacron
    id: int
    name: str
    contact_points: list[tuple[str, int]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, sim: Simulacron, data: Json) -> SimCluster:
        points: list[tuple[str, int]] = []
        for dc in data.get("data_centers", []):
            for node in dc.get("nodes", []):
                host, _, port = str(node["address"]).rpartition(":")
                points.append((host.lstrip("/"), int(port)))
        return cls(sim, int(data["id"]), str(data["name"]), points)

    def prime(
        self,
        query: str,
        then: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        param_types: Mapping[str, str] | None = None,
        consistency: Sequence[str] | None = None,
        ignore_on_prepare: bool | None = None,
    ) -> None:
        """Make every node answer ``query`` with ``then`` (see :func:`success` and friends).

        Args:
            query: The exact CQL text (the driver binds a ``SimpleStatement``'s parameters
                client-side, so match the text with the values in it).
            then: What to answer.
            params: Match only these bound values (prepared statements; names as in
                ``param_types``).
            param_types: Bind marker name to CQL type: what a PREPARE of ``query`` declares.
            consistency: Match only these consistency levels.
            ignore_on_prepare: ``False`` applies an error prime to PREPARE as well.
        """
        when: dict[str, Any] = {"query": query}
        if params is not None:
            when["params"] = dict(params)
        if param_types is not None:
            when["param_types"] = dict(param_types)
        if consistency is not None:
            when["consistency_level"] = list(consistency)
        answer = dict(then)
        if ignore_on_prepare is not None:
            answer["ignore_on_prepare"] = ignore_on_prepare
        self.sim.request("POST", f"/prime/{self.id}", {"when": when, "then": answer})

    def clear_primes(self) -> None:
        """Forget every prime of this cluster."""
        self.sim.request("DELETE", f"/prime/{self.id}")

    def query_log(
        self, *, primed: bool | None = None, types: Sequence[str] | None = None
    ) -> list[LoggedQuery]:
        """Requests the nodes received, oldest first per node.

        Args:
            primed: ``True``: only those a prime answered; ``False``: only the others.
            types: Keep only these message types (e.g. ``("QUERY", "EXECUTE")``).
        """
        query = None if primed is None else {"filter": "primed" if primed else "nonprimed"}
        report = self.sim.request("GET", f"/log/{self.id}", query=query) or {}
        entries: list[LoggedQuery] = []
        for dc in report.get("data_centers", []):
            for node in dc.get("nodes", []):
                for item in node.get("queries", []):
                    kind = str(item.get("type", ""))
                    if types is not None and kind not in types:
                        continue
                    entries.append(
                        LoggedQuery(
                            query=str(item.get("query", "")),
                            type=kind,
                            primed=bool(item.get("primed", False)),
                            connection=str(item.get("connection", "")),
                            consistency=item.get("consistency_level"),
                            node_id=int(node.get("id", 0)),
                            received_ms=int(item.get("received_timestamp") or 0),
                        )
                    )
        return entries

    def clear_log(self) -> None:
        """Empty the activity log."""
        self.sim.request("DELETE", f"/log/{self.id}")

    def connections(self) -> list[str]:
        """``address:port`` of every client connection to any node."""
        report = self.sim.request("GET", f"/connections/{self.id}") or {}
        return [
            str(connection)
            for dc in report.get("data_centers", [])
            for node in dc.get("nodes", [])
            for connection in node.get("connections", [])
        ]

    def close_connections(self, close_type: str = "disconnect") -> list[str]:
        """Close every client connection now (``disconnect``, ``shutdown_read`` or
        ``shutdown_write``); returns the connections closed."""
        report = (
            self.sim.request("DELETE", f"/connections/{self.id}", query={"type": close_type}) or {}
        )
        return [
            str(connection)
            for dc in report.get("data_centers", [])
            for node in dc.get("nodes", [])
            for connection in node.get("connections", [])
        ]

    def pause_reads(self) -> None:
        """Stop reading from client connections: requests pile up unanswered."""
        self.sim.request("PUT", f"/pause-reads/{self.id}")

    def resume_reads(self) -> None:
        """Undo :meth:`pause_reads`."""
        self.sim.request("DELETE", f"/pause-reads/{self.id}")

    def reject_connections(self, reject_type: str = "unbind", after: int = 0) -> None:
        """Stop accepting connections (``unbind``, ``stop`` or ``reject_startup``)."""
        self.sim.request(
            "DELETE", f"/listener/{self.id}", query={"type": reject_type, "after": after}
        )

    def accept_connections(self) -> None:
        """Undo :meth:`reject_connections`."""
        self.sim.request("PUT", f"/listener/{self.id}")

    def delete(self) -> None:
        """Remove the cluster; its ports are released and its connections closed."""
        self.sim.request("DELETE", f"/cluster/{self.id}")


@contextlib.contextmanager
def cluster(sim: Simulacron, nodes: int = 1, **options: Any) -> Iterator[SimCluster]:
    """``with cluster(sim) as c:``: a cluster deleted on exit."""
    created = sim.create_cluster(nodes, **options)
    try:
        yield created
    finally:
        with contextlib.suppress(SimulacronError):
            created.delete()


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulacron", description="Run Simulacron (CQL protocol simulator) for rxcql's tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start Simulacron (idempotent) and wait until its admin API answers"),
        ("stop", "stop it"),
        ("status", "exit 0 if it is running and its admin API answers, else 1"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--http-port",
            type=int,
            default=DEFAULT_HTTP_PORT,
            help=f"admin API port ({DEFAULT_HTTP_PORT})",
        )
        if name == "start":
            sub.add_argument(
                "--native-port",
                type=int,
                default=DEFAULT_NATIVE_PORT,
                help=f"first CQL port of simulated nodes ({DEFAULT_NATIVE_PORT})",
            )
            sub.add_argument(
                "--wait-timeout",
                type=float,
                default=DEFAULT_WAIT_TIMEOUT,
                help=f"seconds to wait ({DEFAULT_WAIT_TIMEOUT:.0f})",
            )
            sub.add_argument("--artifact", help="group:artifact:version to run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    http_port: int = args.http_port
    url = f"http://{HOST}:{http_port}"
    try:
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
        pid = _running_pid(http_port)
        if pid is None:
            print(f"simulacron not running on {url}")
            return 1
        if not _http_ok(url):
            print(f"simulacron pid {pid} alive but {url} does not answer (starting?)")
            return 1
        print(f"simulacron running on {url} (pid {pid})")
        return 0
    except SimulacronError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
