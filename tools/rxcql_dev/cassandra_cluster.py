"""Run a local multi-node Apache Cassandra 5.0 cluster (and scratch single nodes) for rxcql's tests.

The nodes are :mod:`rxcql_dev.cassandra_server` specs, the same server as the single node
(cassandra-all 5.0.x from Maven Central on JDK 17, its cassandra.yaml and JVM flags), each on its
own loopback address with its own directory, so a test can stop or pause one without touching the
shared node on 127.0.0.1:9042.

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
    cassandra_server.stop_node(specs[2])
    cassandra_cluster.stop(specs)
    spec = cassandra_cluster.single_node_spec("faults", "127.0.0.5", 19142, 17100)
    cassandra_server.start_node(spec)
    cassandra_server.pause_node(spec)  # SIGSTOP; resume_node(spec) sends SIGCONT

Only the standard library is needed; with the cassandra driver importable, readiness means CQL
answers (and, for a cluster, that the driver sees every node up).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import cli
from .cassandra_server import (
    CassandraNodeError,
    NodeInfo,
    NodeSpec,
    node_pid,
    start_node,
    stop_node,
)
from .jvm import Echo, accepts_tcp, cache_root, default_echo

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "DEFAULT_SIZE",
    "DEFAULT_STORAGE_PORT",
    "cluster_specs",
    "evenly_spaced_tokens",
    "main",
    "single_node_spec",
    "start",
    "stop",
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


def evenly_spaced_tokens(size: int) -> list[str]:
    """One Murmur3 token per node, spread evenly over the ring."""
    step = 2**64 // size
    return [str(_MIN_TOKEN + i * step) for i in range(size)]


#: Vnodes per node of the local cluster: its ranges interleave, as a real cluster's do.
VNODES_PER_NODE = 4


def vnode_tokens(size: int, per_node: int = VNODES_PER_NODE) -> list[str]:
    """``per_node`` Murmur3 tokens for each of ``size`` nodes, comma-separated per node: all
    the tokens evenly spaced over the ring, dealt round-robin, so that neighbouring ranges
    belong to different nodes."""
    step = 2**64 // (size * per_node)
    return [
        ",".join(str(_MIN_TOKEN + (k * size + i) * step) for k in range(per_node))
        for i in range(size)
    ]


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
    root = base_dir or cache_root() / f"cluster-{port}"
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
            num_tokens=VNODES_PER_NODE,
            node_dir=root / f"node{i}",
            heap=heap,
        )
        for i, token in enumerate(vnode_tokens(size), start=1)
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
    extra_yaml: str = "",
) -> NodeSpec:
    """A one-node cluster of its own (``rxcql-<name>``), e.g. a node a test may pause;
    ``extra_yaml`` is appended to its cassandra.yaml."""
    return NodeSpec(
        name=name,
        host=host,
        port=port,
        storage_port=storage_port,
        jmx_port=jmx_port,
        seeds=f"{host}:{storage_port}",
        cluster_name=f"rxcql-{name}",
        initial_token="0",
        node_dir=node_dir or cache_root() / f"{name}-node-{port}",
        heap=heap,
        extra_yaml=extra_yaml,
    )


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
    echo: Echo = default_echo,
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
            info = start_node(
                spec, wait_timeout=wait_timeout, keep_data=keep_data, version=version, echo=echo
            )
            infos.append(info)
            if info.started:
                echo(f"  {spec.name} ready in {info.startup_seconds:.1f} s")
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
    parser, subs = cli.parser_with_commands(
        "cassandra-cluster",
        "Run a local multi-node Cassandra 5.0 cluster for rxcql's tests.",
        (
            ("start", "start the cluster one node at a time (idempotent); wait for the whole ring"),
            ("stop", "stop every node"),
            ("status", "exit 0 if every node runs and accepts CQL, else 1"),
            ("stop-node", "SIGTERM one node"),
            ("start-node", "start one node again (its data kept)"),
        ),
    )
    for name, sub in subs.items():
        sub.add_argument("--nodes", type=int, default=DEFAULT_SIZE, help="cluster size (3)")
        sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="CQL port (19042)")
        sub.add_argument(
            "--storage-port", type=int, default=DEFAULT_STORAGE_PORT, help="storage port (17000)"
        )
        sub.add_argument("--heap", default=DEFAULT_HEAP, help="heap per node (768m)")
        if name in ("stop-node", "start-node"):
            sub.add_argument("node", type=int, help="node number, 1..nodes")
        if name in ("start", "start-node"):
            cli.add_wait_timeout(sub, DEFAULT_WAIT_TIMEOUT, "seconds to wait per node")
    subs["start"].add_argument("--keep-data", action="store_true", help="do not wipe the data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return cli.run(_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    specs = cluster_specs(
        args.nodes, port=args.port, storage_port=args.storage_port, heap=args.heap
    )
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
        elif not accepts_tcp(spec.host, spec.port):
            print(f"{spec.name} pid {pid} alive but not accepting CQL on {spec.host}:{spec.port}")
            healthy = False
        else:
            print(f"{spec.name} running on {spec.host}:{spec.port} (pid {pid})")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
