"""A Cassandra 5.0 node from a :class:`NodeSpec`: jars, cassandra.yaml, JVM flags, start and stop.

The server is ``org.apache.cassandra:cassandra-all`` 5.0.x from Maven Central with its runtime
dependencies, collected once with Maven into the cache (:mod:`rxcql_dev.maven`), and run through
the package's JVM launcher (:mod:`rxcql_dev.jvm`) on OpenJDK 17 with
``org.apache.cassandra.service.CassandraDaemon``, a cassandra.yaml and a logback.xml that this
module writes, and the JVM flags of Cassandra's ``conf/jvm17-server.options``.

The single shared node (:mod:`rxcql_dev.cassandra_node`), the nodes of the local cluster and the
scratch nodes of the fault tests (:mod:`rxcql_dev.cassandra_cluster`) are all specs started here.

Environment:
    RXCQL_CASSANDRA_VERSION: pin a version instead of taking the newest 5.0.x that resolves.

With the cassandra driver importable, readiness means ``SELECT release_version FROM
system.local`` answers; otherwise it means the ``Startup complete`` log line plus an accepted TCP
connection.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import maven
from .jvm import (
    HOST,
    Echo,
    JvmProcess,
    Probe,
    ToolError,
    accepts_tcp,
    cache_root,
    default_echo,
    find_java17,
)

__all__ = [
    "CASSANDRA_VERSIONS",
    "STOP_TIMEOUT",
    "CassandraNodeError",
    "NodeInfo",
    "NodeSpec",
    "ensure_server_jars",
    "node_pid",
    "node_process",
    "pause_node",
    "probe_cql",
    "resume_node",
    "start_node",
    "stop_node",
]

#: Newest first: the first one Maven resolves is used.
CASSANDRA_VERSIONS = tuple(f"5.0.{patch}" for patch in range(8, -1, -1))
STOP_TIMEOUT = 60.0

_MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
_STARTUP_COMPLETE = "Startup complete"


class CassandraNodeError(ToolError):
    """The node could not be obtained, started or reached."""


@dataclass(frozen=True)
class NodeInfo:
    """A node that answers CQL.

    Attributes:
        host: Address CQL listens on.
        port: CQL (native transport) port.
        version: ``release_version`` the server reports.
        pid: JVM process id, or ``None`` when the node is not one this package started.
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


@dataclass(frozen=True)
class NodeSpec:
    """Where and how one node runs.

    Attributes:
        name: Short name (``node1``, ``cassandra`` for the single node), used in messages.
        host: Loopback address it listens on (CQL and storage).
        port: CQL port.
        storage_port: Inter-node (gossip) port.
        jmx_port: Local JMX port, or ``None`` for no JMX.
        seeds: ``host:storage_port,...`` of the seeds.
        cluster_name: Nodes join only a cluster of the same name.
        initial_token: Its token, or its tokens (comma-separated, ``num_tokens`` of them).
        node_dir: Its directory (config, data, log, pid file).
        heap: ``-Xms``/``-Xmx``.
        auto_bootstrap: ``False`` (written as ``auto_bootstrap: false``) for nodes of a cluster
            that starts empty: there is nothing to stream.
        extra_yaml: More cassandra.yaml, appended as written (a node with a rate limit, say).
        num_tokens: Tokens (vnodes) of the node; ``initial_token`` lists them.
        jvm_options: More JVM flags (system properties, say), placed before the main class.
    """

    name: str
    host: str
    port: int
    storage_port: int
    jmx_port: int | None
    seeds: str
    cluster_name: str
    initial_token: str
    node_dir: Path
    heap: str = "1g"
    auto_bootstrap: bool = False
    extra_yaml: str = ""
    num_tokens: int = 1
    jvm_options: tuple[str, ...] = ()

    @property
    def process(self) -> JvmProcess:
        return node_process(self.name, self.host, self.port, self.node_dir)

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def pid_file(self) -> Path:
        return self.process.pid_file

    @property
    def contact_point(self) -> tuple[str, int]:
        return (self.host, self.port)


def node_process(name: str, host: str, port: int, node_dir: Path) -> JvmProcess:
    """The JVM of a node, for the launcher: pid file, log and lock in ``node_dir``."""
    return JvmProcess(
        kind="cassandra",
        name=name,
        address=f"{host}:{port}",
        run_dir=node_dir,
        marker=_MAIN_CLASS.encode(),
        error=CassandraNodeError,
        awaited="CQL answer",
    )


