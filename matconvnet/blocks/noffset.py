r"""vl_nnnoffset: norm-dependent offset.

Formula, with ``param = [a, b]`` and the squared norm over the channels at each location::

    L = max(sum_k x_k^2, 1e-8)
    y = x - a L^b
    dzdx = dzdy - 2 a b x (sum_k dzdy_k) L^(b - 1)

Call forms::

    y = vl_nnnoffset(x, param)
    dzdx = vl_nnnoffset(x, param, dzdy)
"""
from __future__ import annotations

from typing import Optional

from .. import _tensor as T

__all__ = ["vl_nnnoffset"]


def vl_nnnoffset(x: T.Array, param, dzdy: Optional[T.Array] = None):
    call = T.Call(x)
    x = call.x
    T.shape4(x, "x")
    a, b = T.reals(param, "param", 2, "[a, b]")
    sq = x.pow(2).sum(dim=1, keepdim=True).clamp_(min=1e-8)
    if dzdy is None:
        return call.out(x - a * sq.pow(b))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    return call.out(dzdy - (2 * a * b) * x * (dzdy.sum(dim=1, keepdim=True) * sq.pow(b - 1)))
