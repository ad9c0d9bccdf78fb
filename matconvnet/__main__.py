"""``python -m matconvnet``: the ``matconvnet`` command (see :mod:`matconvnet.cli`)."""
import sys

from .cli import main

sys.exit(main())