# --------------------------------------------------------------------------------------------
# Server jars from Maven Central


def _server_classpath(version: str) -> maven.Fetch:
    return maven.runtime_classpath(
        "org.apache.cassandra",
        "cassandra-all",
        version,
        cache_root() / f"cassandra-{version}" / "lib",
    )


def ensure_server_jars(version: str | None = None, echo: Echo = default_echo) -> tuple[str, Path]:
    """Return ``(version, lib_dir)`` with the server classpath, downloading it when not cached.

    Args:
        version: A 5.0.x version to use. ``None`` takes ``RXCQL_CASSANDRA_VERSION`` if set, else
            the newest cached version, else the newest one Maven resolves.
        echo: Receives progress messages.

    Raises:
        CassandraNodeError: No version could be resolved.
    """
    version = version or os.environ.get("RXCQL_CASSANDRA_VERSION") or None
    versions = (version,) if version else CASSANDRA_VERSIONS
    resolved, fetch = maven.ensure(
        {candidate: _server_classpath(candidate) for candidate in versions},
        lock_name=".download.lock",
        error=CassandraNodeError,
        nothing="no cassandra-all version resolved",
        echo=echo,
    )
    return resolved, fetch.directory


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


def _cassandra_yaml(spec: NodeSpec, data: Path) -> str:
    """cassandra.yaml of a test node (throwaway: periodic commit log, no snapshots)."""
    extra = "" if spec.auto_bootstrap else "auto_bootstrap: false\n"
    return f"""# Written by rxcql_dev.cassandra_server for a throwaway test node.
cluster_name: {spec.cluster_name}
num_tokens: {spec.num_tokens}
initial_token: {spec.initial_token}
{extra}partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{spec.seeds}"
listen_address: {spec.host}
rpc_address: {spec.host}
storage_port: {spec.storage_port}
native_transport_port: {spec.port}
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
{spec.extra_yaml}"""


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


def _jvm_command(java_home: Path, lib: Path, spec: NodeSpec) -> list[str]:
    """The JVM command line of a node. ``spec.jmx_port`` enables local JMX on that port (off for
    the single node; several nodes on one machine need distinct ports)."""
    jamm = sorted(lib.glob("jamm-*.jar"))
    if not jamm:
        raise CassandraNodeError(f"no jamm jar in {lib}; delete {lib.parent} to fetch again")
    node_dir = spec.node_dir
    command = [str(java_home / "bin" / "java"), *_JVM_SERVER_OPTIONS, *_JVM17_GC_OPTIONS]
    for module in _ADD_EXPORTS:
        command += ["--add-exports", f"{module}=ALL-UNNAMED"]
    for module in _ADD_OPENS:
        command += ["--add-opens", f"{module}=ALL-UNNAMED"]
    if (java_home / "bin" / "javac").is_file():
        command += _JDK_ONLY_OPTIONS
    command += [
        f"-Xms{spec.heap}",
        f"-Xmx{spec.heap}",
        f"-XX:ErrorFile={node_dir / 'hs_err_pid%p.log'}",
        "-XX:+ExitOnOutOfMemoryError",
        f"-javaagent:{jamm[-1]}",
        f"-Dcassandra.config={(node_dir / 'cassandra.yaml').as_uri()}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.storagedir={node_dir / 'data'}",
        f"-Dcassandra.logdir={node_dir / 'logs'}",
        f"-Dlogback.configurationFile={node_dir / 'logback.xml'}",
        f"-Djava.io.tmpdir={node_dir / 'tmp'}",
        *([f"-Dcassandra.jmx.local.port={spec.jmx_port}"] if spec.jmx_port is not None else []),
        # Fast start of a throwaway node.
        f"-Dcassandra.initial_token={spec.initial_token}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.unsafesystem=true",
        "-Dcassandra.test.flush_local_schema_changes=false",
        *spec.jvm_options,
        "-cp",
        f"{lib}/*",
        _MAIN_CLASS,
    ]
    return command


# --------------------------------------------------------------------------------------------
# Readiness


