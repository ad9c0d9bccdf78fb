"""vl_nnpool: float64 numerical derivatives on distinct-valued inputs (port of MatConvNet's
X-POOL suite), a naive reference with clipped windows and column-major first-max routing,
identities (avg = grouped box-filter conv), hand-computed padding and tie cases, an autograd
cross-check, array kinds, and validation (R-POOL-2)."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64
INF = float("inf")



def _quad(p):
    return (p,) * 4 if np.isscalar(p) else tuple(p)


def _pair(p):
    return (p, p) if np.isscalar(p) else tuple(p)


def naive_pool(x, pool, dzdy=None, method="max", pad=0, stride=1):
    """MatConvNet's CPU loops (pooling_cpu.cpp), written out: windows clipped to the image;
    max backward routes to the first strict maximum scanning down rows, then across columns;
    avg divides by the clipped area.  Returns y, or dzdx when dzdy is given."""
    x = x.numpy()
    n, c, h, w = x.shape
    (ph, pw), (sy, sx), (pt, pb, pl, pr) = _pair(pool), _pair(stride), _quad(pad)
    yh, yw = (h + pt + pb - ph) // sy + 1, (w + pl + pr - pw) // sx + 1
    y = np.zeros((n, c, yh, yw))
    dzdx = np.zeros_like(x)
    g = None if dzdy is None else dzdy.numpy()
    for a, k, i, j in itertools.product(range(n), range(c), range(yh), range(yw)):
        r0, c0 = i * sy - pt, j * sx - pl
        rows = range(max(r0, 0), min(r0 + ph, h))
        cols = range(max(c0, 0), min(c0 + pw, w))
        if method == "avg":
            area = len(rows) * len(cols)
            y[a, k, i, j] = x[a, k, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].sum() / area
            if g is not None:
                dzdx[a, k, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] += g[a, k, i, j] / area
        else:
            best, arg = -INF, None
            for v in cols:          # column-major: across columns (outer) ...
                for u in rows:      # ... down the rows (inner)
                    if x[a, k, u, v] > best:
                        best, arg = x[a, k, u, v], (u, v)
            y[a, k, i, j] = best
            if g is not None and arg is not None:
                dzdx[a, k, arg[0], arg[1]] += g[a, k, i, j]
    return torch.from_numpy(y if dzdy is None else dzdx)


def check_pool(x, pool, method, **opts):
    """Derivative check on x plus comparison of y and dzdx with the naive reference."""
    fn = lambda x: mcn.vl_nnpool(x, pool, method=method, **opts)  # noqa: E731
    y = fn(x)
    nm.assert_close(y, naive_pool(x, pool, method=method, **opts), rtol=1e-12, what="y")
    dzdy = nm.randn(*y.shape)
    dzdx = mcn.vl_nnpool(x, pool, dzdy, method=method, **opts)
    nm.check_derivative(fn, [x], 0, dzdy, dzdx, what="dzdx")
    nm.assert_close(dzdx, naive_pool(x, pool, dzdy, method=method, **opts), rtol=1e-12,
                    what="dzdx vs naive")
    check_switches_path(x, pool, dzdy, method=method, **opts)
    return y, dzdy, dzdx


def check_switches_path(x, pool, dzdy, **opts):
    """The forward-with-switches and backward-with-switches forms give exactly what the
    stateless forms give."""
    y, s = mcn.vl_nnpool(x, pool, return_switches=True, **opts)
    assert torch.equal(y, mcn.vl_nnpool(x, pool, **opts)) or torch.allclose(
        y, mcn.vl_nnpool(x, pool, **opts), equal_nan=True, rtol=0, atol=0)
    if opts.get("method", "max") == "avg":
        assert s is None
        return
    assert s.dtype == torch.int64 and s.shape == y.shape
    dzdx = mcn.vl_nnpool(x, pool, dzdy, switches=s, **opts)
    assert torch.equal(dzdx, mcn.vl_nnpool(x, pool, dzdy, **opts))


METHODS = ["max", "avg"]


# ------------------------------------------------------------------ X-POOL derivative sweeps


POOL_PAD = [(pool, pad) for pool in (1, 2, 3) for pad in (0, 1, 2) if pad < pool]


@pytest.mark.parametrize("stride", [1, 2, 3, 4], ids=lambda v: f"stride{v}")
@pytest.mark.parametrize("pool,pad", POOL_PAD, ids=lambda v: str(v))
@pytest.mark.parametrize("method", METHODS)
def test_pool_type(method, pool, pad, stride):
    # X-POOL pool_type: X = distinct integers, pool x pad (pad < pool) x stride.
    x = nm.distinct(1, 2, 6, 7)
    check_pool(x, pool, method, pad=pad, stride=stride)


@pytest.mark.parametrize("poolx", [1, 2, 3], ids=lambda v: f"px{v}")
@pytest.mark.parametrize("pooly", [1, 2, 3], ids=lambda v: f"py{v}")
@pytest.mark.parametrize("method", METHODS)
def test_pool_type_and_pad(method, pooly, poolx):
    # X-POOL pool_type_and_pad (which, as in MatConvNet, runs with stride 1 and pad 0).
    check_pool(nm.distinct(2, 2, 5, 6), [pooly, poolx], method)


@pytest.mark.parametrize("stridex", [1, 2, 3], ids=lambda v: f"sx{v}")
@pytest.mark.parametrize("stridey", [1, 2], ids=lambda v: f"sy{v}")
@pytest.mark.parametrize("method", METHODS)
def test_pool_type_and_stride(method, stridey, stridex):
    check_pool(nm.distinct(1, 2, 7, 6), [3, 2], method, stride=[stridey, stridex], pad=[1, 1, 1, 0])


@pytest.mark.parametrize("right", [0, 1, 2], ids=lambda v: f"R{v}")
@pytest.mark.parametrize("left", [0, 1, 2], ids=lambda v: f"L{v}")
@pytest.mark.parametrize("method", METHODS)
def test_asym_pad1(method, left, right):
    # X-POOL asym_pad1: pool [3 4], stride [2 1], pad [0 0 L R].
    check_pool(nm.distinct(1, 2, 6, 7), [3, 4], method, stride=[2, 1], pad=[0, 0, left, right])


@pytest.mark.parametrize("bottom", [0, 1, 2], ids=lambda v: f"B{v}")
@pytest.mark.parametrize("top", [0, 1, 2], ids=lambda v: f"T{v}")
@pytest.mark.parametrize("method", METHODS)
def test_asym_pad2(method, top, bottom):
    # X-POOL asym_pad2: pool [3 4], stride [2 1], pad [T B 2 1].
    check_pool(nm.distinct(1, 2, 6, 7), [3, 4], method, stride=[2, 1], pad=[top, bottom, 2, 1])


# ---------------------------------------------------------------------------- identities


@pytest.mark.parametrize("pooly", [1, 2], ids=lambda v: f"py{v}")
@pytest.mark.parametrize("poolx", [1, 2, 3], ids=lambda v: f"px{v}")
def test_avg_equals_box_filter_conv(poolx, pooly):
    # X-POOL basic: avg pooling == vl_nnconv with the per-channel (grouped) filter
    # ones(pooly, poolx, 1, C) / (poolx pooly), i.e. here C x 1 x pooly x poolx.
    x = nm.distinct(2, 3, 6, 5)
    box = torch.full((3, 1, pooly, poolx), 1.0 / (poolx * pooly), dtype=D)
    for stride in (1, 2):
        y = mcn.vl_nnpool(x, [pooly, poolx], method="avg", stride=stride)
        nm.assert_close(y, mcn.vl_nnconv(x, box, None, stride=stride), rtol=1e-12, what="y")
        dzdy = nm.randn(*y.shape)
        dzdx = mcn.vl_nnpool(x, [pooly, poolx], dzdy, method="avg", stride=stride)
        cdx, _, _ = mcn.vl_nnconv(x, box, None, dzdy, stride=stride)
        nm.assert_close(dzdx, cdx, rtol=1e-12, what="dzdx")


def test_avg_divides_by_clipped_area():
    # R-POOL-1: padding does not count; the mean is over the valid pixels of each window.
    x = torch.arange(1.0, 10.0, dtype=D).reshape(1, 1, 3, 3)   # [[1 2 3] [4 5 6] [7 8 9]]
    y = mcn.vl_nnpool(x, 3, method="avg", pad=1)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 0, 0] == (1 + 2 + 4 + 5) / 4
    assert y[0, 0, 0, 1] == (1 + 2 + 3 + 4 + 5 + 6) / 6
    assert y[0, 0, 1, 1] == 5
    assert y[0, 0, 2, 2] == (5 + 6 + 8 + 9) / 4
    # Asymmetric pad [1 0 2 0] (not expressible with PyTorch's symmetric padding).
    y = mcn.vl_nnpool(x, 3, method="avg", pad=[1, 0, 2, 0])
    assert y.shape == (1, 1, 2, 3)
    assert y[0, 0, 0, 0] == (1 + 4) / 2
    assert y[0, 0, 1, 2] == 5
    # Each padded window hands back dzdy / (its clipped area) to each of its pixels.
    dzdx = mcn.vl_nnpool(x, 3, torch.ones(1, 1, 3, 3, dtype=D), method="avg", pad=1)
    assert float(dzdx[0, 0, 0, 0]) == pytest.approx(1 / 4 + 1 / 6 + 1 / 6 + 1 / 9, rel=1e-14)


@pytest.mark.parametrize("pad", [1, 2, [2, 0, 1, 2], [0, 2, 2, 0]], ids=str)
def test_max_never_picks_padding(pad):
    # All-negative input: zero padding would win; MatConvNet's padding is -inf.
    x = -1 - nm.distinct(1, 2, 4, 5, center=False)
    y = mcn.vl_nnpool(x, 3, method="max", pad=pad)
    assert (y < 0).all()
    nm.assert_close(y, naive_pool(x, 3, method="max", pad=pad), rtol=0)
    dzdy = torch.ones_like(y)
    dzdx = mcn.vl_nnpool(x, 3, dzdy, method="max", pad=pad)
    assert float(dzdx.sum()) == y.numel()    # every window routes to a pixel of the image
    nm.assert_close(dzdx, naive_pool(x, 3, dzdy, method="max", pad=pad), rtol=0)


def test_max_ties_route_to_first_in_column_major_order():
    # R-POOL-3: a 2x2 window of equal values: the whole dzdy goes to (row 0, col 0).
    x = torch.full((1, 1, 2, 2), 7.0, dtype=D)
    dzdx = mcn.vl_nnpool(x, 2, torch.full((1, 1, 1, 1), 3.0, dtype=D), method="max")
    expected = torch.zeros_like(x)
    expected[0, 0, 0, 0] = 3.0
    nm.assert_close(dzdx, expected, rtol=0)
    # The maximum 5 at (row 1, col 0) and (row 0, col 1): scanning down the first column
    # meets (1, 0) first (row-major order would pick (0, 1)).
    x = torch.tensor([[[[1.0, 5.0], [5.0, 2.0]]]], dtype=D)
    dzdx = mcn.vl_nnpool(x, 2, torch.ones(1, 1, 1, 1, dtype=D), method="max")
    expected = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]]]], dtype=D)
    nm.assert_close(dzdx, expected, rtol=0)


def test_max_ties_in_non_square_windows_and_channels():
    # 3 x 2 window [[0 4] [4 1] [2 4]]: column-major finds (1, 0) first.  A second image and
    # channel with the transposed pattern [[0 4 2] [4 1 4]] (window 2 x 3): (1, 0) again.
    a = torch.tensor([[0.0, 4.0], [4.0, 1.0], [2.0, 4.0]], dtype=D)
    x = a.reshape(1, 1, 3, 2).repeat(2, 3, 1, 1)
    dzdy = torch.arange(1.0, 7.0, dtype=D).reshape(2, 3, 1, 1)
    dzdx = mcn.vl_nnpool(x, [3, 2], dzdy, method="max")
    expected = torch.zeros_like(x)
    expected[:, :, 1, 0] = dzdy[:, :, 0, 0]
    nm.assert_close(dzdx, expected, rtol=0)
    xt = a.T.reshape(1, 1, 2, 3).repeat(2, 3, 1, 1)
    dzdx = mcn.vl_nnpool(xt, [2, 3], dzdy, method="max")
    expected = torch.zeros_like(xt)
    expected[:, :, 1, 0] = dzdy[:, :, 0, 0]
    nm.assert_close(dzdx, expected, rtol=0)


def test_max_ties_with_padding_and_overlap():
    # Constant image, pool 2, stride 1, pad 1: each window routes to its first in-image pixel
    # (column-major); overlapping windows add up.  Compared with the naive loops.
    x = torch.full((1, 1, 3, 4), -2.0, dtype=D)
    for pad in (1, [1, 0, 0, 1], [0, 1, 1, 0]):
        y = mcn.vl_nnpool(x, 2, method="max", pad=pad)
        dzdy = nm.randn(*y.shape)
        dzdx = mcn.vl_nnpool(x, 2, dzdy, method="max", pad=pad)
        nm.assert_close(dzdx, naive_pool(x, 2, dzdy, method="max", pad=pad), rtol=1e-12,
                        what=f"pad {pad}")


def test_max_overlapping_windows_accumulate():
    x = torch.zeros(1, 1, 3, 3, dtype=D)
    x[0, 0, 1, 1] = 9.0
    dzdy = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=D)
    dzdx = mcn.vl_nnpool(x, 2, dzdy, method="max", stride=1)
    assert dzdx[0, 0, 1, 1] == 10.0 and float(dzdx.abs().sum()) == 10.0


def test_max_all_minus_inf_window_has_no_gradient():
    # R-POOL-3: MatConvNet's acc_max starts at -inf and updates on strict '>': a window whose
    # values are all -inf selects nothing and passes no gradient.
    x = torch.tensor([[[[-INF, -INF, 1.0], [-INF, -INF, 2.0]]]], dtype=D)
    y = mcn.vl_nnpool(x, 2, method="max")
    assert y[0, 0, 0, 0] == -INF and y[0, 0, 0, 1] == 2.0
    dzdx = mcn.vl_nnpool(x, 2, torch.ones(1, 1, 1, 2, dtype=D), method="max")
    expected = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]], dtype=D)
    nm.assert_close(dzdx, expected, rtol=0)
    _, s = mcn.vl_nnpool(x, 2, method="max", return_switches=True)
    assert s.tolist() == [[[[-1, 5]]]]
    check_switches_path(x, 2, torch.ones(1, 1, 1, 2, dtype=D))


def test_max_nan_window_has_no_gradient():
    # R-POOL-3: NaN never compares '>' in MatConvNet's scan, so an all-NaN window passes no
    # gradient, and in a mixed window the largest non-NaN value gets it.
    nan = float("nan")
    x = torch.tensor([[[[nan, nan, 1.0], [nan, nan, 2.0]]]], dtype=D)
    dzdx = mcn.vl_nnpool(x, 2, torch.ones(1, 1, 1, 2, dtype=D), method="max")
    expected = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]], dtype=D)
    nm.assert_close(dzdx, expected, rtol=0)
    y, s = mcn.vl_nnpool(x, 2, method="max", return_switches=True)
    assert bool(y.isnan().all())   # NaN propagates forward; the derivative avoids it
    check_switches_path(x, 2, torch.ones(1, 1, 1, 2, dtype=D))


def test_switches_index_the_padded_plane():
    # x is 2 x 3; with pad [1 0 0 1] the padded plane is 3 x 4, and the window of the second
    # output element (rows 0-1, cols 2-3 of that plane) holds x[0, 2] = 5 at row 1, col 2.
    x = torch.tensor([[[[1.0, 2.0, 5.0], [3.0, 4.0, 0.0]]]], dtype=D)
    y, s = mcn.vl_nnpool(x, 2, method="max", pad=[1, 0, 0, 1], stride=2, return_switches=True)
    assert y.tolist() == [[[[2.0, 5.0]]]]
    assert s.tolist() == [[[[5, 6]]]]


def test_switches_numpy_and_validation():
    x = nm.distinct(2, 3, 6, 6).numpy()
    y, s = mcn.vl_nnpool(x, 2, return_switches=True)
    assert isinstance(s, np.ndarray) and s.dtype == np.int64
    dzdy = np.ones_like(y)
    np.testing.assert_array_equal(mcn.vl_nnpool(x, 2, dzdy, switches=s),
                                  mcn.vl_nnpool(x, 2, dzdy))
    with pytest.raises(ValueError, match="switches.*shape"):
        mcn.vl_nnpool(x, 2, dzdy, switches=s[:, :, :2])
    with pytest.raises(TypeError, match="switches.*int64"):
        mcn.vl_nnpool(x, 2, dzdy, switches=s.astype(np.float32))
    with pytest.raises(ValueError, match="switches.*average"):
        mcn.vl_nnpool(x, 2, dzdy, switches=s, method="avg")
    with pytest.raises(TypeError, match="switches.*backward"):
        mcn.vl_nnpool(x, 2, switches=s)
    with pytest.raises(TypeError, match="return_switches"):
        mcn.vl_nnpool(x, 2, dzdy, return_switches=True)


@pytest.mark.parametrize("pool,stride,pad", [
    ((3, 2), (2, 1), (1, 1)),
    (2, 2, 1),
    (3, 1, 0),
    (4, 3, 2),
    ((2, 4), (1, 3), (0, 2)),
], ids=lambda v: str(v))
@pytest.mark.parametrize("method", METHODS)
def test_autograd_cross_check(method, pool, stride, pad):
    # PyTorch supports symmetric padding up to half the window; avg with
    # count_include_pad=False divides by the clipped area like MatConvNet.
    x = nm.distinct(2, 3, 7, 8)
    ph, pw = _pair(pool)
    py, px = _pair(pad)
    xr = x.clone().requires_grad_()
    if method == "max":
        yr = F.max_pool2d(xr, (ph, pw), stride, (py, px))
    else:
        yr = F.avg_pool2d(xr, (ph, pw), stride, (py, px), count_include_pad=False)
    opts = dict(method=method, stride=list(_pair(stride)), pad=[py, py, px, px])
    y = mcn.vl_nnpool(x, [ph, pw], **opts)
    nm.assert_close(y, yr.detach(), rtol=1e-12, what="y")
    dzdy = nm.randn(*y.shape)
    (yr * dzdy).sum().backward()
    nm.assert_close(mcn.vl_nnpool(x, [ph, pw], dzdy, **opts), xr.grad, rtol=1e-12, what="dzdx")


@pytest.mark.parametrize("method", ["MAX", "Avg"])
def test_method_is_case_insensitive(method):
    x = nm.distinct(1, 1, 4, 4)
    nm.assert_close(mcn.vl_nnpool(x, 2, method=method),
                    mcn.vl_nnpool(x, 2, method=method.lower()), rtol=0)


def test_default_method_is_max():
    x = nm.distinct(1, 2, 4, 4)
    nm.assert_close(mcn.vl_nnpool(x, 2), mcn.vl_nnpool(x, 2, method="max"), rtol=0)


# -------------------------------------------------------------------------- array kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["single", "double"])
@pytest.mark.parametrize("method", METHODS)
def test_numpy_in_numpy_out(method, dtype):
    x = np.random.default_rng(0).permutation(40).reshape(1, 2, 4, 5).astype(dtype)
    y = mcn.vl_nnpool(x, 2, method=method, pad=[1, 0, 0, 1])
    assert isinstance(y, np.ndarray) and y.dtype == dtype
    dzdx = mcn.vl_nnpool(x, 2, np.ones_like(y), method=method, pad=[1, 0, 0, 1])
    assert isinstance(dzdx, np.ndarray) and dzdx.dtype == dtype and dzdx.shape == x.shape


@pytest.mark.parametrize("method", METHODS)
def test_torch_float32_in_float32_out(method):
    x = nm.distinct(1, 2, 4, 5, dtype=torch.float32)
    y = mcn.vl_nnpool(x, [2, 3], method=method, stride=2)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    dzdx = mcn.vl_nnpool(x, [2, 3], torch.ones_like(y), method=method, stride=2)
    assert dzdx.dtype == torch.float32 and dzdx.shape == x.shape


# --------------------------------------------------------------------- validation (R-POOL-2)


@pytest.mark.parametrize("pool,opts,match", [
    (2, dict(stride=0), "^stride"),
    (2, dict(stride=[1, 0]), "^stride"),
    (0, dict(), "^pool"),
    ([2, 0], dict(), "^pool"),
    ([6, 2], dict(), "^pool"),                   # window taller than the 5-row input
    ([2, 7], dict(pad=[0, 0, 0, 0]), "^pool"),   # wider than 6 columns
    ([7, 2], dict(pad=[1, 0, 0, 0]), "^pool"),   # taller than 5 + 1 padded rows
    (3, dict(pad=-1), "^pad"),
    (3, dict(pad=[0, 0, -1, 0]), "^pad"),
    (3, dict(pad=[1, 1]), "^pad"),
    (2, dict(pad=2), "^pad"),                    # pad >= pool
    ([3, 2], dict(pad=[0, 0, 0, 2]), "^pad"),    # right pad >= pool width
    ([2, 3], dict(pad=[2, 0, 0, 0]), "^pad"),    # top pad >= pool height
    (2, dict(method="median"), "^method"),
    (2, dict(method=None), "^method"),
], ids=["stride0", "stride_x0", "pool0", "pool_w0", "window_h", "window_w", "window_h_pad",
        "pad_neg", "pad_neg_left", "pad2", "pad_ge_pool", "pad_right_ge_pool",
        "pad_top_ge_pool", "method", "method_none"])
def test_bad_options(pool, opts, match):
    with pytest.raises(ValueError, match=match):
        mcn.vl_nnpool(nm.randn(1, 2, 5, 6), pool, **opts)


def test_window_fits_padded_input():
    assert mcn.vl_nnpool(nm.randn(1, 2, 5, 6), [6, 7], pad=[1, 0, 0, 1]).shape == (1, 2, 1, 1)


def test_non_integer_options():
    x = nm.randn(1, 2, 5, 6)
    with pytest.raises(TypeError, match="^stride"):
        mcn.vl_nnpool(x, 2, stride=1.5)
    with pytest.raises(TypeError, match="^pool"):
        mcn.vl_nnpool(x, 2.5)


def test_dzdy_shape_mismatch():
    x = nm.randn(1, 2, 5, 6)
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnpool(x, 2, nm.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnpool(x, 2, nm.randn(1, 2, 4, 5), stride=2)


def test_unknown_keyword_and_mixed_arrays():
    x = nm.randn(1, 2, 5, 6)
    with pytest.raises(TypeError, match="padding"):
        mcn.vl_nnpool(x, 2, padding=1)
    y = mcn.vl_nnpool(x, 2)
    with pytest.raises(TypeError, match="^dzdy"):
        mcn.vl_nnpool(x, 2, y.numpy())
    with pytest.raises(TypeError, match="^dzdy"):
        mcn.vl_nnpool(x, 2, y.float())
    with pytest.raises(ValueError, match="^x"):
        mcn.vl_nnpool(nm.randn(2, 5, 6), 2)


_TRITON_CHECK = r"""
import torch
from matconvnet import vl_nnpool
from matconvnet.blocks import pool as P, _triton_pool
g = torch.Generator().manual_seed(0)
for trial in range(14):
    # the last two: windows over 64 elements take the kernel with runtime loops
    ph, pw = torch.randint(1, 5, (2,), generator=g).tolist() if trial < 12 else (9, 8)
    sy, sx = torch.randint(1, 4, (2,), generator=g).tolist()
    pad = [int(torch.randint(0, k, (), generator=g)) for k in (ph, ph, pw, pw)]
    h, w = torch.randint(5, 12, (2,), generator=g).tolist() if trial < 12 else (13, 11)
    x = torch.randint(0, 3, (2, 3, h, w), generator=g).to([torch.float32, torch.float64][trial % 2])
    if trial % 3 == 0:
        x[0, 0, :3, :3] = float("-inf")
        x[1, 1, 1, 1] = float("nan")
    y0, s0 = vl_nnpool(x, [ph, pw], pad=pad, stride=[sy, sx], return_switches=True)
    geom = P._Geometry([ph, pw], pad, [sy, sx], tuple(y0.shape[2:]), (h, w))
    xp = P._pad_input(x, geom, float("-inf"))
    y1, s1 = _triton_pool.max_pool_switches(xp, geom.pool, geom.stride, geom.padding, geom.out)
    assert torch.equal(s1, s0.contiguous()), (ph, pw, sy, sx, pad, h, w)
    assert torch.equal(y1.isnan(), y0.isnan())
    assert torch.equal(y1.nan_to_num(), y0.contiguous().nan_to_num())
print("ok")
"""


def test_triton_switch_kernel_matches_the_separable_passes():
    """The GPU kernel (run by Triton's interpreter on the CPU) gives the CPU path's switches
    and output on ties, -inf and NaN, for random windows, strides and pads."""
    pytest.importorskip("triton", reason="Triton is not installed (it ships with CUDA builds)")
    import os
    import subprocess
    import sys
    env = dict(os.environ, TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, "-c", _TRITON_CHECK], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
