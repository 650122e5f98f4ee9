"""Run a local multi-node Apache Cassandra 5.0 cluster (and scratch single nodes) for rxcql's tests.

The nodes are the same server as ``cassandra_node`` (cassandra-all 5.0.x from Maven Central on
JDK 17, its cassandra.yaml and JVM flags), each on its own loopback address with its own
directory, so a test can stop or pause one without touching the shared node on 127.0.0.1:9042.

The three-node cluster (``scripts/cassandra-cluster``):

* nodes ``node1``..``node3`` on 127.0.0.1, 127.0.0.2, 127.0.0.3; CQL port 19042 and storage
  port 17000 on each address (distinct from the single node's 9042/7000); local JMX on 17191,
  17192, 17193; heap 768m each; seeds = node1; one token each, evenly spaced;
* started one at a time: node1 answers CQL before node2 is launched, and so on
  (``auto_bootstrap: false``: an empty cluster has nothing to stream); ``start`` returns when
  every node answers CQL and the driver sees all of them up;
* directories ``$RXCQL_CACHE_DIR/cluster-19042/node<N>`` (data wiped on start unless
  ``--keep-data``).

Command line::

    scripts/cassandra-cluster start [--nodes 3] [--heap 768m] [--keep-data]
    scripts/cassandra-cluster status [--nodes 3]
    scripts/cassandra-cluster stop [--nodes 3]
    scripts/cassandra-cluster stop-node N        # SIGTERM one node (a node failure)
    scripts/cassandra-cluster start-node N       # bring it back (data kept)

From Python::

    specs = cassandra_cluster.cluster_specs()
    cassandra_cluster.start(specs)
    cassandra_cluster.stop_node(specs[2])
    cassandra_cluster.stop(specs)
    spec = cassandra_cluster.single_node_spec("faults", "127.0.0.5", 19142, 17100)
    cassandra_cluster.start_node(spec)
    cassandra_cluster.pause_node(spec)  # SIGSTOP; resume_node(spec) sends SIGCONT

Only the standard library is needed; with the cassandra driver importable, readiness means CQL
answers (and, for a cluster, that the driver sees every node up).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cassandra_node
from cassandra_node import CassandraNodeError, Echo, NodeInfo

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "DEFAULT_SIZE",
    "DEFAULT_STORAGE_PORT",
    "NodeSpec",
    "cluster_specs",
    "evenly_spaced_tokens",
    "main",
    "node_pid",
    "pause_node",
    "resume_node",
    "single_node_spec",
    "start",
    "start_node",
    "stop",
    "stop_node",
    "wait_for_ring",
]

CLUSTER_NAME = "rxcql-cluster"
DEFAULT_SIZE = 3
DEFAULT_PORT = 19042
DEFAULT_STORAGE_PORT = 17000
DEFAULT_JMX_BASE = 17190
DEFAULT_HEAP = "768m"
DEFAULT_WAIT_TIMEOUT = 300.0

_MIN_TOKEN = -(2**63)


@dataclass(frozen=True)
class NodeSpec:
    """Where and how one node runs.

    Attributes:
        name: Short name (``node1``), used in messages.
        host: Loopback address it listens on (CQL and storage).
        port: CQL port.
        storage_port: Inter-node (gossip) port.
        jmx_port: Local JMX port, or ``None`` for no JMX.
        seeds: ``host:storage_port,...`` of the seeds.
        cluster_name: Nodes join only a cluster of the same name.
        initial_token: Its single token.
        node_dir: Its directory (config, data, log, pid file).
        heap: ``-Xms``/``-Xmx``.
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
    heap: str = DEFAULT_HEAP

    @property
    def log_path(self) -> Path:
        return self.node_dir / "cassandra.log"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "cassandra.pid"

    @property
    def contact_point(self) -> tuple[str, int]:
        return (self.host, self.port)


def evenly_spaced_tokens(size: int) -> list[str]:
    """One Murmur3 token per node, spread evenly over the ring."""
    step = 2**64 // size
    return [str(_MIN_TOKEN + i * step) for i in range(size)]


