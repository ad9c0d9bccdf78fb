"""vl_simplenn's training path: ``input_derivative=False`` and what ``conserve_memory`` frees
and overwrites early (ReLU and pooling inputs, ReLU in place) change no result."""

import weakref

import pytest
import torch

import matconvnet.simplenn.simplenn as S
from matconvnet.simplenn import vl_simplenn, vl_simplenn_tidy


def _conv(g, k, c, s, pad=0):
    return {"type": "conv", "weights": [torch.randn(k, c, s, s, generator=g) / 5,
                                        torch.randn(k, generator=g) / 5], "pad": pad}


def net_a(seed=0):
    """conv, max pool, relu, conv, relu, relu, avg pool, conv, softmaxloss."""
    g = torch.Generator().manual_seed(seed)
    layers = [_conv(g, 6, 3, 3, 1), {"type": "pool", "pool": 3, "stride": 2, "pad": [0, 1, 0, 1]},
              {"type": "relu"}, _conv(g, 8, 6, 3, 1), {"type": "relu"}, {"type": "relu"},
              {"type": "pool", "pool": 2, "stride": 2, "method": "avg"}, _conv(g, 5, 8, 2),
              {"type": "softmaxloss", "class": torch.tensor([1, 5, 3])}]
    return vl_simplenn_tidy({"layers": layers, "meta": {}})


def net_b(seed=1):
    """relu first, then conv, dropout, relu, max pool, leaky relu, conv, sigmoid, relu,
    conv, loss."""
    g = torch.Generator().manual_seed(seed)
    layers = [{"type": "relu"}, _conv(g, 6, 3, 3, 1), {"type": "dropout", "rate": 0.5},
              {"type": "relu"}, {"type": "pool", "pool": 2, "stride": 2},
              {"type": "relu", "leak": 0.1}, _conv(g, 6, 6, 3, 1), {"type": "sigmoid"},
              {"type": "relu"}, _conv(g, 5, 6, 4), {"type": "softmaxloss",
                                                    "class": torch.tensor([2, 4, 1])}]
    return vl_simplenn_tidy({"layers": layers, "meta": {}})


def _x():
    return torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))


def _ders(res):
    return [d for r in res for d in (r["dzdw"] or []) if d is not None]


def _run(net, x, dzdy=1.0, **opts):
    torch.manual_seed(0)      # the same dropout masks
    return vl_simplenn(net, x, dzdy, **opts)


@pytest.mark.parametrize("build", [net_a, net_b])
@pytest.mark.parametrize("mode", ["normal", "test"])
@pytest.mark.parametrize("precious", [None, 0, 1, 2, 3, 4, 5])
def test_conserve_memory_changes_no_value(build, mode, precious):
    net = build()
    if precious is not None:
        net["layers"][precious]["precious"] = True
    x = _x()
    x0 = x.clone()
    dzdy = torch.tensor(1.0)
    full = _run(net, x, mode=mode)
    lean = _run(net, x, dzdy, mode=mode, conserve_memory=True)
    assert torch.equal(x, x0) and dzdy == 1.0
    assert torch.equal(lean[-1]["x"], full[-1]["x"])
    assert torch.equal(lean[0]["dzdx"], full[0]["dzdx"])
    for a, b in zip(_ders(lean), _ders(full)):
        assert torch.equal(a, b)
    if precious is not None:   # a precious layer keeps its output and its derivative
        assert torch.equal(lean[precious + 1]["x"], full[precious + 1]["x"])
        assert torch.equal(lean[precious + 1]["dzdx"], full[precious + 1]["dzdx"])


