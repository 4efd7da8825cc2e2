"""``python -m know_core``: the command line (see :mod:`know_core.cli`)."""

import sys

from .cli import main

sys.exit(main())
