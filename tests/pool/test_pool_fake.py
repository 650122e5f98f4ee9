"""ProcessPool with fake sessions in its workers: ordering, one result per statement, errors,
backpressure and shutdown, without a node (tests/integration/test_pool.py runs it on one)."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import rxcql
from rxcql import InvalidItemError, ProcessPool, TooManyErrorsError, WorkerError

from .fakes import (
    BecomesALock,
    Unrebuildable,
    connect_closed,
    connect_fake,
    connect_picky,
    connect_refused,
    connect_slow,
)

INSERT = "INSERT INTO t (k, v) VALUES (?, ?)"


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    with ProcessPool(connect_fake, processes=2, chunk_size=100) as started:
        yield started


def drain(observable: Any, seen: list[int]) -> None:
    """Iterate ``observable`` to its end (or error), recording each result's index."""
    for result in rxcql.iterate(observable):
        seen.append(result.index)


def rows(n: int, fail_at: int = -1) -> Iterator[tuple[str, tuple[int, str]]]:
    for i in range(n):
        yield INSERT, (i, "fail" if i == fail_at else "ok")


def test_every_statement_has_one_result_in_input_order(pool: ProcessPool) -> None:
    results = list(rxcql.iterate(pool.execute(rows(5_000), raise_on_first_error=False)))
    assert [r.index for r in results] == list(range(5_000))
    assert all(r.success for r in results)
    # The fake answers each statement with its parameters as its one row: a plain tuple.
    assert results[1234].result_or_exc == [(1234, "ok")]


def test_unordered_results_each_once(pool: ProcessPool) -> None:
    results = list(rxcql.iterate(pool.execute(rows(3_000), ordered=False)))
    assert sorted(r.index for r in results) == list(range(3_000))
    assert all(r.result_or_exc == [(r.index, "ok")] for r in results)


def test_failures_in_place(pool: ProcessPool) -> None:
    results = list(rxcql.iterate(pool.execute(rows(1_000, 777), raise_on_first_error=False)))
    assert len(results) == 1_000
    failed = [r for r in results if not r.success]
    assert [r.index for r in failed] == [777]
    assert "refused on purpose" in str(failed[0].result_or_exc)


def test_first_error_ends_the_stream_after_every_result_before_it(pool: ProcessPool) -> None:
    seen: list[int] = []
    with pytest.raises(Exception, match="refused on purpose"):
        drain(pool.execute(rows(2_000, 1_234)), seen)
    assert seen == list(range(1_234))


def test_max_errors(pool: ProcessPool) -> None:
    def failing() -> Iterator[tuple[str, tuple[int, str]]]:
        for i in range(2_000):
            yield INSERT, (i, "fail" if i % 10 == 0 else "ok")

    with pytest.raises(TooManyErrorsError):
        list(rxcql.iterate(pool.execute(failing(), raise_on_first_error=False, max_errors=5)))


def test_a_malformed_item_is_a_clear_error_after_the_results_before_it(pool: ProcessPool) -> None:
    def items() -> Iterator[Any]:
        yield from rows(250)
        yield "not a pair"

    seen: list[int] = []
    with pytest.raises(InvalidItemError, match="item 250"):
        drain(pool.execute(items()), seen)
    assert seen == list(range(250))


def test_a_statement_that_is_not_text_is_named(pool: ProcessPool) -> None:
    from cassandra.query import SimpleStatement

    with pytest.raises(InvalidItemError, match="not CQL text"):
        list(rxcql.iterate(pool.execute([(SimpleStatement("SELECT 1"), (1, "x"))])))


def test_an_input_iterator_that_raises(pool: ProcessPool) -> None:
    def items() -> Iterator[Any]:
        yield from rows(150)
        raise KeyError("the input broke")

    seen: list[int] = []
    with pytest.raises(KeyError, match="the input broke") as raised:
        drain(pool.execute(items()), seen)
    assert seen == list(range(150))
    assert "pulled 150 statements" in " ".join(raised.value.__notes__)


