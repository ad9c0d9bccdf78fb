"""vl_nnroipool: float64 numerical derivatives (port of MatConvNet's X-ROI suite: max and avg
x subdivisions [1 1], [2 1], [1 2], [3 7], [16 16] on the 5 x 8 ROI matrix with degenerate
and out-of-image boxes), the identity tests (plain and with swapped axes), a loop reference
of R-ROI-1/2, transforms (O-ROI-3), ROI layouts, array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64

# X-ROI: R = [t u0 v0 u1 v1] columns, 1-based; u horizontal (W = 14), v vertical (H = 15).
R = torch.tensor([[1, 1, 1, 2, 2, 2, 1, 1],
                  [0, 1, 2, 0, 1, 2, 1, 1],
                  [0, 4, 3, 0, 1, 2, 1, 1],
                  [15, 5, 6, 15, 4, 2, 9, 0],
                  [14, 7, 9, 14, 4, 8, 1, 0]], dtype=D)

SUBDIVISIONS = [(1, 1), (2, 1), (1, 2), (3, 7), (16, 16)]



# ------------------------------------------------------------------ helpers


def c_round(v):
    """C's round(): half away from zero."""
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


def ref_roipool(x, rois, method="max", sub=(1, 1), transform=1.0, dzdy=None, single=False):
    """Loop port of the original roipooling_cpu forward/backward (R-ROI-1, R-ROI-2); the
    bin edges are computed in double, or in single with ``single`` (the original computes
    them in the data's precision)."""
    xn = x.numpy()
    n, c, h, w = xn.shape
    rois = np.asarray(rois, dtype=float)
    a = np.asarray(transform, dtype=float)
    if a.size == 1:
        a = np.array([[a.item(), 0, 1 - a.item()], [0, a.item(), 1 - a.item()]])
    elif a.size == 2:
        a = np.array([[a[0], 0, 1 - a[0]], [0, a[1], 1 - a[1]]])
    k = rois.shape[1]
    y = np.zeros((k, c, sub[0], sub[1]))
    dx = np.zeros_like(xn)
    for r in range(k):
        t, u0_, v0_, u1_, v1_ = rois[:, r]
        u0, v0 = a[0, 0] * u0_ + a[0, 1] * v0_ + a[0, 2], a[1, 0] * u0_ + a[1, 1] * v0_ + a[1, 2]
        u1, v1 = a[0, 0] * u1_ + a[0, 1] * v1_ + a[0, 2], a[1, 0] * u1_ + a[1, 1] * v1_ + a[1, 2]
        img = min(max(int(round(t)) - 1, 0), n - 1)
        sh, sw = c_round(v0) - 1, c_round(u0) - 1
        eh, ew = c_round(v1) - 1, c_round(u1) - 1
        rh, rw = max(eh - sh + 1, 1), max(ew - sw + 1, 1)
        f = np.float32 if single else np.float64
        bh, bw = f(rh) / f(sub[0]), f(rw) / f(sub[1])
        for pw in range(sub[1]):
            ws = min(max(int(np.floor(f(pw) * bw)) + sw, 0), w)
            we = min(max(int(np.ceil(f(pw + 1) * bw)) + sw, 0), w)
            for ph in range(sub[0]):
                hs = min(max(int(np.floor(f(ph) * bh)) + sh, 0), h)
                he = min(max(int(np.ceil(f(ph + 1) * bh)) + sh, 0), h)
                if he <= hs or we <= ws:
                    continue
                win = xn[img, :, hs:he, ws:we]
                if method == "avg":
                    y[r, :, ph, pw] = win.mean(axis=(1, 2))
                    if dzdy is not None:
                        dx[img, :, hs:he, ws:we] += (dzdy[r, :, ph, pw] / win[0].size)[:, None, None]
                else:
                    y[r, :, ph, pw] = win.max(axis=(1, 2))
                    if dzdy is not None:
                        # first maximum in column-major order (columns outer, rows inner)
                        flat = win.transpose(0, 2, 1).reshape(c, -1)
                        arg = flat.argmax(axis=1)
                        for ch in range(c):
                            col, row = divmod(int(arg[ch]), he - hs)
                            dx[img, ch, hs + row, ws + col] += dzdy[r, ch, ph, pw]
    return torch.from_numpy(y) if dzdy is None else torch.from_numpy(dx)


