"""rxcql.iterate / aiterate / collect: consumers that pace the engine."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import rxcql
from rxcql.testing import FakeSession


def pairs(n: int) -> Iterator[tuple[str, tuple[int]]]:
    return (("q", (i,)) for i in range(n))


def test_the_blocking_iterator_yields_in_order() -> None:
    with FakeSession("thread", "random", threads=2) as session:
        results = list(rxcql.iterate(rxcql.execute(session, pairs(20_000))))
    assert [r.index for r in results] == list(range(20_000))


def test_the_consumers_pace_decides_how_far_issuing_runs_ahead() -> None:
    with FakeSession("thread") as session:
        results = rxcql.iterate(rxcql.execute(session, pairs(100_000), concurrency=10, window=50))
        for count, _ in enumerate(results, 1):
            if count % 1_000 == 0:
                # Pause: let everything in flight finish, then look at how far it ran ahead.
                assert session.wait_idle(timeout=10)
                assert session.executed <= count + 50
            if count == 5_000:
                break
        results.close()


def test_dropping_the_iterator_stops_the_work() -> None:
    with FakeSession("thread") as session:
        results = rxcql.iterate(rxcql.execute(session, pairs(100_000)))
        next(results)
        del results
        gc.collect()
        assert session.wait_idle(timeout=10)
        assert session.executed <= 1 + 200


def test_iterate_rejects_other_observables() -> None:
    import reactivex

    with pytest.raises(TypeError, match="expected an Observable from rxcql"):
        rxcql.iterate(reactivex.of(1))  # type: ignore[call-overload]


def test_async_iteration_yields_in_order_under_asyncio_run() -> None:
    async def main() -> list[int]:
        with FakeSession("thread", "reversed") as session:
            return [r.index async for r in rxcql.aiterate(rxcql.execute(session, pairs(10_000)))]

    assert asyncio.run(main()) == list(range(10_000))


def test_collect_is_the_awaitable_list_form() -> None:
    async def main() -> list[Any]:
        with FakeSession("thread") as session:
            return await rxcql.collect(rxcql.execute(session, pairs(1_000)))

    results = asyncio.run(main())
    assert [r.result_or_exc.one() for r in results] == [(i,) for i in range(1_000)]


def test_collect_raises_the_streams_error() -> None:
    boom = ValueError("boom")

    async def main() -> None:
        with FakeSession("thread", fail=lambda i, s, p: boom if i == 7 else None) as session:
            await rxcql.collect(rxcql.execute(session, pairs(100)))

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main())


def test_results_are_delivered_on_the_event_loop_thread() -> None:
    async def main() -> set[int]:
        with FakeSession("thread") as session:
            return {
                threading.get_ident()
                async for _ in rxcql.aiterate(rxcql.execute(session, pairs(500)))
            }

    loop_thread: list[int] = []

    async def wrapper() -> set[int]:
        loop_thread.append(threading.get_ident())
        return await main()

    assert asyncio.run(wrapper()) == {loop_thread[0]}


def test_a_slow_async_body_slows_issuing() -> None:
    async def main() -> None:
        with FakeSession("thread") as session:
            seen = 0
            async for _ in rxcql.aiterate(
                rxcql.execute(session, pairs(100_000), concurrency=10, window=40)
            ):
                seen += 1
                if seen % 200 == 0:
                    await asyncio.to_thread(session.wait_idle, 10)
                    assert session.executed <= seen + 40
                if seen == 2_000:
                    break

    asyncio.run(main())


def test_cancelling_the_awaiting_task_stops_issuing() -> None:
    async def main() -> tuple[int, int]:
        with FakeSession("thread") as session:
            started = asyncio.Event()

            async def consume() -> None:
                async for result in rxcql.aiterate(rxcql.execute(session, pairs(1_000_000))):
                    if result.index == 100:
                        started.set()
                        await asyncio.Event().wait()  # stuck until cancelled

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.to_thread(session.wait_idle, 10)
            executed = session.executed
            await asyncio.sleep(0)
            return executed, session.executed

    executed, later = asyncio.run(main())
    assert executed == later
    assert executed <= 101 + 200


def test_the_event_loop_stays_responsive_while_results_stream() -> None:
    async def main() -> int:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        with FakeSession("thread", latency=0.0005) as session:
            task = asyncio.create_task(ticker())
            async for _ in rxcql.aiterate(rxcql.execute(session, pairs(5_000), concurrency=20)):
                pass
            stop = True
            await task
        return ticks

    # The loop interleaved other work while waiting for results: it was never blocked on them.
    assert asyncio.run(main()) > 100


def test_async_context_manager_closes_the_run() -> None:
    async def main() -> int:
        with FakeSession("thread") as session:
            async with rxcql.aiterate(rxcql.execute(session, pairs(100_000))) as results:
                async for result in results:
                    if result.index == 10:
                        break
            await asyncio.to_thread(session.wait_idle, 10)
            return session.executed

    assert asyncio.run(main()) <= 11 + 200


def test_an_iterator_lock_left_held_by_an_interrupt_does_not_wedge_its_thread() -> None:
    # A Ctrl-C can land just after a ``with`` took the iterator's lock and before the block is
    # set up to release it (CPython's with statement is not atomic against signals): the lock
    # stays held by the consumer's thread, and the cleanup that follows on that same thread
    # (the run's end; a ProcessPool's close completes its chunks there) wakes the iterator.
    # It must not wait on itself (it did, seen with an interrupted ProcessPool).
    ended = threading.Event()

    def interrupted_consumer() -> None:
        with FakeSession("manual") as session:
            results = rxcql.iterate(rxcql.execute(session, pairs(10)))
            results._cond.acquire()  # left held, as the interrupt leaves it
            while session.complete():  # completions, and the end, on this thread
                pass
            assert [r.index for r in results] == list(range(10))
            ended.set()

    thread = threading.Thread(target=interrupted_consumer, daemon=True)
    thread.start()
    assert ended.wait(10), "the consumer's own thread waited on the lock it holds"
