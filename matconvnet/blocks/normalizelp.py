"""vl_nnnormalizelp: Lp normalisation over some dimensions.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnnormalizelp` (rendered as ``docs/blocks/vl_nnnormalizelp.md``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from .. import _tensor as T

__all__ = ["vl_nnnormalizelp"]


def vl_nnnormalizelp(x: T.Array, dzdy: Optional[T.Array] = None, *, p: float = 2.0,
                     exponent: Optional[float] = None, epsilon: float = 1e-2,
                     dimensions: Sequence[int] = (1,), spatial: bool = False,
                     norms: Optional[T.Array] = None, return_norms: bool = False,
                     cudnn: bool = True):
    r"""vl_nnnormalizelp: Lp normalisation over some dimensions.

    Formula, with the sums over the axes in ``dimensions``::

        n = (sum |x|^p + epsilon)^(1/p),   y = x / n
        dzdx = dzdy / n - sum(dzdy x) |x|^(p-1) sign(x) / n^(p+1)

    MatConvNet raises x to the power p without ``abs``, so odd p gives wrong norms there; here
    ``|x|^p`` is used, which agrees with the original for every even p.

    Shapes::

        x, y, dzdy, dzdx   N x C x H x W (any array of up to 4 dimensions)
        norms              x's shape with the reduced axes set to 1

    Call forms::

        y = vl_nnnormalizelp(x, p=2, epsilon=1e-2, dimensions=(1,))
        y, norms = vl_nnnormalizelp(x, return_norms=True)
        dzdx = vl_nnnormalizelp(x, dzdy, p=2, epsilon=1e-2, dimensions=(1,))

    Options:

    * ``p`` (alias ``exponent``): 2; must be positive.
    * ``epsilon``: 1e-2; added to the sum before the root.
    * ``dimensions``: ``(1,)``; axes of the N x C x H x W array to reduce over (the default,
      the channels, is MatConvNet's dimension 3).
    * ``spatial``: False; True means ``dimensions = (2, 3)``.
    * ``norms``: None; given norms to use instead of computing them (forward and backward).
    * ``return_norms``: False; forward mode: also return the norms.
    * ``cudnn``: accepted for compatibility; no effect.

    Example::

        import torch
        from matconvnet import vl_nnnormalizelp

        x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
        y, norms = vl_nnnormalizelp(x, epsilon=0, return_norms=True)
        assert norms.shape == (2, 1, 3, 3)
        assert torch.allclose(y.pow(2).sum(dim=1), torch.ones(2, 3, 3, dtype=torch.float64))
        assert vl_nnnormalizelp(x, torch.ones_like(x)).shape == x.shape
    """
    call = T.Call(x)
    x = call.x
    p = T.real(p if exponent is None else exponent, "p" if exponent is None else "exponent")
    if p <= 0:
        raise ValueError(f"p: expected a positive exponent, got {p}")
    epsilon = T.real(epsilon, "epsilon")
    dims = (2, 3) if spatial else T._ints(dimensions, "dimensions")
    if not dims or any(not 0 <= d < x.dim() for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"dimensions: expected distinct axes in 0..{x.dim() - 1}, got {dims}")
    reduced = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    if norms is None:
        ax = x.abs()
        n = (ax * ax if p == 2 else ax.pow(p)).sum(dim=dims, keepdim=True).add_(epsilon).pow_(1 / p)
    else:
        n = call.tensor(norms, "norms")
        if n.numel() != int(torch.Size(reduced).numel()):
            raise ValueError(f"norms: expected shape {reduced}, got {tuple(n.shape)}")
        n = n.reshape(reduced)
    if dzdy is None:
        y = x / n
        return call.out(y, n) if return_norms else call.out(y)
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    dxp = x if p == 2 else x.abs().pow(p - 1) * x.sign()
    proj = (dzdy * x).sum(dim=dims, keepdim=True) / n.pow(p + 1)
    return call.out(dzdy / n - proj * dxp)
