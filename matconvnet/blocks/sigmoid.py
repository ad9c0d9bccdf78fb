r"""vl_nnsigmoid: the logistic sigmoid, elementwise.

Formula (manual 4.6 and 6.6)::

    y = 1 / (1 + exp(-x))
    dzdx = dzdy * y * (1 - y)

Any shape.  The backward mode recomputes ``y`` from ``x`` unless the forward output is
passed as ``y=`` (the wrappers keep it anyway).

Call forms::

    y = vl_nnsigmoid(x)
    dzdx = vl_nnsigmoid(x, dzdy, y=None)
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nnsigmoid"]


def vl_nnsigmoid(x: T.Array, dzdy: Optional[T.Array] = None, *, y: Optional[T.Array] = None):
    call = T.Call(x)
    x = call.x
    if dzdy is None:
        return call.out(torch.sigmoid(x))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    y = torch.sigmoid(x) if y is None else call.tensor(y, "y")
    T.expect_shape(y, "y", x.shape, "the shape of x")
    return call.out(torch.ops.aten.sigmoid_backward(dzdy, y))
