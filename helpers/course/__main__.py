"""``python -m helpers.course``: see :func:`helpers.course.cli.main`."""

import sys

from .cli import main

sys.exit(main())
