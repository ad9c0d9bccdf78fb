"""DagNN's training path: ``input_derivatives = False`` and what ``conserve_memory`` frees
and overwrites early (ReLU and pooling inputs, ReLU in place) change no result, whatever the
fan-out, sharing, pass-through layers and precious variables."""

import copy

import pytest
import torch

from matconvnet.dagnn import DagNN
from matconvnet.dagnn import layers as L


def build():
    """conv -> relu -> relu -> {conv, conv 1x1} -> sum -> relu -> sum (1 input) -> relu ->
    max pool -> relu -> dropout -> conv -> loss; the first relu's output also feeds a
    second branch (avg pool -> conv) summed into the objective."""
    net = DagNN()
    net.add_layer("c1", L.Conv(size=[3, 3, 3, 8], pad=1), "x", "a", ["f1", "b1"])
    net.add_layer("r1", L.ReLU(), "a", "b")
    net.add_layer("r1b", L.ReLU(), "b", "b2")
    net.add_layer("c2", L.Conv(size=[3, 3, 8, 8], pad=1), "b2", "c", ["f2", "b2p"])
    net.add_layer("c3", L.Conv(size=[1, 1, 8, 8]), "b2", "d", ["f3", "b3"])
    net.add_layer("s", L.Sum(), ["c", "d"], "e")
    net.add_layer("r2", L.ReLU(), "e", "f")
    net.add_layer("s1", L.Sum(), ["f"], "g")
    net.add_layer("r3", L.ReLU(), "g", "h")
    net.add_layer("p", L.Pooling(poolSize=[2, 2], stride=[2, 2]), "h", "i")
    net.add_layer("r4", L.ReLU(), "i", "j")
    net.add_layer("drop", L.DropOut(rate=0.5), "j", "j2")
    net.add_layer("c4", L.Conv(size=[4, 4, 8, 10]), "j2", "k", ["f4", "b4"])
    net.add_layer("loss", L.Loss(), ["k", "label"], "objective")
    net.add_layer("pb", L.Pooling(method="avg", poolSize=[8, 8]), "b", "m")
    net.add_layer("c5", L.Conv(size=[1, 1, 8, 10]), "m", "n", ["f5", "b5"])
    net.add_layer("loss2", L.Loss(), ["n", "label"], "objective2")
    torch.manual_seed(0)
    net.init_params()
    return net


def _data():
    g = torch.Generator().manual_seed(3)
    return torch.randn(3, 3, 8, 8, generator=g), torch.randint(1, 11, (3,), generator=g)


def _eval(net, x, lab, ders=None):
    torch.manual_seed(1)      # the same dropout masks
    ders = ders or {"objective": torch.tensor(1.0), "objective2": torch.tensor(0.5)}
    net.eval({"x": x, "label": lab}, ders)
    return ders


@pytest.mark.parametrize("mode", ["normal", "test"])
@pytest.mark.parametrize("precious", [None, "a", "b", "b2", "e", "f", "g", "h", "i", "j"])
def test_conserve_memory_changes_no_value(mode, precious):
    net = build()
    net.mode = mode
    ref = copy.deepcopy(net)
    ref.conserve_memory = False
    if precious:
        net.vars[net.get_var_index(precious)].precious = True
    x, lab = _data()
    x0 = x.clone()
    ders = _eval(net, x, lab)
    _eval(ref, x, lab)
    assert torch.equal(x, x0) and float(ders["objective"]) == 1.0
    for p, q in zip(net.params, ref.params):
        assert torch.equal(p.der, q.der), p.name
    assert torch.equal(net.vars[net.get_var_index("x")].der, ref.vars[ref.get_var_index("x")].der)
    if precious:
        v, r = net.vars[net.get_var_index(precious)], ref.vars[ref.get_var_index(precious)]
        assert torch.equal(v.value, r.value) and torch.equal(v.der, r.der)


def test_input_derivatives_off():
    net = build()
    x, lab = _data()
    ref = copy.deepcopy(net)
    _eval(ref, x, lab)
    assert ref.vars[ref.get_var_index("x")].der is not None   # MatConvNet's default
    net.input_derivatives = False
    _eval(net, x, lab)
    assert net.vars[net.get_var_index("x")].der is None
    for p, q in zip(net.params, ref.params):
        torch.testing.assert_close(p.der, q.der, rtol=1e-5, atol=1e-6)


def test_a_layer_reading_only_network_inputs_is_not_backpropagated():
    net = DagNN()
    net.add_layer("r", L.ReLU(), "x", "a")
    net.add_layer("c", L.Conv(size=[3, 3, 3, 4]), "a", "b", ["f", "bb"])
    net.add_layer("loss", L.Loss(), ["b", "label"], "objective")
    torch.manual_seed(0)
    net.init_params()
    calls = []
    relu = net.layers[net.get_layer_index("r")].block
    backward = relu.backward
    object.__setattr__(relu, "backward", lambda *a, **k: calls.append(1) or backward(*a, **k))
    x = torch.randn(2, 3, 6, 6)
    net.eval({"x": x, "label": torch.tensor([1, 2])}, {"objective": 1.0})
    assert calls == [1]
    assert net.vars[net.get_var_index("x")].value is x    # inputs keep their values
    net.input_derivatives = False
    net.eval({"x": x, "label": torch.tensor([1, 2])}, {"objective": 1.0})
    assert calls == [1] and net.vars[net.get_var_index("x")].der is None


