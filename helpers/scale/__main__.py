"""``python -m helpers.scale ...``: see :mod:`helpers.scale.cli`."""

import sys

from .cli import main

sys.exit(main())