def channel_batched_numder(fn, x, dzdy, eps=1e-3, chunk=128):
    """Central differences of sum(dzdy * fn(x)) w.r.t. every element of x, perturbing many
    elements per call: copy j of x goes to channels [j C, (j+1) C) of one big input (ROI
    pooling treats every channel on its own), with one element perturbed in each copy."""
    n, c, h, w = x.shape
    total = x.numel()
    out = torch.empty(total, dtype=D)
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(total, start + chunk))
        m = idx.numel()
        res = []
        for sign in (1.0, -1.0):
            big = x.repeat(1, m, 1, 1).view(n, m, c, h, w).clone()
            ni, ci, hi, wi = np.unravel_index(idx.numpy(), (n, c, h, w))
            big[ni, np.arange(m), ci, hi, wi] += sign * eps
            y = fn(big.view(n, m * c, h, w))
            y = y.view(y.shape[0], m, c, *y.shape[2:])
            res.append((y * dzdy.unsqueeze(1)).sum(dim=(0, 2, 3, 4)))
        out[idx] = (res[0] - res[1]) / (2 * eps)
    return out.view(n, c, h, w)


def distinct_x(n=2, c=2, h=15, w=14):
    # X-ROI: distinct integers (randperm), so steps never reorder maxima (X-H-8).
    return nm.distinct(n, c, h, w)


# ------------------------------------------------------------------ X-ROI basic


@pytest.mark.parametrize("sub", SUBDIVISIONS, ids=[f"sub{a}x{b}" for a, b in SUBDIVISIONS])
@pytest.mark.parametrize("method", ["max", "avg"])
def test_basic_derivative(method, sub):
    x = distinct_x()
    fn = lambda x: mcn.vl_nnroipool(x, R, method=method, subdivisions=sub)  # noqa: E731
    y = fn(x)
    assert y.shape == (8, 2, sub[0], sub[1])
    dzdy = nm.randn(*y.shape)
    dzdx = mcn.vl_nnroipool(x, R, dzdy, method=method, subdivisions=sub)
    num = channel_batched_numder(fn, x, dzdy)
    nm.assert_close(dzdx, num, rtol=1e-9, what="dzdx")


@pytest.mark.parametrize("sub", SUBDIVISIONS, ids=[f"sub{a}x{b}" for a, b in SUBDIVISIONS])
@pytest.mark.parametrize("method", ["max", "avg"])
def test_vs_loop_reference(method, sub):
    # X-ROI's X 15x14x3x2, forward and backward against a port of the original loops.
    x = distinct_x(2, 3, 15, 14)
    y = mcn.vl_nnroipool(x, R, method=method, subdivisions=sub)
    nm.assert_close(y, ref_roipool(x, R, method, sub), rtol=1e-12, what="y")
    dzdy = nm.randn(*y.shape)
    dzdx = mcn.vl_nnroipool(x, R, dzdy, method=method, subdivisions=sub)
    nm.assert_close(dzdx, ref_roipool(x, R, method, sub, dzdy=dzdy.numpy()), rtol=1e-12,
                    what="dzdx")


@pytest.mark.parametrize("method", ["max", "avg"])
def test_derivative_direct_small(method):
    # One plain element-by-element check (no channel batching) on a small case.
    x = nm.distinct(2, 2, 6, 5)
    rois = torch.tensor([[1, 1, 1, 5, 6], [2, 2, 1, 4, 4], [1, 3, 2, 9, 9], [2, 0, 0, 1, 1]],
                        dtype=D)  # K x 5
    sub = (2, 3)
    fn = lambda x: mcn.vl_nnroipool(x, rois, method=method, subdivisions=sub)  # noqa: E731
    dzdy = nm.randn(4, 2, 2, 3)
    dzdx = mcn.vl_nnroipool(x, rois, dzdy, method=method, subdivisions=sub)
    nm.check_derivative(fn, [x], 0, dzdy, dzdx, eps=1e-3, rtol=1e-9)


# ------------------------------------------------------------------ X-ROI identity