def cluster_specs(
    size: int = DEFAULT_SIZE,
    *,
    port: int = DEFAULT_PORT,
    storage_port: int = DEFAULT_STORAGE_PORT,
    jmx_base: int = DEFAULT_JMX_BASE,
    heap: str = DEFAULT_HEAP,
    base_dir: Path | None = None,
) -> list[NodeSpec]:
    """The nodes of the local cluster: ``node<i>`` on ``127.0.0.<i>``, seeds = node1."""
    if not 1 <= size <= 9:
        raise ValueError(f"size must be 1..9, got {size}")
    root = base_dir or cassandra_node._cache_root() / f"cluster-{port}"
    seeds = f"127.0.0.1:{storage_port}"
    return [
        NodeSpec(
            name=f"node{i}",
            host=f"127.0.0.{i}",
            port=port,
            storage_port=storage_port,
            jmx_port=jmx_base + i,
            seeds=seeds,
            cluster_name=CLUSTER_NAME,
            initial_token=token,
            node_dir=root / f"node{i}",
            heap=heap,
        )
        for i, token in enumerate(evenly_spaced_tokens(size), start=1)
    ]


def single_node_spec(
    name: str,
    host: str,
    port: int,
    storage_port: int,
    *,
    jmx_port: int | None = None,
    heap: str = "1g",
    node_dir: Path | None = None,
) -> NodeSpec:
    """A one-node cluster of its own (``rxcql-<name>``), e.g. a node a test may pause."""
    return NodeSpec(
        name=name,
        host=host,
        port=port,
        storage_port=storage_port,
        jmx_port=jmx_port,
        seeds=f"{host}:{storage_port}",
        cluster_name=f"rxcql-{name}",
        initial_token="0",
        node_dir=node_dir or cassandra_node._cache_root() / f"{name}-node-{port}",
        heap=heap,
    )


# --------------------------------------------------------------------------------------------
# One node


def node_pid(spec: NodeSpec) -> int | None:
    """The pid of the node's JVM if it runs (per its pid file), else ``None``."""
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if cassandra_node._alive(pid) and cassandra_node._is_cassandra(pid):
        return pid
    return None


def _wait_ready(spec: NodeSpec, pid: int, timeout: float) -> str | None:
    return cassandra_node._wait_ready(
        pid,
        spec.port,
        spec.log_path,
        timeout,
        cassandra_node._driver_available(),
        host=spec.host,
    )


def start_node(
    spec: NodeSpec,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    keep_data: bool = False,
    version: str | None = None,
    echo: Echo = cassandra_node._default_echo,
) -> NodeInfo:
    """Start one node and wait until it answers CQL. Idempotent (a running node is reused).

    Raises:
        CassandraNodeError: No Java 17 or jars, the address is taken by another process, or the
            node did not answer in time (its JVM is then killed; ``echo`` gets the log tail).
    """
    with cassandra_node._locked(spec.node_dir / ".lock"):
        pid = node_pid(spec)
        if pid is not None:
            found = _wait_ready(spec, pid, wait_timeout)
            if found is None:
                raise CassandraNodeError(
                    f"{spec.name} (pid {pid}) is alive but {spec.host}:{spec.port} does not "
                    f"answer; see {spec.log_path}"
                )
            return NodeInfo(
                spec.host, spec.port, found, pid, False, 0.0, spec.node_dir, spec.log_path
            )
        spec.pid_file.unlink(missing_ok=True)
        for port in (spec.port, spec.storage_port):
            if cassandra_node._accepts_tcp(spec.host, port):
                raise CassandraNodeError(
                    f"{spec.host}:{port} is in use by a process this script did not start"
                )
        java_home = cassandra_node.find_java17()
        resolved, lib = cassandra_node.ensure_server_jars(version, echo)
        return _launch(spec, java_home, resolved, lib, wait_timeout, keep_data, echo)


