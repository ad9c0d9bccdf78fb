"""vl_nnrelu: derivative checks (X-RELU and beyond), identities, autograd cross-checks,
array boundary and validation (B-RELU, O-RELU-1, R-RELU-1)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

LEAKS = [pytest.param(0.0, id="leak0"), pytest.param(0.1, id="leak0.1"),
         pytest.param(0.5, id="leak0.5")]


def numeric_dzdx(f, x, dzdy, eps):
    """Central-difference derivative of <dzdy, f(x)> with respect to x."""
    return nm.numerical_derivative(f, [x], 0, dzdy, eps)


def away_from_zero(x, margin=0.05):
    """Move values with |x| < margin out by margin so no central difference straddles 0."""
    return torch.where(x.abs() < margin, x.sign() * (x.abs() + margin) + (x == 0) * margin, x)


# ------------------------------------------------------------------- derivatives

def test_xrelu_basic_distinct_positive_integers():
    # X-RELU: distinct positive integers, delta 0.1 (only the x > 0 branch).
    torch.manual_seed(0)
    x = (torch.randperm(3 * 4 * 5 * 2, dtype=torch.float64) + 1).reshape(2, 5, 3, 4)
    dzdy = torch.randn_like(x)
    y = mcn.vl_nnrelu(x)
    torch.testing.assert_close(y, x)
    dzdx = mcn.vl_nnrelu(x, dzdy)
    torch.testing.assert_close(dzdx, numeric_dzdx(mcn.vl_nnrelu, x, dzdy, 0.1))


@pytest.mark.parametrize("leak", LEAKS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,), (3, 1, 2, 2, 2)],
                         ids=["nchw", "1d", "5d"])
def test_derivative_central_difference(leak, shape):
    torch.manual_seed(1)
    x = away_from_zero(torch.randn(shape, dtype=torch.float64))
    assert (x < 0).any() and (x > 0).any()
    dzdy = torch.randn_like(x)
    dzdx = mcn.vl_nnrelu(x, dzdy, leak=leak)
    num = numeric_dzdx(lambda t: mcn.vl_nnrelu(t, leak=leak), x, dzdy, 1e-6)
    torch.testing.assert_close(dzdx, num, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------- formulas and identities

@pytest.mark.parametrize("leak", LEAKS)
def test_forward_formula(leak):
    x = torch.tensor([-3.0, -0.5, 0.0, 0.25, 2.0], dtype=torch.float64)
    y = mcn.vl_nnrelu(x, leak=leak)
    expected = x * (leak + (1 - leak) * (x > 0).double())
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


@pytest.mark.parametrize("leak", LEAKS)
def test_backward_slope_at_zero_is_leak(leak):
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    dzdy = torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64)
    dzdx = mcn.vl_nnrelu(x, dzdy, leak=leak)
    torch.testing.assert_close(dzdx, torch.tensor([2.0 * leak, 3.0 * leak, 5.0],
                                                  dtype=torch.float64), rtol=0, atol=0)


@pytest.mark.parametrize("leak", LEAKS)
def test_backward_given_y_instead_of_x(leak):
    # R-RELU-1: the wrappers pass y in place of x to free x early.
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    x[0, 0, 0, :3] = 0.0
    dzdy = torch.randn_like(x)
    y = mcn.vl_nnrelu(x, leak=leak)
    torch.testing.assert_close(mcn.vl_nnrelu(y, dzdy, leak=leak),
                               mcn.vl_nnrelu(x, dzdy, leak=leak), rtol=0, atol=0)


@pytest.mark.parametrize("leak", LEAKS)
def test_autograd_cross_check(leak):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    dzdy = torch.randn_like(x)
    xa = x.clone().requires_grad_(True)
    ya = torch.relu(xa) if leak == 0 else F.leaky_relu(xa, negative_slope=leak)
    ya.backward(dzdy)
    torch.testing.assert_close(mcn.vl_nnrelu(x, leak=leak), ya.detach(), rtol=0, atol=0)
    torch.testing.assert_close(mcn.vl_nnrelu(x, dzdy, leak=leak), xa.grad, rtol=0, atol=0)


# ------------------------------------------------------------------- array boundary

@pytest.mark.parametrize("leak", LEAKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_numpy_in_numpy_out(leak, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    dzdy = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    y = mcn.vl_nnrelu(x, leak=leak)
    dzdx = mcn.vl_nnrelu(x, dzdy, leak=leak)
    for a in (y, dzdx):
        assert isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == x.shape
    np.testing.assert_allclose(y, np.where(x > 0, x, leak * x), rtol=1e-6)
    np.testing.assert_allclose(dzdx, np.where(x > 0, dzdy, leak * dzdy), rtol=1e-6)


@pytest.mark.parametrize("leak", LEAKS)
def test_torch_float32_preserved(leak):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 4, 5)
    dzdy = torch.randn_like(x)
    y = mcn.vl_nnrelu(x, leak=leak)
    dzdx = mcn.vl_nnrelu(x, dzdy, leak=leak)
    for a in (y, dzdx):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.float32 and a.shape == x.shape


# ------------------------------------------------------------------- validation

def test_dzdy_wrong_shape():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^dzdy:"):
        mcn.vl_nnrelu(x, torch.randn(2, 3, 4, 4, dtype=torch.float64))


def test_dzdy_wrong_kind_or_dtype():
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^dzdy:"):
        mcn.vl_nnrelu(x, np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"^dzdy:"):
        mcn.vl_nnrelu(x, torch.zeros(2, 3, dtype=torch.float32))


@pytest.mark.parametrize("x", [torch.arange(6).reshape(1, 1, 2, 3), np.arange(6).reshape(1, 1, 2, 3),
                               [1.0, 2.0]], ids=["torch-int", "numpy-int", "list"])
def test_non_float_x(x):
    with pytest.raises(TypeError, match=r"^x:"):
        mcn.vl_nnrelu(x)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="slope"):
        mcn.vl_nnrelu(torch.randn(1, 1, 2, 2), slope=0.1)


def test_leak_not_a_number():
    with pytest.raises(TypeError, match=r"^leak:"):
        mcn.vl_nnrelu(torch.randn(1, 1, 2, 2), leak="0.1")


def test_non_contiguous_inputs():
    rng = np.random.default_rng(99)
    x = rng.standard_normal((2, 3, 4, 5))
    dzdy = rng.standard_normal((2, 3, 4, 5))
    f = mcn.vl_nnrelu
    for xs, ds in ((np.asfortranarray(x), np.asfortranarray(dzdy)), (x[:, ::-1], dzdy[:, ::-1]),
                   (x.transpose(0, 1, 3, 2), dzdy.transpose(0, 1, 3, 2))):
        xc, dc = np.ascontiguousarray(xs), np.ascontiguousarray(ds)
        np.testing.assert_allclose(f(xs), f(xc), rtol=1e-14, atol=0)
        np.testing.assert_allclose(f(xs, ds), f(xc, dc), rtol=1e-14, atol=1e-300)
