"""vl_nnsigmoid: the logistic sigmoid, elementwise.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnsigmoid` (rendered as ``docs/blocks/vl_nnsigmoid.md``).
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nnsigmoid"]


def vl_nnsigmoid(x: T.Array, dzdy: Optional[T.Array] = None, *, y: Optional[T.Array] = None):
    r"""vl_nnsigmoid: the logistic sigmoid, elementwise.

    Formula (manual 4.4 and 6.4.2)::

        y = 1 / (1 + exp(-x))
        dzdx = dzdy * y * (1 - y)

    Shapes: any; ``y`` and ``dzdx`` have the shape of ``x``.

    Call forms::

        y = vl_nnsigmoid(x)
        dzdx = vl_nnsigmoid(x, dzdy, y=None)

    Options:

    * ``y``: None; the forward output.  The backward mode recomputes ``y`` from ``x`` unless it
      is passed here (the wrappers keep it anyway).

    Example::

        import torch
        from matconvnet import vl_nnsigmoid

        x = torch.zeros(2, 3, 1, 1)
        y = vl_nnsigmoid(x)
        assert torch.all(y == 0.5)
        dzdx = vl_nnsigmoid(x, torch.ones_like(x), y=y)
        assert torch.all(dzdx == 0.25)
    """
    call = T.Call(x)
    x = call.x
    if dzdy is None:
        return call.out(torch.sigmoid(x))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    y = torch.sigmoid(x) if y is None else call.tensor(y, "y")
    T.expect_shape(y, "y", x.shape, "the shape of x")
    return call.out(torch.ops.aten.sigmoid_backward(dzdy, y))
