"""vl_nnconvt: convolution transpose ("deconvolution"), the adjoint of vl_nnconv.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnconvt` (rendered as ``docs/blocks/vl_nnconvt.md``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import _tensor as T
from ._common import cudnn_flag, transposed_size

__all__ = ["vl_nnconvt"]


def vl_nnconvt(x: T.Array, f: T.Array, b: Optional[T.Array] = None,
               dzdy: Optional[T.Array] = None, *, upsample=1, crop=0, num_groups=1,
               no_der_data: bool = False, no_der_filters: bool = False,
               no_der_biases: bool = False, cudnn: bool = True):
    r"""vl_nnconvt: convolution transpose ("deconvolution"), the adjoint of vl_nnconv.

    Formula (manual 4.2 and 6.2): ``vec(y) = M^T vec(x)`` where ``M`` is the matrix of the
    convolution by ``f`` with stride ``upsample`` and padding ``crop``.  Equivalently each input
    pixel scatters a copy of the filter, scaled by its value, into the output at a stride of
    ``U``; the result is then cropped by ``[C_t, C_b, C_l, C_r]``, and the bias is added::

        y[(g-1) K + k, :, :] = b[(g-1) K + k]
            + crop( sum_{d in group g} upsample_U(x[d]) (*) f[d, k] )

    Shapes (MatConvNet's filters ``FH x FW x K x D`` become ``D x K x FH x FW``, PyTorch's
    ``conv_transpose2d`` convention, i.e. ``permute(3, 2, 0, 1)`` like every other array)::

        x    N x D x H x W
        f    D x K x FH x FW          (D divisible by num_groups = g)
        b    K g elements, or None
        y    N x (K g) x YH x YW,  YH = U_y (H - 1) + FH - C_t - C_b
                                   YW = U_x (W - 1) + FW - C_l - C_r

    ``dzdx, dzdf, dzdb`` have the shapes of ``x, f, b``.

    Call forms::

        y = vl_nnconvt(x, f, b, upsample=1, crop=0, num_groups=1)
        dzdx, dzdf, dzdb = vl_nnconvt(x, f, b, dzdy, upsample=1, crop=0, num_groups=1)

    Options:

    * ``upsample``: 1; a scalar or ``[y, x]`` (the stride of the convolution it transposes).
    * ``crop``: 0; a scalar or ``[top, bottom, left, right]`` (its padding).
    * ``num_groups``: 1; the ``D`` input channels are split into this many groups.
    * ``no_der_data``, ``no_der_filters``, ``no_der_biases``, ``cudnn``: as in vl_nnconv.

    Example::

        import torch
        from matconvnet import vl_nnconvt

        x = torch.randn(1, 8, 4, 4)                  # N x D x H x W
        f = torch.randn(8, 3, 4, 4)                  # D x K x FH x FW
        y = vl_nnconvt(x, f, None, upsample=2, crop=1)
        assert y.shape == (1, 3, 8, 8)               # 2 (4 - 1) + 4 - 1 - 1 = 8
        dzdx, dzdf, dzdb = vl_nnconvt(x, f, None, torch.ones_like(y), upsample=2, crop=1)
        assert dzdx.shape == x.shape and dzdb is None
    """
    call = T.Call(x)
    x = call.x
    n, d, h, w = T.shape4(x, "x")
    f = call.tensor(f, "f")
    b = call.tensor(b, "b", optional=True)
    if b is not None and b.numel() == 0:
        b = None
    up = T.pair(upsample, "upsample")
    crop = T.quad(crop, "crop")
    groups = T.positive_int(num_groups, "num_groups")
    if f.dim() != 4 or min(f.shape) == 0:
        raise ValueError(
            f"f: expected a 4-D D x K x FH x FW filter bank with no empty dimension, "
            f"got shape {tuple(f.shape)}")
    fd, k, fh, fw = f.shape
    if fd != d:
        raise ValueError(
            f"f: expected {d} filters along the first dimension (the channels of x), "
            f"got shape {tuple(f.shape)}")
    if d % groups != 0:
        raise ValueError(f"num_groups: {groups} does not divide the {d} channels of x")
    if b is not None and b.numel() != k * groups:
        raise ValueError(
            f"b: expected {k * groups} elements (K x num_groups), got shape {tuple(b.shape)}")
    yh = transposed_size(h, fh, up[0], crop[0], crop[1])
    yw = transposed_size(w, fw, up[1], crop[2], crop[3])
    if yh < 1 or yw < 1:
        raise ValueError(f"crop: {crop} leaves an empty output ({yh} x {yw})")

    # PyTorch crops symmetrically (padding); the remainder is sliced off / zero-padded.
    sym = (min(crop[0], crop[1]), min(crop[2], crop[3]))
    extra = (crop[0] - sym[0], crop[1] - sym[0], crop[2] - sym[1], crop[3] - sym[1])
    with cudnn_flag(cudnn):
        if dzdy is None:
            bias = None if b is None else b.reshape(-1)
            y = F.conv_transpose2d(x, f, bias, up, sym, 0, groups)
            if any(extra):
                full_h, full_w = y.shape[2:]
                y = y[:, :, extra[0]:full_h - extra[1], extra[2]:full_w - extra[3]].contiguous()
            return call.out(y)
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", (n, k * groups, yh, yw), "the shape of the output y")
        need = (not no_der_data, not no_der_filters, b is not None and not no_der_biases)
        dzdy_full = F.pad(dzdy, (extra[2], extra[3], extra[0], extra[1])) if any(extra) else dzdy
        dzdx, dzdf, dzdb = torch.ops.aten.convolution_backward(
            dzdy_full, x, f, [k * groups], list(up), list(sym), [1, 1], True, [0, 0], groups,
            list(need))
        return call.out(dzdx, dzdf, None if dzdb is None else dzdb.reshape(b.shape))
