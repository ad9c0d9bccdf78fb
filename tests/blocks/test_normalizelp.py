"""vl_nnnormalizelp: float64 numerical derivatives (port of MatConvNet's X-LP suite: basicl2,
lp, all 13 dimension subsets; plus odd p, spatial and given norms), the R-LP-1 formula with
``|x|^p`` (Q-08), unit norms, array kinds and validation."""

import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64

# MatConvNet's dimensions 1, 2, 3, 4 (H, W, C, N) are axes 2, 3, 1, 0 of N x C x H x W.
MCN_AXIS = {1: 2, 2: 3, 3: 1, 4: 0}
MCN_SUBSETS = [(1,), (2,), (3,), (4,), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4),
               (1, 2, 3), (2, 3, 4), (1, 2, 3, 4)]



def ref_norms(x, p, eps, dims):
    return ((x.abs() ** p).sum(dim=dims, keepdim=True) + eps) ** (1.0 / p)


def check(x, dzdy=None, **opts):
    fn = lambda x: mcn.vl_nnnormalizelp(x, **opts)  # noqa: E731
    dzdy = nm.randn(*x.shape) if dzdy is None else dzdy
    dzdx = mcn.vl_nnnormalizelp(x, dzdy, **opts)
    nm.check_derivative(fn, [x], 0, dzdy, dzdx)
    return dzdx


# ------------------------------------------------------------------ X-LP basicl2

BASIC = [(1, 1, 2), (2, 3, 3), (4, 4, 4), (3, 1, 4), (1, 4, 2), (4, 2, 3)]


@pytest.mark.parametrize("h,w,d", BASIC, ids=[f"h{h}w{w}d{d}" for h, w, d in BASIC])
def test_basicl2(h, w, d):
    # X-LP basicl2: X h x w x d x 3 (range 128), default options.
    x = nm.randn(3, d, h, w, scale=128.0)
    fn = lambda x: mcn.vl_nnnormalizelp(x)  # noqa: E731
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nnnormalizelp(x, dzdy)
    nm.check_derivative(fn, [x], 0, dzdy, dzdx, eps=1e-4)
    nm.assert_close(fn(x), x / ref_norms(x, 2, 1e-2, (1,)), rtol=1e-12, what="y")


# ------------------------------------------------------------------ X-LP lp (and odd p)


@pytest.mark.parametrize("p", [2, 4, 3, 1.5, 0.8], ids=["p2", "p4", "p3_odd", "p1.5", "p0.8"])
def test_lp(p):
    # X-LP lp: X 2x3x5x3 / 128 with 'p', p (here unit-scale values, kept off 0 for p < 2).
    x = nm.randn(3, 5, 2, 3)
    x = torch.where(x.abs() < 0.05, x.sign() * 0.05 + x, x)
    check(x, p=p)
    y = mcn.vl_nnnormalizelp(x, p=p)
    nm.assert_close(y, x / ref_norms(x, p, 1e-2, (1,)), rtol=1e-12, what="y")


def test_odd_p_uses_abs():
    # MatConvNet raises x to the power p without abs (wrong norms for odd p); here
    # |x|^p, so the norms are those of |x| and positive.
    x = nm.randn(2, 4, 3, 3)
    y, n = mcn.vl_nnnormalizelp(x, p=3, return_norms=True)
    nm.assert_close(n, ref_norms(x, 3, 1e-2, (1,)), rtol=1e-12, what="norms")
    _, n_abs = mcn.vl_nnnormalizelp(x.abs(), p=3, return_norms=True)
    nm.assert_close(n, n_abs, rtol=0)
    assert bool((n > 0).all())


def test_exponent_alias():
    x = nm.randn(2, 4, 3, 3)
    nm.assert_close(mcn.vl_nnnormalizelp(x, exponent=4), mcn.vl_nnnormalizelp(x, p=4), rtol=0)
    dzdy = nm.randn(*x.shape)
    nm.assert_close(mcn.vl_nnnormalizelp(x, dzdy, exponent=4),
                    mcn.vl_nnnormalizelp(x, dzdy, p=4), rtol=0)


# ------------------------------------------------------------------ X-LP dimensions


