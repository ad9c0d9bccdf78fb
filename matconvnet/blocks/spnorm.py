r"""vl_nnspnorm: spatial normalisation.

Formula, with ``param = [PH, PW, alpha, beta]`` and ``n^2`` the *mean* of ``x^2`` over a
PH x PW window centred on each pixel (clipped to the image, so the mean is over the valid
pixels; even sizes extend one more pixel down/right)::

    n^2 = avgpool(x^2, [PH, PW], pad = [floor((PH-1)/2), PH-1-floor((PH-1)/2),
                                        floor((PW-1)/2), PW-1-floor((PW-1)/2)])
    y = x (1 + alpha n^2)^(-beta)
    dzdx = (1 + alpha n^2)^(-beta) dzdy
           - 2 alpha beta x avgpool^T((1 + alpha n^2)^(-beta-1) dzdy x)

Call forms::

    y = vl_nnspnorm(x, param)
    dzdx = vl_nnspnorm(x, param, dzdy)
"""
from __future__ import annotations

from typing import Optional

from .. import _tensor as T
from .pool import vl_nnpool

__all__ = ["vl_nnspnorm"]


def vl_nnspnorm(x: T.Array, param, dzdy: Optional[T.Array] = None):
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
