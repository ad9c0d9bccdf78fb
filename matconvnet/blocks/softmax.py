"""vl_nnsoftmax: softmax over the channels, independently at every location and image.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnsoftmax` (rendered as ``docs/blocks/vl_nnsoftmax.md``).
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nnsoftmax"]


def vl_nnsoftmax(x: T.Array, dzdy: Optional[T.Array] = None, *, y: Optional[T.Array] = None):
    r"""vl_nnsoftmax: softmax over the channels, independently at every location and image.

    Formula (manual 4.6.4 and 6.6.4), with ``k`` the channel index::

        y[n, k, i, j] = exp(x[n, k, i, j]) / sum_q exp(x[n, q, i, j])
        dzdx = y * (dzdy - sum_k dzdy * y)

    (computed stably, subtracting the maximum over the channels).  MatConvNet's softmax runs
    along the third dimension of ``H x W x C x N``, which is dimension 1 of ``N x C x H x W``.

    Shapes::

        x, y, dzdy, dzdx    N x C x H x W

    Call forms::

        y = vl_nnsoftmax(x)
        dzdx = vl_nnsoftmax(x, dzdy, y=None)

    Options:

    * ``y``: None; the forward output.  The backward mode recomputes ``y`` unless it is
      passed here.

    Example::

        import torch
        from matconvnet import vl_nnsoftmax

        x = torch.randn(2, 10, 3, 3)
        y = vl_nnsoftmax(x)
        assert torch.allclose(y.sum(dim=1), torch.ones(2, 3, 3))
        dzdx = vl_nnsoftmax(x, torch.ones_like(x), y=y)   # softmax is invariant to a shift
        assert dzdx.abs().max() < 1e-6
    """
    call = T.Call(x)
    x = call.x
    T.shape4(x, "x")
    if dzdy is None:
        return call.out(softmax_channels(x))
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    y = softmax_channels(x) if y is None else call.tensor(y, "y")
    T.expect_shape(y, "y", x.shape, "the shape of x")
    dzdx = torch.ops.aten._softmax_backward_data(_as_matrix(dzdy), _as_matrix(y), 1, x.dtype)
    return call.out(dzdx.reshape(x.shape))


def _as_matrix(t: torch.Tensor) -> torch.Tensor:
    """N x C x 1 x 1 as an N x C matrix: PyTorch's CPU kernels over dimension 1 are some 20
    times faster when it is the last one (scores of a classifier have this shape)."""
    return t.reshape(t.shape[0], t.shape[1]) if t.shape[2] * t.shape[3] == 1 else t


def softmax_channels(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the channels (dimension 1) of N x C x H x W."""
    return torch.softmax(_as_matrix(x), dim=1).reshape(x.shape)


def log_softmax_channels(x: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the channels (dimension 1) of N x C x H x W."""
    return torch.log_softmax(_as_matrix(x), dim=1).reshape(x.shape)
