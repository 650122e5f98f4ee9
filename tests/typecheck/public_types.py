"""What a type checker sees of rxcql's public entry points; checked by ``mypy --strict``.

Not a pytest module: ``scripts/test`` runs mypy over ``tests/``, and every ``assert_type`` here
fails that run if an annotation stops telling the truth, as httpx and anyio keep theirs. The
``# type: ignore[...]`` lines are expected errors: mypy's ``warn_unused_ignores`` (part of
``--strict``) fails the run if one of them stops being an error.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, assert_type

import reactivex

import rxcql
from rxcql import operators as cql_ops
from rxcql._results import DriverExecutionResult
from rxcql.testing import FakeSession

STATEMENTS = [("SELECT 1", ())]


def drop_in_calls(session: FakeSession) -> None:
    # List mode: the driver's own plain tuples, whose .index is the tuple method.
    results = rxcql.execute_concurrent(session, STATEMENTS)
    assert_type(results, list[DriverExecutionResult])
    first = results[0]
    assert_type(first.success, bool)
    assert_type(first.result_or_exc, Any)
    first.index + 1  # type: ignore[operator]

    assert_type(
        rxcql.execute_concurrent(session, STATEMENTS, results_generator=False),
        list[DriverExecutionResult],
    )
    assert_type(
        rxcql.execute_concurrent(session, STATEMENTS, 10, True, False),
        list[DriverExecutionResult],
    )
    generated = rxcql.execute_concurrent(session, STATEMENTS, results_generator=True)
    assert_type(generated, rxcql.ResultIterator[DriverExecutionResult])
    for result in generated:
        assert_type(result, DriverExecutionResult)
        result.index + 1  # type: ignore[operator]
    assert_type(
        rxcql.execute_concurrent(session, STATEMENTS, 10, True, True),
        rxcql.ResultIterator[DriverExecutionResult],
    )
    flag: bool = bool(len(STATEMENTS))
    assert_type(
        rxcql.execute_concurrent(session, STATEMENTS, results_generator=flag),
        list[DriverExecutionResult] | rxcql.ResultIterator[DriverExecutionResult],
    )

    with_args = rxcql.execute_concurrent_with_args(session, "SELECT %s", [(1,)])
    assert_type(with_args, list[DriverExecutionResult])
    with_args[0].index + 1  # type: ignore[operator]
    assert_type(
        rxcql.execute_concurrent_with_args(session, "SELECT %s", [(1,)], results_generator=True),
        rxcql.ResultIterator[DriverExecutionResult],
    )
    assert_type(
        rxcql.execute_concurrent_with_args(session, "SELECT %s", [(1,)], 10, False, True),
        rxcql.ResultIterator[DriverExecutionResult],
    )

    assert_type(
        rxcql.execute_concurrent_async(session, STATEMENTS),
        Future[list[DriverExecutionResult]],
    )


async def the_engine_and_its_consumers(session: FakeSession) -> None:
    observable = rxcql.execute(session, STATEMENTS)
    assert_type(observable, rxcql.ExecuteObservable[rxcql.ExecutionResult])
    source: reactivex.Observable[rxcql.ExecutionResult] = observable  # it is an Observable

    # rxcql's own results carry the input position.
    for result in rxcql.iterate(observable):
        assert_type(result, rxcql.ExecutionResult)
        assert_type(result.index + 1, int)
    assert_type(rxcql.iterate(observable), rxcql.ResultIterator[rxcql.ExecutionResult])
    assert_type(rxcql.aiterate(observable), rxcql.AsyncResultIterator[rxcql.ExecutionResult])
    async for item in rxcql.aiterate(observable):
        assert_type(item, rxcql.ExecutionResult)
    assert_type(await rxcql.collect(observable), list[rxcql.ExecutionResult])

    rows = rxcql.stream_rows(session, "SELECT * FROM t")
    assert_type(rows, rxcql.RowsObservable)
    assert_type(rxcql.stream_rows_many(session, STATEMENTS), rxcql.RowsObservable)
    assert_type(rxcql.iterate(rows), rxcql.ResultIterator[Any])
    assert_type(rxcql.aiterate(rows), rxcql.AsyncResultIterator[Any])
    assert_type(await rxcql.collect(rows), list[Any])

    # The operator and the Observable of one future.
    piped = reactivex.of(("SELECT 1", ())).pipe(cql_ops.execute(session))
    assert_type(piped, reactivex.Observable[rxcql.ExecutionResult])
    assert_type(
        rxcql.from_response_future(session.execute_async("SELECT 1")),
        reactivex.Observable[Any],
    )
    assert_type(source, reactivex.Observable[rxcql.ExecutionResult])
