"""rxcql through a secured node: password authentication, roles and client-to-node TLS.

Production clusters have both; a bulk tool must work through them and fail clearly without them.
The node and the roles (``writer``: MODIFY and SELECT, ``reader``: SELECT only) come from
``conftest.py``. Each rxcql call here runs over an authenticated TLS session:

* as ``writer``, the drop-in ``execute_concurrent_with_args``, ``execute`` consumed with
  ``iterate``, and replica batches with ``concurrency="auto"``: every row lands;
* as ``reader``, inserts give ``Unauthorized`` in place, with retries on, and none is sent twice
  (a refused batch is sent again statement by statement: that is not a retry);
* a wrong password, plain text on the TLS port and an untrusted server certificate are clear
  errors at connect;
* bound values and passwords never reach rxcql's log records nor its exceptions.
"""

from __future__ import annotations

import collections
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import pytest
from cassandra import AuthenticationFailed, Unauthorized
from cassandra.cluster import NoHostAvailable, Session
from cassandra.connection import ConnectionException
from cassandra.query import BatchStatement, BoundStatement, PreparedStatement
from rxcql_dev import secure_node
from rxcql_dev.cassandra_server import NodeInfo

import rxcql

from .conftest import KEYSPACE, Roles, new_cluster

pytestmark = [pytest.mark.secure, pytest.mark.timeout(300)]

ROWS = 300
INSERT = "INSERT INTO rows (id, payload) VALUES (?, ?)"
MARKER = "SECRET-MARKER-8f3a"


def stored(session: Session, first: int, count: int) -> dict[int, str]:
    """The rows whose id is in ``[first, first + count)``."""
    found = session.execute(f"SELECT id, payload FROM {KEYSPACE}.rows")  # a few hundred rows
    return {row.id: row.payload for row in found if first <= row.id < first + count}


def values(first: int, label: str) -> list[tuple[int, str]]:
    return [(first + i, f"{label} {i}") for i in range(ROWS)]


def _bound_id(serialized: list[bytes]) -> int:
    return int.from_bytes(serialized[0], "big", signed=True)


