"""The public face: ``__all__`` lists exactly the public names, each documented."""

from __future__ import annotations

import subprocess
import sys

import rxcql
import rxcql.operators
import rxcql.testing


def test_all_lists_exactly_the_public_names() -> None:
    # What a user sees after a plain ``import rxcql`` in a fresh interpreter: in this one, other
    # tests may have imported optional subpackages (``rxcql.cli``), which Python then binds as
    # attributes of the package.
    listed = subprocess.run(
        [sys.executable, "-c", "import rxcql; print('\\n'.join(dir(rxcql)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    public = {name for name in listed if not name.startswith("_")}
    assert set(rxcql.__all__) == public
    assert rxcql.__all__ == sorted(rxcql.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for module in (rxcql, rxcql.operators, rxcql.testing):
        for name in module.__all__:
            member = getattr(module, name)
            assert (member.__doc__ or "").strip(), f"{module.__name__}.{name} has no docstring"
