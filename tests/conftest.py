"""Shared pytest set-up: the hypothesis profile (the tooling package ``rxcql_dev`` is installed)."""

import os

# In CI, property tests run a fixed sequence of examples (reproducible runs); locally they explore.
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
