"""vl_nnnoffset: norm-dependent offset.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnnoffset` (rendered as ``docs/blocks/vl_nnnoffset.md``).
"""
from __future__ import annotations

from typing import Optional

from .. import _tensor as T

__all__ = ["vl_nnnoffset"]


def vl_nnnoffset(x: T.Array, param, dzdy: Optional[T.Array] = None):
    r"""vl_nnnoffset: norm-dependent offset.

    Formula, with ``param = [a, b]`` and the squared norm over the channels at each location::

        L = max(sum_k x_k^2, 1e-8)
        y = x - a L^b
        dzdx = dzdy - 2 a b x (sum_k dzdy_k) L^(b - 1)

    Shapes::

        x, y, dzdy, dzdx   N x C x H x W

    Call forms::

        y = vl_nnnoffset(x, param)
        dzdx = vl_nnnoffset(x, param, dzdy)

    Options: none; ``param`` (positional) is ``[a, b]``.

    Example::

        import torch
        from matconvnet import vl_nnnoffset

        x = torch.zeros(1, 2, 3, 3)
        x[:, 0] = 3.0
        x[:, 1] = 4.0                                # squared norm 25 at every pixel
        y = vl_nnnoffset(x, [1.0, 0.5])              # subtracts 1 * 25^0.5 = 5
        assert torch.allclose(y[:, 0], torch.full((1, 3, 3), -2.0))
        assert vl_nnnoffset(x, [1.0, 0.5], torch.ones_like(x)).shape == x.shape
    """
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
