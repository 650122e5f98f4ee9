"""ProcessPool runs with ``checkpoint=`` and ``failed_log=`` (kept in the parent), with fake
sessions in the workers: the checkpoint moves over whole chunks whose statements are final,
a resume skips them, failures are logged once each and replay as prepared statements."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import rxcql
from rxcql import CheckpointError, ProcessPool
from rxcql._longrun import read_checkpoint, read_failed_log

from .fakes import connect_fake

INSERT = "INSERT INTO t (k, v) VALUES (?, ?)"
CHUNK = 100


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    with ProcessPool(connect_fake, processes=2, chunk_size=CHUNK) as started:
        yield started


def rows(n: int, failing: frozenset[int] = frozenset()) -> Iterator[tuple[str, tuple[int, str]]]:
    for i in range(n):
        yield INSERT, (i, "fail" if i in failing else "ok")


def test_failures_logged_and_the_checkpoint_complete(pool: ProcessPool, tmp_path: Path) -> None:
    checkpoint, failed = tmp_path / "run.checkpoint", tmp_path / "run.failed"
    results = list(
        rxcql.iterate(
            pool.execute(
                rows(1_000, frozenset({100, 555})),
                raise_on_first_error=False,
                checkpoint=checkpoint,
                failed_log=failed,
                ordered=False,
                concurrency=7,
            )
        )
    )
    assert sorted(r.index for r in results) == list(range(1_000))
    assert sorted(r.index for r in results if not r.success) == [100, 555]
    state = read_checkpoint(checkpoint)
    assert state is not None
    assert (state.done, state.complete) == (1_000, True)
    assert state.statement == INSERT
    recorded = json.loads(checkpoint.read_text())["options"]  # the run's own knobs
    assert (recorded["ordered"], recorded["raise_on_first_error"]) == (False, False)
    assert recorded["concurrency"] == 7
    records = list(read_failed_log(failed))
    assert [(r["index"], r["cql"], r["prepared"]) for r in records] == [
        (100, INSERT, True),
        (555, INSERT, True),
    ]
    assert [r["error"] for r in records] == ["InvalidRequest", "InvalidRequest"]
    assert failed.stat().st_mode & 0o777 == 0o600


def test_an_unlogged_failure_holds_the_checkpoint_before_its_chunk_and_a_resume_runs_it(
    pool: ProcessPool, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.checkpoint"
    first = list(
        rxcql.iterate(
            pool.execute(
                rows(1_000, frozenset({555})),
                raise_on_first_error=False,
                checkpoint=checkpoint,
                run_id="pool",
            )
        )
    )
    assert [r.index for r in first if not r.success] == [555]
    state = read_checkpoint(checkpoint)
    assert state is not None
    assert (state.done, state.complete) == (500, False)
    # The same input, its failure fixed: only what the checkpoint did not cover runs, with
    # its input positions.
    second = list(
        rxcql.iterate(pool.execute(rows(1_000), checkpoint=checkpoint, resume=True, run_id="pool"))
    )
    assert [r.index for r in second] == list(range(500, 1_000))
    assert all(r.success for r in second)
    assert second[0].result_or_exc == [(500, "ok")]
    state = read_checkpoint(checkpoint)
    assert state is not None
    assert (state.done, state.complete) == (1_000, True)
    # A third resume has nothing left to run.
    assert (
        list(
            rxcql.iterate(
                pool.execute(rows(1_000), checkpoint=checkpoint, resume=True, run_id="pool")
            )
        )
        == []
    )


def test_a_disposed_run_checkpoints_what_it_finished(pool: ProcessPool, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.checkpoint"
    seen = 0
    with rxcql.iterate(pool.execute(rows(100_000), checkpoint=checkpoint)) as results:
        for _ in results:
            seen += 1
            if seen == 2_000:
                break
    state = read_checkpoint(checkpoint)
    assert state is not None
    assert not state.complete
    # Delivered chunks are final; at most the window's chunks beyond them were.
    assert 2_000 - CHUNK <= state.done < 100_000
    assert state.done % CHUNK == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("statement", "first statement differs"),
        ("shorter", "input ended after 300"),
        ("run_id", "run_id='other'"),
    ],
)
def test_a_resume_of_another_input_is_refused(
    pool: ProcessPool, tmp_path: Path, change: str, message: str
) -> None:
    checkpoint = tmp_path / "run.checkpoint"
    checkpoint.write_text(
        json.dumps(
            {"format": 1, "done": 500, "complete": False, "run_id": "mine", "statement": INSERT}
        )
    )
    items: Iterator[tuple[str, tuple[int, str]]] = rows(1_000)
    if change == "statement":
        items = ((f"{text} USING TTL 10", values) for text, values in rows(1_000))
    elif change == "shorter":
        items = rows(300)
    run_id = "other" if change == "run_id" else "mine"
    with pytest.raises(CheckpointError, match=message):
        list(rxcql.iterate(pool.execute(items, checkpoint=checkpoint, resume=True, run_id=run_id)))
    assert json.loads(checkpoint.read_text())["done"] == 500  # untouched