def identity_input():
    # X = (2:10)' * (1:10): MATLAB 9 x 10 (H = 9, W = 10).
    return torch.outer(torch.arange(2, 11, dtype=D), torch.arange(1, 11, dtype=D)).view(1, 1, 9, 10)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_identity_swapped_axes(method):
    # X-ROI identity: ROI [1 1 1 9 10] with Transform [0 1 0; 1 0 0] (swap u and v) and
    # Subdivisions [9 10] returns X exactly.
    x = identity_input()
    rois = torch.tensor([1, 1, 1, 9, 10], dtype=D).view(5, 1)
    y = mcn.vl_nnroipool(x, rois, method=method, subdivisions=(9, 10),
                         transform=np.array([[0, 1, 0], [1, 0, 0]]))
    nm.assert_close(y, x, rtol=0)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_identity_full_image(method):
    # With transform 1, a full-image ROI [1 1 1 W H] and subdivisions (H, W): y == x,
    # and the backward copies dzdy back.
    x = identity_input().repeat(2, 3, 1, 1) + nm.distinct(2, 3, 9, 10) * 1e-3
    rois = torch.tensor([[1, 1, 1, 10, 9], [2, 1, 1, 10, 9]], dtype=D).t()
    y = mcn.vl_nnroipool(x, rois, method=method, subdivisions=(9, 10))
    nm.assert_close(y, x, rtol=1e-14)  # avg sums through an integral image
    dzdy = nm.randn(*y.shape)
    nm.assert_close(mcn.vl_nnroipool(x, rois, dzdy, method=method, subdivisions=(9, 10)),
                    dzdy, rtol=1e-14)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_single_bin_is_global_pool(method):
    x = nm.randn(2, 3, 5, 4)
    y = mcn.vl_nnroipool(x, torch.tensor([2, 1, 1, 4, 5], dtype=D), method=method)
    ref = x[1].amax(dim=(1, 2)) if method == "max" else x[1].mean(dim=(1, 2))
    nm.assert_close(y.view(3), ref, rtol=1e-14)


# ------------------------------------------------------------------ semantics (R-ROI-1/2)


def test_max_backward_first_maximum_column_major():
    # Ties go to the first maximum in column-major order (columns outer, rows inner).
    x = torch.zeros(1, 1, 2, 2, dtype=D)
    x[0, 0, 0, 1] = 5.0  # row 0, column 1
    x[0, 0, 1, 0] = 5.0  # row 1, column 0 -> visited first
    dzdx = mcn.vl_nnroipool(x, torch.tensor([1, 1, 1, 2, 2], dtype=D),
                            torch.ones(1, 1, 1, 1, dtype=D))
    expected = torch.zeros_like(x)
    expected[0, 0, 1, 0] = 1.0
    nm.assert_close(dzdx, expected, rtol=0)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_roi_outside_image_gives_zero(method):
    # Empty bins give 0 and no derivative.
    x = nm.randn(1, 2, 5, 5) + 10.0
    rois = torch.tensor([[1, 20, 20, 25, 25], [1, -9, -9, -5, -5]], dtype=D).t()
    y = mcn.vl_nnroipool(x, rois, method=method, subdivisions=(2, 2))
    assert not y.any()
    dzdx = mcn.vl_nnroipool(x, rois, torch.ones_like(y), method=method, subdivisions=(2, 2))
    assert not dzdx.any()


def test_avg_divides_by_clipped_area():
    # A ROI half outside the image: the average is over the pixels inside only.
    x = nm.randn(1, 1, 4, 4)
    y = mcn.vl_nnroipool(x, torch.tensor([1, 3, 3, 6, 6], dtype=D), method="avg")
    nm.assert_close(y.view(()), x[0, 0, 2:, 2:].mean(), rtol=1e-14)


def test_image_index_clamped():
    x = nm.randn(2, 2, 4, 4)
    for t, img in ((0, 0), (-3, 0), (5, 1), (2, 1)):
        y = mcn.vl_nnroipool(x, torch.tensor([t, 1, 1, 4, 4], dtype=D))
        nm.assert_close(y.view(2), x[img].amax(dim=(1, 2)), rtol=0, what=f"t = {t}")


def test_rounding_half_away_from_zero():
    # Corner 2.5 rounds to 3 (C round), not to 2 (banker's rounding).
    x = nm.distinct(1, 1, 1, 6)
    y = mcn.vl_nnroipool(x, torch.tensor([1, 2.5, 1, 6, 1], dtype=D), method="avg")
    nm.assert_close(y.view(()), x[0, 0, 0, 2:].mean(), rtol=1e-14)


def _row_ramp(dtype):
    # x[0, 0, i, j] = i: the max over a bin is its last row
    return torch.arange(10, dtype=dtype).view(1, 1, 10, 1).expand(1, 1, 10, 4).contiguous()


