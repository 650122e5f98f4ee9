"""Run one local Apache Cassandra 5.0 node for rxcql's tests, CI, examples and benchmarks.

The server is ``org.apache.cassandra:cassandra-all`` 5.0.x from Maven Central with its runtime
dependencies, collected once with Maven into a cache directory outside the repository, and run on
OpenJDK 17 (Cassandra 5.0 does not run on Java 24+, which removed ``System.setSecurityManager``)
with ``org.apache.cassandra.service.CassandraDaemon``, a cassandra.yaml and a logback.xml that this
module writes, and the JVM flags of Cassandra's ``conf/jvm17-server.options``.

Command line (through the ``scripts/cassandra`` shim)::

    scripts/cassandra start [--port 9042] [--wait-timeout 180] [--keep-data]
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

Only the standard library is used. The cassandra driver is optional: when it can be imported,
readiness means ``SELECT release_version FROM system.local`` answers; otherwise it means the
``Startup complete`` log line plus an accepted TCP connection.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CASSANDRA_VERSIONS",
    "CONTACT_POINTS_ENV",
    "DEFAULT_PORT",
    "DEFAULT_WAIT_TIMEOUT",
    "CassandraNodeError",
    "NodeInfo",
    "contact_points_from_env",
    "ensure_server_jars",
    "find_java17",
    "is_running",
    "main",
    "parse_contact_points",
    "probe_cql",
    "start",
    "stop",
    "stop_at_exit",
]

#: Newest first: the first one Maven resolves is used.
CASSANDRA_VERSIONS = tuple(f"5.0.{patch}" for patch in range(8, -1, -1))
DEFAULT_PORT = 9042
DEFAULT_WAIT_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
HOST = "127.0.0.1"
CONTACT_POINTS_ENV = "RXCQL_CONTACT_POINTS"
LOG_TAIL_LINES = 60

_MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
_COMPLETE_MARKER = ".complete"
_STARTUP_COMPLETE = "Startup complete"

Echo = Callable[[str], None]


class CassandraNodeError(RuntimeError):
    """The node could not be obtained, started or reached."""


@dataclass(frozen=True)
class NodeInfo:
    """A node that answers CQL.

    Attributes:
        host: Address CQL listens on.
        port: CQL (native transport) port.
        version: ``release_version`` the server reports.
        pid: JVM process id, or ``None`` when the node is not one this module started.
        started: ``True`` when this call started the JVM, ``False`` when it was already running.
        startup_seconds: Time from launching the JVM until CQL answered (0 when already running).
        node_dir: Directory holding the node's data, pid file and log.
        log_path: The server log (JVM stdout and stderr, logback output included).
    """

    host: str
    port: int
    version: str
    pid: int | None
    started: bool
    startup_seconds: float
    node_dir: Path
    log_path: Path


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
# Paths and locks


def _cache_root() -> Path:
    configured = os.environ.get("RXCQL_CACHE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "rxcql").resolve()


def _node_dir(port: int) -> Path:
    configured = os.environ.get("RXCQL_NODE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return _cache_root() / f"node-{port}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock file, so two processes never download or start the same thing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _default_echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Server jars from Maven Central

_POM_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rxcql.local</groupId>
  <artifactId>cassandra-server-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def _lib_dir(version: str) -> Path:
    return _cache_root() / f"cassandra-{version}" / "lib"


def _cached_version(versions: Sequence[str]) -> str | None:
    for version in versions:
        if (_lib_dir(version) / _COMPLETE_MARKER).is_file():
            return version
    return None


def _maven_copy_dependencies(version: str) -> Path:
    """Resolve cassandra-all ``version`` and its runtime dependencies into the cache."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise CassandraNodeError("Maven (mvn) is not on PATH; it is needed once to fetch the jars")
    lib = _lib_dir(version)
    work = lib.parent
    partial = work / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    pom.write_text(_POM_TEMPLATE.format(version=version), encoding="utf-8")
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-U",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    env = dict(os.environ)
    java17 = _java17_or_none()
    if java17 is not None:
        env.setdefault("JAVA_HOME", str(java17))
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        if not lib.exists():
            shutil.rmtree(work, ignore_errors=True)
        # Maven emits colour resets even in batch mode.
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        output = text.strip().splitlines()
        errors = [line for line in output if line.startswith("[ERROR]") and len(line) > 12]
        detail = (errors or output or ["(no output)"])[0].removeprefix("[ERROR] ")
        raise CassandraNodeError(f"mvn could not resolve cassandra-all {version}: {detail}")
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
    jars = sorted(lib.glob("*.jar"))
    # The marker is written last: a download cut short leaves no marker and is redone.
    (lib / _COMPLETE_MARKER).write_text(f"{len(jars)} jars\n", encoding="utf-8")
    return lib


