"""Checkpoints and resume on a fake session: the low watermark, what a resume skips, and the
errors that refuse a doubtful checkpoint."""

from __future__ import annotations

import json
import os
import random
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra import OperationTimedOut

import rxcql
from rxcql._longrun import Watermark, read_checkpoint
from rxcql.testing import FakeSession


def items(n: int, statement: str = "INSERT") -> Iterator[tuple[str, tuple[int]]]:
    return ((statement, (i,)) for i in range(n))


class CrashError(Exception):
    """The input's own failure, standing in for a process that died mid-run."""


def crashing(n: int, at: int) -> Iterator[tuple[str, tuple[int]]]:
    for i in range(n):
        if i == at:
            raise CrashError(f"died at {i}")
        yield "INSERT", (i,)


class CountingSession(FakeSession):
    """A FakeSession that remembers the parameter of every statement it ran."""

    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[int] = []
        super().__init__(rows=self._count, **kwargs)

    def _count(self, query: Any, parameters: Any) -> list[Any]:
        self.sent.append(parameters[0])
        return [parameters]


def test_the_watermark_is_the_count_of_leading_finished_positions() -> None:
    order = list(range(1000))
    random.Random(7).shuffle(order)
    watermark = Watermark(0)
    finished: set[int] = set()
    for index in order:
        watermark.mark(index)
        finished.add(index)
        expected = 0
        while expected in finished:
            expected += 1
        assert watermark.low == expected


@pytest.mark.parametrize("ordered", [True, False])
def test_a_finished_run_writes_a_complete_checkpoint(tmp_path: Path, ordered: bool) -> None:
    path = tmp_path / "run.checkpoint"
    with FakeSession(mode="thread", order="random" if not ordered else "in_order") as session:
        results = list(
            rxcql.iterate(
                rxcql.execute(
                    session, items(2000), checkpoint=path, ordered=ordered, run_id="load-1"
                )
            )
        )
    assert len(results) == 2000
    data = json.loads(path.read_text())
    assert data["done"] == 2000
    assert data["complete"] is True
    assert data["run_id"] == "load-1"
    assert data["statement"] == "INSERT"
    assert data["options"]["ordered"] is ordered
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("ordered", [True, False])
def test_resume_skips_what_the_checkpoint_says_is_done(tmp_path: Path, ordered: bool) -> None:
    path = tmp_path / "run.checkpoint"
    n, crash_at = 3000, 1700
    order = "random" if not ordered else "in_order"
    session = CountingSession(mode="thread", order=order, latency=0.0002)
    with session:
        with pytest.raises(CrashError):
            for _ in rxcql.iterate(
                rxcql.execute(
                    session,
                    crashing(n, crash_at),
                    checkpoint=path,
                    checkpoint_interval=0.01,
                    concurrency=50,
                    ordered=ordered,
                )
            ):
                pass
        state = read_checkpoint(path)
        assert state is not None
        # Everything issued before the input failed had finished when the stream ended.
        assert state.done == crash_at
        assert not state.complete
        first_run = len(session.sent)
        results = list(
            rxcql.iterate(
                rxcql.execute(
                    session, items(n), checkpoint=path, resume=True, concurrency=50, ordered=ordered
                )
            )
        )
    assert sorted(r.index for r in results) == list(range(crash_at, n))
    assert all(r.success for r in results)
    assert all(r.result_or_exc.one() == (r.index,) for r in results)
    counts: Counter[int] = Counter(session.sent)
    assert set(counts) == set(range(n))  # every statement ran
    assert len(session.sent) == first_run + (n - crash_at)  # none of it twice
    assert read_checkpoint(path) == read_checkpoint(path)
    final = read_checkpoint(path)
    assert final is not None
    assert final.done == n
    assert final.complete


