"""vl_nnconv: float64 numerical derivatives (port of MatConvNet's X-CONV suite), identities
(strided = dense subsampled, padded interior = unpadded, grouped = block-diagonal, empty
filters = identity bank), an autograd cross-check, array kinds, and validation (R-CONV-2)."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



def _empty(t):
    return t is None or t.numel() == 0


def check_conv_derivatives(x, f, b, **opts):
    """Numerical check of every derivative vl_nnconv returns; empty inputs give None."""
    fn = lambda x, f, b: mcn.vl_nnconv(x, f, b, **opts)  # noqa: E731
    y = fn(x, f, b)
    dzdy = nm.randn(*y.shape)
    ders = mcn.vl_nnconv(x, f, b, dzdy, **opts)
    assert len(ders) == 3
    for i, (name, t) in enumerate(zip(("x", "f", "b"), (x, f, b))):
        if _empty(t):
            assert ders[i] is None, f"d{name} should be None for an empty {name}"
        else:
            nm.check_derivative(fn, [x, f, b], i, dzdy, ders[i], what=f"dzd{name}")
    return y, dzdy, ders


def ref_conv(x, f, b, pad=0, stride=1, dilate=1):
    """Independent reference: explicit padding, then PyTorch's conv2d."""
    t, bo, l, r = (pad,) * 4 if np.isscalar(pad) else pad
    groups = x.shape[1] // f.shape[1]
    return F.conv2d(F.pad(x, (l, r, t, bo)), f, None if b is None else b.reshape(-1),
                    stride, 0, dilate, groups)


# ----------------------------------------------------------------- X-CONV derivative sweeps


@pytest.mark.parametrize("f_kind", ["none", "empty"])
def test_identity_filters(f_kind):
    # X-CONV identity_filters: X 1x1x10x4, F = [], B 1x10; ders w.r.t. X and B.
    x = nm.randn(4, 10, 1, 1)
    b = nm.randn(1, 10)
    f = None if f_kind == "none" else torch.empty(0, dtype=D)
    y, _, ders = check_conv_derivatives(x, f, b)
    nm.assert_close(y, x + b.reshape(1, -1, 1, 1))
    assert ders[2].shape == b.shape


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("fw", [0, 1, 3, 5], ids=lambda v: f"fw{v}")
@pytest.mark.parametrize("fh", [0, 1, 2, 3], ids=lambda v: f"fh{v}")
def test_filter_shapes(fh, fw, bias):
    # X-CONV filter_shapes: X 3x5x10x3, F fh x fw x 10 x 5 (or [] if fh or fw = 0, then B 1x10).
    x = nm.randn(2, 3, 3, 5)
    if fh == 0 or fw == 0:
        f, k = None, 3
    else:
        f, k = nm.randn(4, 3, fh, fw), 4
    b = nm.randn(1, k) if bias else None
    y, _, _ = check_conv_derivatives(x, f, b)
    if f is not None:
        nm.assert_close(y, ref_conv(x, f, b))


@pytest.mark.parametrize("dy,dx", list(itertools.product([1, 2, 3], repeat=2)),
                         ids=lambda v: str(v))
@pytest.mark.parametrize("sy,sx", list(itertools.product([1, 2, 3], repeat=2)),
                         ids=lambda v: str(v))
