"""The ways a user can run many statements, each verifying its own results.

Every contender gets the same :class:`Workload` and input, runs it to the end and checks what it
got: the number of results, that every statement succeeded, and that result ``i`` belongs to
statement ``i`` (the workload's ``check``). A contender that loses, reorders or fails a statement
raises :class:`WrongResultsError`, so a broken contender cannot produce a fast number.

List modes return their results and are checked after the clock stops; streaming consumers check
each result inside their loop (a comparison and two attribute reads, the same for all of them).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import cassandra.concurrent
from cassandra.cluster import ResultSet

import rxcql

#: How long any contender may take before the run is declared hung.
RUN_TIMEOUT = 1800.0

#: ``check(future, rows, i)``: do these rows (of this future) belong to statement ``i``?
Check = Callable[[Any, Any, int], bool]


class WrongResultsError(AssertionError):
    """A contender produced a wrong count, a failure, or a result in the wrong place."""


@dataclass
class Workload:
    """One thing to run: ``n`` statements at ``concurrency``, with a way to check each result."""

    session: Any
    statement: Any
    n: int
    concurrency: int
    parameters: Callable[[int], Any]
    check: Check
    input_kind: Literal["list", "generator"] = "list"
    #: Called before each run, untimed (the bulk part deletes the keys it will read back).
    before: Callable[[], None] | None = None
    #: Called after each run, untimed, once its results are checked; raises
    #: :class:`WrongResultsError` when the run left the table wrong (rows read back).
    after: Callable[[], None] | None = None
    _items: list[tuple[Any, Any]] | None = field(default=None, repr=False)
    _parameters: list[Any] | None = field(default=None, repr=False)

    def items(self) -> Iterable[tuple[Any, Any]]:
        """Fresh input for one run: the same list every time, or a new generator."""
        if self.input_kind == "generator":
            statement, parameters = self.statement, self.parameters
            return ((statement, parameters(i)) for i in range(self.n))
        if self._items is None:
            self._items = [(self.statement, self.parameters(i)) for i in range(self.n)]
        return self._items

    def parameter_list(self) -> list[Any]:
        """The parameters of statements ``0 .. n-1``, one list kept for every run (the input of
        ``execute_concurrent_with_args``)."""
        if self._parameters is None:
            self._parameters = [self.parameters(i) for i in range(self.n)]
        return self._parameters


@dataclass(frozen=True)
class Measured:
    """What a contender that runs in another process (the Java loader) measured there itself:
    the timing of this process would only show it waiting.

    Attributes:
        wall: Wall seconds of the work.
        cpu: CPU seconds of the other process over the work.
    """

    wall: float
    cpu: float


#: What a contender's run returns: the list of results to check after timing, None when it
#: checked every result itself while streaming, or what another process measured (it checked
#: its own results).
Outcome = list[Any] | Measured | None
RunFn = Callable[[Workload, Iterable[tuple[Any, Any]]], Outcome]


@dataclass(frozen=True)
class Contender:
    """One way of running a workload.

    Attributes:
        key: short identifier (``--contenders`` and JSON keys).
        label: what the table shows.
        baseline: key of the driver contender this one is compared with ("same mode").
        run: runs one workload; see :data:`RunFn`.
        available: False when the installed rxcql lacks the API (shown as n/a).
        reason: Why it is not available, when it is not.
    """

    key: str
    label: str
    baseline: str | None
    run: RunFn
    available: bool = True
    reason: str = ""


def _fail(message: str) -> WrongResultsError:
    return WrongResultsError(message)


def verify_list(workload: Workload, results: list[Any]) -> None:
    """Check a list of ``(success, ResultSet)`` pairs against the workload."""
    if len(results) != workload.n:
        raise _fail(f"{len(results)} results for {workload.n} statements")
    check = workload.check
    for i, result in enumerate(results):
        success, value = result[0], result[1]
        if not success:
            raise _fail(f"statement {i} failed: {value!r:.300}")
        if not check(value.response_future, value.current_rows, i):
            raise _fail(f"result {i} does not belong to statement {i}: {value.current_rows!r:.200}")


def _consume(workload: Workload, results: Iterator[Any]) -> None:
    """The streaming consumer's loop: check every result as it comes."""
    check = workload.check
    i = 0
    for success, value in results:
        if not success or not check(value.response_future, value.current_rows, i):
            raise _fail(f"result {i} is a failure or belongs to another statement: {value!r:.300}")
        i += 1
    if i != workload.n:
        raise _fail(f"{i} results for {workload.n} statements")


