"""Shared pytest set-up: puts scripts/ on sys.path so tests can import ``cassandra_node``."""

import sys
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent.parent / "scripts")
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)
