"""The public face: ``__all__`` lists exactly the public names, each documented."""

from __future__ import annotations

import rxcql
import rxcql.operators
import rxcql.testing


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(rxcql) if not name.startswith("_")}
    assert set(rxcql.__all__) == public
    assert rxcql.__all__ == sorted(rxcql.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for module in (rxcql, rxcql.operators, rxcql.testing):
        for name in module.__all__:
            member = getattr(module, name)
            assert (member.__doc__ or "").strip(), f"{module.__name__}.{name} has no docstring"
