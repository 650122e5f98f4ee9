"""One session per worker process and ``connect`` callable, and the statements it prepared.

Ray runs the tasks of one job in a few long-lived worker processes; opening a ``Cluster`` per
task would cost a connection handshake, a schema fetch and a token map per task. The first task
of a process calls ``connect()`` and keeps the session; later tasks with an equal ``connect``
(the same module-level function, or a ``functools.partial`` of one with equal arguments) reuse
it. The sessions are shut down when the process exits (best effort: a worker that Ray kills
closes nothing, and the server drops its connections).
"""

from __future__ import annotations

import atexit
import contextlib
import pickle
import threading
from collections.abc import Callable
from typing import Any

from .._options import check_session

Connect = Callable[[], Any]

_lock = threading.Lock()
_sessions: dict[bytes, Any] = {}
_prepared: dict[tuple[bytes, str], Any] = {}
_registered = False


def _key(connect: Connect) -> bytes:
    # Ray sends a fresh unpickled copy of ``connect`` with every task: identity would never
    # match, while the pickled form (a reference to a module-level function, plus the
    # arguments of a partial) is the same for every copy.
    try:
        return pickle.dumps(connect)
    except Exception:
        return f"id:{id(connect)}".encode()


def session_for(connect: Connect) -> Any:
    """The process's session of ``connect``, made on first use (again if it was shut down)."""
    global _registered
    key = _key(connect)
    with _lock:
        session = _sessions.get(key)
        if session is None or getattr(session, "is_shutdown", False) is True:
            session = connect()
            check_session(session)
            _sessions[key] = session
            for cached in [k for k in _prepared if k[0] == key]:
                del _prepared[cached]
            if not _registered:
                atexit.register(close_all)
                _registered = True
        return session


def prepared_for(connect: Connect, cql: str) -> Any:
    """``cql`` prepared once per process on the session of ``connect``."""
    session = session_for(connect)
    key = (_key(connect), cql)
    with _lock:
        statement = _prepared.get(key)
    if statement is None:
        statement = session.prepare(cql)
        with _lock:
            _prepared[key] = statement
    return statement


def close_all() -> None:
    """Shut down every cached session and its cluster (registered with ``atexit``)."""
    with _lock:
        sessions = list(_sessions.values())
        _sessions.clear()
        _prepared.clear()
    for session in sessions:
        cluster = getattr(session, "cluster", None)
        # At exit a failed shutdown has nobody to tell.
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.shutdown()
            else:
                session.shutdown()
