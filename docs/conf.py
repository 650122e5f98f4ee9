"""Sphinx configuration: MyST pages, furo, and the API reference from rxcql's docstrings.

Built by ``scripts/docs`` with ``-W --keep-going``: any warning fails the build. The build runs
offline, so there is no intersphinx; references to the driver's or reactivex's objects (for
example ``:class:`cassandra.cluster.Session```) stay plain text, and ``nitpicky`` is off so they
do not warn.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's rxcql, also when it is not installed

import rxcql  # noqa: E402

project = "rxcql"
author = "rxcql developers"
copyright = "rxcql developers"
release = rxcql.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt", "img"]
templates_path: list[str] = []

# MyST: heading anchors so pages can link to sections (concepts.md#threads).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc: members in source order, signatures with their type hints.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}

# napoleon: Google-style docstrings. ``Attributes:`` as fields (:ivar:), so they do not clash with
# autodoc's own entries for the same attributes; ``Threads:`` is a section of its own.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Threads"]

# No network: no intersphinx, and unresolved references to other projects are not warnings.
nitpicky = False

html_theme = "furo"
html_title = f"rxcql {release}"
html_static_path: list[str] = []