# -- the floor ------------------------------------------------------------------------------------


class _Refill:
    """A hand-written refill loop: execute_async + add_callbacks, the next one from the callback.

    The cheapest correct way to keep ``concurrency`` statements in flight: no result objects, no
    reordering, nothing kept. It checks each result where it arrives (by the index it was issued
    with) and counts them. Everything else costs more than this.
    """

    __slots__ = (
        "_check",
        "_done",
        "_execute_async",
        "_iterator",
        "_lock",
        "_remaining",
        "count",
        "problem",
    )

    def __init__(self, workload: Workload, items: Iterable[tuple[Any, Any]]) -> None:
        self._execute_async = workload.session.execute_async
        self._check = workload.check
        self._iterator = enumerate(items)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._remaining = 0
        self.count = 0
        self.problem: str | None = None

    def run(self, concurrency: int) -> None:
        with self._lock:
            self._remaining = concurrency
        for _ in range(concurrency):
            self._next(0)
        if not self._done.wait(RUN_TIMEOUT):
            raise _fail("the refill loop did not finish (a lost callback?)")

    def _next(self, completed: int) -> None:
        # One lock round per statement: count the completion, take the next input item.
        with self._lock:
            self.count += completed
            pair = next(self._iterator, None)
            if pair is None:
                self._remaining -= 1
                if self._remaining == 0:
                    self._done.set()
                return
        index, (statement, parameters) = pair
        future = self._execute_async(statement, parameters)
        future.add_callbacks(
            self._ok, self._err, callback_args=(future, index), errback_args=(index,)
        )

    def _ok(self, rows: Any, future: Any, index: int) -> None:
        # As cassandra.concurrent does: the callbacks must not run again (paging) nor keep the
        # future in a reference cycle.
        future.clear_callbacks()
        if self.problem is None and not self._check(future, rows, index):
            self.problem = f"the rows of statement {index} belong to another statement"
        self._next(1)

    def _err(self, exc: Any, index: int) -> None:
        if self.problem is None:
            self.problem = f"statement {index} failed: {exc!r:.300}"
        self._next(1)


def _refill(refill: _Refill, workload: Workload) -> _Refill:
    """Run a refill loop to the end and check what its callbacks saw."""
    refill.run(workload.concurrency)
    if refill.problem is not None:
        raise _fail(refill.problem)
    if refill.count != workload.n:
        raise _fail(f"{refill.count} results for {workload.n} statements")
    return refill


