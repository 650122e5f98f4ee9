"""The documentation's code that needs no cluster runs as written (the rest runs against the
real node in tests/integration/test_examples.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)


def fake_session_block() -> str:
    blocks = [b for b in python_blocks("quickstart.md") if "FakeSession(" in b]
    assert len(blocks) == 1
    return blocks[0]


def test_the_quickstart_fake_session_example_runs() -> None:
    exec(compile("import rxcql\n" + fake_session_block(), "quickstart.md", "exec"), {})


def test_a_wrong_docs_example_fails() -> None:
    # The harness above can fail: a broken assertion in the block surfaces as AssertionError.
    block = fake_session_block().replace("== [None if", "!= [None if")
    assert "!= [None if" in block
    with pytest.raises(AssertionError):
        exec(compile("import rxcql\n" + block, "quickstart.md", "exec"), {})
