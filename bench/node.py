"""The real Cassandra node: connection, schema and workloads.

Where the cluster comes from, as in the integration tests: ``RXCQL_CONTACT_POINTS=host:port,...``
when set; else a node already answering on 127.0.0.1:9042; else one started with the project's
``rxcql_dev.cassandra_node`` (and stopped again at exit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import tuple_factory
from rxcql_dev import cassandra_node

import rxcql

from .contenders import Workload

KEYSPACE = "rxcql_bench"
#: The bulk part's table: ``(k bigint PRIMARY KEY, v text)``, as in the issue's measurements.
BULK_TABLE = "kv_bulk"


def contact_points(echo: Callable[[str], None]) -> list[tuple[str, int]]:
    """Find or start a node; a node started here is stopped when the process exits."""
    return cassandra_node.find_or_start(echo=echo).contact_points


class Node:
    """A connected session on the benchmark keyspace, with the prepared statements."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        # Rows as plain tuples: the default named_tuple_factory builds a namedtuple class for every
        # response (tens of microseconds), the same for every contender, which would only blur
        # the client-side differences being measured.
        profile = ExecutionProfile(
            load_balancing_policy=RoundRobinPolicy(),
            request_timeout=60.0,
            row_factory=tuple_factory,
        )
        #: ``(host, port)`` of the node(s), for clients of other processes (the Java loader).
        self.contact_points = contact_points(echo)
        self.cluster = Cluster(
            contact_points=self.contact_points,
            protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )
        admin = self.cluster.connect()
        admin.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        for table in ("kv", "kv_read", "kv_big"):
            admin.execute(
                f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{table} (k int PRIMARY KEY, v text)"
            )
        admin.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{BULK_TABLE} (k bigint PRIMARY KEY, v text)"
        )
        admin.shutdown()
        self.session: Session = self.cluster.connect(KEYSPACE)
        self.release_version = str(
            self.session.execute("SELECT release_version FROM system.local").one()[0]
        )
        self.insert = self.session.prepare("INSERT INTO kv (k, v) VALUES (?, ?)")
        self.insert_big = self.session.prepare("INSERT INTO kv_big (k, v) VALUES (?, ?)")
        self.insert_bulk = self.session.prepare(f"INSERT INTO {BULK_TABLE} (k, v) VALUES (?, ?)")
        self.select = self.session.prepare("SELECT k, v FROM kv_read WHERE k = ?")
        self._insert_read = self.session.prepare("INSERT INTO kv_read (k, v) VALUES (?, ?)")

    def populate_reads(self, n: int, echo: Callable[[str], None]) -> None:
        """Make sure ``kv_read`` has keys ``0 .. n-1`` (the SELECT workload reads them)."""
        last = self.session.execute(self.select, (n - 1,)).one()
        if last is not None and last[0] == n - 1:
            return
        echo(f"populating {KEYSPACE}.kv_read with {n:,} rows")
        results = rxcql.execute_concurrent_with_args(
            self.session, self._insert_read, ((i, value(i)) for i in range(n)), concurrency=100
        )
        if len(results) != n or not all(r.success for r in results):
            raise RuntimeError("populating kv_read failed")

    def insert_workload(self, n: int, concurrency: int, big: bool = False) -> Workload:
        return Workload(
            self.session,
            self.insert_big if big else self.insert,
            n,
            concurrency,
            insert_parameters,
            check_insert,
            # The large run reads its own generator; never build a list of a million items.
            input_kind="generator" if big else "list",
        )

    def select_workload(self, n: int, concurrency: int) -> Workload:
        return Workload(self.session, self.select, n, concurrency, select_parameters, check_select)

    def count_big(self, keys: list[int]) -> int:
        """How many of ``keys`` are in kv_big (spot check after the 1M insert run)."""
        found = 0
        select = self.session.prepare("SELECT k FROM kv_big WHERE k = ?")
        for k in keys:
            row = self.session.execute(select, (k,)).one()
            found += row is not None and row[0] == k
        return found

    def shutdown(self) -> None:
        self.cluster.shutdown()


def value(i: int) -> str:
    return f"value-{i}"


def insert_parameters(i: int) -> tuple[int, str]:
    return (i, value(i))


def select_parameters(i: int) -> tuple[int]:
    return (i,)


def check_insert(future: Any, rows: Any, i: int) -> bool:
    # An INSERT has no rows; the bound statement the future ran carries the serialized key.
    return bool(future.query.values[0] == i.to_bytes(4, "big", signed=True))


def check_select(future: Any, rows: Any, i: int) -> bool:
    return bool(len(rows) == 1 and rows[0][0] == i)
