"""``python -m rxcql.cli``: the ``rxcql`` command."""

import sys

from . import main

sys.exit(main())
