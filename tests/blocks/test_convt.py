"""vl_nnconvt: float64 numerical derivatives (port of MatConvNet's X-CONVT suite), the
adjoint identity with vl_nnconv, grouped = block-diagonal, an autograd cross-check, array
kinds, and validation (R-CONVT-1).

Layouts: convt filters are ``D x K x FH x FW`` (D = channels of x, output K * num_groups
channels); conv filters are ``K' x C' x FH x FW``.  The same array serves both: convt by ``f``
is the adjoint of conv by ``f`` (with K' = D, C' = K, conv's groups = num_groups), stride =
upsample and pad = crop.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



def check_convt_derivatives(x, f, b, **opts):
    """Numerical check of dzdx, dzdf and (if b is given) dzdb of vl_nnconvt."""
    fn = lambda x, f, b: mcn.vl_nnconvt(x, f, b, **opts)  # noqa: E731
    y = fn(x, f, b)
    dzdy = nm.randn(*y.shape)
    ders = mcn.vl_nnconvt(x, f, b, dzdy, **opts)
    assert len(ders) == 3
    for i, (name, t) in enumerate(zip(("x", "f", "b"), (x, f, b))):
        if t is None or t.numel() == 0:
            assert ders[i] is None, f"d{name} should be None without {name}"
        else:
            nm.check_derivative(fn, [x, f, b], i, dzdy, ders[i], what=f"dzd{name}")
    return y, dzdy, ders


def ref_convt(x, f, b, upsample=1, crop=0, num_groups=1):
    """Independent reference: full conv_transpose2d, then an explicit crop."""
    t, bo, l, r = (crop,) * 4 if np.isscalar(crop) else crop
    y = F.conv_transpose2d(x, f, None if b is None else b.reshape(-1), upsample, 0, 0,
                           num_groups)
    return y[:, :, t:y.shape[2] - bo, l:y.shape[3] - r]


def out_size(h, up, fh, c0, c1):
    return up * (h - 1) + fh - c0 - c1


# ----------------------------------------------------------------- X-CONVT derivative sweeps


@pytest.mark.parametrize("num_filters", [1, 2, 3], ids=lambda v: f"k{v}")
@pytest.mark.parametrize("num_images", [1, 2, 3, 4], ids=lambda v: f"n{v}")
@pytest.mark.parametrize("depth", [1, 2, 3], ids=lambda v: f"d{v}")
def test_basic(depth, num_images, num_filters):
    # X-CONVT basic: X 10x12xm xn, F 3x4xk xm, B 1xk.
    x = nm.randn(num_images, depth, 3, 4)
    f = nm.randn(depth, num_filters, 3, 4)
    b = nm.randn(1, num_filters)
    y, _, ders = check_convt_derivatives(x, f, b)
    assert y.shape == (num_images, num_filters, 5, 7)
    nm.assert_close(y, ref_convt(x, f, b))
    assert ders[2].shape == b.shape


CROPS = [(0, 0, 0, 0), (1, 1, 1, 1), (1, 2, 3, 1), (3, 3, 2, 1), (2, 1, 1, 3)]


@pytest.mark.parametrize("crop", CROPS, ids=lambda c: "crop" + "".join(map(str, c)))
@pytest.mark.parametrize("upy,upx", list(itertools.product([1, 2, 3], repeat=2)),
                         ids=lambda v: f"up{v}")
def test_upsample_crop(upy, upx, crop):
    # X-CONVT upsample_crop: X 5x6x3x2, F 3x4x3x3, upsample [upy upx], crop [T B L R].
    x = nm.randn(1, 2, 5, 6)
    f = nm.randn(2, 2, 3, 4)
    b = nm.randn(2)
    opts = dict(upsample=[upy, upx], crop=list(crop))
    y, _, _ = check_convt_derivatives(x, f, b, **opts)
    assert y.shape == (1, 2, out_size(5, upy, 3, crop[0], crop[1]),
                       out_size(6, upx, 4, crop[2], crop[3]))
    nm.assert_close(y, ref_convt(x, f, b, (upy, upx), crop))


@pytest.mark.parametrize("num_filters", [1, 2, 3], ids=lambda v: f"k{v}")
@pytest.mark.parametrize("depth", [1, 2, 3], ids=lambda v: f"d{v}")
@pytest.mark.parametrize("groups", [1, 2, 3], ids=lambda v: f"g{v}")
def test_grouped_filters(groups, depth, num_filters):
    # X-CONVT grouped_filters: X 10x12x(m g)x3, F 3x4xk x(m g), B 1x(k g), numgroups g.
    x = nm.randn(2, depth * groups, 3, 3)
    f = nm.randn(depth * groups, num_filters, 2, 3)
    b = nm.randn(1, num_filters * groups)
    y, dzdy, ders = check_convt_derivatives(x, f, b, num_groups=groups, crop=[0, 1, 1, 0])
    assert y.shape == (2, num_filters * groups, 3, 4)
    # Grouped == the block-diagonal dense filter bank: input block g -> output block g.
    dense = torch.zeros(depth * groups, num_filters * groups, 2, 3, dtype=D)
    for d in range(depth * groups):
        g = d // depth
        dense[d, g * num_filters:(g + 1) * num_filters] = f[d]
    nm.assert_close(y, mcn.vl_nnconvt(x, dense, b, crop=[0, 1, 1, 0]), what="y")
    dx, df, db = mcn.vl_nnconvt(x, dense, b, dzdy, crop=[0, 1, 1, 0])
    nm.assert_close(ders[0], dx, what="dzdx")
    nm.assert_close(ders[2], db, what="dzdb")
    on_diagonal = torch.stack([df[d, (d // depth) * num_filters:(d // depth + 1) * num_filters]
                               for d in range(depth * groups)])
    nm.assert_close(ders[1], on_diagonal, what="dzdf")


# X-CONVT one_one_image: up in {1,2}, fsx in {1,2}, crop c in {1..8}, skipped if
# c > fsx*up - 1; these are the cases that run.
ONE_ONE = [(up, fsx, c) for up in (1, 2) for fsx in (1, 2) for c in range(1, 9)
           if c <= fsx * up - 1]


@pytest.mark.parametrize("up,fsx,c", ONE_ONE, ids=lambda v: str(v))
def test_one_one_image(up, fsx, c):
    # X 1x1x3x4, F (3 fsx up) x (fsx up) x 3 x 3, crop [c/2 c-c/2] in both axes, B 1x3.
    x = nm.randn(4, 3, 1, 1)
    f = nm.randn(3, 3, 3 * fsx * up, fsx * up)
    b = nm.randn(1, 3)
    crop = [c // 2, c - c // 2, c // 2, c - c // 2]
    y, _, _ = check_convt_derivatives(x, f, b, upsample=up, crop=crop)
    assert y.shape == (4, 3, 3 * fsx * up - c, fsx * up - c)
    # A 1x1 input scatters one (cropped) copy of each filter: y = sum_d x[d] f[d, k] + b.
    full = torch.einsum("nd,dkhw->nkhw", x[:, :, 0, 0], f) + b.reshape(1, -1, 1, 1)
    nm.assert_close(y, full[:, :, c // 2:full.shape[2] - (c - c // 2),
                            c // 2:full.shape[3] - (c - c // 2)])


def test_no_bias():
    x, f = nm.randn(2, 3, 3, 4), nm.randn(3, 2, 2, 2)
    for b in (None, torch.empty(0, dtype=D)):
        y, _, (_, _, db) = check_convt_derivatives(x, f, b, upsample=2, crop=1)
        assert db is None
        nm.assert_close(y, ref_convt(x, f, None, 2, 1))


# ---------------------------------------------------------------------------- identities


ADJOINT_CASES = [
    # (D, K, groups, fh, fw, H', W', upsample, crop)
    (3, 2, 1, 3, 3, 4, 5, 1, 0),
    (2, 3, 1, 3, 2, 3, 4, [2, 3], [1, 0, 0, 1]),
    (4, 1, 2, 2, 4, 3, 3, 2, [0, 1, 2, 1]),
    (6, 2, 3, 3, 3, 4, 2, [3, 1], [2, 2, 1, 0]),
]


@pytest.mark.parametrize("d,k,groups,fh,fw,h,w,up,crop", ADJOINT_CASES,
                         ids=[f"case{i}" for i in range(len(ADJOINT_CASES))])
def test_adjoint_of_conv(d, k, groups, fh, fw, h, w, up, crop):
    # vec(convt(z; f)) = M^T vec(z), M = conv by the same array f with stride = upsample,
    # pad = crop: <convt(z), x> == <z, conv(x)>.  Conv reads f as D filters of depth K, in
    # `groups` groups (K * groups input channels).
    z = nm.randn(2, d, h, w)
    f = nm.randn(d, k, fh, fw)
    y = mcn.vl_nnconvt(z, f, None, upsample=up, crop=crop, num_groups=groups)
    assert y.shape[1] == k * groups
    x = nm.randn(*y.shape)
    cx = mcn.vl_nnconv(x, f, None, stride=up, pad=crop)
    assert cx.shape == z.shape
    lhs, rhs = float((y * x).sum()), float((z * cx).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
    # Hence the data derivative of convt is conv, and that of conv (sizes permitting) is convt.
    dzdx, _, _ = mcn.vl_nnconvt(z, f, None, x, upsample=up, crop=crop, num_groups=groups)
    nm.assert_close(dzdx, cx, what="convt dzdx == conv")
    cdzdx, _, _ = mcn.vl_nnconv(x, f, None, z, stride=up, pad=crop)
    nm.assert_close(cdzdx, y, what="conv dzdx == convt")


def test_autograd_cross_check():
    # Asymmetric crop, upsample and groups at once, against torch autograd.
    x = nm.randn(2, 4, 3, 4)
    f = nm.randn(4, 3, 3, 2)
    b = nm.randn(6)
    opts = dict(upsample=[2, 3], crop=[2, 0, 1, 2], num_groups=2)
    y = mcn.vl_nnconvt(x, f, b, **opts)
    xr, fr, br = (t.clone().requires_grad_() for t in (x, f, b))
    full = F.conv_transpose2d(xr, fr, br, (2, 3), 0, 0, 2)
    yr = full[:, :, 2:, 1:full.shape[3] - 2]
    nm.assert_close(y, yr.detach(), what="y")
    dzdy = nm.randn(*y.shape)
    (yr * dzdy).sum().backward()
    dx, df, db = mcn.vl_nnconvt(x, f, b, dzdy, **opts)
    nm.assert_close(dx, xr.grad, what="dzdx")
    nm.assert_close(df, fr.grad, what="dzdf")
    nm.assert_close(db, br.grad, what="dzdb")


def test_scatter_definition():
    # Each input pixel scatters a scaled filter copy at stride U (manual 4.2).
    x = torch.zeros(1, 1, 2, 2, dtype=D)
    x[0, 0, 1, 0] = 2.0
    f = nm.randn(1, 1, 2, 3)
    y = mcn.vl_nnconvt(x, f, None, upsample=[3, 2])
    assert y.shape == (1, 1, 5, 5)
    expected = torch.zeros(1, 1, 5, 5, dtype=D)
    expected[0, 0, 3:5, 0:3] = 2.0 * f[0, 0]
    nm.assert_close(y, expected)


@pytest.mark.parametrize("flag,index", [("no_der_data", 0), ("no_der_filters", 1),
                                        ("no_der_biases", 2)])
def test_no_der_flags(flag, index):
    x, f, b = nm.randn(2, 4, 3, 3), nm.randn(4, 2, 2, 3), nm.randn(4)
    opts = dict(upsample=2, crop=[1, 0, 0, 1], num_groups=2)
    dzdy = nm.randn(*mcn.vl_nnconvt(x, f, b, **opts).shape)
    full = mcn.vl_nnconvt(x, f, b, dzdy, **opts)
    part = mcn.vl_nnconvt(x, f, b, dzdy, **opts, **{flag: True})
    for i in range(3):
        if i == index:
            assert part[i] is None
        else:
            nm.assert_close(part[i], full[i], rtol=0)


# -------------------------------------------------------------------------- array kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["single", "double"])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    f = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    y = mcn.vl_nnconvt(x, f, b, upsample=2, crop=1)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == (2, 2, 7, 7)
    for d, t in zip(mcn.vl_nnconvt(x, f, b, np.ones_like(y), upsample=2, crop=1), (x, f, b)):
        assert isinstance(d, np.ndarray) and d.dtype == dtype and d.shape == t.shape


def test_torch_float32_in_float32_out():
    x, f, b = (nm.randn(*s, dtype=torch.float32) for s in ((2, 3, 4, 4), (3, 2, 3, 3), (2,)))
    y = mcn.vl_nnconvt(x, f, b, upsample=2)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    for d in mcn.vl_nnconvt(x, f, b, torch.ones_like(y), upsample=2):
        assert isinstance(d, torch.Tensor) and d.dtype == torch.float32


# -------------------------------------------------------------------- validation (R-CONVT-1)


def _args():
    return nm.randn(1, 4, 3, 3), nm.randn(4, 2, 3, 3), nm.randn(2)


@pytest.mark.parametrize("opts,match,exc", [
    (dict(upsample=0), "^upsample", ValueError),
    (dict(upsample=[1, 0]), "^upsample", ValueError),
    (dict(upsample=1.5), "^upsample", TypeError),
    (dict(crop=-1), "^crop", ValueError),
    (dict(crop=[0, 0, 0, -1]), "^crop", ValueError),
    (dict(crop=[1, 1]), "^crop", ValueError),
    (dict(num_groups=0), "^num_groups", ValueError),
    (dict(num_groups=3), "^num_groups", ValueError),
    (dict(crop=[3, 2, 0, 0]), "^crop", ValueError),          # output height 0
    (dict(crop=[0, 0, 7, 0], upsample=2), "^crop", ValueError),  # output width 0
], ids=["upsample0", "upsample_x0", "upsample_frac", "crop_neg", "crop_neg_right", "crop2",
        "groups0", "groups_not_dividing", "empty_output_h", "empty_output_w"])
def test_bad_options(opts, match, exc):
    x, f, _ = _args()
    b = None if "num_groups" in opts else _args()[2]
    with pytest.raises(exc, match=match):
        mcn.vl_nnconvt(x, f, b, **opts)


def test_smallest_output_is_accepted():
    x, f, b = _args()
    assert mcn.vl_nnconvt(x, f, b, crop=[2, 2, 4, 0]).shape == (1, 2, 1, 1)


@pytest.mark.parametrize("shape", [(4, 0, 3, 3), (4, 2, 0, 3), (4, 2, 3, 0), (0, 2, 3, 3),
                                   (4, 2, 3)], ids=str)
def test_bad_filter_shape(shape):
    x, _, _ = _args()
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconvt(x, torch.zeros(shape, dtype=D), None)


def test_missing_filters():
    x, _, b = _args()
    with pytest.raises(TypeError, match="^f"):
        mcn.vl_nnconvt(x, None, b)


def test_filter_depth_differs_from_channels():
    x, _, b = _args()
    with pytest.raises(ValueError, match="^f"):
        mcn.vl_nnconvt(x, nm.randn(3, 2, 3, 3), b)


@pytest.mark.parametrize("groups,count", [(1, 3), (2, 2), (2, 5)])
def test_wrong_bias_count(groups, count):
    x, f, _ = _args()
    with pytest.raises(ValueError, match="^b"):
        mcn.vl_nnconvt(x, f, nm.randn(count), num_groups=groups)


def test_dzdy_shape_mismatch():
    x, f, b = _args()
    y = mcn.vl_nnconvt(x, f, b)
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnconvt(x, f, b, nm.randn(1, 2, 5, 4))
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnconvt(x, f, b, torch.ones_like(y), upsample=2)
    with pytest.raises(ValueError, match="^dzdy"):
        mcn.vl_nnconvt(x, f, nm.randn(4), torch.ones_like(y), num_groups=2)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="numgroups"):
        mcn.vl_nnconvt(*_args(), numgroups=2)


def test_mixed_kinds_and_dtypes():
    x, f, b = _args()
    with pytest.raises(TypeError, match="^f"):
        mcn.vl_nnconvt(x, f.numpy(), b)
    with pytest.raises(TypeError, match="^b"):
        mcn.vl_nnconvt(x.numpy(), f.numpy(), b)
    with pytest.raises(TypeError, match="^f"):
        mcn.vl_nnconvt(x, f.float(), b)
    y = mcn.vl_nnconvt(x, f, b)
    with pytest.raises(TypeError, match="^dzdy"):
        mcn.vl_nnconvt(x, f, b, y.float())
