"""to_torch: SimpleNN and DagNN networks as torch.nn.Modules (issue 8).

The example networks agree with vl_simplenn / DagNN.eval in 'test' mode within 1e-4
relative; the modules of ours agree with the blocks over many geometries; a backward pass
through the module matches DagNN's own backward; modules script, export and fx-trace."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

from matconvnet import blocks as B
from matconvnet.dagnn import DagNN
from matconvnet.dagnn import layers as L
from matconvnet.io import to_torch
from matconvnet.io import torch_export as TE
from matconvnet.io._lower import lower
from tests.io import export_nets as EN

RTOL = 1e-4


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


# ----------------------------------------------------------------------------- the models


@pytest.mark.parametrize("name", list(EN.CASES))
def test_example_networks_match_matconvnet(name):
    net, x = EN.make(name)
    (ref,) = EN.reference(net, {"input" if isinstance(net, DagNN) else "x0": x})
    module = to_torch(net).eval()
    with torch.no_grad():
        y = module(x)
    assert rel_err(y, ref) < RTOL
    assert float(ref.std()) > 0  # a degenerate (constant) output would prove nothing
    assert len(module.output_names) == 1 and not any("label" in v for v in module.input_names)


def test_alexnet_groups_come_from_meta():
    graph = lower(EN.CASES["alexnet"][0]())
    assert graph.channels["x0"] == 3   # meta.inputSize [227 227 3 N]
    assert [op.attrs["groups"] for op in graph.ops if op.kind == "conv"] == \
        [1, 2, 1, 2, 2, 1, 1, 1]


# ----------------------------------------------------------------------------- the zoo


def test_zoo_dagnn_matches_in_test_mode():
    net = EN.zoo()
    x = torch.randn(2, 3, 13, 11)
    (ref,) = EN.reference(net, {"input": x})
    module = to_torch(net).eval()
    assert module.input_names == ["input"] and module.output_names == ["prob"]
    assert rel_err(module(x), ref) < RTOL
    # any image size: the crops and the clipped windows follow the input
    x2 = torch.randn(1, 3, 10, 16)
    (ref2,) = EN.reference(net, {"input": x2})
    assert rel_err(module(x2), ref2) < RTOL


def test_simplenn_zoo_matches_in_test_mode():
    net = EN.simple_zoo()
    x = torch.randn(2, 2, 9, 10)
    (ref,) = EN.reference(net, {"x0": x})
    module = to_torch(net).eval()
    assert module.input_names == ["x0"] and module.output_names == ["x13"]
    assert rel_err(module(x), ref) < RTOL


def test_normal_mode_matches_training_mode():
    """train() is MatConvNet's 'normal' mode: batch norm on the batch moments."""
    net = EN.zoo(dropout=0.0)
    x = torch.randn(3, 3, 12, 12)
    net.mode = "normal"
    net.vars[net.get_var_index("prob")].precious = True
    net.eval({"input": x})
    ref = net.vars[net.get_var_index("prob")].value
    assert rel_err(to_torch(net).train()(x), ref) < RTOL


def _float64(net: DagNN) -> DagNN:
    for p in net.params:
        p.value = p.value.double()
    return net


@pytest.mark.parametrize("losses", [False, True])
def test_backward_matches_dagnn(losses):
    """Autograd through the module gives DagNN's own derivatives (float64, 'normal' mode,
    no dropout); with losses=True the Loss layer runs through its backward method."""
    net = _float64(EN.zoo(dropout=0.0))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 13, 11, generator=g, dtype=torch.float64)
    label = torch.randint(1, 6, (2, 1, 6, 3), generator=g).double()
    dzdy = torch.randn(2, 5, 6, 3, generator=g, dtype=torch.float64)
    net.mode = "normal"
    if losses:
        net.eval({"input": x, "label": label}, {"objective": 1.0})
    else:
        net.eval({"input": x}, {"prob": dzdy})
    module = to_torch(net, losses=losses).train()
    xi = x.clone().requires_grad_()
    if losses:
        assert module.input_names == ["input", "label"]
        assert module.output_names == ["prob", "objective"]
        module(xi, label)[1].backward()
    else:
        module(xi).backward(dzdy)
    ders = {"input": (xi.grad, net.vars[net.get_var_index("input")].der)}
    params = dict(module.named_parameters())
    for name, key in module.param_names.items():
        if key in params:
            ref = net.params[net.get_param_index(name)].der
            ders[name] = (params[key].grad.reshape(ref.shape), ref)
    assert set(ders) >= {"input", "c1f", "bn1g", "c2f", "sa", "sb", "uf", "ub", "fcf"}
    scale = max(float(r.abs().max()) for _, r in ders.values())
    for name, (d, r) in ders.items():
        # conv1's bias is followed by batch norm: its true derivative is 0 (rounding noise)
        assert float((d - r).abs().max()) <= 1e-9 * scale + 1e-9 * float(r.abs().max()), name


