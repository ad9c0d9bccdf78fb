"""vl_nnconcat: concatenate tensors along one dimension.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnconcat` (rendered as ``docs/blocks/vl_nnconcat.md``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from .. import _tensor as T

__all__ = ["vl_nnconcat"]


def vl_nnconcat(xs: Sequence[T.Array], dim: int = 1, dzdy: Optional[T.Array] = None, *,
                input_sizes: Optional[Sequence[Sequence[int]]] = None):
    r"""vl_nnconcat: concatenate tensors along one dimension.

    Formula: ``y`` is the inputs placed one after another along axis ``dim``; the backward mode
    slices ``dzdy`` back into pieces shaped like the inputs.  It needs only their sizes, which
    may be given as ``input_sizes`` instead of the inputs.

    Shapes::

        xs[i]   N x C_i x H x W   (with dim = 1: the inputs agree in every other dimension)
        y       N x (C_1 + C_2 + ...) x H x W
        dzdxs   a list: one array shaped like each input

    Call forms::

        y = vl_nnconcat([x1, x2, ...], dim=1)
        dzdx1, dzdx2, ... = vl_nnconcat([x1, x2, ...], dim, dzdy)            # a list
        dzdxs = vl_nnconcat([], dim, dzdy, input_sizes=[s1, s2, ...])

    Options:

    * ``dim`` (positional): 1; an axis of the N x C x H x W arrays (default the channels;
      MatConvNet's ``DIM`` = 1, 2, 3, 4 of H x W x C x N is 2, 3, 1, 0 here).
    * ``input_sizes``: None; the inputs' shapes, for the backward mode without the inputs.

    Example::

        import torch
        from matconvnet import vl_nnconcat

        a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
        y = vl_nnconcat([a, b])
        assert y.shape == (2, 8, 4, 4)
        da, db = vl_nnconcat([a, b], 1, y)
        assert torch.equal(da, a) and torch.equal(db, b)
        da, db = vl_nnconcat([], 1, y, input_sizes=[a.shape, b.shape])
        assert db.shape == b.shape
    """
    xs = list(xs) if xs is not None else []
    if dzdy is None:
        if not xs:
            raise ValueError("xs: expected at least one array to concatenate, got none")
        call = T.Call(xs[0], "xs[0]")
        ts = [call.x] + [call.tensor(a, f"xs[{i}]") for i, a in enumerate(xs[1:], 1)]
        axis = _axis(dim, ts[0].dim())
        ref = list(ts[0].shape)
        for i, t in enumerate(ts[1:], 1):
            other = list(t.shape)
            if t.dim() != len(ref) or other[:axis] + other[axis + 1:] != ref[:axis] + ref[axis + 1:]:
                raise ValueError(
                    f"xs[{i}]: shape {tuple(t.shape)} does not match xs[0]'s {tuple(ref)} "
                    f"outside dimension {axis}")
        return call.out(torch.cat(ts, dim=axis))
    call = T.Call(dzdy, "dzdy")
    dzdy = call.x
    if input_sizes is None:
        if not xs:
            raise ValueError("input_sizes: required when xs is empty")
        sizes = [tuple(a.shape) for a in xs]
    else:
        sizes = [tuple(int(v) for v in s) for s in input_sizes]
    axis = _axis(dim, dzdy.dim())
    lengths = [s[axis] if axis < len(s) else 1 for s in sizes]
    if sum(lengths) != dzdy.shape[axis]:
        raise ValueError(
            f"dzdy: expected {sum(lengths)} elements along dimension {axis} (the inputs' total), "
            f"got shape {tuple(dzdy.shape)}")
    parts = torch.split(dzdy, lengths, dim=axis)
    return [call.out(p.contiguous()) for p in parts]


def _axis(dim, ndim: int) -> int:
    d = T._ints(dim, "dim")
    if len(d) != 1 or not 0 <= d[0] < ndim:
        raise ValueError(f"dim: expected an axis in 0..{ndim - 1}, got {dim!r}")
    return d[0]
