"""The result type: the driver's own ``ExecutionResult``, plus the input position."""

from __future__ import annotations

from typing import Any

from cassandra.concurrent import ExecutionResult as _DriverExecutionResult

__all__ = ["ExecutionResult"]


class ExecutionResult(_DriverExecutionResult):  # type: ignore[misc]
    """The outcome of one statement: ``(success, result_or_exc)``.

    It *is* a :class:`cassandra.concurrent.ExecutionResult` (a subclass of that named tuple), so
    ``success, result = r``, ``r.success``, ``r.result_or_exc`` and ``isinstance`` checks keep
    working, and it compares equal to the driver's tuple with the same two fields.

    On success ``result_or_exc`` is the driver's :class:`cassandra.cluster.ResultSet`, exactly as
    ``execute_concurrent`` gives it; on failure it is the exception the driver raised.

    ``index`` is the statement's position in the input (0-based). With ``ordered=False`` results
    arrive in completion order and ``index`` says which statement each one belongs to.
    """

    index: int
    success: bool
    result_or_exc: Any

    def __new__(cls, success: bool, result_or_exc: Any, index: int = -1) -> ExecutionResult:
        self = tuple.__new__(cls, (success, result_or_exc))
        self.index = index
        return self

    def __getnewargs__(self) -> tuple[bool, Any, int]:  # keeps pickling and copy working
        return (self[0], self[1], self.index)
