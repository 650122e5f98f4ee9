"""Row streaming across pages with the fake session's paging."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.observable import GroupedObservable

import rxcql
from rxcql.testing import FakeSession, RecordingObserver

PAGES = 50
PAGE_SIZE = 20


def paged(statement: Any, parameters: Any) -> Sequence[list[Any]]:
    key = parameters[0] if parameters else 0
    return [[(key, page, i) for i in range(PAGE_SIZE)] for page in range(PAGES)]


def expected(key: int = 0) -> list[tuple[int, int, int]]:
    return [(key, page, i) for page in range(PAGES) for i in range(PAGE_SIZE)]


def test_all_rows_of_all_pages_in_order() -> None:
    with FakeSession("thread", pages=paged) as session:
        observer = RecordingObserver()
        rxcql.stream_rows(session, "SELECT", (0,)).subscribe(observer)
        observer.wait(10)
    assert observer.items == expected()
    assert observer.completed


def test_pages_ahead_of_a_slow_consumer_stay_bounded() -> None:
    with FakeSession("thread", pages=paged) as session:
        rows = rxcql.iterate(rxcql.stream_rows(session, "SELECT", (0,), max_pages=3))
        seen = []
        for row in rows:
            seen.append(row)
            if len(seen) % PAGE_SIZE == 0 and rows.run is not None:
                assert session.wait_idle(timeout=10)  # let any page in flight arrive
                stats = rows.run.statistics()
                assert stats.max_ahead <= 3
                assert stats.pages_fetched <= len(seen) // PAGE_SIZE + 3
        assert seen == expected()


def test_fetch_size_is_set_on_the_statement() -> None:
    seen: list[Any] = []

    def pages(statement: Any, parameters: Any) -> list[list[Any]]:
        seen.append(statement)
        return [[1]]

    with FakeSession("sync", pages=pages) as session:
        list(rxcql.iterate(rxcql.stream_rows(session, "SELECT x", fetch_size=500)))
    assert seen[0].fetch_size == 500


def test_a_failing_page_ends_the_stream_after_the_rows_before_it() -> None:
    boom = RuntimeError("page 3 lost")
    with FakeSession("thread", pages=paged) as session:

        def fail_later(statement: Any, parameters: Any) -> Sequence[list[Any]]:
            good = paged(statement, parameters)[:3]
            return [*good, ["poison"]]

        session.pages = fail_later
        observer = RecordingObserver(
            on_item=lambda row: (_ for _ in ()).throw(boom) if row == "poison" else None
        )
        rxcql.stream_rows(session, "SELECT", (0,)).subscribe(observer)
        observer.wait(10)
    assert isinstance(observer.error, rxcql.ObserverError)
    assert observer.error.__cause__ is boom


def test_a_failing_query_is_the_streams_error() -> None:
    boom = ValueError("no such table")
    with (
        FakeSession("thread", pages=paged, fail=lambda i, s, p: boom) as session,
        pytest.raises(ValueError, match="no such table"),
    ):
        list(rxcql.iterate(rxcql.stream_rows(session, "SELECT", (0,))))


def test_fan_out_runs_at_most_concurrency_queries() -> None:
    with FakeSession("thread", "random", threads=2, pages=paged) as session:
        rows = list(
            rxcql.iterate(
                rxcql.stream_rows_many(
                    session, [("SELECT", (k,)) for k in range(12)], concurrency=3
                )
            )
        )
        assert session.max_in_flight <= 3
    assert len(rows) == 12 * PAGES * PAGE_SIZE
    for key in range(12):
        assert [r for r in rows if r[0] == key] == expected(key)  # each query's rows in order


def count_group(group: GroupedObservable[Any, Any]) -> reactivex.Observable[tuple[Any, int]]:
    return group.pipe(ops.count(), ops.map(lambda n: (group.key, n)))


def test_fan_out_composes_in_an_rx_pipeline() -> None:
    with FakeSession("thread", pages=paged) as session:
        observer = RecordingObserver()
        rxcql.stream_rows_many(session, [("SELECT", (k,)) for k in range(4)]).pipe(
            ops.group_by(lambda row: row[0]),
            ops.flat_map(count_group),
        ).subscribe(observer)
        observer.wait(10)
    assert sorted(observer.items) == [(k, PAGES * PAGE_SIZE) for k in range(4)]


def test_async_row_iteration() -> None:
    async def main() -> list[Any]:
        with FakeSession("thread", pages=paged) as session:
            return [row async for row in rxcql.aiterate(rxcql.stream_rows(session, "S", (5,)))]

    assert asyncio.run(main()) == expected(5)


def test_closing_the_row_iterator_stops_fetching() -> None:
    with FakeSession("thread", pages=paged) as session:
        rows = rxcql.iterate(rxcql.stream_rows(session, "SELECT", (0,), max_pages=2))
        next(rows)
        run = rows.run
        assert run is not None
        rows.close()
        assert session.wait_idle(timeout=10)
        assert run.statistics().pages_fetched <= 3


def test_a_scheduler_delivers_rows_off_the_io_thread() -> None:
    from reactivex.scheduler import NewThreadScheduler

    with FakeSession("thread", pages=paged) as session:
        observer = RecordingObserver()
        rxcql.stream_rows(session, "S", (1,), scheduler=NewThreadScheduler()).subscribe(observer)
        observer.wait(10)
    assert observer.items == expected(1)
    assert not any(name.startswith("fake-io") for name in observer.threads)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_pages": 0}, ValueError),
        ({"fetch_size": -1}, ValueError),
        ({"max_pages": "4"}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type) -> None:
    with FakeSession("sync") as session, pytest.raises(error):
        rxcql.stream_rows(session, "S", **kwargs)


def test_a_malformed_query_pair_is_rejected_at_once() -> None:
    with FakeSession("sync") as session, pytest.raises(rxcql.InvalidItemError):
        rxcql.stream_rows(session, 42)


def test_empty_results_complete() -> None:
    with FakeSession("sync", pages=lambda s, p: [[]]) as session:
        observer = RecordingObserver()
        reactivex.defer(lambda _: rxcql.stream_rows(session, "S")).subscribe(observer)
        observer.wait(5)
    assert observer.completed
    assert observer.items == []