def test_empty_input(pool: ProcessPool) -> None:
    assert list(rxcql.iterate(pool.execute([]))) == []


def test_drop_in_shape(pool: ProcessPool) -> None:
    results = pool.execute_concurrent_with_args(INSERT, [(1, "a"), (2, "b")])
    assert [tuple(r) for r in results] == [(True, [(1, "a")]), (True, [(2, "b")])]


class _Recorder(list[int]):
    """A list whose append calls ``hook`` (to act in the middle of a run)."""

    def __init__(self, hook: Any) -> None:
        super().__init__()
        self._hook = hook

    def append(self, index: int) -> None:
        self._hook(index)


async def _collect(observable: Any) -> list[Any]:
    return await rxcql.collect(observable)


def test_asyncio_and_subscribe(pool: ProcessPool) -> None:
    import asyncio

    results = asyncio.run(_collect(pool.execute(rows(500))))
    assert [r.index for r in results] == list(range(500))
    done = threading.Event()
    received: list[int] = []
    pool.execute(rows(500)).subscribe(
        on_next=lambda r: received.append(r.index), on_completed=done.set
    )
    assert done.wait(30)
    assert received == list(range(500))


def test_a_paused_consumer_bounds_what_is_read(pool: ProcessPool) -> None:
    pulled = 0

    def items() -> Iterator[tuple[str, tuple[int, str]]]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield INSERT, (i, "ok")

    with rxcql.iterate(pool.execute(items())) as results:
        for _ in range(10):
            next(results)
        # Paused: wait until reading stops (it must, long before the million).
        last, deadline = -1, time.monotonic() + 20
        while pulled != last and time.monotonic() < deadline:
            last = pulled
            time.sleep(0.3)
    # Chunks out (2 workers x 2) plus the parent's window of chunks, of 100 statements each.
    bound = (2 * 2 + 2 * 2 * 2 + 1) * 100
    assert 10 < pulled <= bound, pulled


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="picklable"):
        ProcessPool(lambda: None, processes=1)
    with pytest.raises(ValueError, match="never forks"):
        ProcessPool(connect_fake, processes=1, start_method="fork")
    with pytest.raises(ValueError, match="processes"):
        ProcessPool(connect_fake, processes=0)


def test_keywords_the_pool_does_not_take(pool: ProcessPool) -> None:
    with pytest.raises(TypeError, match="does not take progress"):
        pool.execute(rows(1), progress=lambda progress: None)
    with pytest.raises(ValueError, match="concurrency"):
        pool.execute(rows(1), concurrency=0)


def test_connect_failure_is_named() -> None:
    with pytest.raises(WorkerError, match=r"connect\(\) failed .*no node here"):
        ProcessPool(connect_refused, processes=1)


def test_a_killed_worker_is_an_error_naming_its_chunks_never_a_hang() -> None:
    with ProcessPool(connect_slow, processes=2, chunk_size=50) as pool:
        seen: list[int] = []

        def kill_at_200(index: int) -> None:
            seen.append(index)
            if len(seen) == 200:
                os.kill(pool.pids[1], signal.SIGKILL)

        with pytest.raises(WorkerError, match=r"worker \d \(pid \d+\) died \(signal SIGKILL\)"):
            drain(pool.execute(rows(100_000), concurrency=10), _Recorder(kill_at_200))
        with pytest.raises(rxcql.RxcqlError, match="lost a worker"):
            list(rxcql.iterate(pool.execute(rows(10))))


