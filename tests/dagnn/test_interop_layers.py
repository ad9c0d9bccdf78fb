"""The DagNN layers added for imported networks (PReLU, BinaryOp, Reshape, Permute, Pad,
Clip, HardSigmoid): forward against plain torch formulas, backward against float64
central differences (tests/numerics.py), output sizes against actual outputs, and
save/load through dicts and MAT files (parameters reshaped by their shape properties, as
MAT files drop trailing singleton dimensions)."""
from types import SimpleNamespace

import pytest
import torch

import matconvnet.io as mio
from matconvnet.dagnn import DagNN
from matconvnet.dagnn import layers as L
from tests import numerics as nm

D = torch.float64


def stub(layer, inputs=("x",), params=()):
    net = SimpleNamespace(mode="test",
                          layers=[SimpleNamespace(name="l", inputs=list(inputs), outputs=["y"],
                                                  params=list(params), block=layer)],
                          params=[])
    layer.attach(net, 0)
    return layer


def check_layer(layer, inputs, params=(), rtol=1e-6):
    """Forward size, and every input/param derivative against central differences."""
    inputs, params = list(inputs), list(params)
    y = layer.forward(inputs, params)[0]
    sizes = [tuple(x.shape) for x in inputs]
    assert tuple(layer.get_output_sizes(sizes)[0]) == tuple(y.shape)
    dzdy = nm.randn(*y.shape)
    der_in, der_p = layer.backward(inputs, params, [dzdy], outputs=[y])
    assert len(der_in) == len(inputs) and len(der_p) == len(params)
    args = inputs + params
    n = len(inputs)

    def fn(*a):
        return layer.forward(list(a[:n]), list(a[n:]))[0]
    for k, d in enumerate(list(der_in) + list(der_p)):
        assert d is not None and d.shape == args[k].shape, k
        nm.check_derivative(fn, args, k, dzdy, d, rtol=rtol, what=f"argument {k}")
    return y


def test_prelu():
    x = nm.distinct(2, 3, 4, 5, scale=0.1)
    a = nm.randn(3)
    y = check_layer(stub(L.PReLU()), [x], [a])
    nm.assert_close(y, torch.where(x > 0, x, a.view(1, 3, 1, 1) * x))
    layer = stub(L.PReLU(slopeShape=[1, 1, 4, 1]))
    a = nm.randn(4, 1)
    y = check_layer(layer, [x], [a])
    nm.assert_close(y, torch.where(x > 0, x, a.view(1, 1, 4, 1) * x))
    check_layer(stub(L.PReLU()), [x], [nm.randn(1)])          # one slope for all
    assert L.PReLU(numChannels=5).init_params()[0].shape == (5,)
    with pytest.raises(ValueError, match="slope: expected an array that broadcasts"):
        L.PReLU().forward([x], [nm.randn(2)])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_op_two_inputs_with_broadcasting(op):
    a = nm.randn(2, 3, 4, 5)
    b = nm.randn(2, 3, 1, 1).abs() + 0.5
    ref = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
    y = check_layer(stub(L.BinaryOp(op=op), inputs=("a", "b")), [a, b])
    nm.assert_close(y, ref)
    check_layer(stub(L.BinaryOp(op=op), inputs=("a", "b")), [b, a.abs() + 0.5])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("reverse", [False, True])
def test_binary_op_with_a_constant_parameter(op, reverse):
    x = nm.randn(2, 3, 4, 5).abs() + 0.5
    c = nm.randn(3, 4).abs() + 0.5                     # stored flat, viewed as 1 x 3 x 4 x 1
    layer = stub(L.BinaryOp(op=op, constShape=[1, 3, 4, 1], reverse=reverse),
                 params=("c",))
    y = check_layer(layer, [x], [c])
    c4 = c.view(1, 3, 4, 1)
    a, b = (c4, x) if reverse else (x, c4)
    nm.assert_close(y, {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op])


def test_binary_op_output_grows_with_the_constant():
    layer = stub(L.BinaryOp(op="mul", constShape=[1, 1, 3, 1]))
    x = nm.randn(2, 4, 1, 5)
    y = check_layer(layer, [x], [nm.randn(3)])
    assert y.shape == (2, 4, 3, 5)
    with pytest.raises(ValueError, match="op"):
        L.BinaryOp(op="pow")
    bad = stub(L.BinaryOp(op="add", constShape=[1, 3, 1, 1]))
    with pytest.raises(ValueError, match=r"shapes \(2, 4, 1, 5\) and \(1, 3, 1, 1\)"):
        bad.forward([x], [nm.randn(3)])


