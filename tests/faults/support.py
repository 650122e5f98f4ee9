"""Helpers shared by the fault-injection tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
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
    session: Any,
    items: Iterable[Any],
    *,
    timeout: float = 60.0,
    observer: RecordingObserver | None = None,
    **options: Any,
) -> RecordingObserver:
    """Subscribe ``observer`` (a new one by default) to ``rxcql.execute(session, items,
    **options)`` and wait for the stream's end.

    Raises:
        TimeoutError: The stream did not end within ``timeout`` seconds (a hang).
    """
    observer = observer if observer is not None else RecordingObserver()
    subscription = rxcql.execute(session, items, **options).subscribe(observer)
    try:
        observer.wait(timeout)
    finally:
        subscription.dispose()
    return observer


def payload(i: int) -> str:
    """The payload column of row ``i`` in the real-node tests' ``rows (id, payload)`` tables."""
    return f"payload-{i}"


def inserts(insert: Any, count: int) -> Iterator[tuple[Any, tuple[int, str]]]:
    """``(insert, (i, payload(i)))`` for ``i`` in ``range(count)``, from a generator."""
    return ((insert, (i, payload(i))) for i in range(count))


def failures(observer: RecordingObserver) -> dict[int, BaseException]:
    """Input position -> exception, for every failed result delivered."""
    return {r.index: r.result_or_exc for r in observer.items if not r.success}


@contextlib.contextmanager
def fault_after(
    index: int, fault: Callable[[RecordingObserver], object], *, join: float = 120.0
) -> Iterator[RecordingObserver]:
    """Inject a fault once result ``index`` has been delivered.

    Yields an observer to subscribe; when it receives the result at input position ``index``,
    ``fault(observer)`` runs on a thread of its own (so it may block: pause a node, sleep, resume)
    while the stream goes on. On leaving the block, a fault not yet triggered never runs, and one
    running is waited for up to ``join`` seconds.
    """
    reached = threading.Event()
    abandoned = False
    observer = RecordingObserver(on_item=lambda r: reached.set() if r.index == index else None)

    def inject() -> None:
        reached.wait()
        if not abandoned:
            fault(observer)

    thread = threading.Thread(target=inject, name=f"fault-after-{index}", daemon=True)
    thread.start()
    try:
        yield observer
    finally:
        abandoned = not reached.is_set()
        reached.set()
        thread.join(join)
