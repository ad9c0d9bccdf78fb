"""Memory layouts and in-place options of the blocks on the training path: channels-last
computation on the CPU gives the same values as the default layout, NumPy results stay
C-ordered, ``vl_nnrelu(inplace=True)`` writes over its operand, the grouped two-pass max
pooling gives the same switches in every grouping, dropout draws its mask in index order
whatever the layout, and pooling's backward call reads only the shape of ``x``."""

import numpy as np
import pytest
import torch

import matconvnet as mcn
from matconvnet import _tensor as T
from matconvnet.blocks import pool as P
from tests import numerics as nm

CL = torch.channels_last


def _both_layouts(t):
    return t.contiguous(), t.contiguous(memory_format=CL)


@pytest.mark.parametrize("shape,fshape,pad,stride", [
    ((3, 1, 12, 12), (4, 1, 5, 5), 0, 1),        # one input channel (an ambiguous layout)
    ((2, 3, 9, 9), (5, 3, 3, 3), [1, 2, 0, 1], 2),
    ((2, 6, 5, 5), (4, 6, 5, 5), 0, 1),          # a fully-connected layer: 1 x 1 output
])
def test_conv_values_do_not_depend_on_the_layout(shape, fshape, pad, stride):
    x = torch.randn(*shape)
    f, b = torch.randn(*fshape), torch.randn(fshape[0])
    ref = mcn.vl_nnconv(x.double(), f.double(), b.double(), pad=pad, stride=stride)
    dzdy = torch.randn(ref.shape)
    dref = mcn.vl_nnconv(x.double(), f.double(), b.double(), dzdy.double(), pad=pad,
                         stride=stride)
    for xx in _both_layouts(x):
        for dd in _both_layouts(dzdy):
            y = mcn.vl_nnconv(xx, f, b, pad=pad, stride=stride)
            assert y.shape == ref.shape
            torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4)
            ders = mcn.vl_nnconv(xx, f, b, dd, pad=pad, stride=stride)
            for got, want in zip(ders, dref):
                assert got.shape == want.shape
                torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_cpu_float32_conv_and_pool_outputs_are_channels_last():
    x = torch.randn(2, 1, 10, 10)      # one channel: made channels-last explicitly
    y = mcn.vl_nnconv(x, torch.randn(6, 1, 3, 3), torch.zeros(6))
    assert y.is_contiguous(memory_format=CL) and not y.is_contiguous()
    p, s = mcn.vl_nnpool(y, 2, stride=2, return_switches=True)
    assert p.is_contiguous(memory_format=CL) and s.is_contiguous(memory_format=CL)


def test_numpy_results_are_c_ordered():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    f = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = mcn.vl_nnconv(x, f, None, pad=1)
    assert isinstance(y, np.ndarray) and y.flags["C_CONTIGUOUS"]
    dx, df, _ = mcn.vl_nnconv(x, f, None, np.ones_like(y), pad=1)
    assert dx.flags["C_CONTIGUOUS"] and df.flags["C_CONTIGUOUS"]
    p = mcn.vl_nnpool(y, 2, stride=2)
    assert p.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(
        p, mcn.vl_nnpool(torch.from_numpy(np.ascontiguousarray(y)).double(), 2,
                         stride=2).numpy(), rtol=1e-6)


@pytest.mark.parametrize("leak", [0.0, 0.1])
def test_relu_inplace_writes_over_its_operand(leak):
    x = nm.randn(2, 3, 4, 5)
    dzdy = nm.randn(2, 3, 4, 5)
    y = mcn.vl_nnrelu(x, leak=leak)
    dzdx = mcn.vl_nnrelu(x, dzdy, leak=leak)
    x2, d2 = x.clone(), dzdy.clone()
    y2 = mcn.vl_nnrelu(x2, leak=leak, inplace=True)
    assert y2.data_ptr() == x2.data_ptr() and torch.equal(y2, y)
    dzdx2 = mcn.vl_nnrelu(x, d2, leak=leak, inplace=True)
    assert dzdx2.data_ptr() == d2.data_ptr() and torch.equal(dzdx2, dzdx)
    # the derivative from the output, as the wrappers compute it after freeing x
    assert torch.equal(mcn.vl_nnrelu(y, dzdy, leak=0.0), mcn.vl_nnrelu(x, dzdy, leak=0.0))
    xc = x.contiguous(memory_format=CL)
    assert torch.equal(mcn.vl_nnrelu(xc.clone(memory_format=CL), leak=leak, inplace=True), y)


