"""Simulacron's admin API, from Python: simulated clusters, primes, activity logs, connections.

Simulacron (the simulator the DataStax drivers test with) answers the CQL native protocol like a
Cassandra cluster, and its HTTP admin API tells it what to answer: a chosen result, error, delay
or closed connection for a chosen query. :mod:`rxcql_dev.simulacron_node` runs it; this module
talks to it (standard library ``urllib`` only)::

    from rxcql_dev import simulacron as sim

    api = sim.Simulacron("http://127.0.0.1:18187")
    with sim.cluster(api, nodes=1) as c:           # simulated nodes on 127.0.0.1:19242, ...
        c.prime("SELECT v FROM t WHERE k = 1", sim.result("read_timeout", delay_ms=50))
        c.query_log(); c.clear_primes(); c.close_connections()

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
    RXCQL_SIMULACRON_URL: admin URL of a Simulacron already running (e.g.
        ``http://127.0.0.1:18187``); the tests then use it and start nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .jvm import ToolError

__all__ = [
    "RESULTS",
    "URL_ENV",
    "LoggedQuery",
    "SimCluster",
    "Simulacron",
    "SimulacronError",
    "cluster",
    "http_ok",
    "result",
    "success",
    "url_from_env",
]

URL_ENV = "RXCQL_SIMULACRON_URL"

Json = Any


class SimulacronError(ToolError):
    """Simulacron could not be obtained, started or reached, or refused a request."""


def url_from_env() -> str | None:
    """The admin URL in ``RXCQL_SIMULACRON_URL``, or ``None`` when unset or empty."""
    value = os.environ.get(URL_ENV, "").strip()
    return value.rstrip("/") if value else None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether the admin API at ``url`` answers."""
    try:
        with urllib.request.urlopen(f"{url}/cluster", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# What a prime answers ("then")

#: Result name -> the fields it carries and their values when not given. Every result takes
#: ``delay_ms``; a name not listed here (``invalid``, ``syntax_error``, ``unauthorized``,
#: ``already_exists``, ``truncate_error``, ``config_error``, ``function_failure``, ...; see
#: Simulacron's swagger.yaml) takes its fields as given. What the driver raises:
#:
#: ============================  =====================================================
#: ``read_timeout``              :class:`cassandra.ReadTimeout`
#: ``write_timeout``             :class:`cassandra.WriteTimeout`
#: ``unavailable``               :class:`cassandra.Unavailable`
#: ``read_failure``              :class:`cassandra.ReadFailure`
#: ``write_failure``             :class:`cassandra.WriteFailure`
#: ``overloaded``                ``cassandra.protocol.OverloadedErrorMessage``
#: ``server_error``              ``cassandra.protocol.ServerError``
#: ``is_bootstrapping``          ``cassandra.protocol.IsBootstrappingErrorMessage``
#: ``no_result``                 nothing is answered: the request timeout fires
#: ``close_connection``          the connection(s) close instead (``scope``: connection,
#:                               node, data_center or cluster; ``close_type``:
#:                               disconnect, shutdown_read or shutdown_write)
#: ============================  =====================================================
RESULTS: dict[str, dict[str, Json]] = {
    "read_timeout": {
        "consistency_level": "ONE",
        "received": 0,
        "block_for": 1,
        "data_present": False,
    },
    "write_timeout": {
        "consistency_level": "ONE",
        "received": 0,
        "block_for": 1,
        "write_type": "SIMPLE",
    },
    "unavailable": {"consistency_level": "ONE", "alive": 0, "required": 1},
    "read_failure": {
        "consistency_level": "ONE",
        "received": 0,
        "block_for": 1,
        "failure_reasons": {},
        "data_present": False,
    },
    "write_failure": {
        "consistency_level": "ONE",
        "received": 0,
        "block_for": 1,
        "failure_reasons": {},
        "write_type": "SIMPLE",
    },
    "overloaded": {"message": "overloaded (simulated)"},
    "server_error": {"message": "server error (simulated)"},
    "is_bootstrapping": {},
    "no_result": {},
    "close_connection": {"scope": "connection", "close_type": "disconnect"},
}


def result(name: str, *, delay_ms: int = 0, **fields: Json) -> dict[str, Json]:
    """What a prime answers: Simulacron's result ``name`` after ``delay_ms``, with its fields.

    Fields not given take the defaults of :data:`RESULTS`.

    Example: ``result("write_timeout", delay_ms=50)``, ``result("invalid", message="no such
    table")``, ``result("close_connection", scope="node")``, ``result("unavailable", alive=1,
    required=2)``.
    """
    return {
        "result": name,
        "delay_in_ms": delay_ms,
        **copy.deepcopy(RESULTS.get(name, {})),
        **fields,
    }


def success(
    rows: Sequence[Mapping[str, Any]] = (),
    column_types: Mapping[str, str] | None = None,
    *,
    delay_ms: int = 0,
) -> dict[str, Json]:
    """A rows result. ``column_types`` maps column name to CQL type (default ``{"ok": "int"}``:
    at least one column is needed, see the module docstring); each row maps column to value."""
    types = dict(column_types) if column_types else {"ok": "int"}
    return result(
        "success", delay_ms=delay_ms, rows=[dict(row) for row in rows], column_types=types
    )


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
        return http_ok(self.url)

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
        return _connections(self.sim.request("GET", f"/connections/{self.id}"))

    def close_connections(self, close_type: str = "disconnect") -> list[str]:
        """Close every client connection now (``disconnect``, ``shutdown_read`` or
        ``shutdown_write``); returns the connections closed."""
        query = {"type": close_type}
        return _connections(self.sim.request("DELETE", f"/connections/{self.id}", query=query))

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


def _connections(report: Json) -> list[str]:
    """``address:port`` of every connection in a connections report of the admin API."""
    return [
        str(connection)
        for dc in (report or {}).get("data_centers", [])
        for node in dc.get("nodes", [])
        for connection in node.get("connections", [])
    ]


@contextlib.contextmanager
def cluster(sim: Simulacron, nodes: int = 1, **options: Any) -> Iterator[SimCluster]:
    """``with cluster(sim) as c:``: a cluster deleted on exit."""
    created = sim.create_cluster(nodes, **options)
    try:
        yield created
    finally:
        with contextlib.suppress(SimulacronError):
            created.delete()
