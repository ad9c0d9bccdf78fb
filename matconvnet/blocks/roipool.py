"""vl_nnroipool: region-of-interest pooling (Fast R-CNN).

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnroipool` (rendered as ``docs/blocks/vl_nnroipool.md``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .. import _tensor as T

__all__ = ["vl_nnroipool"]

_CHUNK = 1 << 24  # elements gathered at once by max pooling


def vl_nnroipool(x: T.Array, rois: T.Array, dzdy: Optional[T.Array] = None, *,
                 method: str = "max", subdivisions=(1, 1), transform=1.0):
    r"""vl_nnroipool: region-of-interest pooling (Fast R-CNN).

    Formula: each ROI ``[t, u0, v0, u1, v1]`` (1-based image index ``t``; ``u`` horizontal,
    ``v`` vertical, 1-based pixel coordinates of the top-left and bottom-right corners) is
    divided into ``SH x SW`` bins, and each bin of image ``t`` is max- or average-pooled::

        corners <- transform(corners)          (scalar T:  u' = T (u - 1) + 1, same for v;
                                                [Tu, Tv]:  per axis;  2 x 3 matrix A:
                                                [u'; v'] = A [u; v; 1])
        start = round(corner) - 1, end = round(corner) - 1    (0-based, inclusive; half away
                                                               from zero, as Caffe)
        roiH = max(end_v - start_v + 1, 1),  binH = roiH / SH
        bin p covers rows [floor(p binH), ceil((p + 1) binH)) + start_v, clipped to the image

    (the same across the columns).  An empty bin gives 0 and no derivative; ``avg`` divides by
    the clipped bin area; the max derivative goes to the first maximum in column-major order,
    as in vl_nnpool.  The image index is clamped to 1..N.  There is no derivative with respect
    to the ROIs.

    Shapes::

        x       N x C x H x W
        rois    5 x K (MatConvNet's layout) or K x 5
        y       K x C x SH x SW
        dzdx    N x C x H x W

    Call forms::

        y = vl_nnroipool(x, rois, method='max', subdivisions=(1, 1), transform=1)
        dzdx = vl_nnroipool(x, rois, dzdy, method='max', subdivisions=(1, 1), transform=1)

    Options:

    * ``method``: ``'max'`` (default) or ``'avg'``.
    * ``subdivisions``: ``(1, 1)``; ``[SH, SW]``, or a scalar for both (MatConvNet reads past
      the end of a scalar ``Subdivisions``; here it means a square grid).
    * ``transform``: 1; a scalar, ``[Tu, Tv]`` or a 2 x 3 matrix mapping the ROI corners into
      x's pixel coordinates (e.g. 1/16 for a conv5 feature map).

    Example::

        import torch
        from matconvnet import vl_nnroipool

        x = torch.arange(64.0).reshape(1, 1, 8, 8)   # x[0, 0, v - 1, u - 1] = 8 (v - 1) + u - 1
        rois = torch.tensor([[1.0, 1, 1, 4, 4],      # [image, u0, v0, u1, v1], 1-based
                             [1.0, 5, 5, 8, 8]])
        y = vl_nnroipool(x, rois, subdivisions=2)
        assert y.shape == (2, 1, 2, 2)
        assert y[0, 0].tolist() == [[9.0, 11.0], [25.0, 27.0]]
        dzdx = vl_nnroipool(x, rois, torch.ones_like(y), subdivisions=2)
        assert dzdx.sum() == 8
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    method = T.choice(method, "method", ("max", "avg"))
    sub = T.pair(subdivisions, "subdivisions")
    # ROI and bin arithmetic on the CPU: CUDA divides by a reciprocal, which moves bin
    # edges (13 * (7 / 13) != 7); only the final indices go to x's device.
    r = _rois(call.labels(rois, "rois").detach().cpu().to(torch.float64))
    k = r.shape[0]
    image = (r[:, 0].round().long() - 1).clamp(0, n - 1)
    u0, v0, u1, v1 = _transform(r[:, 1:], transform)
    rows = _bins(v0, v1, sub[0], h, x.dtype)
    cols = _bins(u0, u1, sub[1], w, x.dtype)
    if dzdy is not None:
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", (k, c, sub[0], sub[1]), "the shape of the output y")
    if method == "avg":
        return call.out(_avg(x, image, rows, cols, dzdy))
    return call.out(_max(x, image, rows, cols, dzdy))


def _rois(r: torch.Tensor) -> torch.Tensor:
    """ROIs as K x 5 rows."""
    if r.dim() == 1 and r.numel() == 5:
        return r.reshape(1, 5)
    if r.dim() == 2 and r.shape[0] == 5:
        return r.t()
    if r.dim() == 2 and r.shape[1] == 5:
        return r
    raise ValueError(f"rois: expected a 5 x K or K x 5 array [t, u0, v0, u1, v1], got shape {tuple(r.shape)}")


def _transform(corners: torch.Tensor, transform):
    """Transformed corner coordinates u0, v0, u1, v1 (1-based)."""
    a = np.asarray(transform.tolist() if hasattr(transform, "tolist") else transform, dtype=float)
    u0, v0, u1, v1 = corners.unbind(1)
    if a.size == 1:
        s = float(a.ravel()[0])
        return s * (u0 - 1) + 1, s * (v0 - 1) + 1, s * (u1 - 1) + 1, s * (v1 - 1) + 1
    if a.size == 2:
        su, sv = a.ravel()
        return su * (u0 - 1) + 1, sv * (v0 - 1) + 1, su * (u1 - 1) + 1, sv * (v1 - 1) + 1
    if a.shape == (2, 3):
        def apply(u, v):
            return a[0, 0] * u + a[0, 1] * v + a[0, 2], a[1, 0] * u + a[1, 1] * v + a[1, 2]
        (pu0, pv0), (pu1, pv1) = apply(u0, v0), apply(u1, v1)
        return pu0, pv0, pu1, pv1
    raise ValueError(f"transform: expected a scalar, [Tu, Tv] or a 2 x 3 matrix, got shape {a.shape}")


def _round(t: torch.Tensor) -> torch.Tensor:
    return (t.sign() * (t.abs() + 0.5).floor()).long()


def _bins(lo: torch.Tensor, hi: torch.Tensor, count: int, size: int, dtype: torch.dtype):
    """[start, end) of each bin along one axis, clipped to 0..size: two K x count tensors.
    The bin size is computed in x's precision, as the original does (13 * (7 / 13) is 7 in
    double but 7.0000005 in single precision, which moves the last bin's end)."""
    start, end = _round(lo) - 1, _round(hi) - 1
    dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    extent = (end - start + 1).clamp(min=1).to(dtype)
    step = extent / count
    p = torch.arange(count, dtype=dtype, device=lo.device)
    first = (p[None] * step[:, None]).floor().long() + start[:, None]
    last = ((p[None] + 1) * step[:, None]).ceil().long() + start[:, None]
    return first.clamp(0, size), last.clamp(0, size)


def _avg(x, image, rows, cols, dzdy):
    """Average pooling through an integral image (sums in float64)."""
    (r0, r1), (c0, c1) = [tuple(t.to(x.device) for t in b) for b in (rows, cols)]
    img = image.to(x.device)[:, None, None]
    area = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).to(torch.float64)  # K x SH x SW
    inv = torch.where(area > 0, 1.0 / area.clamp(min=1), torch.zeros_like(area))
    corners = ((r1, c1, 1.0), (r0, c1, -1.0), (r1, c0, -1.0), (r0, c0, 1.0))
    if dzdy is None:
        s = torch.nn.functional.pad(x.to(torch.float64).cumsum(2).cumsum(3), (1, 0, 1, 0))
        total = sum(sign * s[img, :, a[:, :, None], b[:, None, :]] for a, b, sign in corners)
        return (total * inv[..., None]).permute(0, 3, 1, 2).to(x.dtype).contiguous()
    n, c, h, w = x.shape
    g = dzdy.to(torch.float64).permute(0, 2, 3, 1) * inv[..., None]  # K x SH x SW x C
    diff = torch.zeros((n, h + 1, w + 1, c), dtype=torch.float64, device=x.device)
    for a, b, sign in corners:
        idx = (img.expand_as(area).reshape(-1), a[:, :, None].expand_as(area).reshape(-1),
               b[:, None, :].expand_as(area).reshape(-1))
        diff.index_put_(idx, sign * g.reshape(-1, c), accumulate=True)
    dzdx = diff.cumsum(1).cumsum(2)[:, :h, :w]
    return dzdx.permute(0, 3, 1, 2).to(x.dtype).contiguous()


