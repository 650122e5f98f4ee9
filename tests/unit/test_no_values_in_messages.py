"""rxcql's own log records and exception messages never carry bound values: a failing run
whose every value holds a marker is searched for it, in every record of every logger at DEBUG
and in the message of every exception rxcql raises or reports. (The failed log is the one place
values are written, by the user's choice: it is checked to hold them.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cassandra import OperationTimedOut

import rxcql
from rxcql.testing import FakeSession

MARKER = "SECRET-MARKER-5e1f"


def rxcql_exceptions(error: BaseException | None) -> list[BaseException]:
    """``error`` and its causes and contexts that are rxcql's own."""
    found: list[BaseException] = []
    while error is not None and error not in found:
        found.append(error)
        error = error.__cause__ or error.__context__
    return [e for e in found if isinstance(e, rxcql.RxcqlError)]


def test_no_marker_in_records_or_messages(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)

    def fail(index: int, query: Any, parameters: Any) -> BaseException | None:
        if parameters[0] % 3 == 0:
            return OperationTimedOut("slow")  # type: ignore[no-any-return]
        return None

    failed_log = tmp_path / "failed.jsonl"
    raised: list[BaseException] = []
    with FakeSession(mode="thread", fail=fail) as session:
        # Failures in place, retried, then too many of them.
        with pytest.raises(rxcql.TooManyErrorsError) as too_many:
            list(
                rxcql.iterate(
                    rxcql.execute(
                        session,
                        ((f"INSERT {i}", (i, MARKER)) for i in range(300)),
                        raise_on_first_error=False,
                        max_errors=5,
                        retry=rxcql.Retry(attempts=2, base_delay=0.001, idempotent_only=False),
                        failed_log=failed_log,
                        progress=lambda p: None,
                    )
                )
            )
        raised.append(too_many.value)
        # A malformed item holding the marker.
        with pytest.raises(rxcql.InvalidItemError) as malformed:
            rxcql.execute_concurrent(session, [("INSERT", (1, MARKER)), ("INSERT", MARKER, 3)])
        raised.append(malformed.value)
        with pytest.raises(rxcql.InvalidItemError) as bad_parameters:
            rxcql.execute_concurrent(session, [("INSERT", MARKER)])
        raised.append(bad_parameters.value)
        # A failed log that cannot be written: the run fails, saying so without values.
        with pytest.raises(IsADirectoryError) as unwritable:
            rxcql.execute_concurrent(
                session, [("INSERT", (1, MARKER))], failed_log=tmp_path, raise_on_first_error=False
            )
        raised.append(unwritable.value)
    for error in raised:
        for own in rxcql_exceptions(error):
            assert MARKER not in str(own), own
            assert all(MARKER not in note for note in getattr(own, "__notes__", []))
    assert MARKER not in caplog.text
    for record in caplog.records:
        assert MARKER not in record.getMessage()
        assert MARKER not in str(record.args)
    # The failed log, the user's choice, holds the values.
    assert MARKER in failed_log.read_text()