class SendCounting:
    """The session, recording every request sent through it: ``batches`` (the ids of each
    batch) and ``alone`` (how often each id was sent on its own).

    rxcql sends a first attempt with ``execute_async``; a statement sent again with the client
    timestamp of its first attempt (a retry, or a statement of a refused batch) goes through the
    steps of ``execute_async`` instead (``_create_response_future`` then ``_on_request``, see
    ``rxcql._future.execute_with_timestamp``). Both are counted, so nothing is sent unseen.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._lock = threading.Lock()
        self.batches: list[list[int]] = []
        self.alone: collections.Counter[int] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def _note(self, query: Any, parameters: Any) -> None:
        with self._lock:
            if isinstance(query, BatchStatement):
                entries = query._statements_and_parameters
                self.batches.append([_bound_id(serialized) for _, _, serialized in entries])
            elif isinstance(query, BoundStatement):
                self.alone[_bound_id(query.values)] += 1
            else:
                assert isinstance(query, PreparedStatement), query
                self.alone[int(parameters[0])] += 1

    def batched(self) -> collections.Counter[int]:
        """How often each id was sent in a batch."""
        return collections.Counter(i for batch in self.batches for i in batch)

    def execute_async(self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._note(query, parameters)
        return self._session.execute_async(query, parameters, *args, **kwargs)

    def _create_response_future(self, query: Any, parameters: Any, *args: Any) -> Any:
        self._note(query, parameters)
        return self._session._create_response_future(query, parameters, *args)


# --------------------------------------------------------------------------------------------
# writer: every row lands


def test_writer_drop_in_execute_concurrent_with_args(writer_session: Session) -> None:
    rows = values(0, "drop-in")
    insert = writer_session.prepare(INSERT)
    results = rxcql.execute_concurrent_with_args(writer_session, insert, rows, concurrency=50)
    assert [success for success, _ in results] == [True] * ROWS, results[:3]
    assert stored(writer_session, 0, ROWS) == dict(rows)


def test_writer_execute_consumed_with_iterate(writer_session: Session) -> None:
    rows = values(1_000, "iterate")
    insert = writer_session.prepare(INSERT)
    results = list(rxcql.iterate(rxcql.execute(writer_session, [(insert, r) for r in rows])))
    assert [(r.index, r.success) for r in results] == [(i, True) for i in range(ROWS)]
    assert stored(writer_session, 1_000, ROWS) == dict(rows)


def test_writer_replica_batches_with_auto_concurrency(writer_session: Session) -> None:
    rows = values(2_000, "batched")
    insert = writer_session.prepare(INSERT)
    counting = SendCounting(writer_session)
    results = list(
        rxcql.iterate(
            rxcql.execute(
                counting, [(insert, r) for r in rows], batch="replica", concurrency="auto"
            )
        )
    )
    assert [r.success for r in results] == [True] * ROWS, results[:3]
    assert counting.batches, "nothing was batched"
    # Each statement sent once: in a batch, or alone (rxcql sends a group of one alone).
    assert counting.batched() + counting.alone == collections.Counter(i for i, _ in rows)
    assert stored(writer_session, 2_000, ROWS) == dict(rows)


# --------------------------------------------------------------------------------------------
# reader: Unauthorized in place, never retried


@pytest.mark.parametrize("batch", [None, "replica"], ids=["alone", "replica-batches"])
def test_reader_gets_unauthorized_in_place_and_nothing_is_retried(
    reader_session: Session, admin_session: Session, batch: Literal["replica"] | None
) -> None:
    first = 10_000 if batch is None else 20_000
    rows = values(first, "refused")
    insert = reader_session.prepare(INSERT)
    counting = SendCounting(reader_session)
    results = rxcql.execute_concurrent_with_args(
        counting,
        insert,
        rows,
        raise_on_first_error=False,
        retry=rxcql.Retry(attempts=5, idempotent_only=False),
        batch=batch,
    )
    assert len(results) == ROWS
    wrong = [r for r in results if r.success or not isinstance(r.result_or_exc, Unauthorized)]
    assert not wrong, wrong[:3]
    assert "reader has no MODIFY permission" in str(results[0].result_or_exc)
    # Each statement was sent alone exactly once: directly, or after its batch was refused
    # (nothing of a refused batch is applied, so that is no retry). Retries would show as more.
    assert counting.alone == collections.Counter(i for i, _ in rows)
    assert max(counting.batched().values(), default=1) == 1, "a batch was sent twice"
    if batch is None:
        assert not counting.batches
    else:
        assert counting.batches, "nothing was batched"
    assert stored(admin_session, first, ROWS) == {}


# --------------------------------------------------------------------------------------------
# Connecting: clear errors


def test_a_wrong_password_is_an_authentication_error_at_connect(
    roles: Roles, tls: ssl.SSLContext
) -> None:
    wrong = "not-" + roles.writer.password
    cluster = new_cluster((roles.writer.user, wrong), tls=tls)
    try:
        with pytest.raises(NoHostAvailable) as raised:
            cluster.connect()
    finally:
        cluster.shutdown()
    errors = list(raised.value.errors.values())
    assert errors
    assert all(isinstance(error, AuthenticationFailed) for error in errors), errors
    assert "Bad credentials" in str(raised.value), raised.value
    assert wrong not in str(raised.value)


def test_plain_text_on_the_tls_only_port_fails_at_connect(
    roles: Roles, secured_node: NodeInfo
) -> None:
    cluster = new_cluster(roles.writer.auth, tls=None, timeout=5.0)
    began = time.monotonic()
    try:
        with pytest.raises(NoHostAvailable) as raised:
            cluster.connect()
    finally:
        cluster.shutdown()
    errors = list(raised.value.errors.values())
    assert errors
    # The server drops a connection that does not start with a TLS handshake.
    assert all(isinstance(e, OSError | ConnectionException) for e in errors), errors
    assert time.monotonic() - began < 15.0


def test_a_server_certificate_from_an_untrusted_ca_is_refused(
    roles: Roles, secured_node: NodeInfo
) -> None:
    cluster = new_cluster(roles.writer.auth, tls=ssl.create_default_context(), timeout=5.0)
    try:
        with pytest.raises(NoHostAvailable) as raised:
            cluster.connect()
    finally:
        cluster.shutdown()
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value), raised.value


# --------------------------------------------------------------------------------------------
# Nothing secret in rxcql's logs and errors


def _texts(error: BaseException) -> list[str]:
    """What an exception shows: its traceback text (message, notes and chained causes
    included) and its repr."""
    return ["".join(traceback.format_exception(error)), repr(error)]


def test_values_and_passwords_stay_out_of_logs_and_errors(
    roles: Roles, tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Failing runs as ``reader`` with values holding a marker: neither the marker nor a
    password is in any log record (rxcql's at DEBUG, and the driver's, from the login on) nor in
    any exception the runs give (rxcql's ``TooManyErrorsError``, the driver's ``Unauthorized``
    in place or raised)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="rxcql")
    rows = [(30_000 + i, f"{MARKER} {i}") for i in range(50)]
    texts: list[str] = []
    cluster = new_cluster(roles.reader.auth, tls=tls)
    try:
        session = cluster.connect(KEYSPACE)
        insert = session.prepare(INSERT)
        items = [(insert, r) for r in rows]

        # Failures in place, batched then alone, with retries on.
        results = rxcql.execute_concurrent_with_args(
            session,
            insert,
            rows,
            raise_on_first_error=False,
            batch="replica",
            retry=rxcql.Retry(attempts=3, idempotent_only=False),
        )
        assert not any(success for success, _ in results)
        for _, error in results:
            texts += _texts(error)

        # rxcql's own error: too many failures.
        with pytest.raises(rxcql.TooManyErrorsError) as too_many:
            list(
                rxcql.iterate(
                    rxcql.execute(session, items, raise_on_first_error=False, max_errors=3)
                )
            )
        texts += _texts(too_many.value)

        # The first failure ends the run.
        with pytest.raises(Unauthorized) as first:
            list(rxcql.iterate(rxcql.execute(session, items, batch="replica")))
        texts += _texts(first.value)
    finally:
        cluster.shutdown()

    logged = [
        f"{record.name}: {record.getMessage()}"
        + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        + (record.stack_info or "")
        for record in caplog.records
    ]
    assert logged, "no log record was captured (the driver logs the login at DEBUG)"
    for secret in (MARKER, roles.reader.password, roles.writer.password):
        assert not [t for t in texts if secret in t], f"{secret!r} in an exception"
        assert not [t for t in logged if secret in t], f"{secret!r} in a log record"
    rxcql_errors = [
        r for r in caplog.records if r.name.split(".")[0] == "rxcql" and r.levelno >= logging.ERROR
    ]
    assert not rxcql_errors, rxcql_errors


def test_the_rxcql_command_over_tls_with_a_password(
    roles: Roles, writer_session: Session, tmp_path: Path
) -> None:
    """``rxcql load`` / ``unload`` / ``count`` with ``-u``, ``RXCQL_PASSWORD``, ``--ssl`` and
    ``--ssl-ca`` (the test CA); a wrong password and plain text exit with status 2, and the
    password is in no output."""
    host, port = secure_node.contact_point()
    env = {**os.environ, "RXCQL_PASSWORD": roles.writer.password}
    env.pop("RXCQL_CONTACT_POINTS", None)
    tls = ["--ssl", "--ssl-ca", str(secure_node.tls_dir() / "ca.pem")]
    login = ["-h", f"{host}:{port}", "-u", roles.writer.user, "--request-timeout", "30"]

    def rxcql_command(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        run_env = env if password is None else {**env, "RXCQL_PASSWORD": password}
        done = subprocess.run(
            [sys.executable, "-m", "rxcql.cli", *args],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        for secret in (roles.writer.password, "not-the-password"):
            assert secret not in done.stdout + done.stderr
        return done

    data = tmp_path / "rows.csv"
    data.write_text("id,payload\n" + "".join(f"{70_000 + k},cli {k}\n" for k in range(500)))
    table = f"{KEYSPACE}.rows"
    loaded = rxcql_command("load", "-t", table, "-f", str(data), "-q", *login, *tls)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 500 rows" in loaded.stderr
    out = rxcql_command(
        "unload", "-t", table, "-f", "-", "-q", "--where", "id >= 70000", *login, *tls
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 501
    assert writer_session.execute(f"SELECT payload FROM {table} WHERE id = 70499").one()[0] == (
        "cli 499"
    )
    wrong = rxcql_command("count", "-t", table, *login, *tls, password="not-the-password")
    assert wrong.returncode == 2
    assert "cannot connect" in wrong.stderr
    assert "Bad credentials" in wrong.stderr
    plain = rxcql_command("count", "-t", table, *login, "--connect-timeout", "5")
    assert plain.returncode == 2
    assert "cannot connect" in plain.stderr
