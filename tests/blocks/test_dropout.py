"""vl_nndropout: float64 numerical derivative with the forward mask (port of MatConvNet's
X-DRP suite), the inverted-dropout mask (R-DRP-1: values, keep fraction, y = mask x,
rate 0), seeding, array kinds and validation."""
import numpy as np
import pytest
import torch

import matconvnet as mcn
from tests import numerics as nm

D = torch.float64



@pytest.mark.parametrize("rate", [0.5, 0.2, 0.0, 0.9], ids=["r0.5", "r0.2", "r0", "r0.9"])
def test_basic_derivative(rate):
    # X-DRP basic: X 4x5x10x3 (here 3x10x4x5); backward with the forward mask vs the
    # numerical derivative of vl_nndropout(x, 'mask', mask).
    x = nm.randn(3, 10, 4, 5)
    y, mask = mcn.vl_nndropout(x, rate=rate)
    dzdy = nm.randn(*x.shape)
    dzdx = mcn.vl_nndropout(x, dzdy, mask=mask)
    nm.check_derivative(lambda x: mcn.vl_nndropout(x, mask=mask), [x], 0, dzdy, dzdx)
    nm.assert_close(dzdx, mask * dzdy, rtol=0)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.75, 0.9], ids=["r0.1", "r0.5", "r0.75", "r0.9"])
def test_mask_values_and_keep_fraction(rate):
    x = nm.randn(8, 16, 32, 32)  # 131072 elements: keep fraction within +-0.01
    y, mask = mcn.vl_nndropout(x, rate=rate)
    scale = 1.0 / (1.0 - rate)
    values = torch.unique(mask)
    assert values.numel() == 2
    nm.assert_close(values, torch.tensor([0.0, scale], dtype=D), rtol=1e-15)
    keep = float((mask != 0).double().mean())
    assert abs(keep - (1 - rate)) < 0.01, f"keep fraction {keep} for rate {rate}"
    nm.assert_close(y, mask * x, rtol=0, what="y == mask x")
    # inverted dropout keeps the expectation: E[mask] == 1
    assert abs(float(mask.mean()) - 1.0) < 0.02 * scale


def test_rate_zero_keeps_everything():
    x = nm.randn(2, 3, 4, 5)
    y, mask = mcn.vl_nndropout(x, rate=0.0)
    nm.assert_close(mask, torch.ones_like(x), rtol=0)
    nm.assert_close(y, x, rtol=0)


def test_default_rate_is_half():
    x = torch.ones(4, 8, 32, 32, dtype=D)
    _, mask = mcn.vl_nndropout(x)
    assert set(torch.unique(mask).tolist()) == {0.0, 2.0}
    assert abs(float((mask != 0).double().mean()) - 0.5) < 0.01


def test_mask_independent_per_element():
    # Elements are dropped independently (no shared mask across channels or images).
    x = torch.ones(64, 4, 8, 8, dtype=D)
    _, mask = mcn.vl_nndropout(x, rate=0.5)
    assert not torch.equal(mask[:, 0], mask[:, 1])
    assert not torch.equal(mask[0], mask[1])


def test_forward_with_given_mask():
    x = nm.randn(2, 3, 4, 5)
    mask = (torch.rand(2, 3, 4, 5, dtype=D) > 0.3).to(D) / 0.7
    nm.assert_close(mcn.vl_nndropout(x, mask=mask), mask * x, rtol=0)


def test_seeding_reproducible():
    x = nm.randn(2, 3, 4, 5)
    torch.manual_seed(123)
    _, m1 = mcn.vl_nndropout(x, rate=0.3)
    torch.manual_seed(123)
    _, m2 = mcn.vl_nndropout(x, rate=0.3)
    _, m3 = mcn.vl_nndropout(x, rate=0.3)
    assert torch.equal(m1, m2)
    assert not torch.equal(m2, m3)


def test_numpy_in_numpy_out():
    x = nm.randn(2, 3, 4, 5).numpy()
    y, mask = mcn.vl_nndropout(x, rate=0.4)
    assert isinstance(y, np.ndarray) and isinstance(mask, np.ndarray)
    assert mask.dtype == np.float64 and mask.shape == x.shape
    np.testing.assert_array_equal(mcn.vl_nndropout(x, mask=mask), y)
    dzdx = mcn.vl_nndropout(x, np.ones_like(x), mask=mask)
    assert isinstance(dzdx, np.ndarray)
    np.testing.assert_array_equal(dzdx, mask)


def test_float32_mask_dtype():
    x = torch.randn(2, 3, 4, 5)
    y, mask = mcn.vl_nndropout(x, rate=0.5)
    assert y.dtype == mask.dtype == torch.float32
    assert set(torch.unique(mask).tolist()) <= {0.0, 2.0}


def test_any_shape():
    # B-DRP: any array.
    x = nm.randn(7, 5)
    y, mask = mcn.vl_nndropout(x, rate=0.5)
    assert mask.shape == (7, 5)
    nm.assert_close(y, mask * x, rtol=0)


# ------------------------------------------------------------------ validation


def test_backward_without_mask():
    x = nm.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match="^mask: "):
        mcn.vl_nndropout(x, torch.ones_like(x))


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1], ids=["r1", "r1.5", "rneg"])
def test_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match="^rate: "):
        mcn.vl_nndropout(nm.randn(2, 3, 4, 5), rate=rate)


def test_mask_wrong_shape():
    x = nm.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match="^mask: "):
        mcn.vl_nndropout(x, mask=torch.ones(2, 3, 4, 4, dtype=D))
    with pytest.raises(ValueError, match="^mask: "):
        mcn.vl_nndropout(x, torch.ones_like(x), mask=torch.ones(2, 3, 4, 4, dtype=D))


def test_dzdy_wrong_shape():
    x = nm.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match="^dzdy: "):
        mcn.vl_nndropout(x, torch.ones(2, 3, 4, 4, dtype=D), mask=torch.ones_like(x))


def test_mask_kind_must_match_x():
    x = nm.randn(2, 3, 4, 5)
    with pytest.raises(TypeError, match="^mask: "):
        mcn.vl_nndropout(x, mask=torch.ones(2, 3, 4, 5))
