"""vl_nnsigmoid: derivative checks (X-SIG), identities, autograd cross-checks, array boundary
and validation (B-SIGM, R-SIGM-1)."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm


def numeric_dzdx(f, x, dzdy, eps):
    """Central-difference derivative of <dzdy, f(x)> with respect to x."""
    return nm.numerical_derivative(f, [x], 0, dzdy, eps)


# ------------------------------------------------------------------- derivatives

def test_xsig_basic():
    # X-SIG: X 5 x 5 / 128, delta 1e-3 (here in float64 with a tight tolerance).
    torch.manual_seed(0)
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64) / 128
    dzdy = torch.randn_like(x)
    dzdx = mcn.vl_nnsigmoid(x, dzdy)
    torch.testing.assert_close(dzdx, numeric_dzdx(mcn.vl_nnsigmoid, x, dzdy, 1e-3),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,), (3, 1, 2, 2, 2)],
                         ids=["nchw", "1d", "5d"])
@pytest.mark.parametrize("scale", [1.0, 5.0], ids=["randn", "5randn"])
def test_derivative_central_difference(shape, scale):
    torch.manual_seed(1)
    x = scale * torch.randn(shape, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    dzdx = mcn.vl_nnsigmoid(x, dzdy)
    num = numeric_dzdx(mcn.vl_nnsigmoid, x, dzdy, 1e-6)
    torch.testing.assert_close(dzdx, num, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------- formulas and identities

def test_forward_and_backward_formula():
    torch.manual_seed(2)
    x = 3 * torch.randn(2, 3, 4, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    y = 1 / (1 + torch.exp(-x))
    torch.testing.assert_close(mcn.vl_nnsigmoid(x), y)
    torch.testing.assert_close(mcn.vl_nnsigmoid(x, dzdy), dzdy * y * (1 - y))


def test_backward_with_y_equals_without():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    y = mcn.vl_nnsigmoid(x)
    torch.testing.assert_close(mcn.vl_nnsigmoid(x, dzdy, y=y), mcn.vl_nnsigmoid(x, dzdy),
                               rtol=0, atol=0)


def test_backward_uses_the_given_y():
    # y= is trusted, not recomputed: dzdx = dzdy * y * (1 - y) for whatever y is passed.
    torch.manual_seed(4)
    x = torch.randn(2, 3, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    y = torch.rand_like(x)
    torch.testing.assert_close(mcn.vl_nnsigmoid(x, dzdy, y=y), dzdy * y * (1 - y))


def test_large_values_do_not_overflow():
    x = torch.tensor([-1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4], dtype=torch.float64)
    dzdy = torch.ones_like(x)
    y = mcn.vl_nnsigmoid(x)
    dzdx = mcn.vl_nnsigmoid(x, dzdy)
    assert torch.isfinite(y).all() and torch.isfinite(dzdx).all()
    assert y[0] == 0 and y[-1] == 1 and y[3] == 0.5
    assert dzdx[0] == 0 and dzdx[-1] == 0 and dzdx[3] == 0.25
    x32 = x.float()
    assert torch.isfinite(mcn.vl_nnsigmoid(x32)).all()
    assert torch.isfinite(mcn.vl_nnsigmoid(x32, dzdy.float())).all()


def test_autograd_cross_check():
    torch.manual_seed(5)
    x = 2 * torch.randn(2, 3, 4, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    xa = x.clone().requires_grad_(True)
    ya = torch.sigmoid(xa)
    ya.backward(dzdy)
    torch.testing.assert_close(mcn.vl_nnsigmoid(x), ya.detach())
    torch.testing.assert_close(mcn.vl_nnsigmoid(x, dzdy), xa.grad)


# ------------------------------------------------------------------- array boundary

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    dzdy = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    y = mcn.vl_nnsigmoid(x)
    dzdx = mcn.vl_nnsigmoid(x, dzdy)
    dzdx_y = mcn.vl_nnsigmoid(x, dzdy, y=y)
    for a in (y, dzdx, dzdx_y):
        assert isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == x.shape
    ref = 1 / (1 + np.exp(-x.astype(np.float64)))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol)
    np.testing.assert_allclose(dzdx, dzdy * ref * (1 - ref), rtol=10 * tol, atol=tol)
    np.testing.assert_allclose(dzdx_y, dzdx, rtol=10 * tol, atol=tol)


def test_torch_float32_preserved():
    torch.manual_seed(7)
    x = torch.randn(2, 3, 4, 5)
    dzdy = torch.randn_like(x)
    for a in (mcn.vl_nnsigmoid(x), mcn.vl_nnsigmoid(x, dzdy)):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.float32 and a.shape == x.shape


# ------------------------------------------------------------------- validation

def test_dzdy_wrong_shape():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^dzdy:"):
        mcn.vl_nnsigmoid(x, torch.randn(2, 3, 4, 1, dtype=torch.float64))


def test_y_wrong_shape_or_kind():
    x = torch.randn(2, 3, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    with pytest.raises(ValueError, match=r"^y:"):
        mcn.vl_nnsigmoid(x, dzdy, y=torch.rand(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^y:"):
        mcn.vl_nnsigmoid(x, dzdy, y=np.random.rand(2, 3))


def test_dzdy_wrong_dtype():
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^dzdy:"):
        mcn.vl_nnsigmoid(x, torch.zeros(2, 3, dtype=torch.float32))


@pytest.mark.parametrize("x", [torch.arange(6).reshape(1, 1, 2, 3), np.arange(6).reshape(1, 1, 2, 3),
                               torch.ones(2, dtype=torch.bool), 1.0],
                         ids=["torch-int", "numpy-int", "torch-bool", "python-float"])
def test_non_float_x(x):
    with pytest.raises(TypeError, match=r"^x:"):
        mcn.vl_nnsigmoid(x)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="leak"):
        mcn.vl_nnsigmoid(torch.randn(1, 1, 2, 2), leak=0.1)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(99)
    x = rng.standard_normal((2, 3, 4, 5))
    dzdy = rng.standard_normal((2, 3, 4, 5))
    f = mcn.vl_nnsigmoid
    for xs, ds in ((np.asfortranarray(x), np.asfortranarray(dzdy)), (x[:, ::-1], dzdy[:, ::-1]),
                   (x.transpose(0, 1, 3, 2), dzdy.transpose(0, 1, 3, 2))):
        xc, dc = np.ascontiguousarray(xs), np.ascontiguousarray(ds)
        np.testing.assert_allclose(f(xs), f(xc), rtol=1e-14, atol=0)
        np.testing.assert_allclose(f(xs, ds), f(xc, dc), rtol=1e-14, atol=1e-300)
