"""Every block on CUDA tensors gives the CPU's results (forward and every derivative), in
float32 and float64, and keeps the device and dtype; half precision runs where it should.

Skipped, with a message, when no CUDA device is available."""
import pytest
import torch

import matconvnet as mcn

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available"),
]


def _r(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def _distinct(*shape):
    n = 1
    for s in shape:
        n *= s
    return torch.randperm(n, dtype=torch.float64).reshape(shape) / n


def _grid(n, ho, wo):
    return torch.rand(n, 2, ho, wo, dtype=torch.float64) * 1.8 - 0.9


# name -> (function, positional inputs, positional options, keyword options)
def _cases():
    labels = torch.tensor([1, 3, 2, 5], dtype=torch.float64)
    rois = torch.tensor([[1, 1, 1, 6, 5], [2, 2, 3, 7, 8], [1, 0, 0, 3, 9]],
                        dtype=torch.float64).t()
    return {
        "conv": (mcn.vl_nnconv, [_r(4, 6, 9, 8), _r(8, 3, 3, 2), _r(8)], [],
                 dict(pad=[1, 0, 2, 1], stride=[2, 1], dilate=[1, 2])),
        "conv_identity": (mcn.vl_nnconv, [_r(2, 3, 5, 5), None, _r(3)], [], dict(stride=2, pad=1)),
        "conv_fc": (mcn.vl_nnconv, [_r(4, 3, 5, 5), _r(7, 3, 5, 5), _r(7)], [], {}),
        "convt": (mcn.vl_nnconvt, [_r(2, 4, 5, 6), _r(4, 3, 3, 4), _r(6)], [],
                  dict(upsample=[2, 3], crop=[1, 0, 2, 1], num_groups=2)),
        "pool_max": (mcn.vl_nnpool, [_distinct(2, 3, 9, 8)], [[3, 2]],
                     dict(method="max", pad=[1, 2, 0, 1], stride=2)),
        "pool_avg": (mcn.vl_nnpool, [_r(2, 3, 9, 8)], [3], dict(method="avg", pad=1, stride=2)),
        "relu": (mcn.vl_nnrelu, [_r(2, 3, 4, 5)], [], dict(leak=0.1)),
        "sigmoid": (mcn.vl_nnsigmoid, [_r(2, 3, 4, 5)], [], {}),
        "softmax": (mcn.vl_nnsoftmax, [_r(2, 6, 4, 5)], [], {}),
        "loss_softmaxlog": (mcn.vl_nnloss, [_r(4, 6, 2, 3), labels], [], {}),
        "loss_mshinge": (mcn.vl_nnloss, [_r(4, 6, 2, 3), labels], [], dict(loss="mshinge")),
        "loss_logistic": (mcn.vl_nnloss, [_r(4, 6, 2, 3), torch.sign(_r(4, 6, 2, 3))], [],
                          dict(loss="logistic")),
        "softmaxloss": (mcn.vl_nnsoftmaxloss, [_r(4, 6, 2, 3), labels], [], {}),
        "bnorm": (mcn.vl_nnbnorm, [_r(4, 5, 3, 3), _r(5), _r(5)], [], {}),
        "normalize": (mcn.vl_nnnormalize, [_r(2, 7, 3, 4)], [[5, 1, 0.1, 0.75]], {}),
        "spnorm": (mcn.vl_nnspnorm, [_r(2, 3, 6, 5)], [[3, 2, 0.5, 0.75]], {}),
        "normalizelp": (mcn.vl_nnnormalizelp, [_r(2, 4, 3, 5)], [], dict(p=4, dimensions=[1, 2])),
        "pdist": (mcn.vl_nnpdist, [_r(2, 4, 3, 5), _r(2, 4, 1, 1)], [3], {}),
        "bilinearsampler": (mcn.vl_nnbilinearsampler, [_r(2, 3, 6, 7), _grid(4, 5, 4)], [], {}),
        "roipool_max": (mcn.vl_nnroipool, [_distinct(2, 3, 9, 10), rois], [],
                        dict(method="max", subdivisions=[2, 3])),
        "roipool_avg": (mcn.vl_nnroipool, [_r(2, 3, 9, 10), rois], [],
                        dict(method="avg", subdivisions=[3, 2], transform=0.5)),
        "crop": (mcn.vl_nncrop, [_r(2, 3, 6, 7)], [[1, 2, 0, 3]], {}),
        "noffset": (mcn.vl_nnnoffset, [_r(2, 4, 3, 5)], [[0.5, 0.3]], {}),
    }


CASES = _cases()
# Inputs that are labels or ROIs: moved to the device but not cast to the data dtype.
_NOT_DATA = {("loss_softmaxlog", 1), ("loss_mshinge", 1), ("softmaxloss", 1),
             ("roipool_max", 1), ("roipool_avg", 1)}


def _to(name, inputs, device, dtype):
    out = []
    for i, t in enumerate(inputs):
        if t is None:
            out.append(None)
        elif (name, i) in _NOT_DATA:
            out.append(t.to(device))
        else:
            out.append(t.to(device=device, dtype=dtype))
    return out


def _run(name, device, dtype):
    fn, inputs, extra, kwargs = CASES[name]
    args = _to(name, inputs, device, dtype) + list(extra)
    y = fn(*args, **kwargs)
    torch.manual_seed(0)
    dzdy = torch.randn(y.shape, dtype=torch.float64).to(device=device, dtype=dtype)
    ders = fn(*args, dzdy, **kwargs)
    ders = ders if isinstance(ders, tuple) else (ders,)
    return y, ders


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["single", "double"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_matches_cpu(name, dtype):
    y_cpu, d_cpu = _run(name, "cpu", dtype)
    y_gpu, d_gpu = _run(name, "cuda", dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for what, a, b in [("y", y_cpu, y_gpu)] + [(f"der{i}", a, b) for i, (a, b) in
                                                enumerate(zip(d_cpu, d_gpu))]:
        if a is None:
            assert b is None
            continue
        assert b.device.type == "cuda" and b.dtype == a.dtype, f"{name}: {what} on {b.device} {b.dtype}"
        scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
        err = float((a - b.cpu()).abs().max()) if a.numel() else 0.0
        assert err <= tol * scale, f"{name}: {what} differs by {err:.3g}"


def test_cuda_dropout_mask_on_device():
    x = torch.randn(4, 3, 5, 5, device="cuda")
    y, mask = mcn.vl_nndropout(x, rate=0.25)
    assert mask.device.type == "cuda" and mask.dtype == x.dtype
    keep = torch.tensor(1 / 0.75, dtype=x.dtype).item()
    assert set(mask.unique().tolist()) <= {0.0, keep}
    dzdx = mcn.vl_nndropout(x, torch.ones_like(x), mask=mask)
    assert torch.equal(dzdx, mask)


def test_cuda_concat():
    xs = [torch.randn(2, c, 3, 3, device="cuda") for c in (1, 2, 3)]
    y = mcn.vl_nnconcat(xs, 1)
    parts = mcn.vl_nnconcat(xs, 1, torch.ones_like(y))
    assert y.is_cuda and [p.shape for p in parts] == [x.shape for x in xs]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
def test_cuda_half_precision_conv_pool_relu(dtype):
    x = torch.randn(4, 8, 16, 16, device="cuda")
    f = torch.randn(16, 8, 3, 3, device="cuda") * 0.1
    b = torch.randn(16, device="cuda")
    y = mcn.vl_nnconv(x.to(dtype), f.to(dtype), b.to(dtype), pad=1)
    assert y.dtype == dtype
    ref = mcn.vl_nnconv(x, f, b, pad=1)
    assert float((y.float() - ref).abs().max()) < 0.05 * float(ref.abs().max())
    z = mcn.vl_nnpool(mcn.vl_nnrelu(y), 2, stride=2)
    dzdx = mcn.vl_nnpool(y, 2, torch.ones_like(z), stride=2)
    assert z.dtype == dtype and dzdx.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["single", "double"])
@pytest.mark.parametrize("values", ["distinct", "ties", "nonfinite"])
def test_cuda_pool_switches_match_cpu(values, dtype):
    """The forward pass's switches (first maximum in column-major window order) and the
    backward pass that consumes them agree with the CPU, also on plateaus of equal values
    and on windows holding -inf and NaN (NaN is never selected; windows of only -inf/NaN
    pass no derivative)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 11, 9) if values == "distinct" else \
        torch.randint(0, 3, (2, 3, 11, 9)).float()
    if values == "nonfinite":
        x[0, 0, :4, :5] = float("-inf")
        x[0, 1, 2, 3] = float("nan")
        x[1, 2, :3, :3] = float("nan")
    x = x.to(dtype)
    opts = dict(method="max", pad=[1, 0, 2, 1], stride=[2, 3])
    out = {}
    for dev in ("cpu", "cuda"):
        xd = x.to(dev)
        y, sw = mcn.vl_nnpool(xd, [3, 4], return_switches=True, **opts)
        dzdy = torch.arange(y.numel(), dtype=x.dtype).reshape(y.shape).to(dev)
        dzdx = mcn.vl_nnpool(xd, [3, 4], dzdy, switches=sw, **opts)
        plain = mcn.vl_nnpool(xd, [3, 4], dzdy, **opts)
        assert sw.device.type == dev and dzdx.device.type == dev
        torch.testing.assert_close(dzdx, plain, rtol=0, atol=0, equal_nan=True)
        out[dev] = (y.cpu(), sw.cpu(), dzdx.cpu())
    for a, b in zip(out["cpu"], out["cuda"]):
        torch.testing.assert_close(b, a, rtol=0, atol=0, equal_nan=True)


def test_cuda_dagnn_matches_cpu():
    from matconvnet.dagnn import DagNN
    from matconvnet.models import cnn_mnist_init
    net = DagNN.from_simplenn(cnn_mnist_init(batch_normalization=True), canonical_names=True)
    for p in net.params:
        p.value = p.value.double()
    out = net.get_outputs()[0]
    net.vars[net.get_var_index(out)].precious = True
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    label = torch.tensor([1, 5, 3, 10])
    res = {}
    for dev in ("cpu", "cuda"):
        net.move(dev)
        net.eval({"input": x.to(dev), "label": label.to(dev)},
                 {out: torch.tensor(1.0, dtype=torch.float64, device=dev)})
        res[dev] = [net.vars[net.get_var_index(out)].value.cpu()] + \
                   [p.der.cpu() for p in net.params]
    for a, b in zip(res["cpu"], res["cuda"]):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
def test_cuda_half_precision_bnorm_with_moments(dtype):
    """The wrappers' call pattern: the backward call gets the forward call's moments."""
    x = torch.randn(8, 4, 6, 6, device="cuda") * 2 + 1
    g, b = torch.rand(4, device="cuda") + 0.5, torch.randn(4, device="cuda")
    dzdy = torch.randn_like(x)
    y, m = mcn.vl_nnbnorm(x.to(dtype), g.to(dtype), b.to(dtype), return_moments=True)
    dzdx, dzdg, dzdb, m2 = mcn.vl_nnbnorm(x.to(dtype), g.to(dtype), b.to(dtype),
                                          dzdy.to(dtype), moments=m)
    assert y.dtype == dzdx.dtype == dzdg.dtype == dtype and torch.equal(m2, m)
    ref = mcn.vl_nnbnorm(x, g, b, dzdy)
    for got, want in zip((dzdx, dzdg, dzdb), ref[:3]):
        assert float((got.float() - want).abs().max()) < 0.05 * max(1.0, float(want.abs().max()))


def test_cuda_bnorm_cudnn_and_native_kernels_agree():
    x = torch.randn(6, 5, 7, 7, dtype=torch.float64, device="cuda") * 3 + 2
    g = torch.rand(5, dtype=torch.float64, device="cuda") + 0.5
    b = torch.randn(5, dtype=torch.float64, device="cuda")
    dzdy = torch.randn_like(x)
    for moments in (None, torch.rand(5, 2, dtype=torch.float64, device="cuda") + 0.5):
        outs = [mcn.vl_nnbnorm(x, g, b, moments=moments, cudnn=flag) for flag in (True, False)]
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
        ders = [mcn.vl_nnbnorm(x, g, b, dzdy, moments=moments, cudnn=flag)
                for flag in (True, False)]
        for a, c in zip(*ders):
            torch.testing.assert_close(a, c, rtol=1e-9, atol=1e-9)
