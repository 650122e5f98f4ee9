"""A blocking iterator over ``rxcql.execute(...)``: the consumer's pace decides the issuing.

The IO thread only appends to the mailbox and wakes the consumer when it was empty; the consumer
acknowledges what it has taken, and only acknowledged results free window credits. So at most
``window`` statements are ever issued ahead of the loop that reads them, however slow it is.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from types import TracebackType

from ._delivery import Mailbox, ack_interval
from ._engine import ExecuteObservable, _Run
from ._results import ExecutionResult
from ._threads import ensure_not_io_thread


class ResultIterator(Iterator[ExecutionResult]):
    """Iterate the results of :func:`rxcql.execute` on the calling thread, with backpressure.

    Results come in the order the observable gives them (input order unless ``ordered=False``).
    With ``raise_on_first_error=True`` the first failure is raised from ``next()`` when the
    consumer reaches it, after every result before it.

    The loop body may block, sleep or run synchronous queries on the same session: results are
    delivered on the consumer's thread, never on the driver's IO thread. :meth:`close` (or leaving
    a ``with`` block, or dropping the iterator) stops the issuing of statements at once.

    Raises:
        IOThreadBlockingError: (on creation) when created on the driver's IO thread.
    """

    def __init__(self, observable: ExecuteObservable) -> None:
        ensure_not_io_thread("iterating rxcql results")
        options = observable.options
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False
        self._mailbox = Mailbox(self._wake)
        self._local: deque[ExecutionResult] = deque()
        self._ack_every = ack_interval(options.window, options.concurrency)
        self._unacked = 0
        self._ended = False
        self._run: _Run | None = observable.subscribe_with_demand(self._mailbox)

    def _wake(self) -> None:
        # On the emitting thread (usually the IO thread): never blocks beyond this short lock.
        with self._cond:
            if self._waiting:
                self._cond.notify()

    def __iter__(self) -> ResultIterator:
        return self

    def __next__(self) -> ExecutionResult:
        local = self._local
        if not local:
            self._refill()
        item = local.popleft()
        self._unacked += 1
        if self._unacked >= self._ack_every:
            self._acknowledge()
        return item

    def _acknowledge(self) -> None:
        run = self._run
        if self._unacked and run is not None:
            run.request(self._unacked)
        self._unacked = 0

    def _refill(self) -> None:
        if self._ended:
            raise StopIteration
        # Give back the credits of what was consumed before waiting for more.
        self._acknowledge()
        mailbox = self._mailbox
        while True:
            batch, done, error = mailbox.take()
            if batch:
                self._local.extend(batch)
                return
            if done:
                self._ended = True
                self._run = None
                if error is not None:
                    raise error
                raise StopIteration
            with self._cond:
                self._waiting = True
                # An emission after take() calls _wake, which needs this lock: checking and
                # waiting under it cannot miss a wake-up.
                if not mailbox.ready():
                    self._cond.wait()
                self._waiting = False

    def close(self) -> None:
        """Stop: no statement is issued after this; results not yet read are dropped."""
        if self._ended:
            return
        self._ended = True
        self._local.clear()
        run, self._run = self._run, None
        if run is not None:
            run.dispose()

    def __enter__(self) -> ResultIterator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        run = getattr(self, "_run", None)
        if run is not None:
            run.dispose()

    @property
    def run(self) -> _Run | None:
        """The engine's run handle (``issued``, ``delivered``, ``max_buffered``...), None once
        the iterator has ended."""
        return self._run