def test_dilate_stride(sy, sx, dy, dx):
    # X-CONV dilate: X 9x16x10x3, F 3x2x10x5, stride [sy sx], dilate [dy dx] (bias on).
    x = nm.randn(1, 1, 7, 8)
    f = nm.randn(2, 1, 3, 2)
    b = nm.randn(2)
    y, _, _ = check_conv_derivatives(x, f, b, stride=[sy, sx], dilate=[dy, dx])
    nm.assert_close(y, ref_conv(x, f, b, stride=(sy, sx), dilate=(dy, dx)))
    assert y.shape[2:] == ((7 - (2 * dy + 1)) // sy + 1, (8 - (dx + 1)) // sx + 1)


@pytest.mark.parametrize("stride", [1, 2, 3, 4], ids=lambda v: f"stride{v}")
@pytest.mark.parametrize("pad", [0, 1, 2], ids=lambda v: f"pad{v}")
@pytest.mark.parametrize("emptyw", [False, True], ids=["filters", "emptyw"])
def test_pad_and_stride(emptyw, pad, stride):
    # X-CONV pad_and_stride: X 16x15x4x2, F 3x3x4x5 (or [] with B 4x1).
    x = nm.randn(1, 3, 6, 5)
    if emptyw:
        f, b = None, nm.randn(3, 1)
    else:
        f, b = nm.randn(4, 3, 3, 3), nm.randn(4)
    y, _, _ = check_conv_derivatives(x, f, b, pad=pad, stride=stride)
    if emptyw:
        xp = F.pad(x, (pad,) * 4)
        nm.assert_close(y, xp[:, :, ::stride, ::stride] + b.reshape(1, -1, 1, 1))
    else:
        nm.assert_close(y, ref_conv(x, f, b, pad=pad, stride=stride))


ASYM_PADS = [(0, 1, 0, 0), (2, 0, 0, 1), (0, 0, 2, 1), (1, 2, 0, 2), (2, 1, 1, 0), (0, 2, 2, 0)]


@pytest.mark.parametrize("pad", ASYM_PADS, ids=lambda p: "pad" + "".join(map(str, p)))
@pytest.mark.parametrize("emptyw", [False, True], ids=["filters", "emptyw"])
def test_asymmetric_pad_derivatives(pad, emptyw):
    x = nm.randn(2, 2, 5, 6)
    f, b = (None, nm.randn(2)) if emptyw else (nm.randn(3, 2, 3, 2), nm.randn(3))
    y, _, _ = check_conv_derivatives(x, f, b, pad=list(pad), stride=[2, 1])
    if not emptyw:
        nm.assert_close(y, ref_conv(x, f, b, pad=pad, stride=(2, 1)))


def test_asymmetric_pad_with_dilation_and_groups_derivatives():
    x = nm.randn(1, 4, 6, 7)
    f, b = nm.randn(4, 2, 2, 3), nm.randn(4)
    opts = dict(pad=[2, 0, 1, 3], stride=[1, 2], dilate=[2, 1])
    y, _, _ = check_conv_derivatives(x, f, b, **opts)
    nm.assert_close(y, ref_conv(x, f, b, pad=(2, 0, 1, 3), stride=(1, 2), dilate=(2, 1)))


@pytest.mark.parametrize("fw", [1, 3, 5], ids=lambda v: f"fw{v}")
@pytest.mark.parametrize("fh", [1, 2, 3], ids=lambda v: f"fh{v}")
def test_filter_groups(fh, fw):
    # X-CONV filter_groups: 3 groups of 3 channels; grouped F == block-diagonal dense F.
    # Here: 3 groups of 2 channels, 2 filters per group.
    groups, depth, per = 3, 2, 2
    x = nm.randn(2, groups * depth, 4, 6)
    f = nm.randn(groups * per, depth, fh, fw)
    b = nm.randn(groups * per)
    dense = torch.zeros(groups * per, groups * depth, fh, fw, dtype=D)
    for k in range(groups * per):
        g = k // per
        dense[k, g * depth:(g + 1) * depth] = f[k]
    y = mcn.vl_nnconv(x, f, b, pad=1)
    nm.assert_close(y, mcn.vl_nnconv(x, dense, b, pad=1), what="y")
    dzdy = nm.randn(*y.shape)
    dx, df, db = mcn.vl_nnconv(x, f, b, dzdy, pad=1)
    ddx, ddf, ddb = mcn.vl_nnconv(x, dense, b, dzdy, pad=1)
    nm.assert_close(dx, ddx, what="dzdx")
    nm.assert_close(db, ddb, what="dzdb")
    on_diagonal = torch.stack([ddf[k, (k // per) * depth:(k // per + 1) * depth]
                               for k in range(groups * per)])
    nm.assert_close(df, on_diagonal, what="dzdf")
    check_conv_derivatives(x, f, b, pad=1)


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_fully_connected(bias):
    # A filter as large as the input: 1x1 output, a matrix product (R-CONV-3).
    x = nm.randn(3, 2, 4, 5)
    f = nm.randn(6, 2, 4, 5)
    b = nm.randn(6) if bias else None
    y, dzdy, (dx, df, db) = check_conv_derivatives(x, f, b)
    assert y.shape == (3, 6, 1, 1)
    expected = x.reshape(3, -1) @ f.reshape(6, -1).T + (0 if b is None else b)
    nm.assert_close(y.reshape(3, 6), expected)
    g = dzdy.reshape(3, 6)
    nm.assert_close(dx, (g @ f.reshape(6, -1)).reshape(x.shape))
    nm.assert_close(df, (g.T @ x.reshape(3, -1)).reshape(f.shape))


@pytest.mark.parametrize("b_kind", ["none", "empty"])
def test_no_bias(b_kind):
    x, f = nm.randn(2, 3, 5, 4), nm.randn(2, 3, 2, 2)
    b = None if b_kind == "none" else torch.empty(0, dtype=D)
    y, _, (dx, df, db) = check_conv_derivatives(x, f, b, pad=[1, 0, 0, 1])
    assert db is None
    nm.assert_close(y, ref_conv(x, f, None, pad=(1, 0, 0, 1)))


def test_bias_any_shape_with_k_elements():
    x, f = nm.randn(2, 3, 5, 4), nm.randn(4, 3, 2, 2)
    b = nm.randn(2, 2)
    y = mcn.vl_nnconv(x, f, b)
    nm.assert_close(y, mcn.vl_nnconv(x, f, b.reshape(-1)))
    _, _, db = mcn.vl_nnconv(x, f, b, torch.ones_like(y))
    assert db.shape == (2, 2)


# ---------------------------------------------------------------------------- identities


@pytest.mark.parametrize("sx", [1, 2, 3], ids=lambda v: f"sx{v}")
@pytest.mark.parametrize("sy", [1, 2, 3], ids=lambda v: f"sy{v}")
@pytest.mark.parametrize("emptyw", [False, True], ids=["filters", "emptyw"])
def test_stride_correctness(emptyw, sy, sx):
    # X-CONV stride_correctness: X 9x9x1x1, F 3x3 or [].
    x = nm.randn(1, 1, 9, 9)
    f = None if emptyw else nm.randn(1, 1, 3, 3)
    b = nm.randn(1)
    dense = mcn.vl_nnconv(x, f, b)
    y = mcn.vl_nnconv(x, f, b, stride=[sy, sx])
    nm.assert_close(y, dense[:, :, ::sy, ::sx], what="y")
    dzdy = nm.randn(*y.shape)
    dzdy_dense = torch.zeros_like(dense)
    dzdy_dense[:, :, ::sy, ::sx] = dzdy
    ders = mcn.vl_nnconv(x, f, b, dzdy, stride=[sy, sx])
    dense_ders = mcn.vl_nnconv(x, f, b, dzdy_dense)
    for name, got, exp in zip(("dzdx", "dzdf", "dzdb"), ders, dense_ders):
        if exp is None:
            assert got is None, name
        else:
            nm.assert_close(got, exp, what=name)


@pytest.mark.parametrize("pad", list(itertools.product([0, 1, 2], repeat=4)),
                         ids=lambda p: "pad" + "".join(map(str, p)))
def test_pad_correctness(pad):
    # X-CONV pad_correctness: X 9x9, F 3x3: padded output interior == unpadded output;
    # backward with zero-padded dY equal.
    t, bo, l, r = pad
    x, f, b = nm.randn(1, 1, 9, 9), nm.randn(1, 1, 3, 3), nm.randn(1)
    y0 = mcn.vl_nnconv(x, f, b)
    y = mcn.vl_nnconv(x, f, b, pad=list(pad))
    assert y.shape == (1, 1, 7 + t + bo, 7 + l + r)
    nm.assert_close(y[:, :, t:t + 7, l:l + 7], y0, what="interior")
    dzdy0 = nm.randn(*y0.shape)
    dzdy = F.pad(dzdy0, (l, r, t, bo))
    for name, got, exp in zip(("dzdx", "dzdf", "dzdb"),
                              mcn.vl_nnconv(x, f, b, dzdy, pad=list(pad)),
                              mcn.vl_nnconv(x, f, b, dzdy0)):
        nm.assert_close(got, exp, what=name)


@pytest.mark.parametrize("pad,stride", [(0, 1), (1, 2), ([2, 0, 1, 2], [3, 1]),
                                        ([0, 1, 1, 0], [1, 2])], ids=str)
def test_empty_filters_are_identity_bank(pad, stride):
    # F = [] is the identity filter bank: K = C, y = subsample(zero-pad(x)) + b.
    x, b = nm.randn(2, 3, 5, 4), nm.randn(3)
    eye = torch.eye(3, dtype=D).reshape(3, 3, 1, 1)
    y = mcn.vl_nnconv(x, None, b, pad=pad, stride=stride)
    nm.assert_close(y, mcn.vl_nnconv(x, eye, b, pad=pad, stride=stride), what="y")
    t, bo, l, r = (pad,) * 4 if np.isscalar(pad) else pad
    sy, sx = (stride,) * 2 if np.isscalar(stride) else stride
    nm.assert_close(y, F.pad(x, (l, r, t, bo))[:, :, ::sy, ::sx] + b.reshape(1, -1, 1, 1))
    dzdy = nm.randn(*y.shape)
    dx, df, db = mcn.vl_nnconv(x, None, b, dzdy, pad=pad, stride=stride)
    ex, _, eb = mcn.vl_nnconv(x, eye, b, dzdy, pad=pad, stride=stride)
    assert df is None
    nm.assert_close(dx, ex, what="dzdx")
    nm.assert_close(db, eb, what="dzdb")


def test_zero_dim_filter_is_empty():
    # MatConvNet tests `filters.isEmpty()` (numel == 0) before its "A dimension of FILTERS
    # is void" check, so any filter with a zero dimension is the identity bank.
    x, b = nm.randn(1, 3, 4, 4), nm.randn(3)
    y = mcn.vl_nnconv(x, torch.zeros(5, 3, 0, 2, dtype=D), b)
    nm.assert_close(y, x + b.reshape(1, -1, 1, 1))


@pytest.mark.parametrize("flag,index", [("no_der_data", 0), ("no_der_filters", 1),
                                        ("no_der_biases", 2)])
def test_no_der_flags(flag, index):
    x, f, b = nm.randn(2, 4, 5, 5), nm.randn(6, 2, 3, 2), nm.randn(6)
    opts = dict(pad=[1, 0, 0, 1], stride=2)
    dzdy = nm.randn(*mcn.vl_nnconv(x, f, b, **opts).shape)
    full = mcn.vl_nnconv(x, f, b, dzdy, **opts)
    part = mcn.vl_nnconv(x, f, b, dzdy, **opts, **{flag: True})
    assert len(part) == 3
    for i in range(3):
        if i == index:
            assert part[i] is None
        else:
            nm.assert_close(part[i], full[i], rtol=0)


def test_no_der_data_with_empty_filters():
    x, b = nm.randn(1, 2, 3, 3), nm.randn(2)
    dzdy = nm.randn(1, 2, 3, 3)
    dx, df, db = mcn.vl_nnconv(x, None, b, dzdy, no_der_data=True)
    assert dx is None and df is None
    nm.assert_close(db, dzdy.sum((0, 2, 3)))


def test_autograd_cross_check():
    # Asymmetric pad, stride, dilate and groups at once, against torch autograd.
    x = nm.randn(2, 6, 9, 10)
    f = nm.randn(4, 3, 3, 2)
    b = nm.randn(4)
    pad, stride, dilate = [2, 1, 0, 3], [2, 3], [2, 1]
    y = mcn.vl_nnconv(x, f, b, pad=pad, stride=stride, dilate=dilate)
    xr, fr, br = (t.clone().requires_grad_() for t in (x, f, b))
    yr = F.conv2d(F.pad(xr, (0, 3, 2, 1)), fr, br, stride, 0, dilate, 2)
    nm.assert_close(y, yr.detach(), what="y")
    dzdy = nm.randn(*y.shape)
    (yr * dzdy).sum().backward()
    dx, df, db = mcn.vl_nnconv(x, f, b, dzdy, pad=pad, stride=stride, dilate=dilate)
    nm.assert_close(dx, xr.grad, what="dzdx")
    nm.assert_close(df, fr.grad, what="dzdf")
    nm.assert_close(db, br.grad, what="dzdb")


def test_cross_correlation_no_flip():
    # R-CONV-1: y = sum f * x (no filter flip); a one-hot filter shifts the image.
    x = nm.randn(1, 1, 4, 5)
    f = torch.zeros(1, 1, 2, 3, dtype=D)
    f[0, 0, 1, 2] = 1
    y = mcn.vl_nnconv(x, f, None)
    nm.assert_close(y, x[:, :, 1:, 2:])


# -------------------------------------------------------------------------- array kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["single", "double"])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    f = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y = mcn.vl_nnconv(x, f, b, pad=1)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == (2, 4, 5, 5)
    ders = mcn.vl_nnconv(x, f, b, np.ones_like(y), pad=1)
    for d, t in zip(ders, (x, f, b)):
        assert isinstance(d, np.ndarray) and d.dtype == dtype and d.shape == t.shape
    ref = mcn.vl_nnconv(*(torch.from_numpy(a) for a in (x, f, b)), pad=1)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-6)


def test_torch_float32_in_float32_out():
    x, f, b = (nm.randn(*s, dtype=torch.float32) for s in ((2, 3, 5, 5), (4, 3, 3, 3), (4,)))
    y = mcn.vl_nnconv(x, f, b, stride=2)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    for d in mcn.vl_nnconv(x, f, b, torch.ones_like(y), stride=2):
        assert isinstance(d, torch.Tensor) and d.dtype == torch.float32


# --------------------------------------------------------------------- validation (R-CONV-2)


def _args():
    return nm.randn(1, 4, 6, 6), nm.randn(4, 2, 3, 3), nm.randn(4)


@pytest.mark.parametrize("opts,match", [
    (dict(stride=0), "^stride"),
    (dict(stride=[1, 0]), "^stride"),
    (dict(stride=[1, 2, 3]), "^stride"),
    (dict(pad=-1), "^pad"),
    (dict(pad=[0, 0, -1, 0]), "^pad"),
    (dict(pad=[1, 1]), "^pad"),
    (dict(pad=[1, 1, 1]), "^pad"),
    (dict(dilate=0), "^dilate"),
    (dict(dilate=[1, -1]), "^dilate"),
], ids=["stride0", "stride_y1_x0", "stride3", "pad_neg", "pad_neg_left", "pad2", "pad3",
        "dilate0", "dilate_neg"])
def test_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        mcn.vl_nnconv(*_args(), **opts)


def test_non_integer_stride():
    with pytest.raises(TypeError, match="^stride"):
        mcn.vl_nnconv(*_args(), stride=1.5)
    y = mcn.vl_nnconv(*_args(), stride=2.0)  # integral floats are accepted
    assert y.shape == (1, 4, 2, 2)


def test_dilate_with_empty_filters():
    x, b = nm.randn(1, 3, 5, 5), nm.randn(3)
    with pytest.raises(ValueError, match="^dilate"):
        mcn.vl_nnconv(x, None, b, dilate=2)
    with pytest.raises(ValueError, match="^dilate"):
        mcn.vl_nnconv(x, torch.empty(0, dtype=D), b, dilate=[1, 2])


def test_filter_not_4d():
    x = nm.randn(1, 3, 5, 5)
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(x, nm.randn(3, 3, 3), None)


def test_kernel_extent_exceeds_padded_input():
    x, f = nm.randn(1, 2, 5, 5), nm.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(x, f, None, dilate=3)           # extent 7 > 5
    assert mcn.vl_nnconv(x, f, None, dilate=3, pad=1).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(x, nm.randn(1, 2, 6, 1), None, pad=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(x, nm.randn(1, 2, 1, 7), None, pad=[3, 3, 1, 0])


def test_filter_depth_does_not_divide_channels():
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(nm.randn(1, 5, 4, 4), nm.randn(2, 2, 1, 1), None)


def test_filters_not_divisible_by_groups():
    # C = 4, depth 2 -> 2 groups; K = 3 filters.
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconv(nm.randn(1, 4, 4, 4), nm.randn(3, 2, 1, 1), None)


@pytest.mark.parametrize("f_kind", ["filters", "empty"])
def test_wrong_bias_count(f_kind):
    x = nm.randn(1, 4, 4, 4)
    f = nm.randn(6, 4, 1, 1) if f_kind == "filters" else None
    with pytest.raises(ValueError, match="^b"):
        mcn.vl_nnconv(x, f, nm.randn(5))


def test_dzdy_shape_mismatch():
    x, f, b = _args()
    y = mcn.vl_nnconv(x, f, b)
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnconv(x, f, b, nm.randn(1, 4, 4, 5))
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnconv(x, f, b, torch.ones_like(y), stride=2)


def test_data_not_4d():
    with pytest.raises(ValueError, match="^x"):
        mcn.vl_nnconv(nm.randn(4, 6, 6), nm.randn(4, 4, 3, 3), None)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="paddding"):
        mcn.vl_nnconv(*_args(), paddding=1)


def test_mixed_numpy_and_torch():
    x, f, b = _args()
    with pytest.raises(TypeError, match="^f"):
        mcn.vl_nnconv(x, f.numpy(), b)
    with pytest.raises(TypeError, match="^b"):
        mcn.vl_nnconv(x.numpy(), f.numpy(), b)
    y = mcn.vl_nnconv(x, f, b)
    with pytest.raises(TypeError, match="^dzdy"):
        mcn.vl_nnconv(x, f, b, y.numpy())


def test_mixed_dtypes():
    x, f, b = _args()
    with pytest.raises(TypeError, match="^f"):
        mcn.vl_nnconv(x, f.float(), b)
    with pytest.raises(TypeError, match="^b"):
        mcn.vl_nnconv(x, f, b.float())
    y = mcn.vl_nnconv(x, f, b)
    with pytest.raises(TypeError, match="^dzdy"):
        mcn.vl_nnconv(x, f, b, y.float())
    with pytest.raises(TypeError, match="^x"):
        mcn.vl_nnconv(x.to(torch.int64), f, b)
