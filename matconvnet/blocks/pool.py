"""vl_nnpool: max or average pooling over spatial windows, channel by channel.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnpool` (rendered as ``docs/blocks/vl_nnpool.md``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import _tensor as T
from . import _triton, _triton_pool
from ._common import (channels_last, check_pool_pad, crop_hw, cudnn_flag, is_symmetric,
                      memory_format_of, torch_pad, window_output_size)

__all__ = ["vl_nnpool"]

_aten = torch.ops.aten


def vl_nnpool(x: T.Array, pool, dzdy: Optional[T.Array] = None, *, method: str = "max",
              pad=0, stride=1, cudnn: bool = True, return_switches: bool = False,
              switches: Optional[T.Array] = None):
    r"""vl_nnpool: max or average pooling over spatial windows, channel by channel.

    Formula (manual 4.3 and 6.3), for the window ``Omega_ij`` of size ``PH x PW`` starting at
    ``(S_y i - P_t, S_x j - P_l)`` (0-based) and clipped to the image::

        max:  y[n, c, i, j] = max_{(u, v) in Omega_ij} x[n, c, u, v]
        avg:  y[n, c, i, j] = 1 / |Omega_ij| * sum_{(u, v) in Omega_ij} x[n, c, u, v]

    Padding never contributes: max ignores it (as if it were -inf) and avg divides by the area
    of the clipped window, not by ``PH PW``.  Each pad must be smaller than the window.
    The max derivative routes ``dzdy`` to the first maximum of each window in MatConvNet's scan
    order (column-major: down the rows, then across the columns); overlapping windows add up.
    As in the original, NaN is never selected and a window holding only -inf/NaN passes no
    derivative (the forward output, unlike the original's, propagates NaN).

    Shapes (``H x W x C x N`` in MatConvNet)::

        x      N x C x H x W
        y      N x C x YH x YW,   YH = floor((H + P_t + P_b - PH) / S_y) + 1
        dzdx   N x C x H x W

    Call forms::

        y = vl_nnpool(x, pool, method='max', pad=0, stride=1)
        dzdx = vl_nnpool(x, pool, dzdy, method='max', pad=0, stride=1)

        y, switches = vl_nnpool(x, pool, return_switches=True, ...)
        dzdx = vl_nnpool(x, pool, dzdy, switches=switches, ...)

    Like the original, the plain backward call is stateless: it finds the maxima again.  The
    second pair of forms spares that search, as autograd's saved indices do: ``switches``
    (N x C x YH x YW, int64) holds, for each output element, the 0-based linear index of the
    selected maximum in its padded input plane of ``(H + P_t + P_b) x (W + P_l + P_r)``, or -1
    where the window passes no derivative.  They belong to that ``x`` and those options; the
    wrappers keep them between their forward and backward passes.  Average pooling has no
    switches (``None``).  Given the switches, and for average pooling, the backward call
    reads only the shape, dtype and device of ``x``, not its values (the wrappers use this
    to free ``x`` early).

    Layout: on the CPU the pooling runs on channels-last data (PyTorch's faster kernels
    there), and ``y``, the switches and ``dzdx`` come back channels-last strided -- the same
    N x C x H x W values, only the memory order differs (NumPy results are C-ordered).  On
    CUDA the switches come from one Triton kernel (``blocks/_triton_pool.py``) when Triton is
    installed, as with PyTorch's CUDA builds; the results are the same either way.

    Options:

    * ``pool`` (positional): the window, a scalar or ``[PH, PW]``.
    * ``method``: ``'max'`` (default) or ``'avg'``.
    * ``pad``: 0; a scalar or ``[top, bottom, left, right]``, each smaller than the window.
    * ``stride``: 1; a scalar or ``[y, x]``.
    * ``cudnn``: as in vl_nnconv.
    * ``return_switches``: False; also return the switches (forward call only).
    * ``switches``: None; the switches of the forward call on this ``x`` (backward call only).

    Example::

        import torch
        from matconvnet import vl_nnpool

        x = torch.arange(16.0).reshape(1, 1, 4, 4)
        y = vl_nnpool(x, 2, stride=2)                # 2 x 2 max pooling
        assert y.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
        a = vl_nnpool(x, 3, method="avg", pad=1)     # padding is not counted in the average
        assert a[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
        dzdx = vl_nnpool(x, 2, torch.ones_like(y), stride=2)
        assert dzdx.sum() == 4 and dzdx[0, 0, 1, 1] == 1
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    pool = T.pair(pool, "pool")
    pad = T.quad(pad, "pad")
    stride = T.pair(stride, "stride")
    method = T.choice(method, "method", ("max", "avg"))
    check_pool_pad(pool, pad)
    yh, yw = window_output_size((h, w), pool, pad, stride, "pool", "the window")
    if dzdy is not None:
        dzdy = call.tensor(dzdy, "dzdy")
        T.expect_shape(dzdy, "dzdy", (n, c, yh, yw), "the shape of the output y")
        if return_switches:
            raise TypeError("return_switches: only the forward call (no dzdy) returns switches")
    if switches is not None:
        if dzdy is None:
            raise TypeError("switches: only the backward call (with dzdy) takes switches")
        switches = _check_switches(call, switches, method, (n, c, yh, yw))
    geom = _Geometry(pool, pad, stride, (yh, yw), (h, w))
    with cudnn_flag(cudnn):
        if method == "max":
            if dzdy is None:
                if return_switches:
                    return call.out(*_max_forward_switches(x, geom))
                return call.out(_max_forward(x, geom))
            if switches is None:
                switches = _max_switches(x, geom)
            return call.out(_max_backward(x, dzdy, geom, switches))
        if dzdy is None:
            y = _avg_forward(x, geom)
            return (call.out(y), None) if return_switches else call.out(y)
        return call.out(_avg_backward(x, dzdy, geom))


def _check_switches(call, switches, method, shape):
    if method != "max":
        raise ValueError(f"switches: average pooling has no switches, got a "
                         f"{type(switches).__name__} (pass None)")
    switches = call.labels(switches, "switches")
    if switches.dtype != torch.int64:
        raise TypeError(f"switches: expected the int64 tensor returned by "
                        f"return_switches=True, got dtype {switches.dtype}")
    T.expect_shape(switches, "switches", shape, "the shape of the output y")
    return switches


class _Geometry:
    """Pooling geometry, and how to express it with PyTorch's symmetric-padding kernels."""

    def __init__(self, pool, pad, stride, out, size):
        self.pool, self.pad, self.stride, self.out, self.size = pool, pad, stride, out, size
        # PyTorch pads symmetrically, at most half the window, and clips windows to the
        # image as MatConvNet does.  With floor rounding that covers symmetric pads; its
        # ceil mode adds the windows that reach into extra bottom/right padding, which
        # covers Caffe-style pads such as [0 1 0 1].  Other pads are applied explicitly.
        self.ceil = False
        self.native = is_symmetric(pad) and 2 * pad[0] <= pool[0] and 2 * pad[2] <= pool[1]
        if not self.native:
            self.native = self.ceil = all(
                _ceil_matches(size[a], pad[2 * a], pad[2 * a + 1], pool[a], stride[a], out[a])
                for a in (0, 1))
        self.padding = (pad[0], pad[2]) if self.native else (0, 0)


def _ceil_matches(size, before, after, pool, stride, out) -> bool:
    """Whether PyTorch's ceil-mode pooling with symmetric padding ``before`` gives
    MatConvNet's windows for padding ``[before, after]`` (output size ``out``)."""
    if after < before or 2 * before > pool:
        return False
    n = -(-(size + 2 * before - pool) // stride) + 1
    if (n - 1) * stride >= size + before:
        n -= 1
    return n == out


def _pad_input(x, geom, value):
    return x if geom.native or not any(geom.pad) else F.pad(x, torch_pad(geom.pad), value=value)


def _pooling_layout(t):
    """PyTorch's CPU max pooling is several times faster on channels-last tensors."""
    if t.device.type == "cpu":
        return channels_last(t)
    return t.contiguous()


def _max_forward(x, geom):
    xp = _pooling_layout(_pad_input(x, geom, float("-inf")))
    return F.max_pool2d(xp, geom.pool, geom.stride, geom.padding, ceil_mode=geom.ceil)


def _max_switches(x, geom):
    """The switches (see the module docstring) of max pooling ``x``."""
    return _switches_and_output(x, geom)[0]


def _max_forward_switches(x, geom):
    idx, y, is_forward = _switches_and_output(x, geom)
    if not is_forward:   # the forward output keeps NaN (see the module docstring)
        y = _max_forward(x, geom)
    return y, idx


def _switches_and_output(x, geom):
    """(switches, an output, whether that output is the forward's; it is not where the
    separable passes met NaN and pooled with NaN as -inf)."""
    xp = _pooling_layout(_pad_input(x, geom, float("-inf")))
    if _triton.applies(xp):   # one pass on the GPU, NaN rule included, no sync
        y, idx = _triton_pool.max_pool_switches(xp, geom.pool, geom.stride, geom.padding,
                                                geom.out)
        return idx, y, True
    y, idx = _first_max_column_major(xp, geom)
    finite = bool(y.sum().isfinite())
    if not finite:
        # Rare: MatConvNet never selects NaN, and windows holding only -inf/NaN get no
        # derivative; PyTorch would route to the NaN or to the window's first element.
        y, idx = _first_max_column_major(xp.masked_fill(xp.isnan(), float("-inf")), geom)
        idx = idx.masked_fill(y == float("-inf"), -1)
    return idx, y, finite


def _first_max_column_major(xp, geom):
    """Max pooling of ``xp`` (padded as ``geom`` says) and the index of the first maximum
    of each window in MatConvNet's column-major scan order.

    PyTorch's kernels keep the first maximum in row-major window order.  Pooling in two
    separable passes gives column-major order with those kernels: the first pass, down the
    rows (``PH x 1`` windows), keeps the topmost maximum of each column of the window; the
    second, across the columns (``1 x PW``), the leftmost column holding the window's
    maximum.  The switches are the first pass's indices picked by the second's.

    On the CPU the images go through in groups whose intermediate results stay small
    (``_GROUP_BYTES``): they are reused from the cache rather than written to and read back
    from memory, and the peak memory grows by little more than the outputs."""
    (ph, pw), (sh, sw), (pt, pl) = geom.pool, geom.stride, geom.padding
    first = ([ph, 1], [sh, 1], [pt, 0], [1, 1], geom.ceil)
    second = ([1, pw], [1, sw], [0, pl], [1, 1], geom.ceil)
    n, c, h, w = xp.shape
    yh, yw = geom.out
    per_image = yh * w * c * (xp.element_size() + 8)   # the first pass's values and indices
    group = n if xp.device.type != "cpu" else max(1, _GROUP_BYTES // max(per_image, 1))
    if group >= n:
        cols, rows_idx = _aten.max_pool2d_with_indices(xp, *first)
        y, col_idx = _aten.max_pool2d_with_indices(cols, *second)
        del cols
        return y, _pick(rows_idx, col_idx)
    fmt = memory_format_of(xp)
    y = torch.empty((n, c, yh, yw), dtype=xp.dtype, device=xp.device, memory_format=fmt)
    idx = torch.empty((n, c, yh, yw), dtype=torch.int64, device=xp.device, memory_format=fmt)
    # one set of intermediate buffers, reused by every group
    cols = torch.empty((group, c, yh, w), dtype=xp.dtype, device=xp.device, memory_format=fmt)
    rows_idx = torch.empty_like(cols, dtype=torch.int64)
    col_idx = torch.empty_like(y[:group], dtype=torch.int64)
    for a in range(0, n, group):
        b = min(a + group, n)
        _aten.max_pool2d_with_indices.out(xp[a:b], *first, out=cols[:b - a],
                                          indices=rows_idx[:b - a])
        _aten.max_pool2d_with_indices.out(cols[:b - a], *second, out=y[a:b],
                                          indices=col_idx[:b - a])
        _pick(rows_idx[:b - a], col_idx[:b - a], out=idx[a:b])
    return y, idx


_GROUP_BYTES = 1 << 21   # the first pass's results for one group of images


def _pick(values, index, out=None):
    """``values[n, c].flatten()[index[n, c]]`` for every plane, in ``index``'s layout (or
    written to ``out``, laid out like ``index``)."""
    n, c = index.shape[:2]
    if index.is_contiguous(memory_format=torch.channels_last) and not index.is_contiguous():
        # channels innermost: gather along the flattened plane of N x (H W) x C views
        v = values.permute(0, 2, 3, 1).reshape(n, -1, c)
        dest = None if out is None else out.permute(0, 2, 3, 1).view(n, -1, c)
        res = torch.gather(v, 1, index.permute(0, 2, 3, 1).reshape(n, -1, c), out=dest)
        return res.view(n, index.shape[2], index.shape[3], c).permute(0, 3, 1, 2)
    dest = None if out is None else out.view(n, c, -1)
    res = torch.gather(values.reshape(n, c, -1), 2, index.reshape(n, c, -1), out=dest)
    return res.view(index.shape)


def _max_backward(x, dzdy, geom, switches):
    # Windows holding only -inf/NaN have switch -1 and pass no derivative.  The CPU kernel
    # scatters through the switches, so those are masked; the CUDA kernel gathers, for each
    # input pixel, the outputs whose switch names it, and never matches -1 (no sync needed).
    if not switches.is_cuda and bool((switches < 0).any()):
        dead = switches < 0
        dzdy = dzdy.masked_fill(dead, 0)
        switches = switches.masked_fill(dead, 0)
    fmt = memory_format_of(switches)   # one layout for all, so that the kernel converts none
    dzdxp = _input_plane(x, geom, fmt)
    _aten.max_pool2d_with_indices_backward.grad_input(
        dzdy.contiguous(memory_format=fmt), dzdxp, list(geom.pool), list(geom.stride),
        list(geom.padding), [1, 1], geom.ceil, switches, grad_input=dzdxp)
    return dzdxp if geom.native else crop_hw(dzdxp, geom.pad).contiguous(memory_format=fmt)


def _input_plane(x, geom, fmt):
    """A new tensor for the derivative with respect to the (padded) input plane.

    PyTorch's pooling backward kernels read of their input only its shape and layout (and
    clear the derivative before they accumulate into it), so the new tensor stands for the
    input as well: the backward call reads nothing of ``x`` but its shape, dtype and
    device, and the wrappers may hand it a stand-in with no memory behind it."""
    n, c, h, w = x.shape
    p = geom.pad if not geom.native else (0, 0, 0, 0)
    return torch.empty((n, c, h + p[0] + p[1], w + p[2] + p[3]), dtype=x.dtype,
                       device=x.device, memory_format=fmt)


def _clipped_area(x, geom):
    """|Omega_ij|: the number of image pixels in each window (1 x 1 x YH x YW)."""
    def counts(size, before, extent, stride, out):
        start = torch.arange(out, device=x.device) * stride - before
        return (torch.clamp(start + extent, max=size) - torch.clamp(start, min=0)).to(x.dtype)
    h, w = x.shape[2:]
    rows = counts(h, geom.pad[0], geom.pool[0], geom.stride[0], geom.out[0])
    cols = counts(w, geom.pad[2], geom.pool[1], geom.stride[1], geom.out[1])
    return (rows[:, None] * cols[None, :])[None, None]


def _avg_forward(x, geom):
    if geom.native:
        return F.avg_pool2d(x, geom.pool, geom.stride, geom.padding, geom.ceil, False)
    xp = _pad_input(x, geom, 0.0)
    total = F.avg_pool2d(xp, geom.pool, geom.stride, 0, False, True, 1)
    return total / _clipped_area(x, geom)


def _avg_backward(x, dzdy, geom):
    fmt = memory_format_of(dzdy)
    dzdy = dzdy.contiguous(memory_format=fmt)
    dzdxp = _input_plane(x, geom, fmt)
    if geom.native:
        return _aten.avg_pool2d_backward.grad_input(
            dzdy, dzdxp, list(geom.pool), list(geom.stride), list(geom.padding), geom.ceil,
            False, None, grad_input=dzdxp)
    g = dzdy / _clipped_area(x, geom)
    _aten.avg_pool2d_backward.grad_input(g, dzdxp, list(geom.pool), list(geom.stride),
                                         [0, 0], False, True, 1, grad_input=dzdxp)
    return crop_hw(dzdxp, geom.pad).contiguous(memory_format=fmt)
