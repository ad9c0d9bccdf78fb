"""vl_nnpdist: float64 numerical derivatives of dzdx and dzdx0 (port of MatConvNet's X-PD
suite: p in {.5, 1, 2, 3} x noRoot x aggregate x one-to-one / broadcast x0; dzdx0 also for
the broadcast x0, which the original never checked), instance weights, a cdist-like manual
reference (R-PD-1), the zero-distance guard, array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64
PS = [0.5, 1, 2, 3]



def make_inputs(aggregate, one_to_one, c=4, n=5):
    """X h x w x 4 x 5 (2 x 2 if aggregate, else 13 x 17 in the original; 3 x 4 here),
    X0 the same size or 1 x 1 x 4 x 5 (N x C x 1 x 1 here).  Elements of x with
    |x - x0| < 0.1 are shifted by +5, away from the non-differentiable points (the
    original: |x - x0| < 12.8 shifted by +640 at range 128)."""
    h, w = (2, 2) if aggregate else (3, 4)
    x = nm.randn(n, c, h, w)
    x0 = nm.randn(n, c, h, w) if one_to_one else nm.randn(n, c, 1, 1)
    near = (x - x0).abs() < 0.1
    x = x + 5.0 * near
    assert bool(((x - x0).abs() >= 0.1).all())
    return x, x0


def ref_pdist(x, x0, p, no_root=False):
    s = ((x - x0).abs() ** p).sum(dim=1, keepdim=True)
    return s if no_root else s ** (1.0 / p)


# ------------------------------------------------------------------ X-PD basic


@pytest.mark.parametrize("aggregate", [False, True], ids=["perpixel", "aggregate"])
@pytest.mark.parametrize("no_root", [False, True], ids=["root", "noroot"])
@pytest.mark.parametrize("one_to_one", [True, False], ids=["one2one", "broadcast"])
@pytest.mark.parametrize("p", PS, ids=[f"p{p}" for p in PS])
def test_basic(p, one_to_one, no_root, aggregate):
    x, x0 = make_inputs(aggregate, one_to_one)
    opts = dict(no_root=no_root, aggregate=aggregate)
    fn = lambda x, x0: mcn.vl_nnpdist(x, x0, p, **opts)  # noqa: E731
    y = fn(x, x0)
    ref = ref_pdist(x, x0, p, no_root)
    nm.assert_close(y, ref.sum() if aggregate else ref, rtol=1e-12, what="y")
    dzdy = torch.rand((), dtype=D) if aggregate else torch.rand(*y.shape, dtype=D)
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, p, dzdy, **opts)
    assert dzdx.shape == x.shape and dzdx0.shape == x0.shape
    nm.check_derivative(fn, [x, x0], 0, dzdy, dzdx, what="dzdx")
    nm.check_derivative(fn, [x, x0], 1, dzdy, dzdx0, what="dzdx0")
    if one_to_one:
        nm.assert_close(dzdx0, -dzdx, rtol=0, what="dzdx0 == -dzdx")
    else:
        # broadcast x0: dzdx0 has x0's shape and is minus the sum of dzdx over locations
        nm.assert_close(dzdx0, -dzdx.sum(dim=(2, 3), keepdim=True), rtol=1e-12,
                        what="dzdx0 == -sum dzdx")


@pytest.mark.parametrize("x0_shape", [(1, 4, 1, 1), (5, 4, 3, 1), (1, 4, 3, 4), (5, 1, 1, 1)],
                         ids=["1xCx1x1", "NxCxHx1", "1xCxHxW", "Nx1x1x1"])
def test_other_broadcast_shapes(x0_shape):
    x = nm.randn(5, 4, 3, 4)
    x0 = nm.randn(*x0_shape)
    x = x + 5.0 * ((x - x0).abs() < 0.1)
    fn = lambda x, x0: mcn.vl_nnpdist(x, x0, 3)  # noqa: E731
    nm.assert_close(fn(x, x0), ref_pdist(x, x0, 3), rtol=1e-12)
    dzdy = nm.randn(5, 1, 3, 4)
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, 3, dzdy)
    assert dzdx0.shape == x0_shape
    nm.check_derivative(fn, [x, x0], 0, dzdy, dzdx, what="dzdx")
    nm.check_derivative(fn, [x, x0], 1, dzdy, dzdx0, what="dzdx0")


# ------------------------------------------------------------------ instance weights (O-PD-4)


@pytest.mark.parametrize("aggregate", [False, True], ids=["perpixel", "aggregate"])
@pytest.mark.parametrize("wshape", [(5, 1, 3, 4), (1, 1, 3, 4), ()],
                         ids=["per_pixel_weights", "shared_map", "scalar"])
def test_instance_weights(wshape, aggregate):
    x, x0 = make_inputs(False, True)
    weights = torch.rand(wshape, dtype=D)
    opts = dict(aggregate=aggregate, instance_weights=weights)
    fn = lambda x, x0: mcn.vl_nnpdist(x, x0, 2, **opts)  # noqa: E731
    ref = ref_pdist(x, x0, 2) * weights
    nm.assert_close(fn(x, x0), ref.sum() if aggregate else ref, rtol=1e-12, what="y")
    dzdy = torch.rand((), dtype=D) if aggregate else torch.rand(5, 1, 3, 4, dtype=D)
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, 2, dzdy, **opts)
    nm.check_derivative(fn, [x, x0], 0, dzdy, dzdx, what="dzdx")
    nm.check_derivative(fn, [x, x0], 1, dzdy, dzdx0, what="dzdx0")


def test_scalar_instance_weight_as_number():
    x, x0 = make_inputs(False, True)
    nm.assert_close(mcn.vl_nnpdist(x, x0, 2, instance_weights=0.5),
                    0.5 * mcn.vl_nnpdist(x, x0, 2), rtol=1e-15)


def test_zero_weights_give_zero():
    x, x0 = make_inputs(True, True)
    w = torch.zeros(5, 1, 2, 2, dtype=D)
    assert float(mcn.vl_nnpdist(x, x0, 2, aggregate=True, instance_weights=w)) == 0.0
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, 2, 1.0, aggregate=True, instance_weights=w)
    assert not dzdx.any() and not dzdx0.any()


# ------------------------------------------------------------------ formulas and identities


@pytest.mark.parametrize("p", [1, 2, 3, 0.5], ids=["p1", "p2", "p3", "p0.5"])
def test_vs_cdist(p):
    # The p-distance along the channels at every location, as torch.cdist computes it.
    x, x0 = nm.randn(2, 6, 3, 4), nm.randn(2, 6, 3, 4)
    a = x.permute(0, 2, 3, 1).reshape(-1, 1, 6)
    b = x0.permute(0, 2, 3, 1).reshape(-1, 1, 6)
    ref = torch.cdist(a, b, p=p).reshape(2, 3, 4).unsqueeze(1)
    nm.assert_close(mcn.vl_nnpdist(x, x0, p), ref, rtol=1e-10)
    nm.assert_close(mcn.vl_nnpdist(x, x0, p, no_root=True), ref ** p, rtol=1e-10)
    nm.assert_close(mcn.vl_nnpdist(x, x0, p, aggregate=True), ref.sum(), rtol=1e-10)


@pytest.mark.parametrize("p", PS, ids=[f"p{p}" for p in PS])
@pytest.mark.parametrize("no_root", [False, True], ids=["root", "noroot"])
def test_zero_distance_is_finite(p, no_root):
    # x == x0 at some locations (the epsilon guards): finite derivatives, zero there.
    x, x0 = nm.randn(2, 3, 2, 2), nm.randn(2, 3, 2, 2)
    x[:, :, 0, 0] = x0[:, :, 0, 0]
    x[0, 1, 1, 1] = x0[0, 1, 1, 1]  # one zero component
    y = mcn.vl_nnpdist(x, x0, p, no_root=no_root)
    assert torch.isfinite(y).all() and not y[:, :, 0, 0].any()
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, p, torch.ones_like(y), no_root=no_root)
    assert torch.isfinite(dzdx).all() and torch.isfinite(dzdx0).all()
    assert not dzdx[:, :, 0, 0].any()


def test_epsilon_guards_p2_root():
    # R-PD-1: p = 2, root: dzdy d / max(sum d^2, eps)^(1/2).
    x0 = torch.zeros(1, 2, 1, 2, dtype=D)
    x = torch.tensor([[[[1e-3, 3.0]], [[0.0, 4.0]]]], dtype=D)
    dzdx, _ = mcn.vl_nnpdist(x, x0, 2, torch.ones(1, 1, 1, 2, dtype=D), epsilon=1e-2)
    expected = torch.tensor([[[[1e-3 / 0.1, 3.0 / 5.0]], [[0.0, 4.0 / 5.0]]]], dtype=D)
    nm.assert_close(dzdx, expected, rtol=1e-14)


def test_epsilon_guards_p_below_1():
    # R-PD-1: p < 1, no_root: p dzdy max(|d|, eps)^(p-1) sign(d).
    x0 = torch.zeros(1, 2, 1, 1, dtype=D)
    x = torch.tensor([[[[1e-4]], [[-2.0]]]], dtype=D)
    dzdx, _ = mcn.vl_nnpdist(x, x0, 0.5, torch.ones(1, 1, 1, 1, dtype=D), no_root=True,
                             epsilon=1e-2)
    expected = torch.tensor([[[[0.5 * 1e-2 ** -0.5]], [[-0.5 * 2.0 ** -0.5]]]], dtype=D)
    nm.assert_close(dzdx, expected, rtol=1e-14)


def test_aggregate_dzdy_forms():
    # A scalar dzdy may be a Python number, a 0-d or a one-element array.
    x, x0 = make_inputs(True, True)
    ref = mcn.vl_nnpdist(x, x0, 2, torch.tensor(0.7, dtype=D), aggregate=True)
    for dzdy in (0.7, torch.full((1, 1, 1, 1), 0.7, dtype=D), torch.full((1,), 0.7, dtype=D)):
        got = mcn.vl_nnpdist(x, x0, 2, dzdy, aggregate=True)
        nm.assert_close(got[0], ref[0], rtol=0)
        nm.assert_close(got[1], ref[1], rtol=0)


def test_numpy_in_numpy_out():
    x, x0 = (t.numpy() for t in make_inputs(False, False))
    y = mcn.vl_nnpdist(x, x0, 2)
    assert isinstance(y, np.ndarray) and y.shape == (5, 1, 3, 4)
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, 2, np.ones_like(y))
    assert isinstance(dzdx, np.ndarray) and isinstance(dzdx0, np.ndarray)
    assert dzdx.shape == x.shape and dzdx0.shape == x0.shape
    agg = mcn.vl_nnpdist(x, x0, 2, aggregate=True)
    assert np.ndim(agg) == 0


def test_float32_preserved():
    x, x0 = (t.float() for t in make_inputs(False, True))
    y = mcn.vl_nnpdist(x, x0, 3)
    assert y.dtype == torch.float32
    dzdx, dzdx0 = mcn.vl_nnpdist(x, x0, 3, torch.ones_like(y))
    assert dzdx.dtype == dzdx0.dtype == torch.float32


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("shape", [(5, 3, 1, 1), (5, 4, 2, 4), (2, 4, 1, 1), (5, 4), (5, 4, 3, 4, 1)],
                         ids=["wrong_C", "wrong_H", "wrong_N", "2d", "5d"])
def test_x0_not_broadcastable(shape):
    x = nm.randn(5, 4, 3, 4)
    with pytest.raises(ValueError, match="^x0: "):
        mcn.vl_nnpdist(x, nm.randn(*shape), 2)


@pytest.mark.parametrize("p", [0, -1], ids=["p0", "pneg"])
def test_p_not_positive(p):
    x, x0 = make_inputs(False, True)
    with pytest.raises(ValueError, match="^p: "):
        mcn.vl_nnpdist(x, x0, p)


def test_non_scalar_dzdy_with_aggregate():
    x, x0 = make_inputs(True, True)
    with pytest.raises(ValueError, match="^dzdy: .*scalar"):
        mcn.vl_nnpdist(x, x0, 2, torch.ones(5, 1, 2, 2, dtype=D), aggregate=True)


def test_dzdy_wrong_shape():
    x, x0 = make_inputs(False, True)
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnpdist(x, x0, 2, torch.ones(5, 4, 3, 4, dtype=D))


def test_instance_weights_wrong_shape():
    x, x0 = make_inputs(False, True)
    with pytest.raises(ValueError, match="^instance_weights: "):
        mcn.vl_nnpdist(x, x0, 2, instance_weights=torch.ones(5, 2, 3, 4, dtype=D))
