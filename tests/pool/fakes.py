"""Connect functions for pool workers that need no node: fake sessions (module level, so that
the worker processes can import them by name)."""

from __future__ import annotations

from typing import Any

from cassandra import InvalidRequest

from rxcql.testing import FakeSession


class PreparingFakeSession(FakeSession):
    """A fake session that "prepares" CQL text into itself (statements stay text)."""

    def prepare(self, query: str) -> str:
        return query


def _fail_marked(index: int, statement: Any, parameters: Any) -> Exception | None:
    if parameters is not None and len(parameters) > 1 and str(parameters[1]) == "fail":
        error: Exception = InvalidRequest("refused on purpose")
        return error
    return None


def connect_fake() -> FakeSession:
    """Every statement succeeds, returning its parameters as its one row."""
    return PreparingFakeSession("thread", "random", threads=2, fail=_fail_marked)


def connect_refused() -> FakeSession:
    raise ConnectionRefusedError("no node here (on purpose)")


def _slow(index: int) -> float:
    return 0.002


def connect_slow() -> FakeSession:
    """Every statement takes 2 ms: runs last long enough to kill a worker in the middle."""
    return PreparingFakeSession("thread", threads=2, latency=_slow, fail=_fail_marked)


def connect_closed() -> FakeSession:
    """A session already shut down: the worker's run of every job fails at once."""
    session = PreparingFakeSession("thread", threads=2)
    session.shutdown()
    return session


class PickyFakeSession(PreparingFakeSession):
    """Refuses to prepare CQL text that starts with ``BAD``."""

    def prepare(self, query: str) -> str:
        if query.startswith("BAD"):
            raise InvalidRequest("line 1:0 no viable alternative at input 'BAD'")
        return query


def connect_picky() -> FakeSession:
    return PickyFakeSession("thread", "random", threads=2)


def _make_lock() -> Any:
    import threading

    return threading.Lock()


class BecomesALock:
    """Pickles in the parent; in the worker it becomes a lock, which cannot be pickled back
    (the fake returns the parameters as the statement's row)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_lock, ())


def _cannot_rebuild() -> Any:
    raise ValueError("cannot rebuild this here")


class Unrebuildable:
    """Pickles in the parent, fails to unpickle in the worker (a class only the parent has)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_cannot_rebuild, ())