@pytest.mark.parametrize("build", [net_a, net_b])
def test_input_derivative_off_skips_only_the_input_derivative(build, monkeypatch):
    net = build()
    x = _x()
    full = _run(net, x)
    assert full[0]["dzdx"] is not None           # MatConvNet's default
    calls = []
    for t in ("relu", "conv"):
        spec = S.LAYER_TYPES[t]
        monkeypatch.setitem(S.LAYER_TYPES, t, spec._replace(
            block=lambda *a, _b=spec.block, _t=t, **k: calls.append((_t, a, k)) or _b(*a, **k)))
    lean = _run(net, x, input_derivative=False, conserve_memory=True)
    assert lean[0]["dzdx"] is None
    assert torch.equal(lean[-1]["x"], full[-1]["x"])
    for a, b in zip(_ders(lean), _ders(full)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    first = [c for c in calls if c[1][0] is x]   # the calls on the network input
    if net["layers"][0]["type"] == "relu":
        assert len(first) == 1                   # forward only: not backpropagated at all
    else:                                        # the conv skips its data derivative
        assert len(first) == 2 and first[1][2].get("no_der_data") is True


def test_input_derivative_off_with_back_prop_depth():
    net = net_a()
    res = _run(net, _x(), back_prop_depth=4, input_derivative=False)
    n = len(net["layers"])
    assert res[n - 4]["dzdx"] is None and res[n - 3]["dzdx"] is not None
    assert res[n - 4]["dzdw"] == [] or all(d is None for d in res[n - 4]["dzdw"])


def _spy_conv(monkeypatch, outputs):
    """Record weak references to the outputs of the conv blocks vl_simplenn calls."""
    spec = S.LAYER_TYPES["conv"]

    def block(*args, **kwargs):
        out = spec.block(*args, **kwargs)
        if torch.is_tensor(out):
            outputs.append(weakref.ref(out))
        return out
    monkeypatch.setitem(S.LAYER_TYPES, "conv", spec._replace(block=block))


def _probe(seen, watched):
    """A pass-through custom layer noting which of the watched tensors are gone."""
    def forward(l, a, b):
        seen.append([r() is None for r in watched])
        b["x"] = a["x"]
        return b

    def backward(l, a, b):
        a["dzdx"] = b["dzdx"]
        return a
    return {"type": "custom", "forward": forward, "backward": backward}


def test_relu_and_pool_inputs_are_freed_during_the_forward_pass(monkeypatch):
    outputs, seen = [], []
    _spy_conv(monkeypatch, outputs)
    g = torch.Generator().manual_seed(0)
    probe = _probe(seen, outputs)
    net = vl_simplenn_tidy({"layers": [
        _conv(g, 4, 3, 3, 1), {"type": "relu"},                            # conv1 -> relu
        _conv(g, 4, 4, 3, 1), {"type": "pool", "pool": 2, "stride": 2},    # conv2 -> pool
        probe, _conv(g, 5, 4, 4), {"type": "softmaxloss", "class": torch.tensor([1, 2, 3])}],
        "meta": {}})
    _run(net, _x(), conserve_memory=True)
    # conv1's output was overwritten in place by the ReLU (whose output, needed by its
    # derivative, is alive); conv2's output, pooling's input, was freed
    assert seen[-1] == [False, True]
    seen.clear()
    outputs.clear()
    _run(net, _x(), conserve_memory=False)
    assert seen[-1] == [False, False]


def test_relu_overwrites_its_input_in_place(monkeypatch):
    outputs = []
    _spy_conv(monkeypatch, outputs)
    net = net_a()
    net["layers"][4]["precious"] = True            # keep the ReLU's output to look at it
    res = _run(net, _x(), conserve_memory=True)
    conv2_out = [r() for r in outputs][1]
    assert conv2_out is not None and res[5]["x"].data_ptr() == conv2_out.data_ptr()


def test_forget_rules():
    layers = net_b()["layers"]
    # training: only ReLU and pooling inputs, and not after a layer that reads its output
    assert [S._forget_input(layers, i, True) for i in range(len(layers))] == \
        [False, False, False, True, False, True, False, False, False, False, False]
    # forward only: every input but the network input's -- which is never forgotten when
    # backpropagating -- and a loss output
    assert all(S._forget_input(layers, i, False) for i in range(len(layers)))
    assert S._forget_input(layers, 0, False) and not S._forget_input(layers, 0, True)
