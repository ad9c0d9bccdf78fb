"""vl_nnnormalize (LRN): float64 numerical derivatives (port of MatConvNet's X-LRN suite:
basic over window sizes, compare_to_naive, l2), the naive MATLAB ``conv(..., 'same')``
formula (R-LRN-1), L2 normalisation with N >= 2C, array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



def naive_lrn(x, param):
    """x .* (kappa + alpha conv(x.^2, ones(N,1), 'same')).^(-beta) over the channels, with
    MATLAB's 'same' (the full convolution's central part starting at floor(N/2))."""
    size, kappa, alpha, beta = param
    xn = x.numpy()
    n, c, h, w = xn.shape
    y = np.empty_like(xn)
    for i in range(n):
        for a in range(h):
            for b in range(w):
                v = xn[i, :, a, b]
                full = np.convolve(v * v, np.ones(size))
                s = full[size // 2: size // 2 + c]
                y[i, :, a, b] = v * (kappa + alpha * s) ** (-beta)
    return torch.from_numpy(y)


def window_sum_loop(x, size):
    """sum_{t in Q(k)} x_t^2 with Q(k) = [k - floor((N-1)/2), k + ceil((N-1)/2)] (R-LRN-1)."""
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    out = torch.zeros_like(x)
    for k in range(c):
        for t in range(max(0, k - lo), min(c, k + hi + 1)):
            out[:, k] += x[:, t] ** 2
    return out


# X-LRN basic: group in {2, 3, 4, 5, 6, 8, ..., 17}; subsampled, with N = 1 and N >= 2C added.
GROUPS = [1, 2, 3, 4, 5, 6, 8, 11, 17, 20, 23]


@pytest.mark.parametrize("size", GROUPS, ids=[f"N{n}" for n in GROUPS])
def test_basic_derivative(size):
    # X-LRN basic: PARAM [N .1 .5 .75], X 3x2x10x4 (here 4x10x3x2), dY = rand - 0.5.
    param = [size, 0.1, 0.5, 0.75]
    x = nm.randn(4, 10, 3, 2)
    dzdy = torch.rand(4, 10, 3, 2, dtype=D) - 0.5
    dzdx = mcn.vl_nnnormalize(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnnormalize(x, param), [x], 0, dzdy, dzdx)


@pytest.mark.parametrize("param", [
    pytest.param([5, 2.0, 1e-4, 0.75], id="alexnet"),
    pytest.param([3, 1.0, 2.0, 1.5], id="beta1.5"),
    pytest.param([4, 0.5, 1.0, 0.25], id="even_beta0.25"),
    pytest.param([7, 0.0, 1.0, 0.5], id="kappa0"),
])
def test_derivative_other_params(param):
    x = nm.randn(2, 6, 3, 3)
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nnnormalize(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnnormalize(x, param), [x], 0, dzdy, dzdx)


def test_derivative_large_range_inputs():
    # The original's range = 128 inputs (relative tolerance on a unit scale here).
    param = [5, 0.1, 0.5, 0.75]
    x = nm.randn(2, 7, 2, 3, scale=128.0)
    dzdy = torch.rand(*x.shape, dtype=D) - 0.5
    dzdx = mcn.vl_nnnormalize(x, param, dzdy)
    nm.check_derivative(lambda x: mcn.vl_nnnormalize(x, param), [x], 0, dzdy, dzdx, eps=1e-4)


# ------------------------------------------------------------------ formulas and identities


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 20],
                         ids=lambda n: f"N{n}")
def test_compare_to_naive(size):
    # X-LRN compare_to_naive: y == x .* (kappa + alpha conv(x.^2, ones(N,1), 'same')).^-beta.
    param = [size, 0.1, 0.5, 0.75]
    x = nm.randn(3, 10, 3, 2)
    y = mcn.vl_nnnormalize(x, param)
    nm.assert_close(y, naive_lrn(x, param), rtol=1e-12, what="vs conv 'same'")
    den = 0.1 + 0.5 * window_sum_loop(x, size)
    nm.assert_close(y, x * den ** -0.75, rtol=1e-12, what="vs explicit window loop")


def test_l2_matconvnet_case():
    # X-LRN l2: PARAM [20 0 1 .5] on 1x1x10 => sum(y.^2) == 1.
    x = nm.randn(1, 10, 1, 1)
    y = mcn.vl_nnnormalize(x, [20, 0, 1, 0.5])
    nm.assert_close((y ** 2).sum(), torch.tensor(1.0, dtype=D), rtol=1e-12)


@pytest.mark.parametrize("c", [1, 3, 8])
def test_l2_normalisation_n_2c(c):
    # N >= 2C: every channel is in every window, so [2C, 0, 1, 1/2] is L2 normalisation.
    x = nm.randn(3, c, 4, 5)
    for size in (2 * c, 2 * c + 1, 3 * c + 4):
        y = mcn.vl_nnnormalize(x, [size, 0, 1, 0.5])
        nm.assert_close((y ** 2).sum(dim=1), torch.ones(3, 4, 5, dtype=D), rtol=1e-12,
                        what=f"N = {size}")
        nm.assert_close(y, x / x.norm(dim=1, keepdim=True), rtol=1e-12)


def test_n1_is_pointwise():
    x = nm.randn(2, 4, 3, 3)
    y = mcn.vl_nnnormalize(x, [1, 0.3, 0.7, 0.6])
    nm.assert_close(y, x * (0.3 + 0.7 * x * x) ** -0.6, rtol=1e-12)


def test_alpha_not_divided_by_n():
    # alpha is used as it is (Caffe's alpha is N alpha).
    x = torch.ones(1, 5, 1, 1, dtype=D)
    y = mcn.vl_nnnormalize(x, [5, 1.0, 0.2, 1.0])
    # central channel: all 5 channels in the window -> 1 / (1 + 0.2 * 5)
    assert abs(float(y[0, 2, 0, 0]) - 1 / 2.0) < 1e-14


def test_only_channels_mix():
    x = nm.randn(2, 6, 3, 4)
    param = [3, 0.1, 0.5, 0.75]
    y = mcn.vl_nnnormalize(x, param)
    for i in range(2):
        for a in range(3):
            for b in range(4):
                yi = mcn.vl_nnnormalize(x[i:i + 1, :, a:a + 1, b:b + 1].contiguous(), param)
                nm.assert_close(yi[0, :, 0, 0], y[i, :, a, b], rtol=1e-14)


def test_numpy_in_numpy_out():
    x = nm.randn(2, 5, 2, 2).numpy()
    y = mcn.vl_nnnormalize(x, np.array([3, 0.1, 0.5, 0.75]))
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    dzdx = mcn.vl_nnnormalize(x, (3, 0.1, 0.5, 0.75), np.ones_like(x))
    assert isinstance(dzdx, np.ndarray) and dzdx.shape == x.shape
    np.testing.assert_allclose(y, naive_lrn(torch.from_numpy(x), [3, 0.1, 0.5, 0.75]).numpy(),
                               rtol=1e-12)


def test_param_as_tensor_and_float32():
    x = nm.randn(2, 5, 2, 2).float()
    y = mcn.vl_nnnormalize(x, torch.tensor([3.0, 0.1, 0.5, 0.75]))
    assert y.dtype == torch.float32
    nm.assert_close(y, naive_lrn(x.double(), [3, 0.1, 0.5, 0.75]), rtol=1e-5)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("param", [[5, 0.1, 0.5], [5, 0.1, 0.5, 0.75, 1], [], 5],
                         ids=["3el", "5el", "empty", "scalar"])
def test_param_not_4_elements(param):
    with pytest.raises(ValueError, match="^param: .*4 numbers"):
        mcn.vl_nnnormalize(nm.randn(1, 3, 2, 2), param)


@pytest.mark.parametrize("size", [0, -2, 2.5], ids=["N0", "Nneg", "Nfrac"])
def test_window_size_not_positive_integer(size):
    with pytest.raises(ValueError, match="^param: .*N"):
        mcn.vl_nnnormalize(nm.randn(1, 3, 2, 2), [size, 0.1, 0.5, 0.75])


def test_dzdy_wrong_shape():
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnnormalize(nm.randn(1, 3, 2, 2), [3, 0.1, 0.5, 0.75], nm.randn(1, 3, 2, 3))


def test_x_not_4d():
    with pytest.raises(ValueError, match="^x: "):
        mcn.vl_nnnormalize(nm.randn(3, 2, 2), [3, 0.1, 0.5, 0.75])


@pytest.mark.parametrize("before,after", [(2, 2), (1, 2), (0, 3), (6, 6)])
def test_band_matrix_product_equals_the_shifted_adds(before, after):
    """The GPU's window sum (one product with a weighted C x C band matrix) against the
    CPU's shifted adds, including windows wider than the channels."""
    from matconvnet.blocks import normalize as N
    t = torch.randn(2, 7, 3, 4, dtype=torch.float64)
    band = N._band(7, before, after, -0.25, t.dtype, t.device)
    got = torch.matmul(band, t.reshape(2, 7, -1)).view(t.shape)
    want = N._window_sum_unweighted(t, before, after) * -0.25
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