@pytest.mark.parametrize("p", [2, 4, 3], ids=["p2", "p4", "p3"])
@pytest.mark.parametrize("subset", MCN_SUBSETS, ids=lambda s: "dims" + "".join(map(str, s)))
def test_dimensions(subset, p):
    # X-LP dimensions: all 13 subsets, epsilon 1e-4 (MatConvNet dims mapped to our axes).
    dims = tuple(MCN_AXIS[d] for d in subset)
    x = nm.randn(3, 4, 2, 3)
    check(x, p=p, epsilon=1e-4, dimensions=dims)
    y, n = mcn.vl_nnnormalizelp(x, p=p, epsilon=1e-4, dimensions=dims, return_norms=True)
    expected = ref_norms(x, p, 1e-4, dims)
    assert n.shape == expected.shape == tuple(1 if i in dims else s
                                              for i, s in enumerate(x.shape))
    nm.assert_close(n, expected, rtol=1e-12, what="norms")
    nm.assert_close(y, x / expected, rtol=1e-12, what="y")


def test_dimension_order_irrelevant():
    x = nm.randn(2, 3, 4, 2)
    nm.assert_close(mcn.vl_nnnormalizelp(x, dimensions=(3, 1)),
                    mcn.vl_nnnormalizelp(x, dimensions=[1, 3]), rtol=0)


@pytest.mark.parametrize("p", [2, 4], ids=["p2", "p4"])
def test_spatial(p):
    # O-LP-4: Spatial means MatConvNet's dimensions [1 2], i.e. axes (2, 3).
    x = nm.randn(2, 3, 3, 4)
    dzdx = check(x, p=p, spatial=True)
    nm.assert_close(mcn.vl_nnnormalizelp(x, p=p, spatial=True),
                    mcn.vl_nnnormalizelp(x, p=p, dimensions=(2, 3)), rtol=0)
    dzdy = nm.randn(*x.shape)
    nm.assert_close(mcn.vl_nnnormalizelp(x, dzdy, p=p, spatial=True),
                    mcn.vl_nnnormalizelp(x, dzdy, p=p, dimensions=(2, 3)), rtol=0)
    _, n = mcn.vl_nnnormalizelp(x, p=p, spatial=True, return_norms=True)
    assert n.shape == (2, 3, 1, 1)
    assert dzdx.shape == x.shape


# ------------------------------------------------------------------ given norms (O-LP-5)


@pytest.mark.parametrize("dims,p", [((1,), 2), ((2, 3), 4), ((0, 1, 2, 3), 3), ((0,), 2)],
                         ids=["C_p2", "HW_p4", "all_p3", "N_p2"])
def test_given_norms(dims, p):
    # Norms returned by the forward, given back: same forward and backward; the backward is
    # still the derivative of the norm-computing forward.
    x = nm.randn(3, 4, 2, 3)
    opts = dict(p=p, dimensions=dims)
    y, n = mcn.vl_nnnormalizelp(x, return_norms=True, **opts)
    nm.assert_close(mcn.vl_nnnormalizelp(x, norms=n, **opts), y, rtol=0, what="y")
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nnnormalizelp(x, dzdy, norms=n, **opts)
    nm.assert_close(dzdx, mcn.vl_nnnormalizelp(x, dzdy, **opts), rtol=1e-14, what="dzdx")
    nm.check_derivative(lambda x: mcn.vl_nnnormalizelp(x, **opts), [x], 0, dzdy, dzdx)
    # any shape with the right number of elements
    nm.assert_close(mcn.vl_nnnormalizelp(x, norms=n.reshape(-1), **opts), y, rtol=0)


def test_given_norms_are_used_as_they_are():
    # R-LP-1 with supplied n: y = x / n, dzdx = dzdy / n - sum(dzdy x) |x|^(p-1) sign(x) / n^(p+1).
    x = nm.randn(2, 3, 2, 2)
    n = torch.rand(2, 1, 2, 2, dtype=D) + 0.5
    for p in (2, 3):
        nm.assert_close(mcn.vl_nnnormalizelp(x, p=p, norms=n), x / n, rtol=1e-14)
        dzdy = nm.randn(*x.shape)
        expected = dzdy / n - (dzdy * x).sum(1, keepdim=True) \
            * x.abs() ** (p - 1) * x.sign() / n ** (p + 1)
        nm.assert_close(mcn.vl_nnnormalizelp(x, dzdy, p=p, norms=n), expected, rtol=1e-12)


# ------------------------------------------------------------------ identities


