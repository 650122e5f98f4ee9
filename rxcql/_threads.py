"""Knowing when code runs on the driver's IO thread, where nothing may block."""

from __future__ import annotations

import sys
import threading
from typing import Any

from ._errors import IOThreadBlockingError

_local = threading.local()
#: The thread-local marker itself, for hot paths that set ``depth`` without a ``with``.
thread_marker = _local


class in_callback:  # noqa: N801 - used as a lowercase context manager, like contextlib's
    """Marks the current thread as running a driver callback for the duration of a ``with``."""

    __slots__ = ()

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _local.depth -= 1


IN_CALLBACK = in_callback()


def _driver_loop_threads() -> list[threading.Thread]:
    """The event-loop threads of the driver's reactors that are loaded in this process."""
    threads: list[Any] = []
    libev = sys.modules.get("cassandra.io.libevreactor")
    if libev is not None:
        threads.append(getattr(getattr(libev, "_global_loop", None), "_thread", None))
    asyncore = sys.modules.get("cassandra.io.asyncorereactor")
    if asyncore is not None:
        threads.append(getattr(getattr(asyncore, "_global_loop", None), "_thread", None))
    asyncio_reactor = sys.modules.get("cassandra.io.asyncioreactor")
    if asyncio_reactor is not None:
        connection = getattr(asyncio_reactor, "AsyncioConnection", None)
        threads.append(getattr(connection, "_loop_thread", None))
    return [t for t in threads if isinstance(t, threading.Thread)]


def on_io_thread() -> bool:
    """True when called from a driver event-loop thread or from inside an rxcql future callback."""
    if getattr(_local, "depth", 0) > 0:
        return True
    current = threading.current_thread()
    return any(current is thread for thread in _driver_loop_threads())


def ensure_not_io_thread(what: str) -> None:
    """Raise :class:`IOThreadBlockingError` when a blocking call is made on the IO thread."""
    if on_io_thread():
        raise IOThreadBlockingError(
            f"{what} blocks until results arrive, but it was called on the driver's IO thread "
            "(inside a future callback or an rxcql emission), which is the thread that delivers "
            "them: it would deadlock. Use rxcql.execute(...) or execute_concurrent_async(...) "
            "there, or move delivery off the IO thread with scheduler=..."
        )
