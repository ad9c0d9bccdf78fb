"""vl_nnbilinearsampler: float64 numerical derivatives of dzdx AND dzdgrid (port of
MatConvNet's X-BIL check_der_x over input/output sizes and single/multiple grids; the
original never checked dgrid, Q-19), identities (identity grid, affine upsampling, several
grids per image), the border rules (R-BIL-1), array kinds and validation (R-BIL-2)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



def affine_grid(a, t, ho, wo):
    """dagnn.AffineGridGenerator: [v; u] = A [yi; xi] + T over the normalised output grid
    (yi, xi = linspace(-1, 1)); a 2 x 2 and t 2 in (vertical, horizontal) order.
    Returns 1 x 2 x Ho x Wo."""
    yi = torch.linspace(-1, 1, ho, dtype=D)
    xi = torch.linspace(-1, 1, wo, dtype=D)
    yy, xx = torch.meshgrid(yi, xi, indexing="ij")
    base = torch.stack((yy, xx))  # 2 x Ho x Wo
    a = torch.as_tensor(a, dtype=D)
    t = torch.as_tensor(t, dtype=D)
    return (torch.einsum("ij,jhw->ihw", a, base) + t.view(2, 1, 1)).unsqueeze(0)


def xbil_grids(ho, wo):
    """The four X-BIL transforms: translate x (+1), translate y (+1), scale 1/2, rotate -45."""
    c, s = math.cos(-math.pi / 4), math.sin(-math.pi / 4)
    eye = [[1.0, 0.0], [0.0, 1.0]]
    return torch.cat([affine_grid(eye, [0.0, 1.0], ho, wo),
                      affine_grid(eye, [1.0, 0.0], ho, wo),
                      affine_grid([[0.5, 0.0], [0.0, 0.5]], [0.0, 0.0], ho, wo),
                      affine_grid([[c, -s], [s, c]], [0.0, 0.0], ho, wo)])


def off_kinks(grid, h, w, margin=0.05):
    """Move every sample at least ``margin`` pixels away from the pixel centres (the kinks of
    bilinear interpolation, including the -1 boundary below which samples are dropped)."""
    out = grid.clone()
    for axis, size in ((0, h), (1, w)):
        u = (out[:, axis] + 1) * (size - 1) / 2
        f = u - u.floor()
        u = torch.where(f < margin, u + 2 * margin, u)
        u = torch.where(f > 1 - margin, u - 2 * margin, u)
        out[:, axis] = 2 * u / (size - 1) - 1
    return out


def ref_sample(x, grid):
    """Loop reference of R-BIL-1 (0-based pixel coordinates, zero outside the image,
    samples with u < 0 or v < 0 dropped as the block documents)."""
    n, c, h, w = x.shape
    ng, _, ho, wo = grid.shape
    k = ng // n
    y = torch.zeros(ng, c, ho, wo, dtype=x.dtype)
    for g in range(ng):
        img = x[g // k]
        for i in range(ho):
            for j in range(wo):
                u = (float(grid[g, 0, i, j]) + 1) * (h - 1) / 2
                v = (float(grid[g, 1, i, j]) + 1) * (w - 1) / 2
                if (h > 1 and u < 0) or (w > 1 and v < 0):
                    continue
                for a in range(h):
                    for b in range(w):
                        wgt = max(0.0, 1 - abs(u - a)) * max(0.0, 1 - abs(v - b))
                        if wgt:
                            y[g, :, i, j] += wgt * img[:, a, b]
    return y


def check_both(x, grid, what=""):
    fn = lambda x, grid: mcn.vl_nnbilinearsampler(x, grid)  # noqa: E731
    y = fn(x, grid)
    dzdy = nm.randn(*y.shape)
    dzdx, dzdgrid = mcn.vl_nnbilinearsampler(x, grid, dzdy)
    assert dzdx.shape == x.shape and dzdgrid.shape == grid.shape
    nm.check_derivative(fn, [x, grid], 0, dzdy, dzdx, what=f"dzdx {what}")
    nm.check_derivative(fn, [x, grid], 1, dzdy, dzdgrid, what=f"dzdgrid {what}")
    return y, dzdx, dzdgrid


# ------------------------------------------------------------------ X-BIL check_der_x (+ dgrid)

CASES = [(8, 4, 4, False), (8, 8, 8, True), (16, 4, 8, False), (8, 16, 4, True),
         (16, 8, 4, True)]


@pytest.mark.parametrize("ih,iw,ow,multiple", CASES,
                         ids=[f"ih{a}iw{b}oh8ow{c}{'_2img' if m else '_1img'}"
                              for a, b, c, m in CASES])
def test_check_der_x_and_grid(ih, iw, ow, multiple):
    # X-BIL: 4 affine grids; multiple_grids => 2 images with 2 grids each, else 1 image.
    n = 2 if multiple else 1
    x = torch.rand(n, 3, ih, iw, dtype=D)
    grid = off_kinks(xbil_grids(8, ow), ih, iw)
    y, _, _ = check_both(x, grid)
    assert y.shape == (4, 3, 8, ow)


def test_derivatives_random_grid_with_outside_points():
    # Points all over [-1.6, 1.6]^2: inside, in the border band, dropped, and outside.
    x = torch.rand(2, 2, 5, 6, dtype=D)
    grid = off_kinks(torch.rand(4, 2, 5, 3, dtype=D) * 3.2 - 1.6, 5, 6)
    check_both(x, grid)


def test_derivative_grid_one_pixel_axis():
    # H = 1: the vertical coordinate is ignored (u = 0) and its derivative is 0.
    x = torch.rand(1, 2, 1, 6, dtype=D)
    grid = off_kinks(torch.rand(1, 2, 3, 4, dtype=D) * 1.8 - 0.9, 1, 6)
    grid[:, 0] = torch.rand(1, 3, 4, dtype=D) * 1.8 - 0.9
    _, _, dzdgrid = check_both(x, grid)
    assert not dzdgrid[:, 0].any()


# ------------------------------------------------------------------ identities


@pytest.mark.parametrize("h,w", [(4, 5), (7, 3), (1, 4)], ids=["4x5", "7x3", "1x4"])
def test_identity_grid_returns_x(h, w):
    x = nm.randn(2, 3, h, w)
    grid = affine_grid([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], h, w).expand(2, 2, h, w)
    nm.assert_close(mcn.vl_nnbilinearsampler(x, grid.contiguous()), x, rtol=1e-12)


def test_identity_grid_backward():
    # At the pixel centres the sampler is a permutation-free copy: dzdx == dzdy.
    x = nm.randn(1, 2, 4, 5)
    grid = affine_grid([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], 4, 5)
    dzdy = nm.randn(1, 2, 4, 5)
    dzdx, _ = mcn.vl_nnbilinearsampler(x, grid, dzdy)
    nm.assert_close(dzdx, dzdy, rtol=1e-12)


def test_affine_upsampling():
    # Identity transform on a (2H-1) x (2W-1) grid: x at the even positions, averages of
    # neighbours in between (bilinear midpoints).
    h, w = 4, 5
    x = nm.randn(2, 3, h, w)
    grid = affine_grid([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], 2 * h - 1, 2 * w - 1)
    y = mcn.vl_nnbilinearsampler(x, grid.expand(2, 2, 2 * h - 1, 2 * w - 1).contiguous())
    nm.assert_close(y[:, :, ::2, ::2], x, rtol=1e-12, what="even positions")
    nm.assert_close(y[:, :, 1::2, ::2], (x[:, :, :-1] + x[:, :, 1:]) / 2, rtol=1e-12)
    nm.assert_close(y[:, :, ::2, 1::2], (x[..., :-1] + x[..., 1:]) / 2, rtol=1e-12)
    nm.assert_close(y, F.interpolate(x, size=(2 * h - 1, 2 * w - 1), mode="bilinear",
                                     align_corners=True), rtol=1e-12, what="vs interpolate")


def test_scale_and_transpose_grids():
    # Swapping the grid channels of an identity grid on a square image transposes it.
    x = nm.randn(1, 2, 5, 5)
    grid = affine_grid([[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0], 5, 5)
    nm.assert_close(mcn.vl_nnbilinearsampler(x, grid), x.transpose(2, 3), rtol=1e-12)


def test_vs_loop_reference():
    x = nm.randn(2, 2, 4, 5)
    grid = torch.rand(4, 2, 3, 3, dtype=D) * 3.0 - 1.5
    nm.assert_close(mcn.vl_nnbilinearsampler(x, grid), ref_sample(x, grid), rtol=1e-12)


def test_multiple_grids_per_image():
    # R-BIL-2: N' = k N; grids n k .. n k + k - 1 sample image n.
    x = nm.randn(2, 3, 6, 5)
    grid = off_kinks(xbil_grids(4, 3).repeat(2, 1, 1, 1)[:6], 6, 5)  # 6 grids, k = 3
    y = mcn.vl_nnbilinearsampler(x, grid)
    for g in range(6):
        yg = mcn.vl_nnbilinearsampler(x[g // 3:g // 3 + 1], grid[g:g + 1].contiguous())
        nm.assert_close(y[g:g + 1], yg, rtol=1e-14, what=f"grid {g}")
    dzdy = nm.randn(*y.shape)
    dzdx, dzdgrid = mcn.vl_nnbilinearsampler(x, grid, dzdy)
    for n in range(2):
        dx, dg = mcn.vl_nnbilinearsampler(x[n:n + 1], grid[3 * n:3 * n + 3].contiguous(),
                                          dzdy[3 * n:3 * n + 3].contiguous())
        nm.assert_close(dzdx[n:n + 1], dx, rtol=1e-13)
        nm.assert_close(dzdgrid[3 * n:3 * n + 3], dg, rtol=1e-13)


# ------------------------------------------------------------------ border rules (R-BIL-1)


def test_points_above_or_left_of_first_centre_are_dropped():
    # As in the original CPU code: a sample with u < 0 or v < 0 gives 0 and no derivative.
    x = torch.rand(1, 1, 4, 4, dtype=D) + 1.0
    grid = torch.tensor([[[[-1.2, -1.0, 0.0]], [[0.0, -1.1, 0.0]]]], dtype=D)  # 1x2x1x3
    y = mcn.vl_nnbilinearsampler(x, grid)
    assert float(y[0, 0, 0, 0]) == 0.0 and float(y[0, 0, 0, 1]) == 0.0
    assert float(y[0, 0, 0, 2]) != 0.0
    dzdx, dzdgrid = mcn.vl_nnbilinearsampler(x, grid, torch.ones_like(y))
    assert not dzdgrid[..., :2].any()
    nm.assert_close(dzdx.sum(), torch.tensor(1.0, dtype=D), rtol=1e-14)  # only the 3rd sample


def test_border_band_below_last_centre():
    # A sample within one pixel below/right of the last centre takes its share of the
    # border pixel (zero padding beyond); one pixel or more beyond gives 0.
    h, w = 4, 5
    x = torch.rand(1, 1, h, w, dtype=D) + 1.0
    u = h - 1 + 0.25  # 0.25 past the last row centre
    g0 = 2 * u / (h - 1) - 1
    grid = torch.tensor([[[[g0, 1 + 2 * 1.5 / (h - 1)]], [[0.0, 0.0]]]], dtype=D)
    y = mcn.vl_nnbilinearsampler(x, grid)
    v = (w - 1) / 2  # centre column (v = 2)
    nm.assert_close(y[0, 0, 0, 0], 0.75 * x[0, 0, h - 1, int(v)], rtol=1e-12)
    assert float(y[0, 0, 0, 1]) == 0.0


# ------------------------------------------------------------------ array kinds


def test_numpy_in_numpy_out():
    x = torch.rand(1, 2, 4, 4, dtype=D).numpy()
    grid = affine_grid([[0.5, 0.0], [0.0, 0.5]], [0.0, 0.0], 3, 3).numpy()
    y = mcn.vl_nnbilinearsampler(x, grid)
    assert isinstance(y, np.ndarray) and y.shape == (1, 2, 3, 3)
    dzdx, dzdgrid = mcn.vl_nnbilinearsampler(x, grid, np.ones_like(y))
    assert isinstance(dzdx, np.ndarray) and isinstance(dzdgrid, np.ndarray)
    assert dzdx.shape == x.shape and dzdgrid.shape == grid.shape


def test_float32_preserved():
    x = torch.rand(1, 2, 4, 4)
    grid = affine_grid([[0.5, 0.0], [0.0, 0.5]], [0.0, 0.0], 3, 3).float()
    y = mcn.vl_nnbilinearsampler(x, grid)
    assert y.dtype == torch.float32
    nm.assert_close(y, ref_sample(x.double(), grid.double()), rtol=1e-6)


# ------------------------------------------------------------------ validation (R-BIL-2)


@pytest.mark.parametrize("shape", [(1, 3, 2, 2), (1, 1, 2, 2), (2, 2, 2)],
                         ids=["3_channels", "1_channel", "3d"])
def test_grid_not_n_by_2(shape):
    with pytest.raises(ValueError, match="^grid: .*2"):
        mcn.vl_nnbilinearsampler(nm.randn(1, 1, 3, 3), nm.randn(*shape))


def test_grid_count_not_multiple_of_n():
    with pytest.raises(ValueError, match="^grid: .*multiple"):
        mcn.vl_nnbilinearsampler(nm.randn(2, 1, 3, 3), nm.randn(3, 2, 2, 2))


@pytest.mark.parametrize("shape", [(2, 1, 2, 3), (2, 2, 2, 2), (1, 1, 2, 2)],
                         ids=["wrong_w", "wrong_c", "wrong_n"])
def test_dzdy_wrong_shape(shape):
    x, grid = nm.randn(1, 1, 3, 3), nm.randn(2, 2, 2, 2)
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnbilinearsampler(x, grid, nm.randn(*shape))


def test_grid_kind_must_match_x():
    with pytest.raises(TypeError, match="^grid: "):
        mcn.vl_nnbilinearsampler(nm.randn(1, 1, 3, 3), nm.randn(1, 2, 2, 2).float())
