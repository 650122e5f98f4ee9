"""The token ranges of ``scan_table``, on a ring the test makes: disjoint, covering every
token exactly once, never ending at the lowest token (Cassandra reads ``token <= lowest`` as
the whole ring), as many as asked for, each with its owner's replicas."""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace
from typing import Any

import pytest
from cassandra.metadata import Murmur3Token

from rxcql._scan import token_ranges

LOWEST, HIGHEST = -(2**63), 2**63 - 1


def fake_session(tokens: list[int], hosts: int) -> Any:
    ring = [Murmur3Token(t) for t in sorted(tokens)]
    owner = {t: f"host{i % hosts}" for i, t in enumerate(ring)}
    token_map = SimpleNamespace(ring=ring, get_replicas=lambda keyspace, token: [owner[token]])
    metadata = SimpleNamespace(
        token_map=token_map,
        partitioner="org.apache.cassandra.dht.Murmur3Partitioner",
        all_hosts=lambda: [f"host{i}" for i in range(hosts)],
    )
    return SimpleNamespace(cluster=SimpleNamespace(metadata=metadata), execute_async=None)


def owner_of(token: int, ring: list[int]) -> int:
    """The ring token whose range (previous, it] holds ``token``."""
    for t in sorted(ring):
        if token <= t:
            return t
    return min(ring)  # wraps


@pytest.mark.parametrize(
    "tokens",
    [
        [0],
        [LOWEST],
        [LOWEST, 0, 2**62],
        [-5, 7],
        [HIGHEST],
        sorted({random.Random(3 + k).randint(LOWEST + 1, HIGHEST) for k in range(48)}),
    ],
    ids=["one", "lowest", "lowest-first", "two", "highest", "48 random"],
)
@pytest.mark.parametrize("splits", [None, 1, 5, 500])
def test_ranges_cover_the_ring_exactly_once(tokens: list[int], splits: int | None) -> None:
    hosts = 3
    ranges = token_ranges(fake_session(tokens, hosts), "ks", splits)
    assert all(piece.end != LOWEST for piece in ranges)
    # In token order, each starting where the one before ended, from the lowest to the highest.
    assert ranges[0].start in (None, LOWEST)
    for before, after in itertools.pairwise(ranges):
        assert after.start == before.end
    assert ranges[-1].end == HIGHEST
    # As many as asked for, unless a range is too narrow to cut further (one token wide).
    narrowest = min(p.end - (LOWEST if p.start is None else p.start) for p in ranges)
    assert len(ranges) >= (splits or 16 * hosts) or narrowest <= 1
    # Each piece belongs to the ring token that owns its end.
    ring = sorted(tokens)
    for piece in ranges:
        assert piece.replicas == (f"host{ring.index(owner_of(piece.end, ring)) % hosts}",)
