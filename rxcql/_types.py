"""The small part of the driver's API that rxcql relies on, as Protocols.

cassandra-driver ships no type information; these Protocols say exactly what rxcql calls, so a
fake (see :mod:`rxcql.testing`) or another driver-compatible session works too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

Parameters: TypeAlias = Sequence[Any] | Mapping[str, Any] | None
StatementAndParameters: TypeAlias = tuple[Any, Parameters]
StatementsAndParameters: TypeAlias = Iterable[StatementAndParameters]


class ResponseFutureLike(Protocol):
    """What rxcql uses of :class:`cassandra.cluster.ResponseFuture`."""

    @property
    def has_more_pages(self) -> bool: ...

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = ...,
        callback_kwargs: dict[str, Any] | None = ...,
        errback_args: tuple[Any, ...] = ...,
        errback_kwargs: dict[str, Any] | None = ...,
    ) -> None: ...

    def clear_callbacks(self) -> None: ...

    def result(self) -> Any: ...

    def start_fetching_next_page(self) -> None: ...


class SessionLike(Protocol):
    """What rxcql uses of :class:`cassandra.cluster.Session`."""

    @property
    def is_shutdown(self) -> bool: ...

    def execute_async(
        self, query: Any, parameters: Any = ..., *args: Any, **kwargs: Any
    ) -> Any: ...
