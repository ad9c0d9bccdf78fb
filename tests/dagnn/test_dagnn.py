"""DagNN: the oracle networks, X-DAG's behaviours, fan-out and parameter sharing against
autograd, file round trips and malformed structures."""
import math

import numpy as np
import pytest
import scipy.io as sio
import torch

import matconvnet.io as mio
from matconvnet.dagnn import DagNN, layers as L
from matconvnet.simplenn import vl_simplenn
from tests import oracle


def _ref(a):
    a = np.asarray(a)
    if a.size == 1:
        return a.reshape(())
    a = a.reshape(a.shape + (1,) * (4 - a.ndim), order="F").transpose(3, 2, 0, 1)
    return np.ascontiguousarray(a)


def _close(got, ref, what, rel=1e-3):
    # the whole network from the stored input: float32 differences amplified by batch
    # normalisation over two 1 x 1 samples (tests/simplenn holds each layer to 1e-4)
    got = got.detach().double().numpy().reshape(ref.shape)
    tol = rel * max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(got - ref).max())
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


def _models(with_file=True):
    if not oracle.available():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/oracle is absent"))]
    return [pytest.param(m, id=m["name"]) for m in oracle.manifest()["models"]["models"]
            if m["dagnn"]["model_file"] or not with_file]


def _hwcn_to_nchw(size):
    h, w, c, n = [math.nan if v is None else v for v in size]
    return (n, c, h, w)


@pytest.mark.parametrize("model", _models())
def test_oracle_dagnn_evaluation(model):
    spec = model["dagnn"]
    net = DagNN.from_struct(mio.load(oracle.ORACLE / spec["model_file"])["net"])
    for run in spec["eval"]:
        ref = sio.loadmat(str(oracle.ORACLE / run["file"]))
        if "eval_moments_file" in model and run["mode"] == "test":
            moments = sio.loadmat(str(oracle.ORACLE / model["eval_moments_file"]))
            for key, value in moments.items():
                if key.startswith("moments_"):
                    layer = net.layers[int(key[-2:]) - 1]
                    net.params[layer.param_indexes[2]].value = torch.from_numpy(
                        np.ascontiguousarray(value)).float()
        net.mode = run["mode"]
        net.conserve_memory = False
        inputs = {"input": torch.from_numpy(_ref(ref["x"])),
                  "label": torch.as_tensor(ref["labels"].ravel())}
        ders = {"objective": 1.0} if "{'objective', 1}" in run["call"] else None
        net.eval(inputs, ders)
        for name in run["stored_vars"]:
            var = name[len("var_"):]
            v = net.vars[net.get_var_index(var)].value
            if var == "label":
                continue
            _close(v, _ref(ref[name]), name)
        for name in run["stored_ders"]:
            var = name[len("der_"):]
            d = net.vars[net.get_var_index(var)].der
            _close(torch.as_tensor(d), _ref(ref[name]), name)


@pytest.mark.parametrize("model", _models())
def test_oracle_var_sizes_and_receptive_fields(model):
    spec = model["dagnn"]
    net = DagNN.from_struct(mio.load(oracle.ORACLE / spec["model_file"])["net"])
    sizes = net.get_var_sizes({"input": _hwcn_to_nchw(spec["var_sizes"]["input"])})
    for var, size in spec["var_sizes"].items():
        want = _hwcn_to_nchw(size)
        got = sizes[var]
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want)), \
            f"{var}: {got} != {want}"
    rfs = net.get_var_receptive_fields("input")
    for entry in spec["receptive_fields_from_input"]:
        got = rfs[entry["var"]]
        if not entry["size"]:
            assert got is None, entry["var"]
            continue
        for key in ("size", "stride", "offset"):
            want = [math.nan if v is None else v for v in entry[key]]
            assert all((math.isnan(a) and math.isnan(b)) or a == b
                       for a, b in zip(got[key], want)), f"{entry['var']} {key}: {got[key]} != {want}"


