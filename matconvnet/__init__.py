"""matconvnet: MatConvNet's CNN toolbox in Python, on PyTorch kernels.

``import matconvnet as mcn``; the blocks are ``mcn.vl_nnconv``, ``mcn.vl_nnpool``, ...
"""
from .blocks import *  # noqa: F401,F403
from .blocks import __all__ as _blocks

from .simplenn import (vl_simplenn, vl_simplenn_deploy, vl_simplenn_diagnose,  # noqa: E402
                       vl_simplenn_display, vl_simplenn_move, vl_simplenn_tidy)

__version__ = "0.1.0"
__all__ = list(_blocks) + ["vl_simplenn", "vl_simplenn_tidy", "vl_simplenn_move",
                           "vl_simplenn_display", "vl_simplenn_diagnose", "vl_simplenn_deploy"]
