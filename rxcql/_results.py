"""The result types: the driver's own ``ExecutionResult``, and rxcql's, which adds the input
position."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

__all__ = ["DriverExecutionResult", "ExecutionResult"]

if TYPE_CHECKING:

    class DriverExecutionResult(NamedTuple):
        """:class:`cassandra.concurrent.ExecutionResult`, as the driver defines it."""

        success: bool
        result_or_exc: Any

else:
    # cassandra-driver ships no type information: type checkers see the NamedTuple above, which
    # is exactly the driver's definition; at run time this is the driver's own class.
    from cassandra.concurrent import ExecutionResult as DriverExecutionResult


class ExecutionResult(DriverExecutionResult):
    """The outcome of one statement: ``(success, result_or_exc)``.

    It *is* a :class:`cassandra.concurrent.ExecutionResult` (a subclass of that named tuple), so
    ``success, result = r``, ``r.success``, ``r.result_or_exc`` and ``isinstance`` checks keep
    working, and it compares equal to the driver's tuple with the same two fields.

    On success ``result_or_exc`` is the driver's :class:`cassandra.cluster.ResultSet`, exactly as
    ``execute_concurrent`` gives it; on failure it is the exception the driver raised.

    ``index`` is the statement's position in the input (0-based). With ``ordered=False`` results
    arrive in completion order and ``index`` says which statement each one belongs to.
    """

    # It shadows tuple.index (a method) on purpose, as it does at run time: on rxcql's results
    # ``.index`` is the input position. On the driver's plain tuple it is still the method.
    index: int  # type: ignore[assignment]
    success: bool
    result_or_exc: Any

    def __new__(cls, success: bool, result_or_exc: Any, index: int = -1) -> ExecutionResult:
        self = tuple.__new__(cls, (success, result_or_exc))
        self.index = index
        return self

    def __getnewargs__(self) -> tuple[bool, Any, int]:  # keeps pickling and copy working
        return (self[0], self[1], self.index)
