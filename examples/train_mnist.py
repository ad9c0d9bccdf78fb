#!/usr/bin/env python3
"""Train LeNet on the bundled MNIST digits with ``cnn_train`` and report the test accuracy.

A thin wrapper around :mod:`matconvnet.examples.mnist` (run ``python -m
matconvnet.examples.mnist --help`` for the options), for running from a checkout::

    python3 examples/train_mnist.py --batch-norm --epochs 4
"""
import sys
from pathlib import Path

try:
    import matconvnet  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matconvnet.examples.mnist import main  # noqa: E402

if __name__ == "__main__":
    main()
