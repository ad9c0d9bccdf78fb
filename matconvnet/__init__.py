"""matconvnet: MatConvNet's CNN toolbox in Python, on PyTorch kernels.

``import matconvnet as mcn``; the blocks are ``mcn.vl_nnconv``, ``mcn.vl_nnpool``, ...
"""
from .blocks import *  # noqa: F401,F403
from .blocks import __all__ as _blocks

__version__ = "0.1.0"
__all__ = list(_blocks)
