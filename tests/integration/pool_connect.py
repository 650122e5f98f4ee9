"""The ``connect`` of the pool tests' workers: module level, so worker processes import it."""

from __future__ import annotations

import random
import time
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session


def connect(contact_points: list[tuple[str, int]], keyspace: str) -> Session:
    profile = ExecutionProfile(request_timeout=60.0)
    cluster = Cluster(
        contact_points=contact_points,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    return cluster.connect(keyspace)


class _Jittery:
    """A session whose sends now and then pause a little before going out (a busy client
    process): it makes one worker lag behind another, the case where issue order and input
    order part. The pause comes before the request's client timestamp is used, on both the
    plain path (``execute_async``) and the one that keeps a given timestamp (``_on_request``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._random = random.Random()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def _pause(self) -> None:
        if self._random.random() < 0.1:
            time.sleep(0.002)

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        self._pause()
        return self._session.execute_async(*args, **kwargs)

    def _on_request(self, future: Any) -> None:
        self._pause()
        self._session._on_request(future)


def connect_jittery(contact_points: list[tuple[str, int]], keyspace: str) -> Any:
    return _Jittery(connect(contact_points, keyspace))