def _launch(
    spec: NodeSpec,
    java_home: Path,
    version: str,
    lib: Path,
    wait_timeout: float,
    keep_data: bool,
    echo: Echo,
) -> NodeInfo:
    node_dir = spec.node_dir
    data = node_dir / "data"
    if not keep_data:
        shutil.rmtree(data, ignore_errors=True)
    for sub in ("data", "logs", "tmp"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    yaml = cassandra_node._cassandra_yaml(
        spec.port,
        spec.storage_port,
        data,
        host=spec.host,
        seeds=spec.seeds,
        cluster_name=spec.cluster_name,
        initial_token=spec.initial_token,
        auto_bootstrap=False,
    )
    (node_dir / "cassandra.yaml").write_text(yaml, encoding="utf-8")
    (node_dir / "logback.xml").write_text(cassandra_node._LOGBACK_XML, encoding="utf-8")
    command = cassandra_node._jvm_command(
        java_home,
        lib,
        node_dir,
        spec.heap,
        initial_token=spec.initial_token,
        jmx_port=spec.jmx_port,
    )
    (node_dir / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
    echo(f"starting {spec.name}: cassandra {version} on {spec.host}:{spec.port} ({spec.log_path})")
    began = time.monotonic()
    # cassandra_node.launch registers the child, so that its _alive/_terminate reap it too.
    child = cassandra_node.launch(command, node_dir, spec.log_path, spec.pid_file)
    try:
        found = _wait_ready(spec, child.pid, wait_timeout)
        if found is None:
            exited = child.poll()
            reason = (
                f"the JVM exited with status {exited}"
                if exited is not None
                else f"no CQL answer within {wait_timeout:.0f} s"
            )
            tail = cassandra_node._tail(spec.log_path)
            echo(f"--- last lines of {spec.log_path} ---\n{tail}---")
            raise CassandraNodeError(
                f"{spec.name} did not start on {spec.host}:{spec.port}: {reason}"
            )
    except BaseException:
        resume_node(spec)
        cassandra_node._terminate(child.pid, timeout=10.0)
        spec.pid_file.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - began
    echo(f"  {spec.name} ready in {elapsed:.1f} s")
    return NodeInfo(
        spec.host, spec.port, found, child.pid, True, elapsed, spec.node_dir, spec.log_path
    )


def stop_node(spec: NodeSpec, timeout: float = cassandra_node.STOP_TIMEOUT) -> bool:
    """SIGTERM the node (its JVM drains and exits; SIGKILL after ``timeout`` s).

    A paused node is resumed first, or it could not act on the signal.

    Returns:
        ``True`` if it was running.
    """
    with cassandra_node._locked(spec.node_dir / ".lock"):
        pid = node_pid(spec)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            cassandra_node._terminate(pid, timeout)
        spec.pid_file.unlink(missing_ok=True)
    return pid is not None


def pause_node(spec: NodeSpec) -> int:
    """SIGSTOP the node's JVM (it keeps its sockets but answers nothing); returns its pid.

    Raises:
        CassandraNodeError: The node is not running.
    """
    pid = node_pid(spec)
    if pid is None:
        raise CassandraNodeError(f"{spec.name} is not running")
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume_node(spec: NodeSpec) -> bool:
    """SIGCONT the node's JVM; ``True`` if it was running. Safe to call when not paused."""
    pid = node_pid(spec)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
    return True


# --------------------------------------------------------------------------------------------
# The cluster


def wait_for_ring(specs: Sequence[NodeSpec], timeout: float = 120.0) -> None:
    """Wait until every node lists the others as peers and the driver sees all of them up.

    Does nothing without the cassandra driver.

    Raises:
        CassandraNodeError: Not so within ``timeout`` seconds.
    """
    try:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy
    except ImportError:
        return
    deadline = time.monotonic() + timeout
    want = {spec.host for spec in specs}
    last = ""
    while time.monotonic() < deadline:
        missing: list[str] = []
        for spec in specs:
            profile = ExecutionProfile(
                load_balancing_policy=RoundRobinPolicy(), request_timeout=10.0
            )
            cluster = Cluster(
                contact_points=[spec.contact_point],
                protocol_version=5,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=10,
                control_connection_timeout=10,
            )
            try:
                session = cluster.connect()
                rows = session.execute("SELECT peer FROM system.peers_v2")
                peers = {str(row.peer) for row in rows}
                up = {h.address for h in cluster.metadata.all_hosts() if h.is_up}
                if peers != want - {spec.host}:
                    missing.append(f"{spec.name} sees peers {sorted(peers)}")
                elif up != want:
                    missing.append(f"the driver via {spec.name} sees up {sorted(up)}")
            except Exception as error:
                missing.append(f"{spec.name}: {error}")
            finally:
                cluster.shutdown()
        if not missing:
            return
        last = "; ".join(missing)
        time.sleep(1.0)
    raise CassandraNodeError(f"the ring did not form within {timeout:.0f} s: {last}")


def start(
    specs: Sequence[NodeSpec] | None = None,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    keep_data: bool = False,
    version: str | None = None,
    echo: Echo = cassandra_node._default_echo,
) -> list[NodeInfo]:
    """Start the cluster one node at a time (seed first) and wait until the ring is whole.

    Nodes already running are reused. When a node fails to start, the nodes this call
    started are stopped again.

    Raises:
        CassandraNodeError: A node did not come up, or the ring did not form.
    """
    nodes = list(specs if specs is not None else cluster_specs())
    began = time.monotonic()
    infos: list[NodeInfo] = []
    try:
        for spec in nodes:
            infos.append(
                start_node(
                    spec, wait_timeout=wait_timeout, keep_data=keep_data, version=version, echo=echo
                )
            )
        wait_for_ring(nodes, timeout=wait_timeout)
    except BaseException:
        for spec, info in zip(nodes, infos, strict=False):
            if info.started:
                stop_node(spec)
        raise
    echo(f"cluster of {len(nodes)} ready in {time.monotonic() - began:.1f} s")
    return infos


def stop(specs: Sequence[NodeSpec] | None = None) -> list[str]:
    """Stop every node of the cluster (last first); returns the names of those that ran."""
    nodes = list(specs if specs is not None else cluster_specs())
    return [spec.name for spec in reversed(nodes) if stop_node(spec)]


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cassandra-cluster",
        description="Run a local multi-node Cassandra 5.0 cluster for rxcql's tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start the cluster one node at a time (idempotent); wait for the whole ring"),
        ("stop", "stop every node"),
        ("status", "exit 0 if every node runs and accepts CQL, else 1"),
        ("stop-node", "SIGTERM one node"),
        ("start-node", "start one node again (its data kept)"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--nodes", type=int, default=DEFAULT_SIZE, help="cluster size (3)")
        sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="CQL port (19042)")
        sub.add_argument(
            "--storage-port", type=int, default=DEFAULT_STORAGE_PORT, help="storage port (17000)"
        )
        sub.add_argument("--heap", default=DEFAULT_HEAP, help="heap per node (768m)")
        if name in ("stop-node", "start-node"):
            sub.add_argument("node", type=int, help="node number, 1..nodes")
        if name in ("start", "start-node"):
            sub.add_argument(
                "--wait-timeout",
                type=float,
                default=DEFAULT_WAIT_TIMEOUT,
                help=f"seconds to wait per node ({DEFAULT_WAIT_TIMEOUT:.0f})",
            )
        if name == "start":
            sub.add_argument("--keep-data", action="store_true", help="do not wipe the data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    specs = cluster_specs(
        args.nodes, port=args.port, storage_port=args.storage_port, heap=args.heap
    )
    try:
        if args.command == "start":
            began = time.monotonic()
            infos = start(specs, wait_timeout=args.wait_timeout, keep_data=args.keep_data)
            for info in infos:
                state = "started" if info.started else "already running"
                print(f"{info.host}:{info.port} cassandra {info.version} {state} (pid {info.pid})")
            print(f"cluster ready in {time.monotonic() - began:.1f} s")
            return 0
        if args.command == "stop":
            stopped = stop(specs)
            print(f"stopped {', '.join(stopped)}" if stopped else "no node was running")
            return 0
        if args.command in ("stop-node", "start-node"):
            if not 1 <= args.node <= len(specs):
                print(f"error: node must be 1..{len(specs)}", file=sys.stderr)
                return 2
            spec = specs[args.node - 1]
            if args.command == "stop-node":
                print(f"{spec.name} stopped" if stop_node(spec) else f"{spec.name} not running")
                return 0
            info = start_node(spec, wait_timeout=args.wait_timeout, keep_data=True)
            print(f"{spec.name} ready on {info.host}:{info.port} (pid {info.pid})")
            return 0
        healthy = True
        for spec in specs:
            pid = node_pid(spec)
            if pid is None:
                print(f"{spec.name} not running ({spec.host}:{spec.port})")
                healthy = False
            elif not cassandra_node._accepts_tcp(spec.host, spec.port):
                print(
                    f"{spec.name} pid {pid} alive but not accepting CQL on {spec.host}:{spec.port}"
                )
                healthy = False
            else:
                print(f"{spec.name} running on {spec.host}:{spec.port} (pid {pid})")
        return 0 if healthy else 1
    except CassandraNodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
