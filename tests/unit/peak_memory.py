"""The peak memory of a fake-session run, with the garbage collector made deterministic.

The fake session's futures (and the batches of the grouping stage) become garbage cycles, which
only the cyclic collector frees. Left to its own pacing (a full collection runs once the
long-lived heap has grown by a quarter, rarely after a big import such as Ray's), the garbage
awaiting it grows with the input for the first hundred thousand statements and then levels off:
a peak that grows with the input without a leak. So the collector is switched off and run every
``COLLECT_EVERY`` results: the peak is then the run's live memory plus the garbage of at most
that many statements, and what the run retains per statement shows as growth with ``n``."""

from __future__ import annotations

import gc
import itertools
import logging
import tracemalloc
from collections.abc import Callable
from typing import Any

from rxcql.testing import RecordingObserver

COLLECT_EVERY = 5_000


def peak(n: int, start: Callable[[RecordingObserver], Any]) -> int:
    """The peak traced memory (bytes) of ``start(observer)``, a run of ``n`` statements."""
    counter = itertools.count(1)

    def collect_now_and_then(_: Any) -> None:
        if next(counter) % COLLECT_EVERY == 0:
            gc.collect()

    observer = RecordingObserver(on_item=collect_now_and_then, keep=False)
    # The collections hold the emitting thread; rxcql says so at WARNING, which is no news here.
    quiet = logging.getLogger("rxcql")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        start(observer)
        observer.wait(120)
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
        quiet.setLevel(level)
    assert observer.error is None, observer.error
    assert observer.count == n
    return int(top)