def _max(x, image, rows, cols, dzdy):
    n, c, h, w = x.shape
    k, sh = rows[0].shape
    sw = cols[0].shape[1]
    bh = int((rows[1] - rows[0]).max()) if k else 0
    bw = int((cols[1] - cols[0]).max()) if k else 0
    out = x.new_zeros((k, sh, sw, c))
    dzdx = torch.zeros_like(x) if dzdy is not None else None
    if bh <= 0 or bw <= 0:
        return out.permute(0, 3, 1, 2).contiguous() if dzdy is None else dzdx
    per_roi = max(1, sh * sw * bh * bw * c)
    step = max(1, _CHUNK // per_roi)
    dev = x.device
    for s in range(0, k, step):
        e = min(k, s + step)
        r0, r1 = rows[0][s:e].to(dev), rows[1][s:e].to(dev)
        c0, c1 = cols[0][s:e].to(dev), cols[1][s:e].to(dev)
        ri = r0[:, :, None] + torch.arange(bh, device=dev)        # K x SH x bh
        ci = c0[:, :, None] + torch.arange(bw, device=dev)        # K x SW x bw
        ok = (ri < r1[:, :, None])[:, :, None, None, :, None] & \
             (ci < c1[:, :, None])[:, None, :, :, None, None]     # K x SH x SW x bw x bh x 1
        img = image[s:e].to(dev)[:, None, None, None, None]
        # window gathered column-major (bw outer, bh inner) so argmax finds MatConvNet's max
        vals = x[img, :, ri.clamp(max=h - 1)[:, :, None, None, :],
                 ci.clamp(max=w - 1)[:, None, :, :, None]]        # K x SH x SW x bw x bh x C
        vals = vals.masked_fill(~ok, float("-inf")).flatten(3, 4)
        best, arg = vals.max(dim=3)                              # K x SH x SW x C
        empty = ~ok.flatten(3, 4).any(dim=3)                     # K x SH x SW x 1
        if dzdy is None:
            out[s:e] = best.masked_fill(empty, 0)
            continue
        col = (c0[:, None, :, None] + arg // bh).clamp(max=w - 1)   # empty bins: g = 0
        row = (r0[:, :, None, None] + arg % bh).clamp(max=h - 1)
        g = dzdy[s:e].permute(0, 2, 3, 1).masked_fill(empty, 0)
        chan = torch.arange(c, device=dev).expand_as(arg)
        dzdx.index_put_((img.reshape(-1, 1, 1, 1).expand_as(arg).reshape(-1),
                         chan.reshape(-1), row.reshape(-1), col.reshape(-1)),
                        g.reshape(-1), accumulate=True)
    return out.permute(0, 3, 1, 2).contiguous() if dzdy is None else dzdx