@pytest.mark.parametrize("p", [2, 4, 3], ids=["p2", "p4", "p3"])
def test_unit_norms(p):
    # With a tiny epsilon the output has unit Lp norm over the reduced dimensions.
    x = nm.randn(2, 5, 3, 4)
    y = mcn.vl_nnnormalizelp(x, p=p, epsilon=1e-14)
    nm.assert_close((y.abs() ** p).sum(dim=1), torch.ones(2, 3, 4, dtype=D), rtol=1e-10)
    y = mcn.vl_nnnormalizelp(x, p=p, epsilon=1e-14, spatial=True)
    nm.assert_close((y.abs() ** p).sum(dim=(2, 3)), torch.ones(2, 5, dtype=D), rtol=1e-10)


def test_l2_vs_torch_normalize():
    x = nm.randn(2, 5, 3, 4)
    y = mcn.vl_nnnormalizelp(x, epsilon=0.0)
    nm.assert_close(y, torch.nn.functional.normalize(x, p=2, dim=1, eps=0.0), rtol=1e-12)


def test_autograd_cross_check():
    x = nm.randn(2, 3, 3, 2)
    dzdy = nm.randn(*x.shape)
    xr = x.clone().requires_grad_()
    n = ((xr.abs() ** 4).sum(dim=(1, 3), keepdim=True) + 1e-2) ** 0.25
    (xr / n).backward(dzdy)
    nm.assert_close(mcn.vl_nnnormalizelp(x, dzdy, p=4, dimensions=(1, 3)), xr.grad, rtol=1e-12)


def test_any_dimensionality():
    # B-LP: any <= 4-D array.
    x = nm.randn(5, 3)
    y = mcn.vl_nnnormalizelp(x, dimensions=(1,))
    nm.assert_close(y, x / ref_norms(x, 2, 1e-2, (1,)), rtol=1e-12)
    dzdy = nm.randn(5, 3)
    dzdx = mcn.vl_nnnormalizelp(x, dzdy, dimensions=(0,))
    nm.check_derivative(lambda x: mcn.vl_nnnormalizelp(x, dimensions=(0,)), [x], 0, dzdy, dzdx)


def test_numpy_in_numpy_out():
    x = nm.randn(2, 3, 2, 2).numpy()
    y, n = mcn.vl_nnnormalizelp(x, return_norms=True)
    assert isinstance(y, np.ndarray) and isinstance(n, np.ndarray) and n.shape == (2, 1, 2, 2)
    y2 = mcn.vl_nnnormalizelp(x, norms=n)
    np.testing.assert_array_equal(y, y2)
    dzdx = mcn.vl_nnnormalizelp(x, np.ones_like(x), norms=n)
    assert isinstance(dzdx, np.ndarray) and dzdx.dtype == np.float64


def test_float32_preserved():
    x = nm.randn(2, 3, 2, 2).float()
    y, n = mcn.vl_nnnormalizelp(x, return_norms=True)
    assert y.dtype == n.dtype == torch.float32


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("p", [0, -2], ids=["p0", "pneg"])
def test_p_not_positive(p):
    with pytest.raises(ValueError, match="^p: "):
        mcn.vl_nnnormalizelp(nm.randn(1, 3, 2, 2), p=p)


def test_exponent_not_positive():
    with pytest.raises(ValueError, match="exponent|^p: "):
        mcn.vl_nnnormalizelp(nm.randn(1, 3, 2, 2), exponent=-1)


@pytest.mark.parametrize("dims", [(4,), (-1,), (1, 1), (), (0, 5)],
                         ids=["out_of_range", "negative", "duplicate", "empty", "one_bad"])
def test_bad_dimensions(dims):
    with pytest.raises(ValueError, match="^dimensions: "):
        mcn.vl_nnnormalizelp(nm.randn(1, 3, 2, 2), dimensions=dims)


@pytest.mark.parametrize("shape", [(1, 3, 2, 2), (1, 1, 2, 3), (5,)],
                         ids=["full_shape", "wrong_hw", "5el"])
def test_norms_wrong_size(shape):
    x = nm.randn(1, 3, 2, 2)
    with pytest.raises(ValueError, match="^norms: "):
        mcn.vl_nnnormalizelp(x, norms=torch.ones(*shape, dtype=D))
    with pytest.raises(ValueError, match="^norms: "):
        mcn.vl_nnnormalizelp(x, torch.ones_like(x), norms=torch.ones(*shape, dtype=D))


def test_dzdy_wrong_shape():
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnnormalizelp(nm.randn(1, 3, 2, 2), nm.randn(1, 3, 2, 3))
