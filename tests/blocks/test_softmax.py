"""vl_nnsoftmax: derivative checks (X-SMX), identities, autograd cross-checks, array boundary
and validation (B-SMAX, R-SMAX-1)."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm


def numeric_dzdx(f, x, dzdy, eps):
    """Central-difference derivative of <dzdy, f(x)> with respect to x."""
    return nm.numerical_derivative(f, [x], 0, dzdy, eps)


# ------------------------------------------------------------------- derivatives

@pytest.mark.parametrize("w", [1, 2], ids=lambda v: f"w{v}")
@pytest.mark.parametrize("h", [1, 2, 3], ids=lambda v: f"h{v}")
def test_xsmx_basic(h, w):
    # X-SMX: X h x w x 10 x 3 / 128 (here N x C x H x W = 3 x 10 x h x w), float64.
    torch.manual_seed(0)
    x = torch.randn(3, 10, h, w, dtype=torch.float64) / 128
    dzdy = torch.randn_like(x)
    dzdx = mcn.vl_nnsoftmax(x, dzdy)
    assert dzdx.shape == x.shape
    num = numeric_dzdx(mcn.vl_nnsoftmax, x, dzdy, 1e-6)
    torch.testing.assert_close(dzdx, num, rtol=1e-6, atol=1e-9)


def test_derivative_unit_scale_inputs():
    torch.manual_seed(1)
    x = 3 * torch.randn(2, 4, 3, 2, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    num = numeric_dzdx(mcn.vl_nnsoftmax, x, dzdy, 1e-6)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy), num, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------- formulas and identities

def test_forward_and_backward_formula():
    torch.manual_seed(2)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    e = torch.exp(x - x.amax(dim=1, keepdim=True))
    y = e / e.sum(dim=1, keepdim=True)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x), y)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy),
                               y * (dzdy - (dzdy * y).sum(dim=1, keepdim=True)))


def test_sums_to_one_over_channels():
    torch.manual_seed(3)
    x = 4 * torch.randn(3, 7, 2, 5, dtype=torch.float64)
    y = mcn.vl_nnsoftmax(x)
    assert (y > 0).all()
    torch.testing.assert_close(y.sum(dim=1), torch.ones(3, 2, 5, dtype=torch.float64))


def test_invariant_to_per_location_constant():
    torch.manual_seed(4)
    x = torch.randn(3, 6, 2, 5, dtype=torch.float64)
    shift = 50 * torch.randn(3, 1, 2, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x + shift), mcn.vl_nnsoftmax(x))
    torch.testing.assert_close(mcn.vl_nnsoftmax(x + shift, dzdy), mcn.vl_nnsoftmax(x, dzdy))


def test_only_channels_are_mixed():
    # Changing one location of one image leaves every other location unchanged.
    torch.manual_seed(5)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    y = mcn.vl_nnsoftmax(x)
    x2 = x.clone()
    x2[1, :, 2, 0] += torch.randn(4, dtype=torch.float64)
    y2 = mcn.vl_nnsoftmax(x2)
    changed = (y2 != y).any(dim=1)
    expected = torch.zeros(2, 3, 3, dtype=torch.bool)
    expected[1, 2, 0] = True
    assert torch.equal(changed, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_large_values_do_not_overflow(dtype):
    x = torch.tensor([1000.0, 1001.0, 999.0, -1e4, 1e4, 1e4], dtype=dtype).reshape(2, 3, 1, 1)
    dzdy = torch.tensor([1.0, -2.0, 0.5, 1.0, 2.0, 3.0], dtype=dtype).reshape(2, 3, 1, 1)
    y = mcn.vl_nnsoftmax(x)
    dzdx = mcn.vl_nnsoftmax(x, dzdy)
    assert torch.isfinite(y).all() and torch.isfinite(dzdx).all()
    ref0 = torch.softmax(torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64), dim=0)
    torch.testing.assert_close(y[0, :, 0, 0].double(), ref0)
    torch.testing.assert_close(y[1, :, 0, 0].double(),
                               torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64))
    x_all_negative = torch.full((1, 4, 1, 1), -1e4, dtype=dtype)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x_all_negative),
                               torch.full_like(x_all_negative, 0.25))


def test_single_channel():
    torch.manual_seed(6)
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    assert torch.equal(mcn.vl_nnsoftmax(x), torch.ones_like(x))
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy), torch.zeros_like(x))


def test_backward_with_y_equals_without():
    torch.manual_seed(7)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    y = mcn.vl_nnsoftmax(x)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy, y=y), mcn.vl_nnsoftmax(x, dzdy),
                               rtol=0, atol=0)


def test_backward_uses_the_given_y():
    # y= is trusted: dzdx = y * (dzdy - sum_k dzdy * y) for whatever y is passed.
    torch.manual_seed(8)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    y = torch.rand_like(x)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy, y=y),
                               y * (dzdy - (dzdy * y).sum(dim=1, keepdim=True)))


def test_autograd_cross_check():
    torch.manual_seed(9)
    x = 2 * torch.randn(3, 6, 2, 4, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    xa = x.clone().requires_grad_(True)
    ya = torch.softmax(xa, dim=1)
    ya.backward(dzdy)
    torch.testing.assert_close(mcn.vl_nnsoftmax(x), ya.detach())
    torch.testing.assert_close(mcn.vl_nnsoftmax(x, dzdy), xa.grad)


# ------------------------------------------------------------------- array boundary

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 4, 3, 5)).astype(dtype)
    dzdy = rng.standard_normal((2, 4, 3, 5)).astype(dtype)
    y = mcn.vl_nnsoftmax(x)
    dzdx = mcn.vl_nnsoftmax(x, dzdy)
    dzdx_y = mcn.vl_nnsoftmax(x, dzdy, y=y)
    for a in (y, dzdx, dzdx_y):
        assert isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == x.shape
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dzdx, ref * (dzdy - (dzdy * ref).sum(axis=1, keepdims=True)),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(dzdx_y, dzdx, rtol=tol, atol=tol)


def test_torch_float32_preserved():
    torch.manual_seed(11)
    x = torch.randn(2, 3, 4, 5)
    dzdy = torch.randn_like(x)
    for a in (mcn.vl_nnsoftmax(x), mcn.vl_nnsoftmax(x, dzdy)):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.float32 and a.shape == x.shape


# ------------------------------------------------------------------- validation

@pytest.mark.parametrize("shape", [(3, 4, 5), (4, 5), (1, 2, 3, 4, 5)], ids=["3d", "2d", "5d"])
def test_x_not_4d(shape):
    with pytest.raises(ValueError, match=r"^x:"):
        mcn.vl_nnsoftmax(torch.randn(shape, dtype=torch.float64))


def test_dzdy_wrong_shape():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^dzdy:"):
        mcn.vl_nnsoftmax(x, torch.randn(2, 3, 5, 4, dtype=torch.float64))


def test_y_wrong_shape():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    with pytest.raises(ValueError, match=r"^y:"):
        mcn.vl_nnsoftmax(x, dzdy, y=torch.rand(2, 3, 4, 1, dtype=torch.float64))


def test_dzdy_wrong_kind():
    x = np.random.rand(2, 3, 4, 5)
    with pytest.raises(TypeError, match=r"^dzdy:"):
        mcn.vl_nnsoftmax(x, torch.randn(2, 3, 4, 5, dtype=torch.float64))


@pytest.mark.parametrize("x", [torch.arange(24).reshape(1, 2, 3, 4), np.arange(24).reshape(1, 2, 3, 4)],
                         ids=["torch-int", "numpy-int"])
def test_non_float_x(x):
    with pytest.raises(TypeError, match=r"^x:"):
        mcn.vl_nnsoftmax(x)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="dim"):
        mcn.vl_nnsoftmax(torch.randn(1, 3, 2, 2), dim=1)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(99)
    x = rng.standard_normal((2, 3, 4, 5))
    dzdy = rng.standard_normal((2, 3, 4, 5))
    f = mcn.vl_nnsoftmax
    for xs, ds in ((np.asfortranarray(x), np.asfortranarray(dzdy)), (x[:, ::-1], dzdy[:, ::-1]),
                   (x.transpose(0, 1, 3, 2), dzdy.transpose(0, 1, 3, 2))):
        xc, dc = np.ascontiguousarray(xs), np.ascontiguousarray(ds)
        np.testing.assert_allclose(f(xs), f(xc), rtol=1e-14, atol=0)
        np.testing.assert_allclose(f(xs, ds), f(xc, dc), rtol=1e-14, atol=1e-300)
