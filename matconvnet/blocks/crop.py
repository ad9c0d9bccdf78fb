"""vl_nncrop: crop the spatial borders of a tensor.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nncrop` (rendered as ``docs/blocks/vl_nncrop.md``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch.nn.functional as F

from .. import _tensor as T
from ._common import crop_hw, torch_pad

__all__ = ["vl_nncrop"]


def vl_nncrop(x: Optional[T.Array], crop, dzdy: Optional[T.Array] = None, *,
              input_size: Optional[Sequence[int]] = None):
    r"""vl_nncrop: crop the spatial borders of a tensor.

    Formula (``[T, B, L, R]`` = crop)::

        y = x[:, :, T : H - B, L : W - R]
        dzdx = dzdy zero-padded back to H x W

    Shapes::

        x, dzdx   N x C x H x W
        y, dzdy   N x C x (H - T - B) x (W - L - R)

    Call forms::

        y = vl_nncrop(x, crop)
        dzdx = vl_nncrop(x, crop, dzdy)
        dzdx = vl_nncrop(None, crop, dzdy, input_size=(N, C, H, W))   # x not needed

    Options:

    * ``crop`` (positional): a scalar or ``[top, bottom, left, right]``.
    * ``input_size``: None; x's shape, for the backward mode without x.

    Example::

        import torch
        from matconvnet import vl_nncrop

        x = torch.randn(1, 2, 6, 7)
        y = vl_nncrop(x, [1, 2, 0, 3])
        assert y.shape == (1, 2, 3, 4) and torch.equal(y, x[:, :, 1:4, 0:4])
        dzdx = vl_nncrop(None, [1, 2, 0, 3], torch.ones_like(y), input_size=x.shape)
        assert dzdx.shape == x.shape and dzdx.sum() == y.numel()
    """
    crop = T.quad(crop, "crop")
    if x is None:
        if dzdy is None or input_size is None:
            raise TypeError("x: may be None only in the backward mode with input_size given")
        call = T.Call(dzdy, "dzdy")
        size = tuple(int(s) for s in input_size)
        if len(size) != 4:
            raise ValueError(f"input_size: expected 4 sizes (N, C, H, W), got {tuple(input_size)}")
    else:
        call = T.Call(x)
        size = T.shape4(call.x, "x")
    n, c, h, w = size
    yh, yw = h - crop[0] - crop[1], w - crop[2] - crop[3]
    if yh < 0 or yw < 0:
        raise ValueError(f"crop: {crop} removes more than the {h} x {w} input")
    if dzdy is None:
        return call.out(crop_hw(call.x, crop).contiguous())
    dzdy = call.x if x is None else call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", (n, c, yh, yw), "the shape of the output y")
    return call.out(F.pad(dzdy, torch_pad(crop)))