def ensure_server_jars(version: str | None = None, echo: Echo = _default_echo) -> tuple[str, Path]:
    """Return ``(version, lib_dir)`` with the server classpath, downloading it when not cached.

    Args:
        version: A 5.0.x version to use. ``None`` takes ``RXCQL_CASSANDRA_VERSION`` if set, else
            the newest cached version, else the newest one Maven resolves.
        echo: Receives progress messages.

    Raises:
        CassandraNodeError: No version could be resolved.
    """
    version = version or os.environ.get("RXCQL_CASSANDRA_VERSION") or None
    candidates = (version,) if version else CASSANDRA_VERSIONS
    with _locked(_cache_root() / ".download.lock"):
        cached = _cached_version(candidates)
        if cached is not None:
            return cached, _lib_dir(cached)
        failures: list[str] = []
        for candidate in candidates:
            echo(f"fetching cassandra-all {candidate} and its runtime dependencies with Maven ...")
            began = time.monotonic()
            try:
                lib = _maven_copy_dependencies(candidate)
            except CassandraNodeError as error:
                echo(f"  {error}")
                failures.append(str(error))
                continue
            count = len(list(lib.glob("*.jar")))
            echo(f"  {count} jars in {lib} ({time.monotonic() - began:.1f} s)")
            return candidate, lib
    raise CassandraNodeError("no cassandra-all version resolved:\n" + "\n".join(failures))


# --------------------------------------------------------------------------------------------
# Java 17


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if release.is_file():
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
        if match:
            return int(match.group(1))
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else None


def _java17_or_none() -> Path | None:
    candidates: list[Path] = []
    for variable in ("JAVA17_HOME", "JAVA_HOME"):
        value = os.environ.get(variable)
        if value:
            candidates.append(Path(value))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        homes = sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink())
        candidates.extend(sorted(homes, key=lambda p: "17" not in p.name))
    for home in candidates:
        if (home / "bin" / "java").is_file() and _java_major(home) == 17:
            return home
    return None


def find_java17() -> Path:
    """Return the home of a JDK 17: ``JAVA17_HOME``, ``JAVA_HOME`` if it is 17, or /usr/lib/jvm.

    Raises:
        CassandraNodeError: No Java 17 was found.
    """
    home = _java17_or_none()
    if home is None:
        raise CassandraNodeError(
            "no Java 17 found (Cassandra 5.0 needs 17; 24+ cannot run it): set JAVA17_HOME"
        )
    return home


# --------------------------------------------------------------------------------------------
# Configuration files

_LOGBACK_XML = """<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{0} - %msg%n</pattern>
    </encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
"""


def _cassandra_yaml(
    port: int,
    storage_port: int,
    data: Path,
    *,
    host: str = HOST,
    seeds: str | None = None,
    cluster_name: str = "rxcql-test",
    initial_token: str = "0",
    auto_bootstrap: bool = True,
) -> str:
    """cassandra.yaml of a test node; the keyword arguments serve multi-node clusters
    (scripts/cassandra_cluster.py): its address, the seeds (``host:storage_port,...``, default
    itself), its token, and ``auto_bootstrap: false`` for nodes joining an empty cluster."""
    extra = "" if auto_bootstrap else "auto_bootstrap: false\n"
    return f"""# Written by scripts/cassandra_node.py for a throwaway test node.
cluster_name: {cluster_name}
num_tokens: 1
initial_token: {initial_token}
{extra}partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seeds or f"{host}:{storage_port}"}"
listen_address: {host}
rpc_address: {host}
storage_port: {storage_port}
native_transport_port: {port}
start_native_transport: true
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 5MiB
memtable_allocation_type: heap_buffers
auto_snapshot: false
storage_compatibility_mode: NONE
data_file_directories:
  - {data / "data"}
commitlog_directory: {data / "commitlog"}
saved_caches_directory: {data / "saved_caches"}
hints_directory: {data / "hints"}
cdc_raw_directory: {data / "cdc_raw"}
"""


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