def test_reshape_and_permute():
    x = nm.randn(2, 3, 4, 5)
    y = check_layer(stub(L.Reshape(shape=[-1, 1, 1])), [x])
    nm.assert_close(y, x.reshape(2, 60, 1, 1))
    y = check_layer(stub(L.Reshape(shape=[5, 3, 4])), [x])
    nm.assert_close(y, x.reshape(2, 5, 3, 4))
    assert L.Reshape(shape=[7, 1, 1]).get_output_sizes([(float("nan"), 7, 1, 1)])[0][1:] \
        == (7, 1, 1)
    with pytest.raises(ValueError, match="shape"):
        L.Reshape(shape=[-1, -1, 1])
    with pytest.raises(ValueError, match="cannot reshape"):
        L.Reshape(shape=[7, 1, 1]).get_output_sizes([(2, 3, 4, 5)])
    y = check_layer(stub(L.Permute(perm=[0, 3, 2, 1])), [x])
    nm.assert_close(y, x.permute(0, 3, 2, 1))
    with pytest.raises(ValueError, match="perm"):
        L.Permute(perm=[0, 1, 1, 2])


def test_pad():
    x = nm.randn(2, 3, 4, 5)
    layer = stub(L.Pad(pad=[1, 0, 2, 3], value=0.5))
    y = check_layer(layer, [x])
    nm.assert_close(y, torch.nn.functional.pad(x, (2, 3, 1, 0), value=0.5))
    layer2 = stub(L.Pad(pad=[-1, 2, 0, -2], value=-0.5))     # negative entries crop
    y = check_layer(layer2, [x])
    nm.assert_close(y, torch.nn.functional.pad(x[:, :, 1:, :3], (0, 0, 0, 2), value=-0.5))
    with pytest.raises(ValueError, match="leaves nothing"):
        L.Pad(pad=[-2, -2, 0, 0]).forward([x], [])
    rf = layer.get_receptive_fields()[0][0]
    assert (rf[0].size, rf[0].stride, rf[0].offset) == (1, 1, 0)   # 1 - P_top
    assert (rf[1].offset) == -1


def test_clip_and_hard_sigmoid():
    x = nm.distinct(2, 3, 4, 5, scale=0.05)
    y = check_layer(stub(L.Clip(min=-0.5, max=1.0)), [x])
    nm.assert_close(y, x.clamp(-0.5, 1.0))
    y = check_layer(stub(L.Clip(max=0.3)), [x])
    nm.assert_close(y, x.clamp(max=0.3))
    y = check_layer(stub(L.HardSigmoid(alpha=0.4, beta=0.3)), [x])
    nm.assert_close(y, (0.4 * x + 0.3).clamp(0, 1))


NEW = {
    "PReLU": dict(slopeShape=[1, 3, 1, 1], numChannels=3),
    "BinaryOp": dict(op="div", constShape=[1, 1, 2, 2], reverse=True),
    "Reshape": dict(shape=[2, -1, 1]),
    "Permute": dict(perm=[0, 2, 1, 3]),
    "Pad": dict(pad=[1, 2, 3, 4], value=-1.5),
    "Clip": dict(min=-1.0, max=6.0),
    "HardSigmoid": dict(alpha=1 / 6, beta=0.5),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_registered_and_save_load(name):
    cls = getattr(L, name)
    assert L.LAYER_CLASSES[f"dagnn.{name}"] is cls
    layer = cls(**NEW[name])
    saved = layer.save()
    assert L.layer_class(cls.type_name).load(saved).save() == saved


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_network_of_new_layers_survives_a_mat_file(tmp_path, fmt):
    net = DagNN()
    net.add_layer("prelu", L.PReLU(slopeShape=[1, 3, 1, 1]), ["x"], ["a"], ["slope"])
    net.add_layer("scale", L.BinaryOp(op="mul", constShape=[1, 3, 4, 1]), ["a"], ["b"], ["c"])
    net.add_layer("pad", L.Pad(pad=[1, 0, 0, 2], value=0.25), ["b"], ["p"])
    net.add_layer("perm", L.Permute(perm=[0, 3, 1, 2]), ["p"], ["q"])
    net.add_layer("clip", L.Clip(min=-0.5, max=0.5), ["q"], ["r"])
    net.add_layer("hs", L.HardSigmoid(), ["r"], ["s"])
    net.add_layer("flat", L.Reshape(shape=[-1, 1, 1]), ["s"], ["t"])
    net.add_layer("sub", L.BinaryOp(op="sub"), ["t", "t"], ["u"])
    net.add_layer("add", L.BinaryOp(op="add"), ["t", "u"], ["y"])
    net.params[net.get_param_index("slope")].value = torch.tensor([0.1, 0.2, 0.3])
    net.params[net.get_param_index("c")].value = torch.randn(1, 3, 4, 1)
    x = torch.randn(2, 3, 4, 5)
    net.eval({"x": x})
    y = net.vars[net.get_var_index("y")].value.clone()
    path = tmp_path / "net.mat"
    mio.save_dagnn(path, net, format=fmt)
    again = mio.load_dagnn(path)
    assert [l.block.type_name for l in again.layers] == [l.block.type_name for l in net.layers]
    again.eval({"x": x})
    nm.assert_close(again.vars[again.get_var_index("y")].value, y, rtol=1e-6)
    assert again.get_var_sizes({"x": (2, 3, 4, 5)})["y"] == tuple(y.shape)