@pytest.mark.parametrize("shape,pool,stride,pad", [
    ((6, 5, 9, 11), 3, 2, [1, 1, 1, 1]),
    ((5, 3, 10, 7), [3, 2], [2, 1], [1, 2, 0, 1]),    # explicit padding
    ((7, 4, 8, 8), 3, 2, [0, 1, 0, 1]),               # Caffe-style: ceil mode
    ((4, 2, 6, 6), 2, 2, 0),
])
def test_grouped_max_pooling_matches_one_pass(shape, pool, stride, pad, monkeypatch):
    torch.manual_seed(0)
    for x in (torch.randint(0, 3, shape).double(), torch.randn(shape)):   # ties, no ties
        monkeypatch.setattr(P, "_GROUP_BYTES", 1 << 40)
        y0, s0 = mcn.vl_nnpool(x, pool, stride=stride, pad=pad, return_switches=True)
        d0 = mcn.vl_nnpool(x, pool, torch.ones_like(y0), stride=stride, pad=pad)
        for group_bytes in (1, 500, 5000):
            monkeypatch.setattr(P, "_GROUP_BYTES", group_bytes)
            y, s = mcn.vl_nnpool(x, pool, stride=stride, pad=pad, return_switches=True)
            assert torch.equal(y, y0) and torch.equal(s, s0)
            d = mcn.vl_nnpool(x, pool, torch.ones_like(y0), stride=stride, pad=pad)
            assert torch.equal(d, d0)


def test_max_pool_ties_go_to_the_first_maximum_in_column_major_order():
    # maxima at (0, 1) and (1, 0) of a 2 x 2 window: column-major order meets (1, 0) first
    x = torch.tensor([[[[0.0, 5.0], [5.0, 1.0]]]])
    for xx in _both_layouts(x):
        _, s = mcn.vl_nnpool(xx, 2, return_switches=True)
        assert s.flatten().tolist() == [2]
        dzdx = mcn.vl_nnpool(xx, 2, torch.ones(1, 1, 1, 1))
        assert dzdx.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("method", ["max", "avg"])
def test_pool_backward_reads_only_the_shape_of_x(method):
    x = nm.randn(2, 3, 7, 6)
    opts = dict(method=method, pad=[1, 0, 1, 1], stride=[2, 1])
    y, s = mcn.vl_nnpool(x, [3, 2], return_switches=True, **opts)
    dzdy = nm.randn(*y.shape)
    want = mcn.vl_nnpool(x, [3, 2], dzdy, switches=s, **opts)
    spec = T.TensorSpec(x)
    assert spec.describes(x) and not spec.describes(x.clone()) and spec.describes(None)
    stand_in = spec.stand_in()
    assert stand_in.shape == x.shape and stand_in.dtype == x.dtype
    torch.testing.assert_close(mcn.vl_nnpool(stand_in, [3, 2], dzdy, switches=s, **opts),
                               want, rtol=0, atol=0)


def test_dropout_mask_is_drawn_in_index_order_and_keeps_the_layout():
    x = torch.randn(2, 3, 4, 5)
    torch.manual_seed(3)
    expected = (torch.rand(x.shape) >= 0.25).to(x.dtype) * (1 / 0.75)
    for xx in _both_layouts(x):
        torch.manual_seed(3)
        y, mask = mcn.vl_nndropout(xx, rate=0.25)
        assert torch.equal(mask, expected) and torch.equal(y, expected * x)
        assert y.stride() == xx.stride()
        dzdx = mcn.vl_nndropout(xx, xx, mask=mask)
        assert dzdx.stride() == xx.stride() and torch.equal(dzdx, expected * x)
