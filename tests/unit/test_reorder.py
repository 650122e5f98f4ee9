"""rxcql.operators.reorder on its own."""

from __future__ import annotations

import random
from typing import Any

import pytest
import reactivex

from rxcql import ReorderError
from rxcql.operators import reorder
from rxcql.testing import RecordingObserver


def run(pairs: list[Any], **kwargs: Any) -> RecordingObserver:
    observer = RecordingObserver()
    reactivex.from_iterable(pairs).pipe(reorder(**kwargs)).subscribe(observer)
    return observer.wait(5)


@pytest.mark.parametrize("seed", range(5))
def test_random_arrival_order_comes_out_in_index_order(seed: int) -> None:
    indexes = list(range(1_000))
    random.Random(seed).shuffle(indexes)
    observer = run([(i, f"v{i}") for i in indexes])
    assert observer.items == [f"v{i}" for i in range(1_000)]
    assert observer.completed


def test_in_order_input_passes_straight_through() -> None:
    assert run([(i, i) for i in range(10)]).items == list(range(10))


def test_start_offsets_the_first_index() -> None:
    assert run([(6, "b"), (5, "a")], start=5).items == ["a", "b"]


def test_values_are_emitted_as_soon_as_their_turn_comes() -> None:
    subject: reactivex.Subject[tuple[int, str]] = reactivex.Subject()
    observer = RecordingObserver()
    subject.pipe(reorder()).subscribe(observer)
    subject.on_next((2, "c"))
    subject.on_next((1, "b"))
    assert observer.items == []
    subject.on_next((0, "a"))
    assert observer.items == ["a", "b", "c"]


def test_a_duplicate_index_is_an_error() -> None:
    observer = run([(0, "a"), (0, "again")])
    assert isinstance(observer.error, ReorderError)
    assert observer.items == ["a"]


def test_a_full_buffer_is_an_error_not_unbounded_growth() -> None:
    observer = run([(i, i) for i in range(1, 10)], max_buffer=3)
    assert isinstance(observer.error, ReorderError)
    assert "buffer is full" in str(observer.error)


def test_completing_with_a_gap_is_an_error() -> None:
    observer = run([(0, "a"), (2, "c")])
    assert isinstance(observer.error, ReorderError)
    assert "never arrived" in str(observer.error)
    assert observer.items == ["a"]


def test_items_that_are_not_pairs_are_an_error() -> None:
    observer = run(["nope"])
    assert isinstance(observer.error, ReorderError)


def test_a_source_error_passes_through() -> None:
    boom = RuntimeError("upstream")
    observer = RecordingObserver()
    reactivex.concat(reactivex.of((0, "a")), reactivex.throw(boom)).pipe(reorder()).subscribe(
        observer
    )
    observer.wait(5)
    assert observer.error is boom
    assert observer.items == ["a"]


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_max_buffer_raises_at_once(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        reorder(max_buffer=bad)
