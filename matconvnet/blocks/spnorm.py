"""vl_nnspnorm: spatial normalisation.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnspnorm` (rendered as ``docs/blocks/vl_nnspnorm.md``).
"""
from __future__ import annotations

from typing import Optional

from .. import _tensor as T
from .pool import vl_nnpool

__all__ = ["vl_nnspnorm"]


def vl_nnspnorm(x: T.Array, param, dzdy: Optional[T.Array] = None):
    r"""vl_nnspnorm: spatial normalisation.

    Formula (manual 4.6.3 and 6.6.3), with ``param = [PH, PW, alpha, beta]`` and ``n^2`` the
    *mean* of ``x^2`` over a PH x PW window centred on each pixel (clipped to the image, so the
    mean is over the valid pixels; even sizes extend one more pixel down/right)::

        n^2 = avgpool(x^2, [PH, PW], pad = [floor((PH-1)/2), PH-1-floor((PH-1)/2),
                                            floor((PW-1)/2), PW-1-floor((PW-1)/2)])
        y = x (1 + alpha n^2)^(-beta)
        dzdx = (1 + alpha n^2)^(-beta) dzdy
               - 2 alpha beta x avgpool^T((1 + alpha n^2)^(-beta-1) dzdy x)

    (The original's help says "sum of squares"; its code, reproduced here, uses the mean.)

    Shapes::

        x, y, dzdy, dzdx   N x C x H x W     (each channel is normalised on its own)

    Call forms::

        y = vl_nnspnorm(x, param)
        dzdx = vl_nnspnorm(x, param, dzdy)

    Options: none; ``param`` (positional) is ``[PH, PW, alpha, beta]``.

    Example::

        import torch
        from matconvnet import vl_nnspnorm

        x = torch.full((1, 1, 5, 5), 2.0)
        y = vl_nnspnorm(x, [3, 3, 0.25, 0.5])         # n^2 = 4 everywhere
        assert torch.allclose(y, x / 2 ** 0.5)
        assert vl_nnspnorm(x, [3, 3, 0.25, 0.5], torch.ones_like(x)).shape == x.shape
    """
    call = T.Call(x)
    x = call.x
    T.shape4(x, "x")
    ph, pw, alpha, beta = T.reals(param, "param", 4, "[PH, PW, alpha, beta]")
    if min(ph, pw) < 1 or ph != int(ph) or pw != int(pw):
        raise ValueError(f"param: expected integer window sizes PH, PW >= 1, got {(ph, pw)}")
    ph, pw = int(ph), int(pw)
    pool = (ph, pw)
    pad = ((ph - 1) // 2, ph - 1 - (ph - 1) // 2, (pw - 1) // 2, pw - 1 - (pw - 1) // 2)
    den = vl_nnpool(x * x, pool, method="avg", pad=pad).mul_(alpha).add_(1)
    if dzdy is None:
        return call.out(x * den.pow(-beta))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    scale = den.pow(-beta)
    back = vl_nnpool(x, pool, dzdy * x * scale / den, method="avg", pad=pad)
    return call.out(dzdy * scale - (2 * alpha * beta) * x * back)
