"""vl_nnrelu: rectified linear unit, optionally leaky.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnrelu` (rendered as ``docs/blocks/vl_nnrelu.md``).
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nnrelu"]

_aten = torch.ops.aten


def vl_nnrelu(x: T.Array, dzdy: Optional[T.Array] = None, *, leak: float = 0.0,
              inplace: bool = False):
    r"""vl_nnrelu: rectified linear unit, optionally leaky.

    Formula (manual 4.4 and 6.4.1), elementwise::

        y = max(x, 0)                       (leak = 0)
        y = x  if x > 0,  leak * x  otherwise
        dzdx = dzdy * [x > 0]  (+ leak * dzdy * [x <= 0])

    The slope at ``x = 0`` is ``leak``.  Because ``y > 0`` exactly where ``x > 0``, the
    backward mode may be given the output ``y`` in place of ``x`` (the wrappers use this to
    free ``x`` early).

    Shapes: any; ``y`` and ``dzdx`` have the shape of ``x``.

    Call forms::

        y = vl_nnrelu(x, leak=0)
        dzdx = vl_nnrelu(x, dzdy, leak=0)

    Options:

    * ``leak``: 0; the slope for ``x <= 0`` (MatConvNet's ``'leak'``).
    * ``inplace``: False; True writes the result over the data it is computed from (``x`` in
      the forward call, ``dzdy`` in the backward call) and returns that array: for callers
      that discard it (the wrappers, under ``conserve_memory``), to save an allocation.

    Example::

        import torch
        from matconvnet import vl_nnrelu

        x = torch.tensor([-2.0, -0.5, 0.0, 3.0], dtype=torch.float64)
        assert vl_nnrelu(x).tolist() == [0.0, 0.0, 0.0, 3.0]
        assert vl_nnrelu(x, leak=0.1).tolist() == [-0.2, -0.05, 0.0, 3.0]
        assert vl_nnrelu(x, torch.ones_like(x)).tolist() == [0.0, 0.0, 0.0, 1.0]
    """
    call = T.Call(x)
    x = call.x
    leak = T.real(leak, "leak")
    if dzdy is None:
        if leak == 0:
            return call.out(torch.relu_(x) if inplace else torch.relu(x))
        return call.out(torch.where(x > 0, x, x * leak, out=x if inplace else None))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    if leak == 0:
        if inplace:
            return call.out(_aten.threshold_backward.grad_input(dzdy, x, 0, grad_input=dzdy))
        return call.out(_aten.threshold_backward(dzdy, x, 0))
    return call.out(torch.where(x > 0, dzdy, dzdy * leak, out=dzdy if inplace else None))
