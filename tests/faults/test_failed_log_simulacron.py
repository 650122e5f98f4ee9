"""The failed log with Simulacron write timeouts: the log holds exactly the statements that
timed out; once the primes are gone, ``replay_failed`` lands every one of them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cassandra import WriteTimeout
from cassandra.cluster import Session
from rxcql_dev import simulacron as sim

import rxcql
from rxcql._longrun import read_failed_log

pytestmark = pytest.mark.faults

QUERY = "INSERT INTO faults (k, v) VALUES (?, ?)"
PARAM_TYPES = {"k": "int", "v": "varchar"}
TIMED_OUT = {3, 17, 18, 40, 99}


def prime(cluster: sim.SimCluster, keys: range, timed_out: set[int]) -> None:
    """Answer each key's INSERT: a write timeout for ``timed_out``, a success for the rest (an
    EXECUTE that matches no prime is never answered)."""
    for k in keys:
        cluster.prime(
            QUERY,
            sim.result("write_timeout") if k in timed_out else sim.success(),
            params={"k": k, "v": f"value {k}"},
            param_types=PARAM_TYPES,
        )


def test_write_timeouts_go_to_the_failed_log_and_replay_lands_them(
    sim_cluster: sim.SimCluster, sim_session: Session, tmp_path: Path
) -> None:
    prime(sim_cluster, range(100), TIMED_OUT)
    insert = sim_session.prepare(QUERY)
    failed = tmp_path / "failed.jsonl"
    results = rxcql.execute_concurrent_with_args(
        sim_session,
        insert,
        [(k, f"value {k}") for k in range(100)],
        raise_on_first_error=False,
        failed_log=failed,
    )
    assert {k for k, (ok, _) in enumerate(results) if not ok} == TIMED_OUT
    assert stat.S_IMODE(os.stat(failed).st_mode) == 0o600
    records = list(read_failed_log(failed))
    assert sorted(r["index"] for r in records) == sorted(TIMED_OUT)
    assert {r["error"] for r in records} == {WriteTimeout.__name__}
    assert all(r["cql"] == QUERY and r["attempts"] == 1 for r in records)

    sim_cluster.clear_primes()  # the cause is gone: the node accepts every write now
    prime(sim_cluster, range(100), set())
    sim_cluster.clear_log()
    again = tmp_path / "failed-again.jsonl"
    replayed = list(rxcql.iterate(rxcql.replay_failed(sim_session, failed, failed_log=again)))
    assert len(replayed) == len(TIMED_OUT)
    assert all(r.success for r in replayed)
    assert not again.exists() or again.read_text() == ""
    executes = sim_cluster.query_log(types=("EXECUTE",))
    assert len([e for e in executes if e.query == QUERY]) == len(TIMED_OUT)  # each sent once
