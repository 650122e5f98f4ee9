"""rxcql.operators.execute: the engine fed by an Observable."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex import operators as ops

import rxcql
from rxcql import operators as cql_ops
from rxcql.testing import FakeSession, RecordingObserver


def test_pairs_from_an_observable_run_in_order() -> None:
    with FakeSession("thread", "reversed") as session:
        observer = RecordingObserver()
        reactivex.from_iterable(("q", (i,)) for i in range(5_000)).pipe(
            cql_ops.execute(session, concurrency=16)
        ).subscribe(observer)
        observer.wait(30)
    assert [r.index for r in observer.items] == list(range(5_000))
    assert [r.result_or_exc.one() for r in observer.items] == [(i,) for i in range(5_000)]
    assert session.max_in_flight <= 16


def first_row(result: rxcql.ExecutionResult) -> Any:
    return result.result_or_exc.one()


def test_parameters_only_when_the_statement_is_given() -> None:
    with FakeSession("sync") as session:
        observer = RecordingObserver()
        reactivex.range(0, 10).pipe(
            ops.map(lambda i: (i,)),
            cql_ops.execute(session, "INSERT", concurrency=3),
            ops.map(first_row),
        ).subscribe(observer)
        observer.wait(5)
    assert observer.items == [(i,) for i in range(10)]


def test_a_pushing_subject_is_buffered_and_completes_after_the_last_result() -> None:
    subject: reactivex.Subject[Any] = reactivex.Subject()
    with FakeSession("manual") as session:
        observer = RecordingObserver()
        subject.pipe(cql_ops.execute(session, "q", concurrency=2)).subscribe(observer)
        for i in range(10):
            subject.on_next((i,))
        subject.on_completed()
        assert session.executed == 2  # the other eight wait in the operator's buffer
        while session.complete():
            pass
        observer.wait(5)
    assert observer.completed
    assert len(observer.items) == 10


def test_an_upstream_error_arrives_after_the_results_before_it() -> None:
    boom = RuntimeError("upstream")
    with FakeSession("thread") as session:
        observer = RecordingObserver()
        reactivex.concat(reactivex.of((1,), (2,)), reactivex.throw(boom)).pipe(
            cql_ops.execute(session, "q")
        ).subscribe(observer)
        observer.wait(5)
    assert observer.error is boom
    assert len(observer.items) == 2


def test_the_upstream_is_disposed_when_the_stream_fails() -> None:
    disposed: list[bool] = []
    subject: reactivex.Subject[Any] = reactivex.Subject()
    upstream = subject.pipe(ops.finally_action(lambda: disposed.append(True)))
    with FakeSession("sync", fail=lambda i, s, p: ValueError("x")) as session:
        observer = RecordingObserver()
        upstream.pipe(cql_ops.execute(session, "q")).subscribe(observer)
        subject.on_next((1,))
        observer.wait(5)
    assert isinstance(observer.error, ValueError)
    assert disposed == [True]


def test_a_malformed_upstream_item_is_a_clear_error() -> None:
    with FakeSession("sync") as session:
        observer = RecordingObserver()
        reactivex.of(("q", (1,)), "oops").pipe(cql_ops.execute(session)).subscribe(observer)
        observer.wait(5)
    assert isinstance(observer.error, rxcql.InvalidItemError)
    assert observer.error.index == 1
