"""Helpers shared by the fault-injection tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import rxcql
from rxcql.testing import RecordingObserver


class CountingSession:
    """Wraps a driver ``Session``: counts statements in flight at the driver, as rxcql sees it.

    The count goes up when ``execute_async`` returns and down in a callback added before
    rxcql's own, so it never runs ahead of rxcql's bookkeeping: ``max_in_flight`` is the most
    requests outstanding at the driver at once.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.executed = 0

    @property
    def is_shutdown(self) -> bool:
        return bool(self._session.is_shutdown)

    @property
    def cluster(self) -> Any:
        return self._session.cluster

    def execute_async(self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        future = self._session.execute_async(query, parameters, *args, **kwargs)
        with self._lock:
            self.executed += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        future.add_callbacks(self._done, self._done)
        return future

    def _done(self, _result: Any) -> None:
        with self._lock:
            self.in_flight -= 1


def run(
    session: Any, items: Iterable[Any], *, timeout: float = 60.0, **options: Any
) -> RecordingObserver:
    """Subscribe to ``rxcql.execute(session, items, **options)`` and wait for its end.

    Raises:
        TimeoutError: The stream did not end within ``timeout`` seconds (a hang).
    """
    observer = RecordingObserver()
    subscription = rxcql.execute(session, items, **options).subscribe(observer)
    try:
        observer.wait(timeout)
    finally:
        subscription.dispose()
    return observer


def failures(observer: RecordingObserver) -> dict[int, BaseException]:
    """Input position -> exception, for every failed result delivered."""
    return {r.index: r.result_or_exc for r in observer.items if not r.success}