def test_training_moves_the_moments_and_leaves_the_net_alone():
    net = EN.zoo()
    before = net.params[net.get_param_index("bn1m")].value.clone()
    module = to_torch(net).train()
    bn = module.bn1
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        c1 = module.conv1(x)
    var, mu = torch.var_mean(c1, [0, 2, 3], unbiased=False)
    batch = torch.stack((mu, (var + bn.epsilon).sqrt()), 1)
    module(x).sum().backward()
    expected = 0.9 * before + 0.1 * batch
    assert torch.allclose(bn.moments, expected, atol=1e-6)
    assert torch.equal(net.params[net.get_param_index("bn1m")].value, before)
    with torch.no_grad():
        for p in module.parameters():
            p -= 0.1 * p.grad
    assert not torch.equal(module.conv1.weight, net.params[net.get_param_index("c1f")].value)


def test_shared_parameters_stay_shared():
    net = DagNN()
    net.add_layer("a", L.Conv(size=[3, 3, 2, 2], pad=1), "input", "h", ["w", "b"])
    net.add_layer("r", L.ReLU(), "h", "hr")
    net.add_layer("c", L.Conv(size=[3, 3, 2, 2], pad=1), "hr", "y", ["w", "b"])
    net.init_params()
    _float64(net)
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    dzdy = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    net.eval({"input": x}, {"y": dzdy})
    module = to_torch(net)
    assert module.a.weight is module.c.weight
    assert len(list(module.parameters())) == 2
    module(x).backward(dzdy)
    assert rel_err(module.a.weight.grad, net.params[net.get_param_index("w")].der) < 1e-10
    assert module.param_names == {"w": "a.weight", "b": "a.bias"}


def test_dropout_and_state_dict():
    net = EN.zoo(dropout=0.5)
    module = to_torch(net)
    assert isinstance(module.drop, TE.DropOut) and module.drop.rate == 0.5
    x = torch.randn(2, 3, 12, 12)
    module.eval()
    assert torch.equal(module(x), module(x))
    state = module.state_dict()
    assert set(module.param_names.values()) <= set(state)
    twin = copy.deepcopy(module)
    assert twin.input_names == ["input"] and twin.param_names == module.param_names
    assert torch.equal(twin(x), module(x))
    assert torch.equal(state["bn1.moments"], net.params[net.get_param_index("bn1m")].value)


def test_imported_layer_types_are_native_and_differentiate_as_dagnn():
    """PReLU, BinaryOp, Pad, Clip, HardSigmoid, Permute, Reshape (the layers of imported
    networks) have modules of their own: scriptable, same values, same derivatives."""
    net = _float64(EN.interop_zoo())
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 6, 5, generator=g, dtype=torch.float64)
    dzdy = torch.randn(2, 3, 1, 1, generator=g, dtype=torch.float64)
    net.mode = "test"
    net.eval({"input": x}, {"prediction": dzdy})
    module = to_torch(net)
    assert not any(isinstance(m, TE.DagNNLayer) for m in module.modules())
    xi = x.clone().requires_grad_()
    module(xi).backward(dzdy)
    assert rel_err(xi.grad, net.vars[net.get_var_index("input")].der) < 1e-12
    params = dict(module.named_parameters())
    for name in ("slope", "bias", "num", "cf", "ff"):
        ref = net.params[net.get_param_index(name)].der
        assert rel_err(params[module.param_names[name]].grad.reshape(ref.shape), ref) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(module)
    assert torch.allclose(scripted(x), module(x))


def test_simplenn_losses_and_backward_match_vl_simplenn():
    """losses=True keeps softmaxloss (its labels become the second input); the objective
    and its derivatives agree with vl_simplenn's backward pass."""
    from matconvnet.simplenn import vl_simplenn
    net, x = EN.make("lenet")
    for l in net["layers"]:   # float64: a 2-image batch norm is ill-conditioned in float32
        l["weights"] = [w.double() for w in l.get("weights") or []]
    x = x.double()
    label = torch.tensor([3.0, 7.0])
    net["layers"][-1]["class"] = label
    res = vl_simplenn(net, x, torch.tensor(1.0, dtype=torch.float64), mode="normal")
    module = to_torch(net, losses=True).train()
    assert module.input_names == ["x0", "label"] and module.output_names == ["x11"]
    xi = x.clone().requires_grad_()
    objective = module(xi, label)
    assert rel_err(objective, res[-1]["x"]) < 1e-10
    objective.backward()
    assert rel_err(xi.grad, res[0]["dzdx"]) < 1e-8
    assert rel_err(module.layer1.weight.grad, res[0]["dzdw"][0]) < 1e-8


def test_layer_names_become_identifiers():
    net = DagNN()
    for name, src, dst in (("training", "input", "a"), ("forward", "a", "b"),
                           ("1 odd.name", "b", "c")):
        net.add_layer(name, L.ReLU(), src, dst)
    module = to_torch(net)
    assert [n for n, _ in module.named_children()] == ["training_1", "forward_1",
                                                      "_1_odd_name"]
    x = torch.randn(1, 2, 3, 3)
    assert torch.equal(module(x), x.relu())
    assert module.training   # nn.Module's own attribute is untouched


