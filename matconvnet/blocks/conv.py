"""vl_nnconv: convolution (cross-correlation) with a filter bank, grouped, dilated, strided.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnconv` (rendered as ``docs/blocks/vl_nnconv.md``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import _tensor as T
from ._common import (crop_hw, cudnn_flag, is_symmetric, memory_format_of, onednn_layout,
                      torch_pad, window_output_size)

__all__ = ["vl_nnconv"]


def vl_nnconv(x: T.Array, f: Optional[T.Array], b: Optional[T.Array] = None,
              dzdy: Optional[T.Array] = None, *, pad=0, stride=1, dilate=1,
              no_der_data: bool = False, no_der_filters: bool = False,
              no_der_biases: bool = False, cudnn: bool = True):
    r"""vl_nnconv: convolution (cross-correlation) with a filter bank, grouped, dilated, strided.

    Formula (manual 4.1 and 6.1), for one image, output channel ``k`` and location ``(i, j)``::

        y[k, i, j] = b[k] + sum_{i', j', d} f[k, d, i', j'] * xp[(g-1) C' + d,
                                                                 S_y i + D_y i' - P_t,
                                                                 S_x j + D_x j' - P_l]

    with 0-based indices, zero padding ``xp``, ``C' = C / G`` the filter depth and ``g`` the
    group of filter ``k``.  No filter flip.  The number of groups is inferred as
    ``G = C / C'``; the ``K`` filters are split into ``G`` equal groups.  A filter as large as
    its (padded) input gives a 1 x 1 output: this is MatConvNet's fully-connected layer.

    Shapes (MatConvNet's ``H x W x C x N`` becomes ``N x C x H x W``; filters
    ``FH x FW x C' x K`` become ``K x C' x FH x FW``, i.e. ``permute(3, 2, 0, 1)`` for both)::

        x    N x C x H x W
        f    K x C/G x FH x FW        (None or empty: the identity filter bank, K = C)
        b    any shape with K elements, or None (no bias)
        y    N x K x YH x YW,  YH = floor((H + P_t + P_b - ((FH - 1) D_y + 1)) / S_y) + 1
                               YW = floor((W + P_l + P_r - ((FW - 1) D_x + 1)) / S_x) + 1

    ``dzdx, dzdf, dzdb`` have the shapes of ``x, f, b``; each is ``None`` when the corresponding
    input is empty/None or its ``no_der_*`` option is set.

    Layout: on the CPU, float32 and bfloat16 data are convolved channels-last (oneDNN's
    fastest layout): ``y`` and ``dzdx`` come back channels-last strided and ``dzdf`` in the
    kernel's layout -- the same values, only the memory order differs (NumPy results are
    C-ordered).  A chain of blocks then converts once, at its input.

    Call forms::

        y = vl_nnconv(x, f, b, pad=0, stride=1, dilate=1)
        dzdx, dzdf, dzdb = vl_nnconv(x, f, b, dzdy, pad=0, stride=1, dilate=1)

    Options:

    * ``pad``: 0; a scalar or ``[top, bottom, left, right]`` (zero padding).
    * ``stride``: 1; a scalar or ``[y, x]``.
    * ``dilate``: 1; a scalar or ``[y, x]``: ``D - 1`` zeros between the filter taps.
    * ``no_der_data``, ``no_der_filters``, ``no_der_biases``: False; backward mode only: skip
      that derivative (it is returned as ``None``).
    * ``cudnn``: True; False is MatConvNet's ``NoCudnn``: use PyTorch's native CUDA kernels.

    Example::

        import torch
        from matconvnet import vl_nnconv

        x = torch.randn(2, 3, 9, 9)                  # N x C x H x W
        f = torch.randn(16, 3, 3, 3)                 # K x C x FH x FW
        b = torch.zeros(16)
        y = vl_nnconv(x, f, b, pad=1, stride=2)
        assert y.shape == (2, 16, 5, 5)
        dzdx, dzdf, dzdb = vl_nnconv(x, f, b, torch.ones_like(y), pad=1, stride=2)
        assert dzdf.shape == f.shape and dzdb.shape == b.shape
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    f = call.tensor(f, "f", optional=True)
    b = call.tensor(b, "b", optional=True)
    pad = T.quad(pad, "pad")
    stride = T.pair(stride, "stride")
    dilate = T.pair(dilate, "dilate")
    if f is not None and f.numel() == 0:
        f = None
    if b is not None and b.numel() == 0:
        b = None

    if f is None:
        if dilate != (1, 1):
            raise ValueError(f"dilate: expected 1 with empty filters (identity bank), got {dilate}")
        k, groups, fh, fw = c, c, 1, 1
    else:
        if f.dim() != 4 or min(f.shape) == 0:
            raise ValueError(
                f"f: expected a 4-D K x C/G x FH x FW filter bank with no empty dimension, "
                f"got shape {tuple(f.shape)}")
        k, depth, fh, fw = f.shape
        if c % depth != 0:
            raise ValueError(
                f"f: filter depth {depth} does not divide the {c} channels of x "
                f"(filter groups need C mod C' = 0)")
        groups = c // depth
        if k % groups != 0:
            raise ValueError(
                f"f: the number of filters {k} is not divisible by the number of groups {groups} "
                f"(= {c} channels / filter depth {depth})")
    if b is not None and b.numel() != k:
        raise ValueError(f"b: expected {k} elements (one per filter), got shape {tuple(b.shape)}")

    eh, ew = (fh - 1) * dilate[0] + 1, (fw - 1) * dilate[1] + 1
    yh, yw = window_output_size((h, w), (eh, ew), pad, stride, "f", "the dilated filter extent")

    with cudnn_flag(cudnn):
        if dzdy is None:
            if f is None:
                return call.out(_identity_forward(x, b, pad, stride, yh, yw))
            return call.out(_forward(x, f, b, pad, stride, dilate, groups))
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", (n, k, yh, yw), "the shape of the output y")
        need = (not no_der_data, f is not None and not no_der_filters,
                b is not None and not no_der_biases)
        if f is None:
            dzdx = _identity_backward(x, dzdy, pad, stride) if need[0] else None
            dzdf, dzdb = None, dzdy.sum(dim=(0, 2, 3)) if need[2] else None
        else:
            dzdx, dzdf, dzdb = _backward(x, f, dzdy, pad, stride, dilate, groups, need)
        return call.out(dzdx, dzdf, None if dzdb is None else dzdb.reshape(b.shape))


