"""A server provisioned once per pytest session: the Cassandra node, Simulacron.

tests/integration/conftest.py and tests/faults/conftest.py each make one :class:`Provision` and
forward two hooks to it. The server is provisioned once, after collection, when a selected test
wants it (so its start-up does not count against a test's timeout), or at the first fixture that
asks. When it cannot be reached or started, the tests that use it fail with the reason; they are
never skipped. A server this session started is stopped when the session ends (and by an
``atexit`` guard that ``provide`` registers, if pytest dies on the way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")

Report = Callable[[str], None]


@dataclass(frozen=True)
class Provided(Generic[T]):
    """What ``provide`` found or started.

    Attributes:
        address: How tests reach it (contact points, an admin URL).
        stop: Stops it at the end of the session, when this session started it.
        stopped: The line reported after ``stop``.
    """

    address: T
    stop: Callable[[], object] | None = None
    stopped: str = ""


class Provision(Generic[T]):
    """Provisions a server at most once per session.

    Args:
        name: What the failure message calls it (``Cassandra``).
        provide: Finds or starts it; gets a function that writes a line to the terminal.
        hint: Second line of the failure message: how to provide it by hand.
        wanted: Whether a collected test needs it.
    """

    def __init__(
        self,
        name: str,
        provide: Callable[[Report], Provided[T]],
        hint: str,
        wanted: Callable[[pytest.Item], bool],
    ) -> None:
        self._name = name
        self._provide = provide
        self._hint = hint
        self._wanted = wanted
        self._done = False
        self._provided: Provided[T] | None = None
        self._error: str | None = None

    def get(self, config: pytest.Config) -> T:
        """The address; fails the calling test when the server is not available."""
        self._ensure(config)
        if self._provided is None:
            pytest.fail(self._error or f"{self._name} is not available", pytrace=False)
        return self._provided.address

    def collection_finish(self, session: pytest.Session) -> None:
        """``pytest_collection_finish``: provision now if a selected test wants it."""
        if session.config.option.collectonly:
            return
        if any(self._wanted(item) for item in session.items):
            self._ensure(session.config)

    def session_finish(self, session: pytest.Session) -> None:
        """``pytest_sessionfinish``: stop what this session started."""
        provided = self._provided
        if provided is not None and provided.stop is not None:
            self._provided = Provided(provided.address)
            provided.stop()
            _report(session.config, f"\n{provided.stopped}")

    def _ensure(self, config: pytest.Config) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._provided = self._provide(lambda line: _report(config, line))
        except Exception as error:
            self._error = f"{self._name} is not available: {error}\n{self._hint}"


def _report(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message)
