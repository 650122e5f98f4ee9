"""A lean zero-latency fake session, for measuring client-side cost only.

``rxcql.testing.FakeSession`` is built for correctness tests (scripted orders, failures, paging)
and costs more per statement than the libraries being measured. This one has only what
``cassandra.concurrent`` and rxcql touch, with the driver's callback semantics:

* ``execute_async`` returns a :class:`LeanFuture` and queues it for the completion thread;
* a callback added after completion runs at once, inside ``add_callbacks``, on the caller's thread;
  otherwise it runs on the completion thread (the stand-in for the driver's IO thread);
* ``clear_callbacks``, ``has_more_pages``, ``_col_names``, ``_col_types`` and
  ``_continuous_paging_session`` are there for ``cassandra.cluster.ResultSet``.

One completion thread completes queued futures in order, as soon as possible (``latency=0``) or
``latency`` seconds after they were issued. The first statement can be held back for
``first_delay`` seconds (head-of-line blocking). Every future's rows are ``[parameters]``, so a
consumer can check that result ``i`` belongs to statement ``i``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

_PENDING: Any = object()
_Callback = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class LeanFuture:
    """The part of ``cassandra.cluster.ResponseFuture`` that the contenders use."""

    __slots__ = ("_callbacks", "_errbacks", "_lock", "_result", "due", "parameters", "query")

    _col_names: Any = None
    _col_types: Any = None
    _continuous_paging_session: Any = None
    has_more_pages = False

    def __init__(self, query: Any, parameters: Any, due: float) -> None:
        self.query = query
        self.parameters = parameters
        self.due = due
        self._lock = threading.Lock()
        self._result: Any = _PENDING
        self._callbacks: list[_Callback] = []
        self._errbacks: list[_Callback] = []

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple[Any, ...] = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            result = self._result
            if result is _PENDING:
                self._callbacks.append((callback, callback_args, callback_kwargs or {}))
                self._errbacks.append((errback, errback_args, errback_kwargs or {}))
                return
        # Already complete: run now, on the caller's thread, like the driver.
        callback(result, *callback_args, **(callback_kwargs or {}))

    def clear_callbacks(self) -> None:
        with self._lock:
            self._callbacks = []
            self._errbacks = []

    def complete(self) -> None:
        """Set the result (``[parameters]``) and run the callbacks, on the calling thread."""
        rows = [self.parameters]
        with self._lock:
            self._result = rows
            callbacks = self._callbacks
        for fn, args, kwargs in callbacks:
            fn(rows, *args, **kwargs)


class LeanSession:
    """``execute_async`` over :class:`LeanFuture`, completed by one background thread.

    Args:
        latency: seconds between issuing and completing each future (0: as soon as possible).
        first_delay: seconds the very first statement takes instead (0: like the others).
    """

    is_shutdown = False

    def __init__(self, latency: float = 0.0, first_delay: float = 0.0) -> None:
        self._latency = latency
        self._first_delay = first_delay
        self._queue: SimpleQueue[LeanFuture | None] = SimpleQueue()
        self._counter = itertools.count()
        self._issued = 0
        self._thread = threading.Thread(
            target=self._complete_loop if latency <= 0 else self._complete_loop_timed,
            name="lean-fake-io",
            daemon=True,
        )
        self._thread.start()

    @property
    def issued(self) -> int:
        """How many statements were issued so far (approximate while a run is going on)."""
        return self._issued

    def execute_async(
        self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any
    ) -> LeanFuture:
        index = next(self._counter)  # atomic under the GIL: execute_async runs on two threads
        self._issued = index + 1
        if index == 0 and self._first_delay > 0:
            future = LeanFuture(query, parameters, 0.0)
            timer = threading.Timer(self._first_delay, future.complete)
            timer.daemon = True
            timer.start()
            return future
        due = time.perf_counter() + self._latency if self._latency > 0 else 0.0
        future = LeanFuture(query, parameters, due)
        self._queue.put(future)
        return future

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """What the driver's executor uses after deep synchronous-error recursion."""
        threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True).start()

    def _complete_loop(self) -> None:
        get = self._queue.get
        while True:
            future = get()
            if future is None:
                return
            future.complete()

    def _complete_loop_timed(self) -> None:
        get = self._queue.get
        clock = time.perf_counter
        while True:
            future = get()
            if future is None:
                return
            wait = future.due - clock()
            if wait > 0:
                time.sleep(wait)
            future.complete()

    def shutdown(self) -> None:
        """Stop the completion thread once the futures queued so far are completed."""
        self._queue.put(None)
        self._thread.join()