def _fully_connected(x, f, pad, dilate, groups) -> bool:
    """Whether each filter covers the whole (unpadded) input: one output location, computed
    best as a matrix product (oneDNN's convolution is several times slower there)."""
    return (groups == 1 and not any(pad) and tuple(dilate) == (1, 1)
            and tuple(f.shape[2:]) == tuple(x.shape[2:]))


def _forward(x, f, b, pad, stride, dilate, groups):
    bias = None if b is None else b.reshape(-1)
    if _fully_connected(x, f, pad, dilate, groups):
        n, k = x.shape[0], f.shape[0]
        x2, f2 = x.reshape(n, -1), f.reshape(k, -1)
        y = x2 @ f2.t() if bias is None else torch.addmm(bias, x2, f2.t())
        return y.view(n, k, 1, 1)
    if is_symmetric(pad):
        return F.conv2d(onednn_layout(x), f, bias, stride, (pad[0], pad[2]), dilate, groups)
    return F.conv2d(onednn_layout(F.pad(x, torch_pad(pad))), f, bias, stride, 0, dilate,
                    groups)


def _backward(x, f, dzdy, pad, stride, dilate, groups, need):
    if _fully_connected(x, f, pad, dilate, groups):
        n, k = dzdy.shape[:2]
        d2 = dzdy.reshape(n, k)
        dzdx = (d2 @ f.reshape(k, -1)).view(x.shape) if need[0] else None
        dzdf = (d2.t() @ x.reshape(n, -1)).view(f.shape) if need[1] else None
        return dzdx, dzdf, d2.sum(0) if need[2] else None
    symmetric = is_symmetric(pad)
    xp = x if symmetric else F.pad(x, torch_pad(pad))
    padding = (pad[0], pad[2]) if symmetric else (0, 0)
    dzdx, dzdf, dzdb = torch.ops.aten.convolution_backward(
        onednn_layout(dzdy), onednn_layout(xp), f, [f.shape[0]], list(stride), list(padding),
        list(dilate), False, [0, 0], groups, list(need))
    if dzdx is not None and not symmetric:
        dzdx = crop_hw(dzdx, pad).contiguous(memory_format=memory_format_of(dzdx))
    return dzdx, dzdf, dzdb


def _identity_forward(x, b, pad, stride, yh, yw):
    xp = F.pad(x, torch_pad(pad)) if any(pad) else x
    y = xp[:, :, :stride[0] * (yh - 1) + 1:stride[0], :stride[1] * (yw - 1) + 1:stride[1]]
    y = y.contiguous() if b is None else y + b.reshape(1, -1, 1, 1)
    return y


def _identity_backward(x, dzdy, pad, stride):
    n, c, h, w = x.shape
    yh, yw = dzdy.shape[2:]
    dzdxp = x.new_zeros((n, c, h + pad[0] + pad[1], w + pad[2] + pad[3]))
    dzdxp[:, :, :stride[0] * (yh - 1) + 1:stride[0], :stride[1] * (yw - 1) + 1:stride[1]] = dzdy
    return crop_hw(dzdxp, pad).contiguous()
