"""vl_nnbilinearsampler: sample x at the points of a grid with bilinear interpolation.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnbilinearsampler` (rendered as ``docs/blocks/vl_nnbilinearsampler.md``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import _tensor as T
from ._common import cudnn_flag

__all__ = ["vl_nnbilinearsampler"]


def vl_nnbilinearsampler(x: T.Array, grid: T.Array, dzdy: Optional[T.Array] = None, *,
                         cudnn: bool = True):
    r"""vl_nnbilinearsampler: sample x at the points of a grid with bilinear interpolation.

    Formula (manual 4.5 and 6.5): the grid gives, for each output pixel ``(i, j)`` of grid
    ``n'``, a point in MatConvNet's normalised coordinates, -1 and +1 being the centres of the
    first and last pixels; channel 0 is the vertical coordinate, channel 1 the horizontal one::

        u = (grid[n', 0, i, j] + 1) (H - 1) / 2,   v = (grid[n', 1, i, j] + 1) (W - 1) / 2
        y[n', c, i, j] = sum_{a, b} x[n, c, a, b] max(0, 1 - |u - a|) max(0, 1 - |v - b|)

    (0-based pixel coordinates; neighbours outside the image contribute zero).  As in the
    original, a point above or left of the first pixel centre (``u < 0`` or ``v < 0``) gives 0
    and no derivative, while one below or right of the last centre still takes its share of
    the border pixels.  (That is the original's CPU code, which the reference numbers come
    from; its CUDA kernel keeps those samples.)  When ``N' = k N``, grids
    ``n k .. n k + k - 1`` sample image ``n``.  Backward returns dzdx and dzdgrid (the
    derivative with respect to the normalised coordinates).

    Shapes::

        x       N x C x H x W
        grid    N' x 2 x Ho x Wo     (MatConvNet's 2 x Ho x Wo x N'), N' a multiple of N
        y       N' x C x Ho x Wo
        dzdx, dzdgrid   the shapes of x and grid

    Call forms::

        y = vl_nnbilinearsampler(x, grid)
        dzdx, dzdgrid = vl_nnbilinearsampler(x, grid, dzdy)

    Options:

    * ``cudnn``: as in vl_nnconv.

    Example::

        import torch
        from matconvnet import vl_nnbilinearsampler

        x = torch.randn(1, 3, 5, 7)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 7), indexing="ij")
        grid = torch.stack([ys, xs]).unsqueeze(0)    # the identity grid, 1 x 2 x 5 x 7
        y = vl_nnbilinearsampler(x, grid)
        assert torch.allclose(y, x, atol=1e-5)
        dzdx, dzdgrid = vl_nnbilinearsampler(x, grid, torch.ones_like(y))
        assert dzdgrid.shape == grid.shape
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    grid = call.tensor(grid, "grid")
    if grid.dim() != 4 or grid.shape[1] != 2:
        raise ValueError(f"grid: expected an N' x 2 x Ho x Wo array, got shape {tuple(grid.shape)}")
    ng, _, ho, wo = grid.shape
    if ng % n != 0:
        raise ValueError(f"grid: expected a number of grids that is a multiple of N = {n}, got {ng}")
    k = ng // n
    # PyTorch wants N x (k Ho) x Wo x 2 with (horizontal, vertical): stack the k grids of
    # each image vertically, so that x is sampled once per image without being copied.
    g = grid.flip(1)
    # The original drops points above or left of the first pixel centre: moved well outside
    # the image, they sample only zero padding, so they give 0 and no derivative of either
    # kind, as the original.  (An axis of size 1 maps every coordinate to its pixel.)  On
    # the CPU one read finds whether there are any; on the GPU that would cost a sync.
    if g.is_cuda or bool(g.amin() < -1):
        g.masked_fill_(g < -1, _OUTSIDE)
    g = g.permute(0, 2, 3, 1).reshape(n, k * ho, wo, 2)
    with cudnn_flag(cudnn):
        if dzdy is None:
            y = F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=True)
            return call.out(_unstack(y, n, k, c, ho, wo))
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", (ng, c, ho, wo), "the shape of the output y")
        dy = dzdy.reshape(n, k, c, ho, wo).transpose(1, 2).reshape(n, c, k * ho, wo)
        dzdx, dg = torch.ops.aten.grid_sampler_2d_backward(
            dy, x, g, 0, 0, True, [True, True])
        dg = dg.reshape(ng, ho, wo, 2)
        dzdgrid = torch.stack((dg[..., 1], dg[..., 0]), dim=1)
        return call.out(dzdx, dzdgrid)


# u = (-5 + 1) (H - 1) / 2 <= -2 for H >= 2: both neighbours of the point lie outside
_OUTSIDE = -5.0


def _unstack(y, n, k, c, ho, wo):
    return y.reshape(n, c, k, ho, wo).transpose(1, 2).reshape(n * k, c, ho, wo).contiguous()
