"""Datasets and image reading (manual 1.4 and 3.4).

For now this holds the bundled MNIST digits used by the runnable demo
(``examples/mnist_blocks.py``) and the tests: :func:`load_mnist`.
"""
from .mnist import load_mnist

__all__ = ["load_mnist"]
