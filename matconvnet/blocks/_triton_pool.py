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
            v = x[u, v] (u = oy SY - PT + i, v = ox SX - PL + j; skipped outside the image)
            nan |= isnan(v)
            if v > best: best, index = v, u W + v
    y = NaN if nan else best         # PyTorch's forward value (NaN propagates)

``index`` stays -1 for windows holding only -inf or NaN: they pass no derivative.  PyTorch's
CUDA backward kernel gathers, for each input pixel, the outputs whose switch names it, so a
-1 switch is simply never matched.

Used only for CUDA tensors, and only when Triton imports (it ships with PyTorch's Linux CUDA
builds); :func:`available` says whether it applies.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Tuple

import torch

__all__ = ["available", "max_pool_switches"]


@functools.lru_cache(maxsize=None)
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def max_pool_switches_kernel(x_ptr, y_ptr, idx_ptr, total, H, W, YH, YW,
                                 PH, PW, SY, SX, PT, PL,
                                 BLOCK: tl.constexpr, WIDE: tl.constexpr):
        o = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = o < total
        plane = o // (YH * YW)
        r = o % (YH * YW)
        oy = r // YW
        ox = r % YW
        base = x_ptr + plane * H * W
        best = tl.full([BLOCK], float("-inf"), WIDE)
        index = tl.full([BLOCK], -1, tl.int64)
        nan = tl.zeros([BLOCK], tl.int1)
        for j in range(0, PW):
            u0 = ox * SX - PL + j
            col = live & (u0 >= 0) & (u0 < W)
            for i in range(0, PH):
                v0 = oy * SY - PT + i
                ok = col & (v0 >= 0) & (v0 < H)
                at = v0 * W + u0
                val = tl.load(base + at, mask=ok, other=float("-inf")).to(WIDE)
                nan = nan | (val != val)
                better = val > best
                best = tl.where(better, val, best)
                index = tl.where(better, at, index)
        y = tl.where(nan, float("nan"), best)
        tl.store(y_ptr + o, y.to(y_ptr.dtype.element_ty), mask=live)
        tl.store(idx_ptr + o, index, mask=live)

    return triton, tl, max_pool_switches_kernel


@functools.lru_cache(maxsize=None)
def _triton_imports() -> bool:
    try:
        _kernel()
        return True
    except Exception:  # no Triton, or one this code cannot use: the separable passes remain
        return False


def available(x: torch.Tensor) -> bool:
    """Whether the kernel applies to ``x`` (a CUDA tensor of a floating type, with Triton)."""
    return (x.is_cuda and x.dtype in (torch.float32, torch.float64, torch.float16,
                                      torch.bfloat16) and _triton_imports())


def max_pool_switches(xp: torch.Tensor, pool, stride, padding,
                      out: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(y, switches)`` of max pooling ``xp`` (N x C x H x W) with windows ``pool``, steps
    ``stride`` and top/left padding ``padding`` (windows clipped to the image), giving an
    ``out`` = (YH, YW) output.  The switches index each N x C plane of ``xp`` (u W + v)."""
    triton, tl, kernel = _kernel()
    xp = xp.contiguous()
    n, c, h, w = xp.shape
    yh, yw = out
    y = torch.empty((n, c, yh, yw), dtype=xp.dtype, device=xp.device)
    idx = torch.empty((n, c, yh, yw), dtype=torch.int64, device=xp.device)
    total = y.numel()
    if total == 0:
        return y, idx
    block = 256
    wide = tl.float64 if xp.dtype == torch.float64 else tl.float32
    # (CPU tensors reach here only under TRITON_INTERPRET=1, in tests of the kernel itself)
    with torch.cuda.device(xp.device) if xp.is_cuda else contextlib.nullcontext():
        kernel[(triton.cdiv(total, block),)](
            xp, y, idx, total, h, w, yh, yw, int(pool[0]), int(pool[1]), int(stride[0]),
            int(stride[1]), int(padding[0]), int(padding[1]), BLOCK=block, WIDE=wide)
    return y, idx
