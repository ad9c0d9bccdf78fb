"""vl_nnpdist: p-distance between x and x0 along the channels, at every location.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnpdist` (rendered as ``docs/blocks/vl_nnpdist.md``).
"""
from __future__ import annotations

from typing import Optional


from .. import _tensor as T

__all__ = ["vl_nnpdist"]


def vl_nnpdist(x: T.Array, x0: T.Array, p: float, dzdy: Optional[T.Array] = None, *,
               no_root: bool = False, epsilon: float = 1e-6, aggregate: bool = False,
               instance_weights: Optional[T.Array] = None):
    r"""vl_nnpdist: p-distance between x and x0 along the channels, at every location.

    Formula (manual 4.8.1 and 6.8.1), with ``d = x - x0`` (x0 the same size as x, or broadcast
    to it, e.g. N x C x 1 x 1 for one point per image)::

        y = (sum_k |d_k|^p)^(1/p)            (no_root: sum_k |d_k|^p)
        y <- w y  (instance_weights),  y <- sum y  (aggregate)

    Derivatives (``dzdy`` is N x 1 x H x W, or a scalar with ``aggregate``; it is multiplied
    by the weights first)::

        p = 1:  dzdy sign(d)                       (root and no_root alike)
        p = 2:  dzdy d / max(sum d^2, eps)^(1/2)    no_root: 2 dzdy d
        p < 1:  dzdy (sum |d|^p)^((1-p)/p) max(|d|, eps)^(p-1) sign(d)
                no_root: p dzdy max(|d|, eps)^(p-1) sign(d)
        p > 1:  dzdy max(sum |d|^p, eps)^((1-p)/p) |d|^(p-1) sign(d)
                no_root: p dzdy |d|^(p-1) sign(d)
        dzdx0 = -dzdx, summed over the broadcast dimensions of x0

    (MatConvNet returns dzdx0 with x's size even for a broadcast x0; here it has x0's shape.)

    Shapes::

        x       N x C x H x W
        x0      N x C x H x W, or any shape that broadcasts to it (e.g. N x C x 1 x 1)
        y       N x 1 x H x W   (a 0-d array with aggregate=True)
        dzdx    x's shape;  dzdx0: x0's shape

    Call forms::

        y = vl_nnpdist(x, x0, p, no_root=False, epsilon=1e-6, aggregate=False,
                       instance_weights=None)
        dzdx, dzdx0 = vl_nnpdist(x, x0, p, dzdy, ...)

    Options:

    * ``p`` (positional): the exponent, positive.
    * ``no_root``: False; return ``sum |d|^p`` without the 1/p root.
    * ``epsilon``: 1e-6; lower bound in the derivatives' denominators.
    * ``aggregate``: False; sum all locations into one number.
    * ``instance_weights``: None; a scalar or per-location weights, multiplying ``y`` (forward)
      and ``dzdy`` (backward).

    Example::

        import torch
        from matconvnet import vl_nnpdist

        x = torch.zeros(2, 3, 4, 4)
        x[:, 0] = 3.0
        x[:, 1] = 4.0
        x0 = torch.zeros(2, 3, 1, 1)                 # one point per image, broadcast
        y = vl_nnpdist(x, x0, 2)
        assert y.shape == (2, 1, 4, 4) and torch.all(y == 5)
        dzdx, dzdx0 = vl_nnpdist(x, x0, 2, torch.ones_like(y))
        assert dzdx.shape == x.shape and dzdx0.shape == x0.shape
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    x0 = call.tensor(x0, "x0")
    T.expect_broadcastable(x0, "x0", x.shape, "the shape of x (e.g. N x C x 1 x 1)")
    p = T.real(p, "p")
    if p <= 0:
        raise ValueError(f"p: expected a positive exponent, got {p}")
    epsilon = T.real(epsilon, "epsilon")
    weights = None
    if instance_weights is not None:
        weights = call.scalar_or_tensor(instance_weights, "instance_weights")
        T.expect_broadcastable(weights, "instance_weights", (n, 1, h, w), "the output's shape")
    d = x - x0
    if dzdy is None:
        if p == 1:
            y = d.abs().sum(dim=1, keepdim=True)
        elif p == 2:
            y = (d * d).sum(dim=1, keepdim=True)
            y = y if no_root else y.sqrt()
        else:
            y = d.abs().pow(p).sum(dim=1, keepdim=True)
            y = y if no_root else y.pow(1 / p)
        if weights is not None:
            y = y * weights
        return call.out(y.sum() if aggregate else y)

    dzdy = call.scalar_or_tensor(dzdy, "dzdy")
    if aggregate:
        if dzdy.numel() != 1:
            raise ValueError(f"dzdy: expected a scalar with aggregate=True, got shape {tuple(dzdy.shape)}")
        dzdy = dzdy.reshape(())
    else:
        T.expect_shape(dzdy, "dzdy", (n, 1, h, w), "the shape of the output y")
    if weights is not None:
        dzdy = dzdy * weights
    if p == 1:
        dzdx = dzdy * d.sign()
    elif p == 2:
        if no_root:
            dzdx = (2 * dzdy) * d
        else:
            dzdx = dzdy / (d * d).sum(dim=1, keepdim=True).clamp(min=epsilon).sqrt() * d
    else:
        ad = d.abs()
        tail = (ad.clamp(min=epsilon) if p < 1 else ad).pow(p - 1) * d.sign()
        if no_root:
            dzdx = (p * dzdy) * tail
        else:
            s = ad.pow(p).sum(dim=1, keepdim=True)
            if p > 1:
                s = s.clamp(min=epsilon)
            dzdx = dzdy * s.pow((1 - p) / p) * tail
    dzdx = dzdx.expand(x.shape).contiguous() if dzdx.shape != x.shape else dzdx
    dzdx0 = -dzdx if x0.shape == x.shape else -dzdx.sum_to_size(x0.shape)
    return call.out(dzdx, dzdx0)
