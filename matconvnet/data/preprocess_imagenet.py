"""``python -m matconvnet.data.preprocess_imagenet SRC DST [--size 256] [--quality 90]
[--workers N] [--overwrite] [--quiet]``: the command line of
:func:`matconvnet.data.preprocess_imagenet` (implemented in :mod:`matconvnet.data.preprocess`).
"""
import sys

from .preprocess import main

if __name__ == "__main__":
    sys.exit(main())
