"""vl_nnnoffset: float64 numerical derivatives (port of MatConvNet's X-NOFF suite and other
parameters), the R-NOFF-1 formula with its 1e-8 floor, array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64

PARAMS = [
    pytest.param([0.34, 0.5], id="a.34_b.5"),  # X-NOFF basic
    pytest.param([1.0, 1.0], id="a1_b1"),
    pytest.param([0.2, 1.5], id="a.2_b1.5"),
    pytest.param([-0.7, 0.25], id="aneg_b.25"),
    pytest.param([0.5, -0.5], id="a.5_bneg"),
    pytest.param([0.3, 0.0], id="b0"),
]



def ref_noffset(x, a, b):
    sq = (x ** 2).sum(dim=1, keepdim=True).clamp(min=1e-8)
    return x - a * sq ** b


@pytest.mark.parametrize("param", PARAMS)
def test_basic_derivative(param):
    # X-NOFF basic: PARAM [.34 .5], X 4x5x10x3 (here 3x10x4x5).
    x = nm.randn(3, 10, 4, 5)
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nnnoffset(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnnoffset(x, param), [x], 0, dzdy, dzdx)


def test_derivative_large_range():
    # The original's range-128 inputs.
    x = nm.randn(2, 5, 3, 2, scale=128.0)
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nnnoffset(x, [0.34, 0.5], dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnnoffset(x, [0.34, 0.5]), [x], 0, dzdy, dzdx, eps=1e-4)


@pytest.mark.parametrize("param", PARAMS)
def test_formula(param):
    # R-NOFF-1: L = max(sum_k x_k^2, 1e-8), y = x - a L^b,
    # dzdx = dzdy - 2 a b x (sum_k dzdy_k) L^(b-1).
    a, b = param
    x = nm.randn(2, 4, 3, 3)
    nm.assert_close(mcn.vl_nnnoffset(x, param), ref_noffset(x, a, b), rtol=1e-13)
    dzdy = nm.randn(*x.shape)
    sq = (x ** 2).sum(dim=1, keepdim=True)
    expected = dzdy - 2 * a * b * x * dzdy.sum(dim=1, keepdim=True) * sq ** (b - 1)
    nm.assert_close(mcn.vl_nnnoffset(x, param, dzdy), expected, rtol=1e-13)


def test_zero_vector_floor():
    # At x = 0 the squared norm is floored at 1e-8: y = -a 1e-8^b, finite derivative.
    x = nm.randn(1, 3, 2, 2)
    x[0, :, 0, 0] = 0.0
    y = mcn.vl_nnnoffset(x, [0.5, 0.5])
    nm.assert_close(y[0, :, 0, 0], torch.full((3,), -0.5 * 1e-4, dtype=D), rtol=1e-12)
    dzdx = mcn.vl_nnnoffset(x, [0.5, -0.5], torch.ones_like(x))
    assert torch.isfinite(dzdx).all()
    nm.assert_close(dzdx[0, :, 0, 0], torch.ones(3, dtype=D), rtol=0)


def test_offset_is_shared_across_channels():
    x = nm.randn(2, 5, 3, 3)
    d = x - mcn.vl_nnnoffset(x, [0.34, 0.5])
    nm.assert_close(d, d[:, :1].expand_as(d), rtol=1e-14)
    nm.assert_close(d[:, :1], 0.34 * x.norm(dim=1, keepdim=True), rtol=1e-13)


def test_autograd_cross_check():
    x = nm.randn(2, 3, 2, 3)
    dzdy = nm.randn(*x.shape)
    xr = x.clone().requires_grad_()
    ref_noffset(xr, 0.34, 0.75).backward(dzdy)
    nm.assert_close(mcn.vl_nnnoffset(x, [0.34, 0.75], dzdy), xr.grad, rtol=1e-12)


def test_numpy_in_numpy_out():
    x = nm.randn(1, 3, 2, 2).numpy()
    y = mcn.vl_nnnoffset(x, np.array([0.34, 0.5]))
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    dzdx = mcn.vl_nnnoffset(x, (0.34, 0.5), np.ones_like(x))
    assert isinstance(dzdx, np.ndarray) and dzdx.shape == x.shape


def test_float32_preserved():
    x = torch.randn(1, 3, 2, 2)
    y = mcn.vl_nnnoffset(x, torch.tensor([0.34, 0.5]))
    assert y.dtype == torch.float32
    nm.assert_close(y, ref_noffset(x.double(), 0.34, 0.5), rtol=1e-6)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("param", [[0.34], [0.34, 0.5, 1.0], [], 0.34],
                         ids=["1el", "3el", "empty", "scalar"])
def test_param_not_2_elements(param):
    with pytest.raises(ValueError, match="^param: .*2 numbers"):
        mcn.vl_nnnoffset(nm.randn(1, 3, 2, 2), param)


def test_dzdy_wrong_shape():
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnnoffset(nm.randn(1, 3, 2, 2), [0.34, 0.5], nm.randn(1, 3, 2, 3))


def test_x_not_4d():
    with pytest.raises(ValueError, match="^x: "):
        mcn.vl_nnnoffset(nm.randn(3, 2, 2), [0.34, 0.5])
