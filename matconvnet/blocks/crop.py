r"""vl_nncrop: crop the spatial borders of a tensor.

Formula (``[T, B, L, R]`` = crop)::

    y = x[:, :, T : H - B, L : W - R]
    dzdx = dzdy zero-padded back to H x W

Call forms::

    y = vl_nncrop(x, crop)
    dzdx = vl_nncrop(x, crop, dzdy)
    dzdx = vl_nncrop(None, crop, dzdy, input_size=(N, C, H, W))   # x not needed

``crop`` is a scalar or [top, bottom, left, right].
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch.nn.functional as F

from .. import _tensor as T
from ._common import crop_hw, torch_pad

__all__ = ["vl_nncrop"]


def vl_nncrop(x: Optional[T.Array], crop, dzdy: Optional[T.Array] = None, *,
              input_size: Optional[Sequence[int]] = None):
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