def probe_cql(
    host: str = HOST,
    port: int = 9042,
    timeout: float = 10.0,
    *,
    auth: tuple[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> str | None:
    """Return the server's ``release_version`` over CQL, or ``None`` if it does not answer.

    ``auth`` (user, password) logs in with the driver's ``PlainTextAuthProvider``;
    ``ssl_context`` connects over TLS (a node with ``client_encryption_options``).

    Needs the cassandra driver; without it, returns ``""`` when the port accepts connections.
    """
    if not accepts_tcp(host, port):
        return None
    try:
        from cassandra.auth import PlainTextAuthProvider
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
        auth_provider=PlainTextAuthProvider(*auth) if auth is not None else None,
        ssl_context=ssl_context,
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


def _version_from_log(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    match = re.search(r"Cassandra version: (\S+)", text)
    return match.group(1) if match else ""


def _cql_probe(spec: NodeSpec) -> Callable[[float], str | None]:
    """What the launcher asks while a node starts: its version once CQL answers."""
    use_driver = _driver_available()

    def probe(remaining: float) -> str | None:
        if not accepts_tcp(spec.host, spec.port, timeout=0.5):
            return None
        if use_driver:
            return probe_cql(spec.host, spec.port, timeout=min(10.0, remaining)) or None
        if _STARTUP_COMPLETE in spec.log_path.read_text(errors="replace"):
            return _version_from_log(spec.log_path) or "unknown"
        return None

    return probe


# --------------------------------------------------------------------------------------------
# One node


def node_pid(spec: NodeSpec) -> int | None:
    """The pid of the node's JVM if it runs (per its pid file), else ``None``."""
    return spec.process.running_pid()


def start_node(
    spec: NodeSpec,
    *,
    wait_timeout: float = 300.0,
    keep_data: bool = False,
    version: str | None = None,
    in_use_hint: str = "",
    echo: Echo = default_echo,
    probe: Probe | None = None,
) -> NodeInfo:
    """Start one node and wait until it answers CQL. Idempotent (a running node is reused).

    Args:
        spec: The node.
        wait_timeout: Seconds to wait for CQL after the JVM is launched.
        keep_data: Keep the data of an earlier run instead of starting empty.
        version: Pin a cassandra-all 5.0.x version (see :func:`ensure_server_jars`).
        in_use_hint: Appended to the error about a port in use (what to do instead).
        echo: Receives progress messages.
        probe: What readiness means, instead of an anonymous plain-text ``release_version``
            query (a node with authentication and TLS needs a login over TLS); it returns the
            node's version once ready.

    Raises:
        CassandraNodeError: No Java 17 or jars, the address is taken by another process, or the
            node did not answer in time (its JVM is then killed; ``echo`` gets the log tail).
    """
    node_dir = spec.node_dir

    def prepare() -> list[str]:
        java_home = find_java17(CassandraNodeError)
        resolved, lib = ensure_server_jars(version, echo)
        data = node_dir / "data"
        if not keep_data:
            shutil.rmtree(data, ignore_errors=True)
        for sub in ("data", "logs", "tmp"):
            (node_dir / sub).mkdir(parents=True, exist_ok=True)
        (node_dir / "cassandra.yaml").write_text(_cassandra_yaml(spec, data), encoding="utf-8")
        (node_dir / "logback.xml").write_text(_LOGBACK_XML, encoding="utf-8")
        command = _jvm_command(java_home, lib, spec)
        echo(
            f"starting cassandra {resolved} on {spec.host}:{spec.port} "
            f"(Java {java_home}, log {spec.log_path})"
        )
        return command

    launched = spec.process.start(
        prepare,
        probe or _cql_probe(spec),
        ports=[(spec.host, spec.port), (spec.host, spec.storage_port)],
        wait_timeout=wait_timeout,
        in_use_hint=in_use_hint,
        echo=echo,
    )
    return NodeInfo(
        spec.host,
        spec.port,
        launched.answer,
        launched.pid,
        launched.started,
        launched.seconds,
        node_dir,
        spec.log_path,
    )


def stop_node(spec: NodeSpec, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the node (its JVM drains and exits; SIGKILL after ``timeout`` s).

    A paused node is resumed first, or it could not act on the signal.

    Returns:
        ``True`` if it was running.
    """
    return spec.process.stop(timeout)


def pause_node(spec: NodeSpec) -> int:
    """SIGSTOP the node's JVM (it keeps its sockets but answers nothing); returns its pid.

    Raises:
        CassandraNodeError: The node is not running.
    """
    pid = spec.process.signal(signal.SIGSTOP)
    if pid is None:
        raise CassandraNodeError(f"{spec.name} is not running")
    return pid


def resume_node(spec: NodeSpec) -> bool:
    """SIGCONT the node's JVM; ``True`` if it was running. Safe to call when not paused."""
    return spec.process.signal(signal.SIGCONT) is not None
