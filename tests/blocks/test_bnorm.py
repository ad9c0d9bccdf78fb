"""vl_nnbnorm: float64 numerical derivatives (port of MatConvNet's X-BN suite: regression,
basic, givenMoments), identities (given batch moments == batch statistics, torch's
batch_norm forward and autograd backward), moments layout (R-BN-2), array kinds, the
single-pass variance as the original (Q-09) and validation (R-BN-4)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



# X-BN sweeps rows {2,8,13} x cols {2,8,17} x numDims {1,3,4} x batch {2,7}; a subsample that
# touches every value of every axis, as (N, C, H, W) = (batch, numDims, rows, cols).
SHAPES = [
    pytest.param((2, 1, 2, 2), id="r2c2d1b2"),
    pytest.param((7, 3, 2, 8), id="r2c8d3b7"),
    pytest.param((2, 4, 8, 2), id="r8c2d4b2"),
    pytest.param((7, 1, 13, 2), id="r13c2d1b7"),
    pytest.param((2, 3, 2, 17), id="r2c17d3b2"),
    pytest.param((2, 4, 13, 8), id="r13c8d4b2"),
]


def data(shape, scale=1.0):
    n, c, h, w = shape
    x = nm.randn(*shape, scale=scale)
    g = nm.randn(c)
    b = nm.randn(c)
    return x, g, b


def batch_moments(x, eps):
    mu = x.mean(dim=(0, 2, 3))
    var = ((x - mu.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
    return torch.stack((mu, (var + eps).sqrt()), dim=1)


def formula_backward(x, g, dzdy, mu, sigma):
    """R-BN-3 with explicit moments (the full batch-norm backward)."""
    c = x.shape[1]
    m = x.numel() // c
    mu, sigma, gv = mu.view(1, c, 1, 1), sigma.view(1, c, 1, 1), g.reshape(1, c, 1, 1)
    dzdb = dzdy.sum(dim=(0, 2, 3))
    dzdg = (dzdy * (x - mu) / sigma).sum(dim=(0, 2, 3))
    dzdx = gv / sigma * (dzdy - dzdb.view(1, c, 1, 1) / m) \
        - gv * dzdg.view(1, c, 1, 1) / (m * sigma ** 2) * (x - mu)
    return dzdx, dzdg, dzdb


# ------------------------------------------------------------------ X-BN regression


@pytest.mark.parametrize("shape", SHAPES)
def test_regression_moments_and_output(shape):
    # X-BN regression (epsilon = 0.001): moments == [mu, sqrt(var + eps)] (biased variance),
    # y == g (x - mu) / sigma + b.
    x, g, b = data(shape, scale=128.0)
    eps = 1e-3
    y, moments = mcn.vl_nnbnorm(x, g, b, epsilon=eps, return_moments=True)
    expected = batch_moments(x, eps)
    assert moments.shape == (shape[1], 2)
    nm.assert_close(moments, expected, rtol=1e-12, what="moments")
    mu, sigma = expected[:, 0].view(1, -1, 1, 1), expected[:, 1].view(1, -1, 1, 1)
    ref = g.view(1, -1, 1, 1) * (x - mu) / sigma + b.view(1, -1, 1, 1)
    nm.assert_close(y, ref, rtol=1e-12, what="y")
    nm.assert_close(mcn.vl_nnbnorm(x, g, b, epsilon=eps), y, rtol=0, what="y without moments")


def test_default_epsilon_is_1e_minus_4():
    x, g, b = data((3, 2, 2, 2))
    _, moments = mcn.vl_nnbnorm(x, g, b, return_moments=True)
    nm.assert_close(moments, batch_moments(x, 1e-4), rtol=1e-12)


# ------------------------------------------------------------------ X-BN basic (derivatives)


@pytest.mark.parametrize("shape", SHAPES)
def test_basic_derivatives(shape):
    # X-BN basic: ders w.r.t. X, G and B (default epsilon).
    x, g, b = data(shape)
    fn = lambda x, g, b: mcn.vl_nnbnorm(x, g, b)  # noqa: E731
    dzdy = nm.randn(*shape)
    dzdx, dzdg, dzdb, moments = mcn.vl_nnbnorm(x, g, b, dzdy)
    nm.check_derivative(fn, [x, g, b], 0, dzdy, dzdx, rtol=1e-6, what="dzdx")
    nm.check_derivative(fn, [x, g, b], 1, dzdy, dzdg, what="dzdg")
    nm.check_derivative(fn, [x, g, b], 2, dzdy, dzdb, what="dzdb")
    nm.assert_close(moments, batch_moments(x, 1e-4), rtol=1e-12, what="4th output")


@pytest.mark.parametrize("eps", [0.0, 1e-2, 1.0], ids=["eps0", "eps1e-2", "eps1"])
def test_derivatives_other_epsilon(eps):
    x, g, b = data((3, 2, 3, 4))
    fn = lambda x, g, b: mcn.vl_nnbnorm(x, g, b, epsilon=eps)  # noqa: E731
    dzdy = nm.randn(*x.shape)
    dzdx, dzdg, dzdb, moments = mcn.vl_nnbnorm(x, g, b, dzdy, epsilon=eps)
    nm.check_derivative(fn, [x, g, b], 0, dzdy, dzdx, what="dzdx")
    nm.check_derivative(fn, [x, g, b], 1, dzdy, dzdg, what="dzdg")
    nm.check_derivative(fn, [x, g, b], 2, dzdy, dzdb, what="dzdb")
    nm.assert_close(moments, batch_moments(x, eps), rtol=1e-12)


def test_derivatives_g_b_any_shape():
    # G and B may have any shape with C elements; dzdg and dzdb keep those shapes.
    x = nm.randn(2, 3, 3, 2)
    g, b = nm.randn(1, 3), nm.randn(3, 1, 1)
    fn = lambda x, g, b: mcn.vl_nnbnorm(x, g, b)  # noqa: E731
    dzdy = nm.randn(*x.shape)
    dzdx, dzdg, dzdb, _ = mcn.vl_nnbnorm(x, g, b, dzdy)
    assert dzdg.shape == g.shape and dzdb.shape == b.shape
    nm.check_derivative(fn, [x, g, b], 0, dzdy, dzdx, what="dzdx")
    nm.check_derivative(fn, [x, g, b], 1, dzdy, dzdg, what="dzdg")
    nm.check_derivative(fn, [x, g, b], 2, dzdy, dzdb, what="dzdb")
    y_flat = mcn.vl_nnbnorm(x, g.reshape(-1), b.reshape(-1))
    nm.assert_close(fn(x, g, b), y_flat, rtol=0)


# ------------------------------------------------------------------ X-BN givenMoments


@pytest.mark.parametrize("shape", SHAPES)
def test_given_moments_equal_batch_statistics(shape):
    # X-BN givenMoments: forward with the returned moments == without; backward with and
    # without them: equal dX, dG, dB, and the 4th output == the moments.
    x, g, b = data(shape, scale=128.0)
    y, moments = mcn.vl_nnbnorm(x, g, b, return_moments=True)
    nm.assert_close(mcn.vl_nnbnorm(x, g, b, moments=moments), y, rtol=1e-12, what="y")
    dzdy = nm.randn(*shape)
    ders = mcn.vl_nnbnorm(x, g, b, dzdy)
    ders_given = mcn.vl_nnbnorm(x, g, b, dzdy, moments=moments)
    for name, a, e in zip(("dzdx", "dzdg", "dzdb", "moments"), ders_given, ders):
        nm.assert_close(a, e, rtol=1e-12, what=name)
    nm.assert_close(ders_given[3], moments, rtol=0, what="4th output == given moments")


def test_given_moments_are_used_as_they_are():
    # R-BN-2: given moments are [mu, sigma] with epsilon already inside sigma; epsilon is not
    # added again (forward and backward).
    x, g, b = data((3, 4, 3, 5))
    mu, sigma = nm.randn(4), torch.rand(4, dtype=D) + 0.5
    moments = torch.stack((mu, sigma), dim=1)
    for eps in (1e-4, 0.5):
        y = mcn.vl_nnbnorm(x, g, b, moments=moments, epsilon=eps)
        ref = g.view(1, -1, 1, 1) * (x - mu.view(1, -1, 1, 1)) / sigma.view(1, -1, 1, 1) \
            + b.view(1, -1, 1, 1)
        nm.assert_close(y, ref, rtol=1e-12, what=f"y (epsilon {eps})")
        dzdy = nm.randn(*x.shape)
        dzdx, dzdg, dzdb, m = mcn.vl_nnbnorm(x, g, b, dzdy, moments=moments, epsilon=eps)
        ex, eg, eb = formula_backward(x, g, dzdy, mu, sigma)
        nm.assert_close(dzdx, ex, rtol=1e-10, what="dzdx (R-BN-3 with given moments)")
        nm.assert_close(dzdg, eg, rtol=1e-10, what="dzdg")
        nm.assert_close(dzdb, eb, rtol=1e-10, what="dzdb")
        nm.assert_close(m, moments, rtol=0, what="4th output")


def test_given_moments_dzdg_dzdb_are_true_derivatives():
    # With fixed (given) moments y is affine in g and b: dzdg and dzdb are its derivatives.
    x, g, b = data((2, 3, 4, 3))
    moments = torch.stack((nm.randn(3), torch.rand(3, dtype=D) + 0.5), dim=1)
    fn = lambda x, g, b: mcn.vl_nnbnorm(x, g, b, moments=moments)  # noqa: E731
    dzdy = nm.randn(*x.shape)
    _, dzdg, dzdb, _ = mcn.vl_nnbnorm(x, g, b, dzdy, moments=moments)
    nm.check_derivative(fn, [x, g, b], 1, dzdy, dzdg, what="dzdg (given moments)")
    nm.check_derivative(fn, [x, g, b], 2, dzdy, dzdb, what="dzdb (given moments)")


def test_given_moments_column_major_layouts():
    # Any other shape with 2C elements is read column-major: all mu, then all sigma.
    x, g, b = data((2, 3, 2, 2))
    moments = torch.stack((nm.randn(3), torch.rand(3, dtype=D) + 0.5), dim=1)  # C x 2
    y = mcn.vl_nnbnorm(x, g, b, moments=moments)
    dzdy = nm.randn(*x.shape)
    ders = mcn.vl_nnbnorm(x, g, b, dzdy, moments=moments)
    for layout in (moments.t().contiguous(), moments.t().reshape(-1),
                   moments.t().reshape(1, 1, 6)):
        nm.assert_close(mcn.vl_nnbnorm(x, g, b, moments=layout), y, rtol=0,
                        what=f"moments {tuple(layout.shape)}")
        other = mcn.vl_nnbnorm(x, g, b, dzdy, moments=layout)
        for a, e in zip(other[:3], ders[:3]):
            nm.assert_close(a, e, rtol=0)


# ------------------------------------------------------------------ cross-checks


@pytest.mark.parametrize("eps", [1e-5, 1e-3], ids=["eps1e-5", "eps1e-3"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 5, 1, 1)], ids=["4x3x5x6", "2x5x1x1"])
def test_vs_torch_batch_norm(shape, eps):
    x, g, b = data(shape)
    dzdy = nm.randn(*shape)
    xr, gr, br = (t.clone().requires_grad_() for t in (x, g, b))
    yr = F.batch_norm(xr, None, None, gr, br, training=True, eps=eps)
    yr.backward(dzdy)
    nm.assert_close(mcn.vl_nnbnorm(x, g, b, epsilon=eps), yr.detach(), rtol=1e-10, what="y")
    dzdx, dzdg, dzdb, _ = mcn.vl_nnbnorm(x, g, b, dzdy, epsilon=eps)
    nm.assert_close(dzdx, xr.grad, rtol=1e-10, what="dzdx")
    nm.assert_close(dzdg, gr.grad, rtol=1e-10, what="dzdg")
    nm.assert_close(dzdb, br.grad, rtol=1e-10, what="dzdb")


def test_output_has_zero_mean_and_unit_variance_before_affine():
    x = nm.randn(5, 3, 4, 4, scale=7.0) + 3.0
    y = mcn.vl_nnbnorm(x, torch.ones(3, dtype=D), torch.zeros(3, dtype=D), epsilon=0.0)
    nm.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=D), atol=1e-12)
    nm.assert_close(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=D), rtol=1e-12)


def test_single_pass_variance_as_the_original():
    # the original computes E[x^2] - mu^2 in one pass, in x's precision; we do the
    # same so that MatConvNet-trained networks reproduce.  In float64 it agrees with a
    # two-pass reference; in float32 it carries the original's cancellation.
    x64 = nm.randn(8, 2, 16, 16) + 3.0
    g, b = torch.ones(2, dtype=D), torch.zeros(2, dtype=D)
    _, moments = mcn.vl_nnbnorm(x64, g, b, return_moments=True)
    nm.assert_close(moments, batch_moments(x64, 1e-4), rtol=1e-12, what="moments")
    x = x64.float()
    _, m32 = mcn.vl_nnbnorm(x, g.float(), b.float(), return_moments=True)
    n = x.numel() / 2
    mu = x.sum((0, 2, 3)) / n
    var = ((x * x).sum((0, 2, 3)) / n - mu * mu).clamp(min=0)
    assert m32.dtype == torch.float32
    assert torch.equal(m32[:, 0], mu) and torch.equal(m32[:, 1], (var + 1e-4).sqrt())


def test_numpy_in_numpy_out():
    x, g, b = (t.numpy() for t in data((2, 3, 2, 2)))
    y, m = mcn.vl_nnbnorm(x, g, b, return_moments=True)
    assert isinstance(y, np.ndarray) and isinstance(m, np.ndarray)
    assert y.dtype == np.float64 and m.shape == (3, 2)
    outs = mcn.vl_nnbnorm(x, g, b, np.ones_like(x))
    assert len(outs) == 4 and all(isinstance(o, np.ndarray) for o in outs)
    ref = mcn.vl_nnbnorm(torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(b))
    np.testing.assert_allclose(y, ref.numpy(), rtol=0, atol=0)


def test_float32_preserved():
    x, g, b = (t.float() for t in data((2, 3, 2, 2)))
    y, m = mcn.vl_nnbnorm(x, g, b, return_moments=True)
    assert y.dtype == torch.float32 and m.dtype == torch.float32
    outs = mcn.vl_nnbnorm(x, g, b, torch.ones_like(x))
    assert all(o.dtype == torch.float32 for o in outs)


# ------------------------------------------------------------------ validation (R-BN-4)


@pytest.mark.parametrize("n", [2, 4], ids=["too_few", "too_many"])
def test_g_numel_not_c(n):
    x, _, b = data((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^g: .*3 elements"):
        mcn.vl_nnbnorm(x, nm.randn(n), b)


@pytest.mark.parametrize("n", [2, 4], ids=["too_few", "too_many"])
def test_b_numel_not_c(n):
    x, g, _ = data((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^b: .*3 elements"):
        mcn.vl_nnbnorm(x, g, nm.randn(n))


@pytest.mark.parametrize("shape", [(3, 1), (3, 3), (5,), (2, 2)], ids=["3x1", "3x3", "5", "2x2"])
def test_moments_numel_not_2c(shape):
    x, g, b = data((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^moments: "):
        mcn.vl_nnbnorm(x, g, b, moments=nm.randn(*shape))
    with pytest.raises(ValueError, match="^moments: "):
        mcn.vl_nnbnorm(x, g, b, torch.ones_like(x), moments=nm.randn(*shape))


@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (2, 3, 4), (1, 3, 2, 2)],
                         ids=["wrong_w", "3d", "wrong_n"])
def test_dzdy_wrong_shape(shape):
    x, g, b = data((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnbnorm(x, g, b, nm.randn(*shape))


def test_negative_epsilon():
    x, g, b = data((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^epsilon: "):
        mcn.vl_nnbnorm(x, g, b, epsilon=-1e-3)


def test_x_not_4d():
    with pytest.raises(ValueError, match="^x: "):
        mcn.vl_nnbnorm(nm.randn(3, 2, 2), nm.randn(3), nm.randn(3))


def test_mixed_kinds_rejected():
    x, g, b = data((2, 3, 2, 2))
    with pytest.raises(TypeError, match="^g: "):
        mcn.vl_nnbnorm(x, g.numpy(), b)
    with pytest.raises(TypeError, match="^b: "):
        mcn.vl_nnbnorm(x, g, b.float())


def test_given_moments_backward_on_one_by_one_maps():
    # Regression: the moments' columns are strided views; PyTorch's backward kernel took
    # them as contiguous on N x C x 1 x 1 inputs and returned wrong derivatives.
    torch.manual_seed(0)
    x, dy = torch.randn(2, 5, 1, 1), torch.randn(2, 5, 1, 1)
    g, b = torch.rand(5), torch.randn(5)
    _, m = mcn.vl_nnbnorm(x, g, b, return_moments=True)
    batch = mcn.vl_nnbnorm(x, g, b, dy)
    given = mcn.vl_nnbnorm(x, g, b, dy, moments=m)
    for a, c in zip(batch, given):
        torch.testing.assert_close(a, c)