def test_bin_edges_single_precision_for_float32():
    # The original computes the bin edges in the data's precision.  In single,
    # 13 * float(7 / 13) = 7.0000005, so the last of 13 bins over a 7-row ROI ends at
    # ceil(7.0000005) = 8: one row past the ROI (row 7, still inside the image).
    y = mcn.vl_nnroipool(_row_ramp(torch.float32), torch.tensor([1, 1, 1, 4, 7]),
                         subdivisions=(13, 1))
    assert float(y[0, 0, 12, 0]) == 7.0
    nm.assert_close(y, ref_roipool(_row_ramp(D), [[1], [1], [1], [4], [7]], "max", (13, 1),
                                   single=True), rtol=0)


def test_bin_edges_double_precision_for_float64():
    # In double (the original's double path, and the documented exact formula
    # ceil((p + 1) roiH / SH)), the last bin ends at ceil(13 * 7 / 13) = 7: rows 6..6.
    y = mcn.vl_nnroipool(_row_ramp(D), torch.tensor([1, 1, 1, 4, 7]), subdivisions=(13, 1))
    nm.assert_close(y, ref_roipool(_row_ramp(D), [[1], [1], [1], [4], [7]], "max", (13, 1)),
                    rtol=0, what="bins computed in double")
    assert float(y[0, 0, 12, 0]) == 6.0, "last bin reaches past the ROI (float32 bin edges)"


# ------------------------------------------------------------------ transforms (O-ROI-3)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_transform_forms_agree(method):
    x = nm.distinct(2, 2, 8, 9)
    rois = torch.tensor([[1, 3, 5, 15, 11], [2, 1, 1, 17, 15], [1, 7, 3, 9, 14]], dtype=D).t()
    opts = dict(method=method, subdivisions=(3, 2))
    y = mcn.vl_nnroipool(x, rois, transform=0.5, **opts)
    y2 = mcn.vl_nnroipool(x, rois, transform=[0.5, 0.5], **opts)
    y6 = mcn.vl_nnroipool(x, rois, transform=np.array([[0.5, 0, 0.5], [0, 0.5, 0.5]]), **opts)
    nm.assert_close(y2, y, rtol=0)
    nm.assert_close(y6, y, rtol=0)
    nm.assert_close(y, ref_roipool(x, rois, method, (3, 2), 0.5), rtol=1e-12)


def test_transform_per_axis():
    x = nm.distinct(1, 1, 8, 9)
    rois = torch.tensor([[1, 3, 5, 15, 11], [1, 1, 1, 9, 16]], dtype=D).t()
    for tr in ([0.5, 1.0], [1.0, 0.5], [0.25, 0.75]):
        y = mcn.vl_nnroipool(x, rois, method="avg", subdivisions=(2, 2), transform=tr)
        nm.assert_close(y, ref_roipool(x, rois, "avg", (2, 2), tr), rtol=1e-12, what=str(tr))


def test_general_affine_transform():
    x = nm.distinct(1, 2, 8, 9)
    rois = torch.tensor([[1, 2, 3, 6, 7], [1, 1, 1, 4, 9]], dtype=D).t()
    a = np.array([[1.0, 0.25, -0.5], [0.1, 0.9, 0.3]])
    y = mcn.vl_nnroipool(x, rois, subdivisions=(2, 3), transform=a)
    nm.assert_close(y, ref_roipool(x, rois, "max", (2, 3), a), rtol=0)


# ------------------------------------------------------------------ layouts and kinds


def test_roi_layouts_agree():
    x = distinct_x(2, 2, 15, 14)
    y = mcn.vl_nnroipool(x, R, subdivisions=(2, 3))
    nm.assert_close(mcn.vl_nnroipool(x, R.t().contiguous(), subdivisions=(2, 3)), y, rtol=0)
    nm.assert_close(mcn.vl_nnroipool(x, R.numpy(), subdivisions=(2, 3)), y, rtol=0)
    single = mcn.vl_nnroipool(x, R[:, 1], subdivisions=(2, 3))
    nm.assert_close(single, y[1:2], rtol=0)


def test_square_roi_matrix_is_5_by_k():
    # A 5 x 5 array is read in MatConvNet's layout: one ROI per column.
    x = distinct_x(2, 2, 15, 14)
    r = R[:, :5].contiguous()
    nm.assert_close(mcn.vl_nnroipool(x, r, subdivisions=(2, 2)),
                    mcn.vl_nnroipool(x, R, subdivisions=(2, 2))[:5], rtol=0)


