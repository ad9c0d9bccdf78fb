"""vl_nndropout: inverted dropout.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nndropout` (rendered as ``docs/blocks/vl_nndropout.md``).
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nndropout"]


def vl_nndropout(x: T.Array, dzdy: Optional[T.Array] = None, *, rate: float = 0.5,
                 mask: Optional[T.Array] = None):
    r"""vl_nndropout: inverted dropout.

    Formula::

        mask = [u >= rate] / (1 - rate),   u ~ U(0, 1) drawn independently per element
        y = mask * x,   dzdx = mask * dzdy

    No rescaling is needed at test time (do not call the block there).  Random numbers come
    from torch's generator for x's device (seed with ``torch.manual_seed``).

    Shapes: any; ``y``, ``mask`` and ``dzdx`` have x's shape (``mask`` also its dtype and
    device; ``y`` and ``dzdx`` the memory layout of ``x`` and ``dzdy``, e.g. channels-last).
    The uniform numbers are drawn in x's index order, whatever its layout.

    Call forms::

        y, mask = vl_nndropout(x, rate=0.5)
        y = vl_nndropout(x, mask=mask)
        dzdx = vl_nndropout(x, dzdy, mask=mask)

    Options:

    * ``rate``: 0.5; the probability of zeroing an element, in [0, 1).
    * ``mask``: None; reuse a mask (required in the backward mode: pass the forward mask).

    Example::

        import torch
        from matconvnet import vl_nndropout

        torch.manual_seed(0)
        x = torch.ones(1, 4, 8, 8)
        y, mask = vl_nndropout(x, rate=0.25)
        assert torch.all((mask == 0) | torch.isclose(mask, torch.tensor(1 / 0.75)))
        assert torch.equal(vl_nndropout(x, mask=mask), y)
        dzdx = vl_nndropout(x, torch.ones_like(x), mask=mask)
        assert torch.equal(dzdx, mask)
    """
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
        return call.out(_times(mask, dzdy))
    if mask is not None:
        mask = call.tensor(mask, "mask")
        T.expect_shape(mask, "mask", x.shape, "the shape of x")
        return call.out(_times(mask, x))
    # [u >= rate] / (1 - rate), computed in u's memory (u is drawn in x's index order)
    mask = torch.rand(x.shape, device=x.device).ge_(rate).to(x.dtype).mul_(1.0 / (1.0 - rate))
    return call.out(_times(mask, x), mask)


def _times(mask, t):
    """``mask * t`` stored like ``t`` (which may be channels-last), whatever mask's layout."""
    return torch.mul(mask, t, out=torch.empty_like(t))
