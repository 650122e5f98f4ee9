"""A simulated cluster for the adaptive-concurrency tests: a queue with ``servers`` parallel
servers taking ``service`` seconds per request (so latency is flat up to ``servers`` requests in
flight, then rises with them while throughput stays at ``servers / service``), which answers
``Overloaded`` at once when more than ``reject_above`` requests are in it.

It runs on the manual clock of :class:`rxcql.testing.FakeSession` as a discrete-event
simulation: :func:`simulate` moves the clock to the next completion or timer and fires it, on
the test's thread, until the stream ends. No sleeps, no threads; a run of 100,000 requests takes
a second or two.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from cassandra.protocol import OverloadedErrorMessage

from rxcql.testing import FakeResponseFuture, FakeSession, RecordingObserver


class QueueModelSession(FakeSession):
    """``servers`` and ``reject_above`` may be callables of the clock's time (a cluster whose
    capacity changes during the run)."""

    def __init__(
        self,
        servers: int | Callable[[float], int],
        service: float,
        reject_above: int | Callable[[float], int | None] | None = None,
    ) -> None:
        super().__init__(mode="manual", clock="manual")
        self._servers = servers if callable(servers) else (lambda _now: servers)
        self._reject = reject_above if callable(reject_above) else (lambda _now: reject_above)
        self.service = service
        self._busy = 0
        self._queue: deque[FakeResponseFuture] = deque()
        self._events: list[tuple[float, int, FakeResponseFuture, bool]] = []
        self._order = itertools.count()
        self.overloaded = 0
        #: (time, requests in the system) after each arrival: what the cluster saw.
        self.load: list[tuple[float, int]] = []
        #: When each served request finished.
        self.finished: list[float] = []

    def _schedule(self, future: FakeResponseFuture, holding: bool = True) -> None:
        now = self.now
        in_system = self._busy + len(self._queue)
        reject = self._reject(now)
        if reject is not None and in_system >= reject:
            self.overloaded += 1
            due = now + self.service / 10
            heapq.heappush(self._events, (due, next(self._order), future, False))
            return
        self.load.append((now, in_system + 1))
        if self._busy < self._servers(now):
            self._start(future)
        else:
            self._queue.append(future)

    def _start(self, future: FakeResponseFuture) -> None:
        self._busy += 1
        heapq.heappush(self._events, (self.now + self.service, next(self._order), future, True))

    def step(self) -> bool:
        """Fire the next event (a completion or a timer); False if there is none."""
        next_completion = self._events[0][0] if self._events else None
        next_timer = self._timers[0][0] if self._timers else None
        if next_completion is None and next_timer is None:
            return False
        if next_timer is not None and (next_completion is None or next_timer <= next_completion):
            self.advance(max(0.0, next_timer - self.now))
            return True
        when, _, future, served = heapq.heappop(self._events)
        self.now = max(self.now, when)
        if served:
            self.finished.append(self.now)
            self._busy -= 1
            while self._queue and self._busy < self._servers(self.now):
                self._start(self._queue.popleft())
            future.set_result([future.parameters])
        else:
            future.set_exception(OverloadedErrorMessage(0x1001, "simulated overload", None))
        return True


def simulate(session: QueueModelSession, observable: Any, limit_events: int = 10_000_000) -> Any:
    """Subscribe to ``observable`` and run the simulation until its stream ends; the
    :class:`RecordingObserver` (and, through ``observer.run``, the run handle)."""
    observer = RecordingObserver()
    run, _ = observable._launch(observer)  # the run handle of a plain (auto-demand) subscribe
    observer.run = run  # type: ignore[attr-defined]
    for _ in range(limit_events):
        if observer.done:
            return observer
        if not session.step():
            break
    raise AssertionError(f"the run did not end (done={observer.done}, no event left)")
