"""vl_nncrop: float64 numerical derivatives, the R-CROP-1 formula (slice forward, zero-fill
backward), the input-size backward form, round trips, array kinds and validation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64

CROPS = [
    pytest.param(0, id="none"),
    pytest.param(1, id="scalar1"),
    pytest.param([1, 0, 2, 1], id="t1b0l2r1"),
    pytest.param([0, 3, 0, 0], id="bottom3"),
    pytest.param([2, 2, 0, 4], id="t2b2r4"),
    pytest.param((3, 2, 4, 1), id="everything_but_1x1"),
]



def quad(crop):
    return (crop,) * 4 if np.isscalar(crop) else tuple(crop)


@pytest.mark.parametrize("crop", CROPS)
def test_derivative(crop):
    x = nm.randn(2, 3, 6, 6)
    fn = lambda x: mcn.vl_nncrop(x, crop)  # noqa: E731
    y = fn(x)
    dzdy = nm.randn(*y.shape)
    dzdx = mcn.vl_nncrop(x, crop, dzdy)
    nm.check_derivative(fn, [x], 0, dzdy, dzdx)


@pytest.mark.parametrize("crop", CROPS)
def test_formula(crop):
    # R-CROP-1: y = x(1+T:end-B, 1+L:end-R, :, :); backward zero-fills outside.
    t, b, l, r = quad(crop)
    x = nm.randn(2, 3, 6, 6)
    y = mcn.vl_nncrop(x, crop)
    assert y.shape == (2, 3, 6 - t - b, 6 - l - r)
    nm.assert_close(y, x[:, :, t:6 - b, l:6 - r], rtol=0)
    dzdy = nm.randn(*y.shape)
    dzdx = mcn.vl_nncrop(x, crop, dzdy)
    nm.assert_close(dzdx, F.pad(dzdy, (l, r, t, b)), rtol=0)
    assert float(dzdx.abs().sum()) == pytest.approx(float(dzdy.abs().sum()))


@pytest.mark.parametrize("crop", CROPS)
def test_backward_by_input_size(crop):
    # vl_nncrop([], CROP, dY, INPUTSIZE) == vl_nncrop(X, CROP, dY).
    x = nm.randn(2, 3, 6, 6)
    dzdy = nm.randn(*mcn.vl_nncrop(x, crop).shape)
    ref = mcn.vl_nncrop(x, crop, dzdy)
    nm.assert_close(mcn.vl_nncrop(None, crop, dzdy, input_size=x.shape), ref, rtol=0)
    nm.assert_close(mcn.vl_nncrop(None, crop, dzdy, input_size=[2, 3, 6, 6]), ref, rtol=0)


def test_round_trip():
    # crop, then backward with dzdy = y: x on the kept window, 0 on the cropped border.
    x = nm.randn(2, 3, 7, 5)
    crop = [1, 2, 1, 1]
    back = mcn.vl_nncrop(x, crop, mcn.vl_nncrop(x, crop))
    keep = torch.zeros_like(x)
    keep[:, :, 1:5, 1:4] = 1
    nm.assert_close(back, x * keep, rtol=0)
    # and cropping that again gives the crop back
    nm.assert_close(mcn.vl_nncrop(back, crop), mcn.vl_nncrop(x, crop), rtol=0)


def test_crop_everything():
    # Cropping exactly the whole input is allowed and gives an empty output.
    x = nm.randn(1, 2, 4, 3)
    y = mcn.vl_nncrop(x, [2, 2, 0, 0])
    assert y.shape == (1, 2, 0, 3)
    dzdx = mcn.vl_nncrop(x, [2, 2, 0, 0], y)
    assert dzdx.shape == x.shape and not dzdx.any()


def test_numpy_in_numpy_out():
    x = nm.randn(1, 2, 5, 5).numpy()
    y = mcn.vl_nncrop(x, [1, 1, 2, 0])
    assert isinstance(y, np.ndarray) and y.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(y, x[:, :, 1:4, 2:])
    dzdx = mcn.vl_nncrop(x, [1, 1, 2, 0], np.ones_like(y))
    assert isinstance(dzdx, np.ndarray) and dzdx.shape == x.shape
    dzdx2 = mcn.vl_nncrop(None, [1, 1, 2, 0], np.ones_like(y), input_size=x.shape)
    assert isinstance(dzdx2, np.ndarray)
    np.testing.assert_array_equal(dzdx, dzdx2)


def test_float32_preserved():
    x = torch.randn(1, 2, 5, 5)
    y = mcn.vl_nncrop(x, 1)
    assert y.dtype == torch.float32
    assert mcn.vl_nncrop(x, 1, y).dtype == torch.float32


def test_crop_as_array():
    x = nm.randn(1, 2, 5, 5)
    nm.assert_close(mcn.vl_nncrop(x, np.array([1, 0, 0, 2])), x[:, :, 1:, :3], rtol=0)
    nm.assert_close(mcn.vl_nncrop(x, torch.tensor([1, 0, 0, 2])), x[:, :, 1:, :3], rtol=0)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("crop", [[3, 3, 0, 0], [0, 0, 4, 2], 3, [6, 0, 0, 0]],
                         ids=["rows", "cols", "scalar", "top_only"])
def test_crop_larger_than_input(crop):
    with pytest.raises(ValueError, match="^crop: "):
        mcn.vl_nncrop(nm.randn(1, 1, 5, 5), crop)
    with pytest.raises(ValueError, match="^crop: "):
        mcn.vl_nncrop(None, crop, nm.randn(1, 1, 1, 1), input_size=(1, 1, 5, 5))


@pytest.mark.parametrize("crop", [[1, 2, 3], [1, 1], [-1, 0, 0, 0], [1.5, 0, 0, 0]],
                         ids=["3el", "2el", "negative", "fractional"])
def test_bad_crop(crop):
    with pytest.raises((ValueError, TypeError), match="^crop: "):
        mcn.vl_nncrop(nm.randn(1, 1, 5, 5), crop)


def test_dzdy_wrong_shape():
    x = nm.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nncrop(x, 1, nm.randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nncrop(None, 1, nm.randn(1, 2, 3, 4), input_size=(1, 2, 5, 5))


def test_forward_without_x():
    with pytest.raises(TypeError, match="^x: "):
        mcn.vl_nncrop(None, 1)
    with pytest.raises(TypeError, match="^x: "):
        mcn.vl_nncrop(None, 1, nm.randn(1, 1, 3, 3))  # no input_size


def test_input_size_not_4():
    with pytest.raises(ValueError, match="^input_size: "):
        mcn.vl_nncrop(None, 1, nm.randn(1, 1, 3, 3), input_size=(1, 5, 5))


def test_x_not_4d():
    with pytest.raises(ValueError, match="^x: "):
        mcn.vl_nncrop(nm.randn(2, 5, 5), 1)