@pytest.mark.parametrize("method", ["max", "avg"])
def test_no_rois(method):
    x = nm.randn(1, 2, 5, 5)
    rois = torch.zeros(5, 0, dtype=D)
    y = mcn.vl_nnroipool(x, rois, method=method, subdivisions=(2, 3))
    assert y.shape == (0, 2, 2, 3)
    dzdx = mcn.vl_nnroipool(x, rois, torch.zeros(0, 2, 2, 3, dtype=D), method=method,
                            subdivisions=(2, 3))
    assert dzdx.shape == x.shape and not dzdx.any()


def test_scalar_subdivisions_square():
    # a scalar Subdivisions reads out of bounds in the original; here it means [S S].
    x = distinct_x(2, 2, 15, 14)
    nm.assert_close(mcn.vl_nnroipool(x, R, subdivisions=3),
                    mcn.vl_nnroipool(x, R, subdivisions=(3, 3)), rtol=0)


def test_integer_rois_accepted():
    x = distinct_x(2, 2, 15, 14)
    nm.assert_close(mcn.vl_nnroipool(x, R.long(), subdivisions=(2, 2)),
                    mcn.vl_nnroipool(x, R, subdivisions=(2, 2)), rtol=0)


def test_numpy_in_numpy_out():
    x = distinct_x(2, 2, 15, 14).numpy()
    y = mcn.vl_nnroipool(x, R.numpy(), method="avg", subdivisions=(2, 2))
    assert isinstance(y, np.ndarray) and y.shape == (8, 2, 2, 2) and y.dtype == np.float64
    dzdx = mcn.vl_nnroipool(x, R.numpy(), np.ones_like(y), method="avg", subdivisions=(2, 2))
    assert isinstance(dzdx, np.ndarray) and dzdx.shape == x.shape


@pytest.mark.parametrize("method", ["max", "avg"])
def test_float32_preserved(method):
    x = distinct_x(2, 2, 15, 14).float()
    y = mcn.vl_nnroipool(x, R, method=method, subdivisions=(3, 7))
    assert y.dtype == torch.float32
    nm.assert_close(y, ref_roipool(x.double(), R, method, (3, 7)), rtol=1e-6)


def test_method_case_insensitive():
    x = distinct_x(2, 2, 15, 14)
    nm.assert_close(mcn.vl_nnroipool(x, R, method="AVG"),
                    mcn.vl_nnroipool(x, R, method="avg"), rtol=0)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (6, 2), (4,), (2, 5, 1)],
                         ids=["4x3", "3x4", "6x2", "4", "3d"])
def test_rois_not_5_by_k(shape):
    with pytest.raises(ValueError, match="^rois: "):
        mcn.vl_nnroipool(nm.randn(1, 1, 4, 4), torch.ones(*shape, dtype=D))


@pytest.mark.parametrize("transform", [[1, 2, 3], np.eye(2), np.ones((3, 2)), np.ones((2, 4))],
                         ids=["3el", "2x2", "3x2", "2x4"])
def test_bad_transform_shape(transform):
    with pytest.raises(ValueError, match="^transform: "):
        mcn.vl_nnroipool(nm.randn(1, 1, 4, 4), torch.tensor([1, 1, 1, 2, 2], dtype=D),
                         transform=transform)


@pytest.mark.parametrize("method", ["sum", "", "maximum"])
def test_bad_method(method):
    with pytest.raises(ValueError, match="^method: "):
        mcn.vl_nnroipool(nm.randn(1, 1, 4, 4), torch.tensor([1, 1, 1, 2, 2], dtype=D),
                         method=method)


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 1, 1, 1), (1, 2, 1, 1)],
                         ids=["wrong_bins", "wrong_k", "wrong_c"])
def test_dzdy_wrong_shape(shape):
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnroipool(nm.randn(1, 1, 4, 4), torch.tensor([1, 1, 1, 2, 2], dtype=D),
                         nm.randn(*shape))


@pytest.mark.parametrize("sub", [0, (0, 2), (1, 2, 3)], ids=["zero", "zero_h", "3el"])
def test_bad_subdivisions(sub):
    with pytest.raises(ValueError, match="^subdivisions: "):
        mcn.vl_nnroipool(nm.randn(1, 1, 4, 4), torch.tensor([1, 1, 1, 2, 2], dtype=D),
                         subdivisions=sub)