# JVM flags of Cassandra 5.0's conf/jvm-server.options and conf/jvm17-server.options, plus what
# bin/cassandra.in.sh adds on a Java 17 JDK. AlwaysPreTouch is left out: it costs seconds.
_JVM_SERVER_OPTIONS = (
    "-ea",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
)
_JVM17_GC_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)
_ADD_EXPORTS = (
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.management/com.sun.jmx.remote.security",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
)
_ADD_OPENS = (
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "java.base/java.lang",
    "java.base/java.util",
    "java.base/java.nio",
)
_JDK_ONLY_OPTIONS = (
    "--add-exports",
    "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-exports",
    "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-opens",
    "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
)


def _jvm_command(
    java_home: Path,
    lib: Path,
    node_dir: Path,
    heap: str,
    *,
    initial_token: str = "0",
    jmx_port: int | None = None,
) -> list[str]:
    """The JVM command line of a node. ``jmx_port`` enables local JMX on that port (off by
    default, as for the single node; several nodes on one machine need distinct ports)."""
    jamm = sorted(lib.glob("jamm-*.jar"))
    if not jamm:
        raise CassandraNodeError(f"no jamm jar in {lib}; delete {lib.parent} to fetch again")
    command = [str(java_home / "bin" / "java"), *_JVM_SERVER_OPTIONS, *_JVM17_GC_OPTIONS]
    for module in _ADD_EXPORTS:
        command += ["--add-exports", f"{module}=ALL-UNNAMED"]
    for module in _ADD_OPENS:
        command += ["--add-opens", f"{module}=ALL-UNNAMED"]
    if (java_home / "bin" / "javac").is_file():
        command += _JDK_ONLY_OPTIONS
    command += [
        f"-Xms{heap}",
        f"-Xmx{heap}",
        f"-XX:ErrorFile={node_dir / 'hs_err_pid%p.log'}",
        "-XX:+ExitOnOutOfMemoryError",
        f"-javaagent:{jamm[-1]}",
        f"-Dcassandra.config={(node_dir / 'cassandra.yaml').as_uri()}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.storagedir={node_dir / 'data'}",
        f"-Dcassandra.logdir={node_dir / 'logs'}",
        f"-Dlogback.configurationFile={node_dir / 'logback.xml'}",
        f"-Djava.io.tmpdir={node_dir / 'tmp'}",
        *([f"-Dcassandra.jmx.local.port={jmx_port}"] if jmx_port is not None else []),
        # Fast start of a throwaway node.
        f"-Dcassandra.initial_token={initial_token}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.unsafesystem=true",
        "-Dcassandra.test.flush_local_schema_changes=false",
        "-cp",
        f"{lib}/*",
        _MAIN_CLASS,
    ]
    return command


# --------------------------------------------------------------------------------------------
# Processes

# Popen objects of JVMs started by this process, kept so they are reaped (no zombies, no
# ResourceWarning from a collected Popen whose child still runs).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _pid_file(port: int) -> Path:
    return _node_dir(port) / "cassandra.pid"


