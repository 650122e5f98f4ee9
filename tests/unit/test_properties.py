"""Property-based tests (hypothesis) of reorder and the engine, with the fake session.

Random completion orders, random synchronous and asynchronous failures, random disposal points
and random consumer pauses: every input yields exactly one result, in order, or the stream ends
with the right error; the demand bounds are never exceeded; no thread is left behind.
"""

from __future__ import annotations

import threading
from typing import Any

import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxcql
from rxcql.operators import reorder
from rxcql.testing import FakeSession, RecordingObserver

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.permutations(range(60)), st.integers(0, 10))
def test_reorder_restores_index_order(arrival: list[int], start: int) -> None:
    observer = RecordingObserver()
    reactivex.from_iterable([(start + i, i) for i in arrival]).pipe(reorder(start=start)).subscribe(
        observer
    )
    assert observer.items == list(range(60))
    assert observer.completed


@SETTINGS
@given(
    n=st.integers(0, 120),
    concurrency=st.integers(1, 8),
    extra_window=st.integers(0, 8),
    ordered=st.booleans(),
    raise_first=st.booleans(),
    data=st.data(),
)
def test_engine_under_random_completions_failures_pauses_and_disposal(
    n: int,
    concurrency: int,
    extra_window: int,
    ordered: bool,
    raise_first: bool,
    data: st.DataObject,
) -> None:
    window = concurrency + extra_window
    indexes = st.integers(0, max(n - 1, 0))
    sync_failures = data.draw(st.frozensets(indexes, max_size=5), label="sync failures")
    async_failures = data.draw(st.frozensets(indexes, max_size=5), label="async failures")
    sync_failures = frozenset(i for i in sync_failures if i < n)  # n == 0 draws index 0
    async_failures = frozenset(i for i in async_failures if i < n)
    dispose_after = data.draw(st.one_of(st.none(), st.integers(0, 300)), label="dispose after")
    errors: dict[int, Exception] = {i: RuntimeError(f"sync {i}") for i in sync_failures}
    errors.update({i: ValueError(f"async {i}") for i in async_failures - sync_failures})
    threads_before = threading.active_count()

    session = FakeSession(
        "manual",
        raise_in_execute=lambda i, s, p: errors.get(i) if i in sync_failures else None,
        fail=lambda i, s, p: errors.get(i) if i not in sync_failures else None,
    )
    observer = RecordingObserver()
    handle: Any = rxcql.execute(
        session,
        (("q", (i,)) for i in range(n)),
        concurrency=concurrency,
        window=window,
        ordered=ordered,
        raise_on_first_error=raise_first,
    ).subscribe_with_demand(observer)
    acked = 0
    disposed = False
    for step in range(10_000):
        # Invariants, at every step.
        assert session.in_flight <= concurrency
        assert session.executed - acked <= window
        if observer.done:
            break
        if dispose_after is not None and step == dispose_after:
            handle.dispose()
            disposed = True
            break
        unacked = observer.count - acked
        choices = []
        if session.pending:
            choices.append("complete")
        if unacked:
            choices.append("ack")
        if not choices:
            break  # nothing can move: must be the end
        action = data.draw(st.sampled_from(choices), label="action")
        if action == "complete":
            position = data.draw(st.integers(0, len(session.pending) - 1), label="which")
            future = session.pending.pop(position)
            future.complete()
        else:
            grant = data.draw(st.integers(1, unacked), label="grant")
            acked += grant
            handle.request(grant)

    if disposed:
        delivered = observer.count
        executed = session.executed
        while session.complete():
            pass
        assert observer.count == delivered  # nothing after disposal
        assert session.executed == executed  # nothing issued after disposal
        assert not observer.done
    else:
        assert observer.done, "the stream must end once nothing can move"
        results = observer.items
        if ordered:
            assert [r.index for r in results] == list(range(len(results)))
        else:
            assert len({r.index for r in results}) == len(results)
        failing = sorted(errors)
        if raise_first and failing:
            if ordered:
                assert observer.error is errors[failing[0]]
                assert len(results) == failing[0]
            else:
                assert observer.error in errors.values()
            assert all(r.success for r in results)
        else:
            assert observer.completed
            assert sorted(r.index for r in results) == list(range(n))
            for result in results:
                assert result.success is (result.index not in errors)
                if not result.success:
                    assert result.result_or_exc is errors[result.index]
    session.shutdown()
    assert threading.active_count() == threads_before


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 2_000),
    concurrency=st.integers(1, 64),
    threads=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    failure_every=st.integers(0, 50),
)
def test_engine_with_completion_threads_and_random_latencies(
    n: int, concurrency: int, threads: int, seed: int, failure_every: int
) -> None:
    import random

    latencies = random.Random(seed)
    threads_before = threading.active_count()

    def failing(i: int, s: Any, p: Any) -> Exception | None:
        return ValueError(i) if failure_every and i % failure_every == 0 else None

    with FakeSession(
        "thread",
        "random",
        threads=threads,
        seed=seed,
        latency=lambda i: latencies.random() * 0.0005,
        fail=failing,
    ) as session:
        results = rxcql.execute_concurrent(
            session,
            (("q", (i,)) for i in range(n)),
            concurrency=concurrency,
            raise_on_first_error=False,
        )
        assert session.max_in_flight <= concurrency
    assert len(results) == n  # list mode: the position is the index
    assert [r.result_or_exc.one() if r.success else (i,) for i, r in enumerate(results)] == [
        (i,) for i in range(n)
    ]
    assert [r.success for r in results] == [failing(i, None, None) is None for i in range(n)]
    assert threading.active_count() == threads_before