# ----------------------------------------------------------------------------- modules


def test_pool_module_matches_vl_nnpool_over_geometries():
    checked = 0
    for pool, pad, stride, x in EN.pool_geometries(50, dtype=torch.float64):
        for method in ("max", "avg"):
            ref = B.vl_nnpool(x, pool, method=method, pad=pad, stride=stride)
            y = TE.Pool(method, tuple(pool), pad, stride)(x)
            assert rel_err(y, ref) < 1e-12, (method, pool, pad, stride, tuple(x.shape))
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 13])
def test_lrn_module_matches_vl_nnnormalize(size):
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    param = [size, 1.5, 0.3, 0.75]
    assert rel_err(TE.LRN(size, 1.5, 0.3, 0.75)(x), B.vl_nnnormalize(x, param)) < 1e-12


def test_convt_module_matches_vl_nnconvt():
    g = torch.Generator().manual_seed(1)
    for crop, up, groups in [((0, 0, 0, 0), (1, 1), 1), ((1, 2, 0, 3), (2, 3), 1),
                             ((2, 0, 1, 1), (3, 2), 2), ((1, 1, 1, 1), (2, 2), 4)]:
        x = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64)
        f = torch.randn(4, 3, 4, 5, generator=g, dtype=torch.float64)
        b = torch.randn(3 * groups, generator=g, dtype=torch.float64)
        ref = B.vl_nnconvt(x, f, b, upsample=up, crop=crop, num_groups=groups)
        module = TE.ConvTranspose(torch.nn.Parameter(f), torch.nn.Parameter(b), crop, up, groups)
        assert rel_err(module(x), ref) < 1e-12


# ----------------------------------------------------------------------------- forms


def test_script_export_and_fx_trace():
    net = EN.zoo()
    module = to_torch(net).eval()
    x = torch.randn(2, 3, 13, 11)
    y = module(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.jit.script's deprecation notice
        scripted = torch.jit.script(module)
    assert torch.allclose(scripted(x), y, atol=1e-6)
    traced = torch.fx.symbolic_trace(module)
    assert torch.allclose(traced(x), y, atol=1e-6)
    dim = torch.export.Dim
    exported = torch.export.export(module, (x,), dynamic_shapes=(
        {0: dim("n"), 2: dim("h", min=8, max=64), 3: dim("w", min=8, max=64)},))
    x2 = torch.randn(3, 3, 17, 12)
    assert torch.allclose(exported.module()(x2), module(x2), atol=1e-6)


def test_scripted_lenet_trains():
    net, x = EN.make("lenet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.script(to_torch(net))
    module.train()
    loss = module(x).square().sum()
    loss.backward()
    assert all(p.grad is not None for p in module.parameters())


def test_fallback_layer_runs_its_own_backward():
    """A layer with no native form (BilinearSampler) runs through forward/backward."""
    net = DagNN()
    net.add_layer("sampler", L.BilinearSampler(), ["input", "grid"], "s")
    net.add_layer("conv", L.Conv(size=[1, 1, 2, 3]), "s", "y", ["f", "b"])
    net.init_params()
    _float64(net)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64)
    grid = torch.rand(2, 2, 4, 3, generator=g, dtype=torch.float64) * 1.8 - 0.9
    dzdy = torch.randn(2, 3, 4, 3, generator=g, dtype=torch.float64)
    net.eval({"input": x, "grid": grid}, {"y": dzdy})
    module = to_torch(net)
    assert isinstance(module.sampler, TE.DagNNLayer)
    xi, gi = x.clone().requires_grad_(), grid.clone().requires_grad_()
    y = module(xi, gi)
    y.backward(dzdy)
    assert rel_err(xi.grad, net.vars[net.get_var_index("input")].der) < 1e-12
    assert rel_err(gi.grad, net.vars[net.get_var_index("grid")].der) < 1e-12


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_module_runs_on_cuda():
    net = EN.zoo()
    x = torch.randn(2, 3, 13, 11)
    module = to_torch(net).eval()
    y = module(x)
    assert rel_err(module.cuda()(x.cuda()).cpu(), y) < 1e-4


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_culprit():
    with pytest.raises(TypeError, match="net: expected a SimpleNN dict"):
        to_torch([1, 2])
    net = {"layers": [{"type": "custom", "name": "mine", "forward": None, "backward": None}]}
    with pytest.raises(ValueError, match="layer 1 .'mine', custom."):
        to_torch(net)
    with pytest.raises(ValueError, match="input_channels: 'image' is not an input"):
        to_torch(EN.zoo(), input_channels={"image": 3})
    with pytest.raises(ValueError, match="nothing to export"):
        to_torch({"layers": [{"type": "softmaxloss"}]})
    bad = EN.zoo()
    bad.params[bad.get_param_index("c2f")].value = None
    with pytest.raises(ValueError, match="'conv2'.*'c2f' has no value"):
        to_torch(bad)
    with pytest.raises(ValueError, match="do not fit an input with 5 channels"):
        to_torch(EN.zoo(), input_channels={"input": 5})
