"""vl_nnconcat: float64 numerical derivatives of every input (port of MatConvNet's X-CAT
suite, basic and by_size, over all four dimensions), round trips (R-CAT-1), array kinds
and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64
BASE = (3, 10, 4, 5)  # MatConvNet's 4 x 5 x 10 x 3 as N x C x H x W
DIMS = [pytest.param(d, id=f"dim{d}") for d in range(4)]



def inputs(dim, lengths=(3, 7, 2), base=BASE):
    """Inputs sized 3 / 7 / 2 along ``dim``, the others as BASE."""
    out = []
    for n in lengths:
        shape = list(base)
        shape[dim] = n
        out.append(nm.randn(*shape))
    return out


@pytest.mark.parametrize("dim", DIMS)
def test_basic(dim):
    # X-CAT basic: output size check and ders of each input.
    base = (2, 3, 2, 3)  # small enough for element-by-element differences
    xs = inputs(dim, base=base)
    fn = lambda a, b, c: mcn.vl_nnconcat([a, b, c], dim)  # noqa: E731
    y = fn(*xs)
    expected = list(base)
    expected[dim] = 12
    assert tuple(y.shape) == tuple(expected)
    dzdy = nm.randn(*y.shape)
    ders = mcn.vl_nnconcat(xs, dim, dzdy)
    assert isinstance(ders, list) and len(ders) == 3
    for i in range(3):
        assert ders[i].shape == xs[i].shape
        nm.check_derivative(fn, xs, i, dzdy, ders[i], what=f"dzdx{i + 1}")


@pytest.mark.parametrize("dim", DIMS)
def test_matconvnet_sizes(dim):
    # X-CAT's own sizes (others 4x5x10x3): output size and forward/backward by slicing.
    xs = inputs(dim)
    y = mcn.vl_nnconcat(xs, dim)
    expected = list(BASE)
    expected[dim] = 12
    assert tuple(y.shape) == tuple(expected)
    nm.assert_close(y, torch.cat(xs, dim=dim), rtol=0)
    dzdy = nm.randn(*y.shape)
    ders = mcn.vl_nnconcat(xs, dim, dzdy)
    for got, ref in zip(ders, torch.split(dzdy, [3, 7, 2], dim=dim)):
        nm.assert_close(got, ref, rtol=0)


@pytest.mark.parametrize("dim", DIMS)
def test_by_size(dim):
    # X-CAT by_size: vl_nnconcat({}, dim, dY, 'inputSizes', {...}) == with the inputs.
    xs = inputs(dim)
    y = mcn.vl_nnconcat(xs, dim)
    dzdy = nm.randn(*y.shape)
    ders = mcn.vl_nnconcat(xs, dim, dzdy)
    sizes = [tuple(x.shape) for x in xs]
    by_size = mcn.vl_nnconcat([], dim, dzdy, input_sizes=sizes)
    assert len(by_size) == 3
    for a, b in zip(by_size, ders):
        nm.assert_close(a, b, rtol=0)
    # sizes as lists or arrays
    by_array = mcn.vl_nnconcat([], dim, dzdy, input_sizes=[np.array(s) for s in sizes])
    for a, b in zip(by_array, ders):
        nm.assert_close(a, b, rtol=0)


def test_default_dim_is_channels():
    xs = inputs(1)
    nm.assert_close(mcn.vl_nnconcat(xs), torch.cat(xs, dim=1), rtol=0)
    dzdy = nm.randn(3, 12, 4, 5)
    for a, b in zip(mcn.vl_nnconcat(xs, dzdy=dzdy), mcn.vl_nnconcat(xs, 1, dzdy)):
        nm.assert_close(a, b, rtol=0)


def test_input_sizes_missing_trailing_dims_are_one():
    # MATLAB drops trailing singleton dimensions from size(): missing axes count as 1.
    dzdy = nm.randn(2, 5, 3, 1)
    ders = mcn.vl_nnconcat([], 3, dzdy, input_sizes=[(2, 5, 3)])
    nm.assert_close(ders[0], dzdy, rtol=0)
    ders = mcn.vl_nnconcat([], 1, nm.randn(2, 5, 1, 1), input_sizes=[(2, 2), (2, 3)])
    assert [tuple(d.shape) for d in ders] == [(2, 2, 1, 1), (2, 3, 1, 1)]


@pytest.mark.parametrize("dim", DIMS)
def test_round_trip(dim):
    # concat, then the backward with dzdy = y gives the inputs back.
    xs = inputs(dim, lengths=(1, 4, 2, 3))
    y = mcn.vl_nnconcat(xs, dim)
    for a, b in zip(mcn.vl_nnconcat(xs, dim, y), xs):
        nm.assert_close(a, b, rtol=0)


def test_single_input():
    x = nm.randn(2, 3, 4, 5)
    nm.assert_close(mcn.vl_nnconcat([x], 2), x, rtol=0)
    [d] = mcn.vl_nnconcat([x], 2, x)
    nm.assert_close(d, x, rtol=0)


def test_empty_input_along_dim():
    a, b = nm.randn(2, 0, 3, 3), nm.randn(2, 4, 3, 3)
    nm.assert_close(mcn.vl_nnconcat([a, b], 1), b, rtol=0)
    da, db = mcn.vl_nnconcat([a, b], 1, b)
    assert da.shape == (2, 0, 3, 3)


def test_numpy_in_numpy_out():
    xs = [x.numpy() for x in inputs(2)]
    y = mcn.vl_nnconcat(xs, 2)
    assert isinstance(y, np.ndarray) and y.shape == (3, 10, 12, 5)
    ders = mcn.vl_nnconcat(xs, 2, np.ones_like(y))
    assert isinstance(ders, list) and all(isinstance(d, np.ndarray) for d in ders)
    assert [d.shape for d in ders] == [x.shape for x in xs]


def test_float32_preserved():
    xs = [x.float() for x in inputs(0)]
    y = mcn.vl_nnconcat(xs, 0)
    assert y.dtype == torch.float32
    assert all(d.dtype == torch.float32 for d in mcn.vl_nnconcat(xs, 0, y))


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("other", [(2, 3, 4, 6), (3, 3, 4, 5), (2, 3, 4)],
                         ids=["wrong_w", "wrong_n", "3d"])
def test_mismatched_shapes(other):
    with pytest.raises(ValueError, match=r"^xs\[1\]: "):
        mcn.vl_nnconcat([nm.randn(2, 3, 4, 5), nm.randn(*other)], 1)


@pytest.mark.parametrize("dim", [4, -1, (1, 2), 1.5], ids=["4", "neg", "pair", "frac"])
def test_bad_dim(dim):
    xs = [nm.randn(2, 3, 4, 5)] * 2
    with pytest.raises((ValueError, TypeError), match="^dim: "):
        mcn.vl_nnconcat(xs, dim)


def test_bad_dim_backward():
    with pytest.raises(ValueError, match="^dim: "):
        mcn.vl_nnconcat([], 4, nm.randn(2, 3, 4, 5), input_sizes=[(2, 3, 4, 5)])


def test_no_inputs():
    with pytest.raises(ValueError, match="^xs: "):
        mcn.vl_nnconcat([], 1)


def test_backward_without_inputs_or_sizes():
    with pytest.raises(ValueError, match="^input_sizes: "):
        mcn.vl_nnconcat([], 1, nm.randn(2, 3, 4, 5))


def test_dzdy_does_not_match_sizes():
    xs = inputs(1)
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnconcat(xs, 1, nm.randn(3, 11, 4, 5))
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nnconcat([], 1, nm.randn(3, 11, 4, 5), input_sizes=[x.shape for x in xs])


def test_mixed_kinds_rejected():
    with pytest.raises(TypeError, match=r"^xs\[1\]: "):
        mcn.vl_nnconcat([nm.randn(1, 2, 2, 2), nm.randn(1, 2, 2, 2).numpy()], 1)
