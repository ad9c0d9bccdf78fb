"""Max pooling with MatConvNet's switches in one GPU pass (Triton).

PyTorch's max-pooling kernels keep the first maximum of a window in row-major order;
MatConvNet keeps the first in column-major order (its H x W x C x N arrays store the rows
of a window contiguously), and never selects NaN.  On the CPU :mod:`.pool` gets that rule
out of PyTorch's kernels with two separable passes; on the GPU those passes, their index
gather and the checks for non-finite values cost about twice PyTorch's own pooling.  This
kernel computes the output and the switches in one read of the input, so the backward
pass can hand the switches to PyTorch's ``max_pool2d_with_indices_backward`` kernel.

For each output element (one program instance handles ``BLOCK`` of them)::

    best = -inf, index = -1, nan = False
    for j in 0 .. PW-1:              # columns outer: column-major scan of the window
        for i in 0 .. PH-1:          # rows inner
            u, v = oy SY - PT + i, ox SX - PL + j      (skipped outside the image)
            nan |= isnan(x[u, v])
            if x[u, v] > best: best, index = x[u, v], u W + v
    y = NaN if nan else best         # PyTorch's forward value (NaN propagates)

The window loops are unrolled (a compile per window size) up to 64 elements; larger windows
take a kernel with runtime loops.  Index arithmetic is 32-bit unless the tensors need more.

``index`` stays -1 for windows holding only -inf or NaN: they pass no derivative.  PyTorch's
CUDA backward kernel gathers, for each input pixel, the outputs whose switch names it, so a
-1 switch is simply never matched.

Used only for CUDA tensors, and only when Triton imports (see :mod:`._triton`).
"""
from __future__ import annotations

from typing import Tuple

import torch

from . import _triton

__all__ = ["max_pool_switches"]


def max_pool_switches(xp: torch.Tensor, pool, stride, padding,
                      out: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(y, switches)`` of max pooling ``xp`` (N x C x H x W) with windows ``pool``, steps
    ``stride`` and top/left padding ``padding`` (windows clipped to the image), giving an
    ``out`` = (YH, YW) output.  The switches index each N x C plane of ``xp`` (u W + v)."""
    import triton
    from . import _triton_kernels as K
    xp = xp.contiguous()
    n, c, h, w = xp.shape
    yh, yw = out
    y = torch.empty((n, c, yh, yw), dtype=xp.dtype, device=xp.device)
    idx = torch.empty((n, c, yh, yw), dtype=torch.int64, device=xp.device)
    total = y.numel()
    if total == 0:
        return y, idx
    block = 256
    ph, pw = int(pool[0]), int(pool[1])
    geometry = (h, w, yh, yw)
    steps = (int(stride[0]), int(stride[1]), int(padding[0]), int(padding[1]))
    opts = dict(BLOCK=block, WIDE=_triton.wide(xp.dtype),
                I64=max(xp.numel(), total) >= 2 ** 31 - 1)
    grid = (triton.cdiv(total, block),)
    with _triton.device_context(xp):
        if ph * pw <= _UNROLL_MAX:
            K.max_pool_switches_unrolled[grid](xp, y, idx, total, *geometry, *steps,
                                               PH=ph, PW=pw, **opts)
        else:
            K.max_pool_switches[grid](xp, y, idx, total, *geometry, ph, pw, *steps, **opts)
    return y, idx


_UNROLL_MAX = 64   # window elements up to which the kernel is compiled for the window size
