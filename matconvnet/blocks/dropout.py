r"""vl_nndropout: inverted dropout.

Formula (manual 4.9)::

    mask = [u >= rate] / (1 - rate),   u ~ U(0, 1) drawn independently per element
    y = mask * x,   dzdx = mask * dzdy

No rescaling is needed at test time (do not call the block there).  ``mask`` has x's
shape, dtype and device; pass the forward mask to the backward mode.  Random numbers come
from torch's generator for x's device (seed with ``torch.manual_seed``).

Call forms::

    y, mask = vl_nndropout(x, rate=0.5)
    y = vl_nndropout(x, mask=mask)
    dzdx = vl_nndropout(x, dzdy, mask=mask)
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nndropout"]


def vl_nndropout(x: T.Array, dzdy: Optional[T.Array] = None, *, rate: float = 0.5,
                 mask: Optional[T.Array] = None):
    call = T.Call(x)
    x = call.x
    rate = T.real(rate, "rate")
    if not 0 <= rate < 1:
        raise ValueError(f"rate: expected a probability in [0, 1), got {rate}")
    if dzdy is not None:
        if mask is None:
            raise ValueError("mask: the backward mode needs the mask of the forward pass")
        mask = call.tensor(mask, "mask")
        T.expect_shape(mask, "mask", x.shape, "the shape of x")
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
        return call.out(mask * dzdy)
    if mask is not None:
        mask = call.tensor(mask, "mask")
        T.expect_shape(mask, "mask", x.shape, "the shape of x")
        return call.out(mask * x)
    keep = torch.rand(x.shape, device=x.device) >= rate
    mask = keep.to(x.dtype) * (1.0 / (1.0 - rate))
    return call.out(mask * x, mask)