def run_floor(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    _refill(_Refill(workload, items), workload)
    return None


class _RefillKeeping(_Refill):
    """The refill loop that also keeps what a list mode must return: the driver's
    ``ExecutionResult(True, ResultSet)`` of every statement, in input order (stored by index).

    The least any list mode can cost: building and keeping a ResultSet per statement, and the
    garbage collector's work on everything that keeps alive, are part of the job.
    """

    __slots__ = ("results",)

    def __init__(self, workload: Workload, items: Iterable[tuple[Any, Any]]) -> None:
        super().__init__(workload, items)
        self.results: list[Any] = [None] * workload.n

    def _ok(self, rows: Any, future: Any, index: int) -> None:
        future.clear_callbacks()
        self.results[index] = cassandra.concurrent.ExecutionResult(True, ResultSet(future, rows))
        self._next(1)


def run_floor_list(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    refill = _RefillKeeping(workload, items)
    _refill(refill, workload)
    return refill.results


# -- cassandra.concurrent -------------------------------------------------------------------------


def run_driver_list(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    return list(
        cassandra.concurrent.execute_concurrent(
            workload.session, items, concurrency=workload.concurrency
        )
    )


def run_driver_generator(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    _consume(
        workload,
        cassandra.concurrent.execute_concurrent(
            workload.session, items, concurrency=workload.concurrency, results_generator=True
        ),
    )
    return None


# -- rxcql ----------------------------------------------------------------------------------------


def run_rxcql_list(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    return rxcql.execute_concurrent(workload.session, items, concurrency=workload.concurrency)


def run_rxcql_generator(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    with rxcql.execute_concurrent(
        workload.session, items, concurrency=workload.concurrency, results_generator=True
    ) as results:
        _consume(workload, results)
    return None


class _CheckingObserver:
    """on_next checks each result where it is emitted (the IO thread); the end sets an event."""

    def __init__(self, workload: Workload) -> None:
        self.check = workload.check
        self.count = 0
        self.problem: str | None = None
        self.done = threading.Event()

    def on_next(self, result: rxcql.ExecutionResult) -> None:
        i = self.count
        value = result.result_or_exc
        if self.problem is None and (
            not result.success or not self.check(value.response_future, value.current_rows, i)
        ):
            self.problem = (
                f"result {i} is a failure or belongs to another statement: {value!r:.300}"
            )
        self.count = i + 1

    def on_error(self, error: Exception) -> None:
        self.problem = f"the stream failed: {error!r:.300}"
        self.done.set()

    def on_completed(self) -> None:
        self.done.set()


def subscribe_checked(workload: Workload, observable: Any) -> None:
    """Subscribe an observer that checks every result where it is emitted; wait for the end."""
    observer = _CheckingObserver(workload)
    observable.subscribe(observer.on_next, observer.on_error, observer.on_completed)
    if not observer.done.wait(RUN_TIMEOUT):
        raise _fail("rxcql.execute(...) did not complete")
    if observer.problem is not None:
        raise _fail(observer.problem)
    if observer.count != workload.n:
        raise _fail(f"{observer.count} results for {workload.n} statements")


def run_rxcql_subscribe(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    subscribe_checked(
        workload, rxcql.execute(workload.session, items, concurrency=workload.concurrency)
    )
    return None


def run_asyncio_iterate(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    aiterate: Any = getattr(rxcql, "aiterate")  # noqa: B009 - may be absent from this rxcql

    async def main() -> None:
        check = workload.check
        i = 0
        observable = rxcql.execute(workload.session, items, concurrency=workload.concurrency)
        async for success, value in aiterate(observable):
            if not success or not check(value.response_future, value.current_rows, i):
                raise _fail(f"result {i} is a failure or belongs to another statement")
            i += 1
        if i != workload.n:
            raise _fail(f"{i} results for {workload.n} statements")

    asyncio.run(main())
    return None


def run_asyncio_collect(workload: Workload, items: Iterable[tuple[Any, Any]]) -> Outcome:
    collect: Any = getattr(rxcql, "collect")  # noqa: B009 - may be absent from this rxcql

    async def main() -> list[Any]:
        observable = rxcql.execute(workload.session, items, concurrency=workload.concurrency)
        return list(await collect(observable))

    return asyncio.run(main())


FLOOR = "floor"
FLOOR_LIST = "floor_list"
DRIVER_LIST = "driver_list"
DRIVER_GEN = "driver_gen"


def all_contenders() -> list[Contender]:
    """Every contender, in table order; the asyncio ones are n/a when rxcql lacks them."""
    has_aiterate = hasattr(rxcql, "aiterate")
    has_collect = hasattr(rxcql, "collect")
    return [
        Contender(FLOOR, "refill loop: execute_async + add_callbacks (floor)", None, run_floor),
        Contender(
            FLOOR_LIST,
            "the same refill loop, keeping ExecutionResult(True, ResultSet) by index (list floor)",
            None,
            run_floor_list,
        ),
        Contender(DRIVER_LIST, "cassandra.concurrent.execute_concurrent", None, run_driver_list),
        Contender(
            DRIVER_GEN,
            "cassandra.concurrent.execute_concurrent(results_generator=True)",
            None,
            run_driver_generator,
        ),
        Contender("rxcql_list", "rxcql.execute_concurrent", DRIVER_LIST, run_rxcql_list),
        Contender(
            "rxcql_gen",
            "rxcql.execute_concurrent(results_generator=True)",
            DRIVER_GEN,
            run_rxcql_generator,
        ),
        Contender(
            "rxcql_subscribe",
            "rxcql.execute(...).subscribe(observer)",
            DRIVER_LIST,
            run_rxcql_subscribe,
        ),
        Contender(
            "asyncio_iterate",
            "async for r in rxcql.aiterate(rxcql.execute(...))",
            DRIVER_GEN,
            run_asyncio_iterate,
            available=has_aiterate,
        ),
        Contender(
            "asyncio_collect",
            "await rxcql.collect(rxcql.execute(...))",
            DRIVER_LIST,
            run_asyncio_collect,
            available=has_collect,
        ),
    ]
