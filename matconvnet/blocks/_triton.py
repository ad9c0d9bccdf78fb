"""What the GPU kernels written in Triton share: whether Triton can be used, and how a
launch is set up.

PyTorch has no kernel for a few of MatConvNet's rules (the column-major first maximum of
max pooling, the softmax-log loss in one pass); on CUDA tensors those run as small Triton
kernels (:mod:`._triton_pool`, :mod:`._triton_loss`), and everywhere else -- the CPU, or a
PyTorch without Triton -- as compositions of PyTorch's kernels, with the same results.
Triton ships with PyTorch's Linux CUDA builds; it is never needed on the CPU.
"""
from __future__ import annotations

import contextlib
import functools

import torch

__all__ = ["usable", "applies", "device_context", "wide"]

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=None)
def usable() -> bool:
    """Whether Triton imports (once per process)."""
    try:
        from . import _triton_kernels  # noqa: F401  (imports triton and compiles nothing)
        return True
    except Exception:  # absent, or broken beside this PyTorch: the PyTorch paths remain
        return False


def applies(x: torch.Tensor) -> bool:
    """Whether a Triton kernel should handle ``x``: a CUDA tensor of a floating type."""
    return x.is_cuda and x.dtype in _FLOATS and usable()


def device_context(t: torch.Tensor):
    """Launch on ``t``'s GPU.  (CPU tensors reach the kernels only under TRITON_INTERPRET=1,
    in the tests of the kernels themselves.)"""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def wide(dtype: torch.dtype):
    """The Triton type to compute in: float64 for float64 data, float32 otherwise."""
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32
