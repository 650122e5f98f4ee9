"""Retries against the real node: a retried write keeps its client timestamp, so it cannot win
over a write sent after it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cassandra import OperationTimedOut
from cassandra.cluster import Session

import rxcql
from rxcql import Retry

pytestmark = pytest.mark.integration


class LostAnswer:
    """The session, except that the first attempt of one statement loses its answer: it is sent
    and applied, but rxcql hears ``OperationTimedOut`` (as when a response is late).

    Everything else, the driver's request steps included, is the session's own (delegated)."""

    def __init__(self, session: Session, lose: Callable[[Any, Any], bool]) -> None:
        self._session = session
        self._lose = lose
        self.lost = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def execute_async(self, query: Any, parameters: Any = None, **kwargs: Any) -> Any:
        future = self._session.execute_async(query, parameters, **kwargs)
        if self.lost.is_set() or not self._lose(query, parameters):
            return future
        self.lost.set()
        future.result()  # applied on the server, with this attempt's client timestamp
        return _TimedOut(future.message)


class _TimedOut:
    """A future whose answer was lost; its request (``message``) is the one that was sent."""

    def __init__(self, message: Any) -> None:
        self.message = message

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple[Any, ...] = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> None:
        errback(OperationTimedOut("the answer was lost"), *errback_args, **(errback_kwargs or {}))


def test_a_retried_write_does_not_win_over_a_later_one(session: Session) -> None:
    table = f"retry_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE TABLE {table} (k int PRIMARY KEY, v text)")
    insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
    insert.is_idempotent = True
    # Statement 5 writes k=1 "old" and hears a timeout; statement 50 writes k=1 "new" and
    # succeeds at once; statement 5's retry comes 0.3 s later. Input order says "new" stays.
    params = [(100 + i, "filler") for i in range(100)]
    params[5] = (1, "old")
    params[50] = (1, "new")
    lossy = LostAnswer(session, lambda query, values: values is not None and values == (1, "old"))
    results = rxcql.execute_concurrent_with_args(
        lossy, insert, params, retry=Retry(attempts=3, base_delay=0.3, jitter=False)
    )
    assert lossy.lost.is_set()
    assert all(ok for ok, _ in results)
    row = session.execute(f"SELECT v, writetime(v) FROM {table} WHERE k = 1").one()
    assert row[0] == "new"
