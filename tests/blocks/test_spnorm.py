"""vl_nnspnorm: float64 numerical derivatives (port of MatConvNet's X-SPN suite and other
window shapes), the naive R-SPN-1 formula (a boundary-corrected *mean* of x^2 over the
window, Q-07), array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



def naive_spnorm(x, param):
    """n^2 = mean of x^2 over the PH x PW window around each pixel, clipped to the image
    (rows [i - floor((PH-1)/2), i + PH-1-floor((PH-1)/2)]), y = x (1 + alpha n^2)^-beta."""
    ph, pw, alpha, beta = param
    xn = x.numpy()
    n, c, h, w = xn.shape
    t, l = (ph - 1) // 2, (pw - 1) // 2
    y = np.empty_like(xn)
    for i in range(h):
        for j in range(w):
            r0, r1 = max(0, i - t), min(h, i - t + ph)
            c0, c1 = max(0, j - l), min(w, j - l + pw)
            n2 = (xn[:, :, r0:r1, c0:c1] ** 2).mean(axis=(2, 3))
            y[:, :, i, j] = xn[:, :, i, j] * (1 + alpha * n2) ** (-beta)
    return torch.from_numpy(y)


PARAMS = [
    pytest.param([3, 3, 0.1, 0.75], id="3x3"),          # X-SPN basic
    pytest.param([1, 1, 0.5, 0.5], id="1x1"),
    pytest.param([2, 4, 0.3, 0.75], id="2x4_even"),
    pytest.param([4, 1, 1.0, 1.0], id="4x1"),
    pytest.param([5, 3, 2.0, 0.25], id="5x3"),
    pytest.param([9, 11, 0.2, 0.6], id="9x11_larger_than_image"),
]


@pytest.mark.parametrize("param", PARAMS)
def test_derivative(param):
    # X-SPN basic: X 13x17x4x5, PARAM [3 3 0.1 0.75], dY = rand (here smaller: 2x3x7x9).
    x = nm.randn(2, 3, 7, 9)
    dzdy = torch.rand(*x.shape, dtype=D)
    dzdx = mcn.vl_nnspnorm(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnspnorm(x, param), [x], 0, dzdy, dzdx)


def test_derivative_matconvnet_size():
    # The original's X 13x17x4x5 (range 128), one image.
    param = [3, 3, 0.1, 0.75]
    x = nm.randn(1, 2, 13, 17, scale=128.0)
    dzdy = torch.rand(*x.shape, dtype=D)
    dzdx = mcn.vl_nnspnorm(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnspnorm(x, param), [x], 0, dzdy, dzdx, eps=1e-4)


@pytest.mark.parametrize("param", PARAMS)
def test_forward_vs_naive(param):
    x = nm.randn(2, 3, 7, 9)
    nm.assert_close(mcn.vl_nnspnorm(x, param), naive_spnorm(x, param), rtol=1e-12)


def test_mean_not_sum():
    # the help says "sum of squares"; the code uses the mean over the valid pixels.
    x = torch.full((1, 1, 3, 3), 2.0, dtype=D)
    y = mcn.vl_nnspnorm(x, [3, 3, 1.0, 1.0])
    # every (clipped) window has mean x^2 = 4 -> y = 2 / 5 everywhere, corners included
    nm.assert_close(y, torch.full_like(x, 2.0 / 5.0), rtol=1e-14)


def test_channels_independent():
    x = nm.randn(1, 3, 5, 4)
    param = [3, 3, 0.1, 0.75]
    y = mcn.vl_nnspnorm(x, param)
    for k in range(3):
        nm.assert_close(mcn.vl_nnspnorm(x[:, k:k + 1].contiguous(), param), y[:, k:k + 1],
                        rtol=1e-14)


def test_numpy_in_numpy_out():
    x = nm.randn(1, 2, 4, 5).numpy()
    y = mcn.vl_nnspnorm(x, [3, 3, 0.1, 0.75])
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    dzdx = mcn.vl_nnspnorm(x, np.array([3, 3, 0.1, 0.75]), np.ones_like(x))
    assert isinstance(dzdx, np.ndarray) and dzdx.shape == x.shape


def test_float32_preserved():
    x = nm.randn(1, 2, 4, 5).float()
    y = mcn.vl_nnspnorm(x, [3, 3, 0.1, 0.75])
    assert y.dtype == torch.float32
    nm.assert_close(y, naive_spnorm(x.double(), [3, 3, 0.1, 0.75]), rtol=1e-5)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("param", [
    pytest.param([3, 3, 0.1], id="3el"),
    pytest.param([3, 3, 0.1, 0.75, 1], id="5el"),
    pytest.param([0, 3, 0.1, 0.75], id="PH0"),
    pytest.param([3, 0, 0.1, 0.75], id="PW0"),
    pytest.param([2.5, 3, 0.1, 0.75], id="PHfrac"),
    pytest.param([3, 1.5, 0.1, 0.75], id="PWfrac"),
])
def test_bad_param(param):
    with pytest.raises(ValueError, match="^param: "):
        mcn.vl_nnspnorm(nm.randn(1, 2, 4, 4), param)


def test_dzdy_wrong_shape():
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnspnorm(nm.randn(1, 2, 4, 4), [3, 3, 0.1, 0.75], nm.randn(1, 2, 4, 5))


def test_x_not_4d():
    with pytest.raises(ValueError, match="^x: "):
        mcn.vl_nnspnorm(nm.randn(2, 4, 4), [3, 3, 0.1, 0.75])