@pytest.mark.parametrize("model", _models(with_file=False))
def test_from_simplenn_gives_the_simplenn_numbers(model):
    simple = mio.load(oracle.ORACLE / model["model_file"])["net"]
    run = model["simplenn"][0]
    ref = sio.loadmat(str(oracle.ORACLE / run["file"]))
    if "eval_moments_file" in model:
        moments = sio.loadmat(str(oracle.ORACLE / model["eval_moments_file"]))
        for key, value in moments.items():
            if key.startswith("moments_"):
                simple["layers"][int(key[-2:]) - 1]["weights"][2] = torch.from_numpy(
                    np.ascontiguousarray(value)).float()
    x = torch.from_numpy(_ref(ref["x"]))
    labels = torch.as_tensor(ref["labels"].ravel())
    simple["layers"][-1]["class"] = labels
    res = vl_simplenn(simple, x, torch.tensor(1.0), mode=run["mode"])
    net = DagNN.from_simplenn(simple)
    net.mode = run["mode"]
    net.conserve_memory = False
    n = len(simple["layers"])
    net.eval({"x0": x, "label": labels}, {f"x{n}": 1.0})
    for i in range(n + 1):
        v = net.vars[net.get_var_index(f"x{i}")]
        torch.testing.assert_close(v.value, res[i]["x"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.as_tensor(v.der, dtype=res[i]["x"].dtype),
                                   torch.as_tensor(res[i]["dzdx"], dtype=res[i]["x"].dtype),
                                   rtol=1e-5, atol=1e-6)
    for i, layer in enumerate(net.layers):
        for j, p in enumerate(layer.param_indexes):
            torch.testing.assert_close(net.params[p].der, res[i]["dzdw"][j], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- X-DAG

def _lenet(conserve=True):
    torch.manual_seed(0)
    simple = {"layers": [
        {"type": "conv", "weights": [torch.randn(20, 1, 5, 5) / 10, torch.zeros(20)]},
        {"type": "pool", "pool": 2, "stride": 2},
        {"type": "conv", "weights": [torch.randn(50, 20, 5, 5) / 10, torch.zeros(50)]},
        {"type": "pool", "pool": 2, "stride": 2},
        {"type": "conv", "weights": [torch.randn(500, 50, 4, 4) / 10, torch.zeros(500)]},
        {"type": "relu"},
        {"type": "conv", "weights": [torch.randn(10, 500, 1, 1) / 10, torch.zeros(10)]},
        {"type": "softmaxloss"}]}
    net = DagNN.from_simplenn(simple)
    net.conserve_memory = conserve
    return net


def _run(net):
    torch.manual_seed(1)
    x = torch.randn(20, 1, 32, 32)
    c = torch.randint(1, 11, (20,))
    net.eval({"x0": x, "label": c}, {"x8": 1.0})


def test_simple_run():
    net = _lenet(conserve=False)
    _run(net)
    assert net.vars[net.get_var_index("x8")].der == 1.0
    assert all(p.der is not None for p in net.params)


def test_conserve_memory():
    net = _lenet(conserve=True)
    torch.manual_seed(1)
    net.eval({"x0": torch.randn(20, 1, 32, 32), "label": torch.randint(1, 11, (20,))})
    kept = {v.name for v in net.vars if v.value is not None}
    assert kept == {"x8"}
    _run(net)
    kept = {v.name for v in net.vars if v.value is not None}
    assert kept == {"x0", "label"}
    assert all(p.der is not None for p in net.params)
    net = _lenet(conserve=False)
    _run(net)
    assert all(v.value is not None for v in net.vars)
    assert all(v.der is not None for v in net.vars if v.name not in ("label",))


def test_precious_variable_is_kept():
    net = _lenet(conserve=True)
    net.vars[net.get_var_index("x3")].precious = True
    _run(net)
    assert net.vars[net.get_var_index("x3")].value is not None
    assert net.vars[net.get_var_index("x3")].der is not None


def test_receptive_fields_for_every_var():
    net = _lenet()
    for v in net.vars:
        rfs = net.get_var_receptive_fields(v.name)
        assert rfs[v.name]["size"] == (1.0, 1.0)
    rfs = net.get_var_receptive_fields("x0")
    assert rfs["x5"] == {"size": (28.0, 28.0), "stride": (4.0, 4.0), "offset": (14.5, 14.5)}
    assert rfs["label"] is None


# ----------------------------------------------------------------- fan-out and sharing

def test_fan_out_and_parameter_sharing_match_autograd():
    torch.manual_seed(0)
    d = torch.float64
    f1 = torch.randn(4, 3, 3, 3, dtype=d)
    b1 = torch.randn(4, dtype=d)
    f2 = torch.randn(4, 4, 3, 3, dtype=d)
    net = DagNN()
    # x feeds three layers; 'shared' (f2) is used by two layers
    net.add_layer("c1", L.Conv(size=[3, 3, 3, 4], pad=1), ["x"], ["a"], ["f1", "b1"])
    net.add_layer("r1", L.ReLU(), ["a"], ["ra"])
    net.add_layer("c2", L.Conv(size=[3, 3, 4, 4], pad=1, hasBias=False), ["ra"], ["b"], ["shared"])
    net.add_layer("c3", L.Conv(size=[3, 3, 4, 4], pad=1, hasBias=False), ["a"], ["c"], ["shared"])
    net.add_layer("c4", L.Conv(size=[3, 3, 3, 4], pad=1), ["x"], ["e"], ["f1", "b1"])
    net.add_layer("s", L.Sum(), ["b", "c", "e", "a"], ["sum"])
    net.add_layer("loss", L.Loss(loss="softmaxlog"), ["sum", "label"], ["objective"])
    for name, value in (("f1", f1), ("b1", b1), ("shared", f2)):
        net.params[net.get_param_index(name)].value = value
    assert net.vars[net.get_var_index("a")].fanout == 3
    assert net.params[net.get_param_index("shared")].fanout == 2
    x = torch.randn(2, 3, 5, 5, dtype=d)
    c = torch.randint(1, 5, (2, 1, 5, 5))
    net.conserve_memory = False
    net.eval({"x": x, "label": c}, {"objective": 1.0})

    xa, f1a, b1a, f2a = (t.clone().requires_grad_() for t in (x, f1, b1, f2))
    F = torch.nn.functional
    a = F.conv2d(xa, f1a, b1a, padding=1)
    s = F.conv2d(torch.relu(a), f2a, padding=1) + F.conv2d(a, f2a, padding=1) \
        + F.conv2d(xa, f1a, b1a, padding=1) + a
    loss = F.cross_entropy(s, c[:, 0] - 1, reduction="sum") / 2
    loss.backward()
    torch.testing.assert_close(net.vars[net.get_var_index("objective")].value, loss.detach())
    torch.testing.assert_close(net.vars[net.get_var_index("x")].der, xa.grad)
    torch.testing.assert_close(net.params[net.get_param_index("f1")].der, f1a.grad)
    torch.testing.assert_close(net.params[net.get_param_index("b1")].der, b1a.grad)
    torch.testing.assert_close(net.params[net.get_param_index("shared")].der, f2a.grad)
    # accumulate_param_ders adds a second evaluation's derivatives
    first = net.params[net.get_param_index("shared")].der.clone()
    net.accumulate_param_ders = True
    net.eval({"x": x, "label": c}, {"objective": 1.0})
    torch.testing.assert_close(net.params[net.get_param_index("shared")].der, 2 * first)


# ----------------------------------------------------------------- files and structure

@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_save_load_round_trip(tmp_path, fmt):
    net = _lenet()
    net.meta = {"inputSize": [32, 32, 1, 20]}
    path = tmp_path / f"net-{fmt}.mat"
    mio.save_dagnn(path, net, format=fmt)
    back = mio.load_dagnn(path)
    assert [l.name for l in back.layers] == [l.name for l in net.layers]
    assert [type(l.block) for l in back.layers] == [type(l.block) for l in net.layers]
    for p, q in zip(net.params, back.params):
        assert p.name == q.name and torch.equal(p.value, q.value)
        assert (p.learning_rate, p.weight_decay) == (q.learning_rate, q.weight_decay)
    assert [l.block.save() for l in back.layers] == [l.block.save() for l in net.layers]
    if fmt == "v7":
        raw = sio.loadmat(str(path))
        assert {"vars", "params", "layers", "meta"} <= set(raw)


def test_malformed_structures_raise_clear_errors():
    net = _lenet()
    s = net.to_struct()
    with pytest.raises(ValueError, match="vars"):
        DagNN.from_struct({"params": s["params"], "layers": s["layers"], "meta": {}})
    bad = dict(s, layers=[dict(s["layers"][0], type="dagnn.Nonsense")] + s["layers"][1:])
    with pytest.raises(ValueError, match="register_layer"):
        DagNN.from_struct(bad)
    dangling = dict(s, vars=[v for v in s["vars"] if v["name"] != "x3"])
    with pytest.raises(ValueError, match="dangling"):
        DagNN.from_struct(dangling)
    cyc = DagNN()
    cyc.add_layer("a", L.ReLU(), ["x"], ["y"])
    with pytest.raises(ValueError, match="cycle through layers"):
        cyc.add_layer("b", L.ReLU(), ["y"], ["x"])
    with pytest.raises(ValueError, match="inputs"):
        net.eval({"nonexistent": torch.zeros(1)})
    with pytest.raises(ValueError, match="name"):
        net.add_layer("layer1", L.ReLU(), ["x0"], ["z"])


def test_structure_editing():
    net = _lenet()
    net.rename_layer("layer6", "relu")
    assert net.get_layer_index("relu") == 5
    net.rename_param("layer1f", "conv1f")
    assert net.layers[0].params[0] == "conv1f"
    net.rename_var("x8", "objective")
    assert "objective" in net.get_outputs()
    net.remove_layer("layer8")
    assert "objective" not in [v.name for v in net.vars]
    assert net.get_inputs() == ["x0"]
    net.mode = "train"
    assert net.mode == "normal"
    with pytest.raises(ValueError, match="mode"):
        net.mode = "eval"


def test_print_and_dot():
    net = _lenet()
    text = net.print({"x0": (20, 1, 32, 32)})
    assert "layer1" in text and "20x20x28x28" in text and "Conv" in text
    dot = net.to_dot({"x0": (20, 1, 32, 32)})
    assert dot.startswith("digraph DagNN {") and '"var:x0" -> "layer:layer1";' in dot