class Probe(L.Layer):
    """Passes its input through and notes which variables hold a value."""
    type_name = "test.Probe"
    seen = []

    def forward(self, inputs, params):
        Probe.seen.append({v.name for v in self.net.vars if v.value is not None})
        return [inputs[0]]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [der_outputs[0]], []


def test_relu_and_pool_inputs_are_freed_and_relu_works_in_place():
    net = DagNN()
    net.add_layer("c1", L.Conv(size=[3, 3, 3, 4], pad=1), "x", "a", ["f1", "b1"])
    net.add_layer("r1", L.ReLU(), "a", "b")
    net.add_layer("c2", L.Conv(size=[3, 3, 4, 4], pad=1), "b", "c", ["f2", "b2"])
    net.add_layer("p", L.Pooling(poolSize=[2, 2], stride=[2, 2]), "c", "d")
    net.add_layer("probe", Probe(), "d", "e")
    net.add_layer("c3", L.Conv(size=[3, 3, 4, 10]), "e", "k", ["f3", "b3"])
    net.add_layer("loss", L.Loss(), ["k", "label"], "objective")
    torch.manual_seed(0)
    net.init_params()
    x, lab = torch.randn(2, 3, 6, 6), torch.tensor([1, 2])
    ref = copy.deepcopy(net)
    ref.conserve_memory = False
    net.vars[net.get_var_index("b")].precious = True   # to look at the ReLU's output
    Probe.seen.clear()
    net.eval({"x": x, "label": lab}, {"objective": 1.0})
    # the ReLU input 'a' and the pooling input 'c' were freed during the forward pass
    assert Probe.seen[-1] == {"x", "label", "b", "d"}
    ref.eval({"x": x, "label": lab}, {"objective": 1.0})
    for p, q in zip(net.params, ref.params):
        assert torch.equal(p.der, q.der)
    # in place: the ReLU's output is its input's memory (kept by a precious output 'b')
    net.vars[net.get_var_index("a")].precious = True
    net.eval({"x": x, "label": lab}, {"objective": 1.0})   # 'a' needed: no longer in place
    assert net.vars[net.get_var_index("a")].value.data_ptr() != \
        net.vars[net.get_var_index("b")].value.data_ptr()


def test_pooling_layer_backward_with_the_input_freed():
    import matconvnet as mcn
    layer = L.Pooling(poolSize=[3, 2], stride=[2, 1], pad=[1, 0, 1, 1])

    class Net:
        computing_derivatives = True
        mode = "normal"
    layer.attach(Net(), 0)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    y = layer.forward([x], [])[0]
    dzdy = torch.randn(y.shape, dtype=torch.float64)
    (dx,), _ = layer.backward([None], [], [dzdy])
    torch.testing.assert_close(dx, mcn.vl_nnpool(x, [3, 2], dzdy, pad=[1, 0, 1, 1],
                                                 stride=[2, 1]), rtol=0, atol=0)


def test_no_relu_in_place_on_a_value_another_variable_holds():
    # 'a' is read by a one-input Sum (which passes it through as 'w') before the ReLU:
    # overwriting 'a' would change 'w', which the conv c2 reads afterwards
    net = DagNN()
    net.add_layer("c1", L.Conv(size=[3, 3, 3, 4], pad=1), "x", "a", ["f1", "b1"])
    net.add_layer("pass", L.Sum(), ["a"], "w")
    net.add_layer("r", L.ReLU(), "a", "b")
    net.add_layer("c2", L.Conv(size=[6, 6, 4, 10]), "w", "k", ["f2", "b2"])
    net.add_layer("c3", L.Conv(size=[6, 6, 4, 10]), "b", "k2", ["f3", "b3"])
    net.add_layer("loss", L.Loss(), ["k", "label"], "objective")
    net.add_layer("loss2", L.Loss(), ["k2", "label"], "objective2")
    torch.manual_seed(0)
    net.init_params()
    assert net.execution_order.index(1) < net.execution_order.index(2)
    ref = copy.deepcopy(net)
    ref.conserve_memory = False
    x, lab = torch.randn(2, 3, 6, 6), torch.tensor([1, 2])
    for n in (net, ref):
        n.vars[n.get_var_index("k")].precious = True
        n.eval({"x": x, "label": lab})                     # forward only: 'a' not needed
    k, k_ref = (n.vars[n.get_var_index("k")].value for n in (net, ref))
    assert torch.equal(k, k_ref)
    for n in (net, ref):
        n.eval({"x": x, "label": lab}, {"objective": 1.0, "objective2": 1.0})
    for p, q in zip(net.params, ref.params):
        assert torch.equal(p.der, q.der)
