"""The softmax-log loss in one pass over x, forward and backward, on the GPU (Triton).

With PyTorch's kernels the loss takes a log-softmax (one read and one write of x's size)
and a gather, and its derivative a softmax, a scatter and a scaling: several passes over
an N x C x H x W array that, for per-pixel losses, is large.  These kernels read x once for
the loss and once (writing dzdx) for the derivative, and take the labels as given (any
numeric type, one per image broadcast over H x W, or one per location), so nothing of x's
size is allocated besides dzdx.

For each location ``p = (n, i, j)`` (a block of locations per program; the channels go
through in chunks with a running maximum ``m`` and sum ``l``, the online softmax)::

    lse_p = m + log l = log sum_k exp x[n, k, i, j]
    t_p = lse_p - x[n, c_p - 1, i, j]                 (t_p = 0 where c_p < 1)
    dzdx[n, k, i, j] = g_p (exp(x[n, k, i, j] - lse_p) - [k = c_p - 1])

where ``g_p`` is the derivative's per-location factor (dzdy times weights), a tensor or one
number.  Used for CUDA tensors when Triton imports (see :mod:`._triton`).
"""
from __future__ import annotations

from typing import Union

import torch

from . import _triton

__all__ = ["softmaxlog_loss", "softmaxlog_derivative"]


def _blocks(c: int):
    """Channels per chunk and locations per program: tiles of about 4096 elements."""
    block_c = min(1 << max(c - 1, 1).bit_length(), 1024)
    return block_c, max(4096 // block_c, 4)


def softmaxlog_loss(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """t (N x 1 x H x W, x's dtype): ``log sum_k exp x_k - x_c`` at each location, 0 where
    the label is below 1.  ``labels``: N x 1 x H x W (a view, possibly broadcast)."""
    import triton
    from ._triton_kernels import softmaxlog_loss as kernel
    n, c, h, w = x.shape
    x = x.contiguous()
    s = h * w
    t = torch.empty((n, 1, h, w), dtype=x.dtype, device=x.device)
    lab, cn, cs = _flat_labels(labels, n, s)
    block_c, block_p = _blocks(c)
    with _triton.device_context(x):
        kernel[(triton.cdiv(n * s, block_p),)](
            x, lab, t, n * s, c, s, cn, cs, BLOCK_C=block_c, BLOCK_P=block_p,
            WIDE=_triton.wide(x.dtype))
    return t


def softmaxlog_derivative(x: torch.Tensor, labels: torch.Tensor,
                          g: Union[float, torch.Tensor]) -> torch.Tensor:
    """dzdx = g (softmax(x) - one-hot(c)); ``g`` a number or a tensor broadcast to
    N x 1 x H x W."""
    import triton
    from ._triton_kernels import softmaxlog_derivative as kernel
    n, c, h, w = x.shape
    x = x.contiguous()
    s = h * w
    dzdx = torch.empty_like(x)
    lab, cn, cs = _flat_labels(labels, n, s)
    if isinstance(g, torch.Tensor):
        gt, gn, gs = _flat_labels(g.to(x.dtype), n, s)
        value, is_tensor = 0.0, True
    else:
        gt, gn, gs, value, is_tensor = dzdx, 0, 0, float(g), False
    block_c, block_p = _blocks(c)
    with _triton.device_context(x):
        kernel[(triton.cdiv(n * s, block_p),)](
            x, lab, gt, value, dzdx, n * s, c, s, cn, cs, gn, gs, G_TENSOR=is_tensor,
            BLOCK_C=block_c, BLOCK_P=block_p, WIDE=_triton.wide(x.dtype))
    return dzdx


def _flat_labels(t: torch.Tensor, n: int, s: int):
    """``t`` broadcast to N x 1 x H x W as (tensor, stride per image, stride per location),
    without copying a broadcast view."""
    t = t.expand(n, 1, -1, -1) if t.dim() == 4 else t.reshape(-1, 1, 1, 1).expand(n, 1, 1, 1)
    if t.shape[2] * t.shape[3] == 1:
        return t, t.stride(0), 0
    if t.shape[2] * t.shape[3] != s:
        raise ValueError(f"labels: expected {s} locations per image, got shape {tuple(t.shape)}")
    flat = t.reshape(n, s)   # a view where the strides allow (a broadcast one does)
    return flat, flat.stride(0), flat.stride(1)

