"""Fixtures for ``rxcql.ray``: the real node of tests/integration (the same provisioning), a
local Ray of two CPUs for the test session, and a picklable ``connect`` to the node."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from cassandra.cluster import Cluster

from ..integration.conftest import _cassandra, cluster, keyspace, session
from . import support

__all__ = ["cluster", "keyspace", "session"]

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray's own deprecation warnings (its ``DataContext()`` warns about its own
    ``use_push_based_shuffle`` field) are Ray's business, not a failure of rxcql's tests,
    which otherwise turn every warning into an error."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"))


def pytest_collection_finish(session: pytest.Session) -> None:
    _cassandra.collection_finish(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _cassandra.session_finish(session)


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """``ray.init(num_cpus=2)`` on this machine; the workers import ``tests.ray.support``
    from the checkout (PYTHONPATH, inherited by the processes Ray starts)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="session")
def connect(cluster: Cluster, keyspace: str, local_ray: None) -> Callable[[], Any]:
    """A picklable ``connect`` to the test node and keyspace."""
    return functools.partial(support.connect, list(cluster.contact_points), keyspace)