def _read_pid(port: int) -> int | None:
    try:
        return int(_pid_file(port).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _is_cassandra(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a CassandraDaemon JVM."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _alive(pid)
    return _MAIN_CLASS.encode() in cmdline


def _running_pid(port: int) -> int | None:
    pid = _read_pid(port)
    if pid is not None and _alive(pid) and _is_cassandra(pid):
        return pid
    return None


def _accepts_tcp(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_cql(host: str = HOST, port: int = DEFAULT_PORT, timeout: float = 10.0) -> str | None:
    """Return the server's ``release_version`` over CQL, or ``None`` if it does not answer.

    Needs the cassandra driver; without it, returns ``""`` when the port accepts connections.
    """
    if not _accepts_tcp(host, port):
        return None
    try:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy
    except ImportError:
        return ""
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=timeout)
    cluster = Cluster(
        contact_points=[(host, port)],
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout,
        control_connection_timeout=timeout,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        return str(row.release_version)
    except Exception:
        return None
    finally:
        cluster.shutdown()


def _driver_available() -> bool:
    try:
        import cassandra.cluster  # noqa: F401
    except ImportError:
        return False
    return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES, width: int = 400) -> str:
    """Last ``lines`` lines of ``path``, each cut to ``width`` characters (the classpath line)."""
    try:
        with path.open(errors="replace") as handle:
            last = deque(handle, maxlen=lines)
    except OSError:
        return f"(no log at {path})\n"
    return "".join(line if len(line) <= width else line[:width] + " [...]\n" for line in last)


def _version_from_log(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    match = re.search(r"Cassandra version: (\S+)", text)
    return match.group(1) if match else ""


def launch(
    command: Sequence[str], cwd: Path, log_path: Path, pid_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own with its output in ``log_path``; its pid goes to
    ``pid_file`` and the Popen is kept for reaping (see ``_children``)."""
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[child.pid] = child
    pid_file.write_text(f"{child.pid}\n", encoding="utf-8")
    return child


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL and wait again."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _alive(pid):
            break
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _wait_ready(
    pid: int,
    port: int,
    log_path: Path,
    timeout: float,
    use_driver: bool,
    *,
    host: str = HOST,
) -> str | None:
    """Wait until CQL answers on ``host:port``; ``None`` if the JVM exited or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return None
        if _accepts_tcp(host, port, timeout=0.5):
            if use_driver:
                version = probe_cql(host, port, timeout=min(10.0, deadline - time.monotonic()))
                if version:
                    return version
            elif _STARTUP_COMPLETE in log_path.read_text(errors="replace"):
                return _version_from_log(log_path) or "unknown"
        time.sleep(0.25)
    return None


# --------------------------------------------------------------------------------------------
# Public operations


def is_running(port: int = DEFAULT_PORT) -> bool:
    """Whether a node started by this module (pid file of ``port``) is alive."""
    return _running_pid(port) is not None


def start(
    port: int = DEFAULT_PORT,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    keep_data: bool = False,
    version: str | None = None,
    heap: str = "1g",
    echo: Echo = _default_echo,
) -> NodeInfo:
    """Start a node on ``127.0.0.1:port`` and wait until it answers CQL.

    Idempotent: a node of this module already running on ``port`` is waited for and reused.

    Args:
        port: CQL port. The storage port is derived (7000 for 9042) or any free one.
        wait_timeout: Seconds to wait for CQL after the JVM is launched.
        keep_data: Keep the data of an earlier run instead of starting empty.
        version: Pin a cassandra-all 5.0.x version (see :func:`ensure_server_jars`).
        heap: ``-Xms``/``-Xmx`` value.
        echo: Receives progress messages.

    Returns:
        The running node.

    Raises:
        CassandraNodeError: No Java 17, no jars, the port is taken by something else, or the
            node did not come up in time (the JVM is then killed; ``echo`` gets the log tail).
    """
    node_dir = _node_dir(port)
    log_path = node_dir / "cassandra.log"
    with _locked(node_dir / ".lock"):
        pid = _running_pid(port)
        if pid is not None:
            version_found = _wait_ready(pid, port, log_path, wait_timeout, _driver_available())
            if version_found is None:
                raise CassandraNodeError(
                    f"cassandra pid {pid} on {HOST}:{port} is alive but does not answer; "
                    f"see {log_path} or run stop"
                )
            return NodeInfo(HOST, port, version_found, pid, False, 0.0, node_dir, log_path)
        _pid_file(port).unlink(missing_ok=True)
        if _accepts_tcp(HOST, port):
            raise CassandraNodeError(
                f"{HOST}:{port} is in use by a process this script did not start; use it with "
                f"{CONTACT_POINTS_ENV}={HOST}:{port} or pick another --port"
            )
        java_home = find_java17()
        resolved, lib = ensure_server_jars(version, echo)
        return _launch(
            port, node_dir, log_path, java_home, resolved, lib, wait_timeout, keep_data, heap, echo
        )


def _launch(
    port: int,
    node_dir: Path,
    log_path: Path,
    java_home: Path,
    version: str,
    lib: Path,
    wait_timeout: float,
    keep_data: bool,
    heap: str,
    echo: Echo,
) -> NodeInfo:
    data = node_dir / "data"
    if not keep_data:
        shutil.rmtree(data, ignore_errors=True)
    for sub in ("data", "logs", "tmp"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    storage_port = _pick_storage_port(port)
    (node_dir / "cassandra.yaml").write_text(
        _cassandra_yaml(port, storage_port, data), encoding="utf-8"
    )
    (node_dir / "logback.xml").write_text(_LOGBACK_XML, encoding="utf-8")
    command = _jvm_command(java_home, lib, node_dir, heap)
    (node_dir / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
    echo(f"starting cassandra {version} on {HOST}:{port} (Java {java_home}, log {log_path})")
    began = time.monotonic()
    child = launch(command, node_dir, log_path, _pid_file(port))
    try:
        found = _wait_ready(child.pid, port, log_path, wait_timeout, _driver_available())
        if found is None:
            exited = child.poll()
            reason = (
                f"the JVM exited with status {exited}"
                if exited is not None
                else f"no CQL answer within {wait_timeout:.0f} s"
            )
            echo(f"--- last {LOG_TAIL_LINES} lines of {log_path} ---\n{_tail(log_path)}---")
            raise CassandraNodeError(
                f"cassandra {version} did not start on {HOST}:{port}: {reason}"
            )
    except BaseException:
        _terminate(child.pid, timeout=10.0)
        _pid_file(port).unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - began
    return NodeInfo(HOST, port, found, child.pid, True, elapsed, node_dir, log_path)


def stop(port: int = DEFAULT_PORT, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the node of ``port`` (SIGTERM, then SIGKILL after ``timeout`` seconds).

    Returns:
        ``True`` if a node was running and has been stopped.
    """
    node_dir = _node_dir(port)
    with _locked(node_dir / ".lock"):
        pid = _running_pid(port)
        if pid is not None:
            _terminate(pid, timeout)
        _pid_file(port).unlink(missing_ok=True)
    return pid is not None


def stop_at_exit(port: int) -> None:
    """Register an ``atexit`` guard that stops the node of ``port`` if it is still running."""
    atexit.register(_stop_quietly, port)


def _stop_quietly(port: int) -> None:
    with contextlib.suppress(Exception):
        stop(port)


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cassandra", description="Run a local Cassandra 5.0 node for rxcql's tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start a node (idempotent) and wait until CQL answers"),
        ("stop", "stop the node"),
        ("status", "exit 0 if the node is running and accepts CQL connections, else 1"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="CQL port (9042)")
        if name == "start":
            sub.add_argument(
                "--wait-timeout",
                type=float,
                default=DEFAULT_WAIT_TIMEOUT,
                help=f"seconds to wait for CQL ({DEFAULT_WAIT_TIMEOUT:.0f})",
            )
            sub.add_argument("--keep-data", action="store_true", help="do not wipe the data")
            sub.add_argument("--version", help="cassandra-all version (newest 5.0.x)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    port: int = args.port
    try:
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
        pid = _running_pid(port)
        if pid is None:
            print(f"cassandra not running on {HOST}:{port}")
            return 1
        if not _accepts_tcp(HOST, port):
            print(f"cassandra pid {pid} alive but not accepting CQL on {HOST}:{port} (starting?)")
            return 1
        print(f"cassandra running on {HOST}:{port} (pid {pid}, dir {_node_dir(port)})")
        return 0
    except CassandraNodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