def test_without_a_failed_log_the_watermark_stops_at_the_first_failure(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"

    def fail(index: int, query: Any, parameters: Any) -> BaseException | None:
        return ValueError("refused") if parameters == (400,) else None

    with FakeSession(mode="thread", fail=fail) as session:
        results = list(
            rxcql.iterate(
                rxcql.execute(session, items(1000), checkpoint=path, raise_on_first_error=False)
            )
        )
    assert [r.index for r in results if not r.success] == [400]
    state = read_checkpoint(path)
    assert state is not None
    assert state.done == 400  # a resume runs statement 400 (and what follows) again
    assert not state.complete


def test_with_retries_the_checkpoint_counts_the_last_outcome(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    attempts: Counter[Any] = Counter()

    def fail(index: int, query: Any, parameters: Any) -> BaseException | None:
        attempts[parameters] += 1
        if parameters[0] % 10 == 0 and attempts[parameters] == 1:
            return OperationTimedOut("slow")  # type: ignore[no-any-return]
        return None

    retry = rxcql.Retry(attempts=3, base_delay=0.001, idempotent_only=False)
    with FakeSession(mode="thread", fail=fail) as session:
        results = list(
            rxcql.iterate(rxcql.execute(session, items(500), checkpoint=path, retry=retry))
        )
    assert all(r.success for r in results)
    assert attempts[(10,)] == 2
    state = read_checkpoint(path)
    assert state is not None
    assert state.done == 500


def test_a_drop_in_call_takes_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    with FakeSession(mode="thread") as session:
        results = rxcql.execute_concurrent_with_args(
            session, "INSERT", [(i,) for i in range(300)], checkpoint=path
        )
        assert len(results) == 300
        resumed = rxcql.execute_concurrent_with_args(
            session, "INSERT", [(i,) for i in range(300)], checkpoint=path, resume=True
        )
    assert resumed == []  # everything was done: nothing runs, nothing is delivered
    state = read_checkpoint(path)
    assert state is not None
    assert state.done == 300


def test_a_missing_checkpoint_starts_from_the_first_statement(tmp_path: Path) -> None:
    with FakeSession(mode="thread") as session:
        results = list(
            rxcql.iterate(
                rxcql.execute(session, items(100), checkpoint=tmp_path / "new", resume=True)
            )
        )
    assert [r.index for r in results] == list(range(100))


def refused(path: Path, **options: Any) -> tuple[BaseException, int]:
    with FakeSession(mode="thread") as session:
        with pytest.raises(rxcql.CheckpointError) as caught:
            list(rxcql.iterate(rxcql.execute(session, items(100), checkpoint=path, **options)))
        return caught.value, session.executed


def test_a_corrupt_checkpoint_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    path.write_text('{"format": 1, "done": ')
    error, sent = refused(path, resume=True)
    assert "corrupt" in str(error)
    assert sent == 0


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    with FakeSession(mode="thread") as session:
        list(rxcql.iterate(rxcql.execute(session, items(50), checkpoint=path, run_id="a")))
    error, sent = refused(path, resume=True, run_id="b")
    assert "run_id='a'" in str(error)
    assert sent == 0


def test_a_checkpoint_of_another_statement_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    with FakeSession(mode="thread") as session:
        list(rxcql.iterate(rxcql.execute(session, items(50, "UPDATE"), checkpoint=path)))
    error, sent = refused(path, resume=True)
    assert "first statement differs" in str(error)
    assert sent == 0


def test_a_checkpoint_past_the_end_of_the_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    with FakeSession(mode="thread") as session:
        list(rxcql.iterate(rxcql.execute(session, items(500), checkpoint=path)))
    error, sent = refused(path, resume=True)  # the input now holds 100 items
    assert "ended after 100" in str(error)
    assert sent == 0


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.checkpoint"
    path.write_text('{"some": "json"}')
    error, _ = refused(path, resume=True)
    assert "not an rxcql checkpoint" in str(error)


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"resume": True}, ValueError, "needs checkpoint="),
        ({"checkpoint": 5}, TypeError, "checkpoint must be a path"),
        ({"checkpoint": "x", "checkpoint_interval": 0}, ValueError, "checkpoint_interval"),
        ({"checkpoint": "x", "run_id": 7}, TypeError, "run_id must be a str"),
        ({"failed_log": object()}, TypeError, "failed_log must be a path"),
    ],
)
def test_bad_long_run_options_are_clear_errors(
    options: dict[str, Any], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        rxcql.execute(FakeSession(), [], **options)