def test_closing_the_pool_ends_a_run_and_stops_the_workers() -> None:
    pool = ProcessPool(connect_slow, processes=2, chunk_size=50)
    pids = pool.pids
    results = rxcql.iterate(pool.execute(rows(100_000)))
    next(results)
    pool.close()
    with pytest.raises(rxcql.RxcqlError, match="closed"):
        list(results)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_dropped_pool_stops_its_workers() -> None:
    pool = ProcessPool(connect_fake, processes=1)
    pid = pool.pids[0]
    del pool
    gc.collect()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_ctrl_c_stops_the_parent_and_its_workers() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.pool.interrupted"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        pids = [int(p) for p in child.stdout.readline().split()]
        assert child.stdout.readline().strip() == "running"
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
            time.sleep(2)  # for the dump to be written (the child does not exit)
            child.kill()
            _, err = child.communicate(timeout=30)
            pytest.fail(f"the interrupted parent did not exit within 60 s; its threads:\n{err}")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
    assert child.returncode != 3
    assert "KeyboardInterrupt" in err
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_rows_that_cannot_cross_fail_their_statement_and_the_pool_goes_on(
    pool: ProcessPool,
) -> None:
    items = [(INSERT, (i, BecomesALock() if i == 150 else "ok")) for i in range(300)]
    results = list(rxcql.iterate(pool.execute(items, raise_on_first_error=False)))
    assert [r.index for r in results] == list(range(300))
    assert [r.index for r in results if not r.success] == [150]
    assert "cannot cross to the parent process" in str(results[150].result_or_exc)
    assert len(list(rxcql.iterate(pool.execute(rows(500))))) == 500


def test_parameters_a_worker_cannot_rebuild_fail_their_chunk_only(pool: ProcessPool) -> None:
    items = [(INSERT, (i, Unrebuildable() if i == 150 else "ok")) for i in range(300)]
    results = list(rxcql.iterate(pool.execute(items, raise_on_first_error=False)))
    assert [r.index for r in results] == list(range(300))
    # Chunks of 100: the one holding statement 150 fails as a whole, the others run.
    assert [r.index for r in results if not r.success] == list(range(100, 200))
    assert "cannot rebuild this here" in str(results[150].result_or_exc)
    assert len(list(rxcql.iterate(pool.execute(rows(500))))) == 500


def test_only_the_statements_whose_text_does_not_prepare_fail() -> None:
    with ProcessPool(connect_picky, processes=2, chunk_size=10) as picky:
        items = [("BAD x" if i % 7 == 3 else INSERT, (i, "ok")) for i in range(200)]
        results = list(rxcql.iterate(picky.execute(items, raise_on_first_error=False)))
    assert [r.index for r in results] == list(range(200))
    assert [r.index for r in results if not r.success] == [i for i in range(200) if i % 7 == 3]
    assert all(r.result_or_exc == [(r.index, "ok")] for r in results if r.success)
    assert "no viable alternative" in str(results[3].result_or_exc)


def test_a_chunk_of_one_text_that_does_not_prepare_fails_whole_and_alone() -> None:
    # Chunks of one CQL text cross as (text, parameters): a failed prepare fails every
    # statement of that chunk (and no other), each with the error.
    with ProcessPool(connect_picky, processes=1, chunk_size=10) as picky:
        items = [("BAD y" if 10 <= i < 20 else INSERT, (i, "ok")) for i in range(30)]
        results = list(rxcql.iterate(picky.execute(items, raise_on_first_error=False)))
    assert [r.index for r in results] == list(range(30))
    assert [r.index for r in results if not r.success] == list(range(10, 20))
    assert all("no viable alternative" in str(r.result_or_exc) for r in results[10:20])
    assert all(r.result_or_exc == [(r.index, "ok")] for r in results if r.success)


def test_a_run_that_cannot_start_in_the_workers_ends_with_its_error() -> None:
    def slow_input() -> Iterator[tuple[str, tuple[int, str]]]:
        # Read after the workers have answered that the job failed.
        time.sleep(0.5)
        yield from rows(50)

    with (
        ProcessPool(connect_closed, processes=1, chunk_size=10) as closed,
        pytest.raises(rxcql.SessionClosedError),
    ):
        list(rxcql.iterate(closed.execute(slow_input())))


def test_an_observable_keeps_its_pool_alive() -> None:
    def start() -> Any:
        dropped = ProcessPool(connect_fake, processes=1, chunk_size=100)
        return rxcql.iterate(dropped.execute(rows(3_000)))

    results = start()
    gc.collect()
    assert sum(1 for _ in results) == 3_000
