"""``python -m helpers.benchmark``: see :mod:`helpers.benchmark.cli`."""

import sys

from .cli import main

sys.exit(main())
