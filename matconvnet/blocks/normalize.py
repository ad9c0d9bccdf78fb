"""vl_nnnormalize: local response normalisation (LRN) across channels.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnnormalize` (rendered as ``docs/blocks/vl_nnnormalize.md``).
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
import torch.nn.functional as F

from .. import _tensor as T

__all__ = ["vl_nnnormalize"]


def vl_nnnormalize(x: T.Array, param, dzdy: Optional[T.Array] = None):
    r"""vl_nnnormalize: local response normalisation (LRN) across channels.

    Formula (manual 4.6.1 and 6.6.1), with ``param = [N, kappa, alpha, beta]``::

        y_k = x_k (kappa + alpha sum_{t in Q(k)} x_t^2)^(-beta)
        Q(k) = [k - floor((N - 1) / 2), k + ceil((N - 1) / 2)]  clipped to the channels

    Note that alpha is not divided by N (Caffe's alpha is ``N alpha``).  With N >= 2C every
    channel is in every window: ``kappa = 0, alpha = 1, beta = 1/2`` is L2 normalisation.
    Derivative, with ``L_k`` the bracket above::

        dzdx_t = dzdy_t L_t^(-beta) - 2 alpha beta x_t sum_{k : t in Q(k)} dzdy_k x_k L_k^(-beta-1)

    This computes the exact power; the original CPU code uses a fast approximate pow()
    (about 3e-3 relative error).

    Shapes::

        x, y, dzdy, dzdx   N x C x H x W

    Call forms::

        y = vl_nnnormalize(x, param)
        dzdx = vl_nnnormalize(x, param, dzdy)

    Options: none; ``param`` (positional) is ``[N, kappa, alpha, beta]``, exactly 4 numbers
    with N >= 1.

    Example::

        import torch
        from matconvnet import vl_nnnormalize

        x = torch.randn(2, 6, 4, 4)
        y = vl_nnnormalize(x, [12, 0, 1, 0.5])       # N >= 2C: L2 normalisation over channels
        assert torch.allclose(y.pow(2).sum(dim=1), torch.ones(2, 4, 4), atol=1e-5)
        dzdx = vl_nnnormalize(x, [5, 1, 2e-5, 0.75], torch.ones_like(x))
        assert dzdx.shape == x.shape
    """
    call = T.Call(x)
    x = call.x
    T.shape4(x, "x")
    size, kappa, alpha, beta = _param(param)
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    den = _window_sum(x * x, before, after, alpha).add_(kappa)
    if dzdy is None:
        return call.out(x * den.pow(-beta))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    scale = den.pow(-beta)
    t = (dzdy * x).mul_(scale).div_(den)
    # sum over the windows containing t: the same window, mirrored
    s = _window_sum(t, after, before, -2 * alpha * beta)
    return call.out(torch.addcmul(dzdy * scale, x, s))


def _window_sum(t: torch.Tensor, before: int, after: int, weight: float) -> torch.Tensor:
    """s_k = weight sum_{j = k - before}^{k + after} t_j over the channels, zero outside."""
    c = t.shape[1]
    if t.is_cuda and c <= _BAND_MAX_CHANNELS and _exact_matmul(t.dtype):
        # on the GPU one batched product with the (weighted) C x C band matrix reads t once
        band = _band(c, before, after, weight, t.dtype, t.device)
        return torch.matmul(band, t.reshape(t.shape[0], c, -1)).view(t.shape)
    return _window_sum_unweighted(t, before, after).mul_(weight)


@functools.lru_cache(maxsize=32)
def _band(c: int, before: int, after: int, weight: float, dtype: torch.dtype,
          device: torch.device) -> torch.Tensor:
    """weight [k - before <= j <= k + after] as a C x C matrix (made once per layer shape:
    a forward+backward call uses two)."""
    k = torch.arange(c, device=device)
    band = (k[None, :] >= k[:, None] - before) & (k[None, :] <= k[:, None] + after)
    return band.to(dtype) * weight


def _window_sum_unweighted(t: torch.Tensor, before: int, after: int) -> torch.Tensor:
    c = t.shape[1]
    if before + after < 16:
        # small windows (AlexNet's 5): shifted adds beat a pooling kernel many times over
        s = t.clone()
        for d in range(1, min(before, c - 1) + 1):
            s[:, d:] += t[:, :c - d]
        for d in range(1, min(after, c - 1) + 1):
            s[:, :c - d] += t[:, d:]
        return s
    padded = F.pad(t.unsqueeze(1), (0, 0, 0, 0, before, after))
    return F.avg_pool3d(padded, (before + after + 1, 1, 1), stride=1,
                        divisor_override=1).squeeze(1)


# Up to here the band-matrix product beats the shifted adds on the GPU (H200, batch 32:
# forward+backward 1.01 ms against 1.10 at C = 96; 1.02 against 0.68 at C = 256).
_BAND_MAX_CHANNELS = 128


def _exact_matmul(dtype: torch.dtype) -> bool:
    """Whether CUDA matrix products in ``dtype`` keep its precision (TF32 off for float32)."""
    if dtype == torch.float32:
        return not torch.backends.cuda.matmul.allow_tf32
    return dtype == torch.float64


def _param(param):
    size, kappa, alpha, beta = T.reals(param, "param", 4, "[N, kappa, alpha, beta]")
    if size < 1 or size != int(size):
        raise ValueError(f"param: expected an integer window size N >= 1, got N = {size}")
    return int(size), kappa, alpha, beta
