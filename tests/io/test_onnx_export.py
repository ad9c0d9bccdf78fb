"""save_onnx / to_onnx: SimpleNN and DagNN networks as ONNX graphs (issue 8).

ONNX Runtime on the exported example networks agrees with vl_simplenn / DagNN.eval in
'test' mode within 1e-4 relative; pooling, LRN and batch-norm conversions are exact over
many settings; the files pass onnx.checker; loss layers are left out."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from matconvnet.dagnn import DagNN
from matconvnet.dagnn import layers as L
from matconvnet.io import save_onnx, to_onnx
from tests.io import export_nets as EN

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL = 1e-4


def session(model):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run(model, inputs):
    s = session(model)
    return s.run(None, {k: v.numpy() for k, v in inputs.items()})


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def simple(*layers, channels=None) -> dict:
    meta = {"inputSize": [8, 8, channels]} if channels else {}
    return {"layers": list(layers), "meta": meta}


# ----------------------------------------------------------------------------- the models


def _load_onnx():
    try:
        from matconvnet.io.onnx_import import load_onnx
    except ImportError:
        pytest.skip("matconvnet.io.onnx_import.load_onnx is not available")
    return load_onnx


# FCN-8s (540 MB of weights) takes over 10 s here: copies through protobuf, ONNX Runtime
# and the importer; its ConvTranspose settings are covered by the zoo tests.
_ONNX_CASES = [pytest.param(n, marks=pytest.mark.slow) if n == "fcn-8s" else n
               for n in EN.CASES]


@pytest.mark.parametrize("name", _ONNX_CASES)
def test_example_networks_match_matconvnet_and_round_trip(name):
    """save_onnx + ONNX Runtime, and load_onnx(save_onnx(net)), give the original outputs
    (one export per network for both checks: the big ones take seconds each)."""
    net, x = EN.make(name)
    inputs = {"input" if isinstance(net, DagNN) else "x0": x}
    (ref,) = EN.reference(net, inputs)
    model = to_onnx(net)
    assert [i.name for i in model.graph.input] == list(inputs)
    assert len(model.graph.output) == 1
    (y,) = run(model, inputs)
    assert rel_err(y, ref) < RTOL
    back = _load_onnx()(model, input_shapes={k: list(v.shape) for k, v in inputs.items()})
    (out,) = back.get_outputs()
    back.mode = "test"
    back.eval(inputs)
    assert rel_err(back.vars[back.get_var_index(out)].value, ref) < RTOL


# ----------------------------------------------------------------------------- the zoos


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_zoo_dagnn_matches(opset):
    net = EN.zoo()
    x = torch.randn(2, 3, 13, 11)
    (ref,) = EN.reference(net, {"input": x})
    model = to_onnx(net, opset)
    assert model.opset_import[0].version == opset
    assert [o.name for o in model.graph.output] == ["prob"]
    assert [i.name for i in model.graph.input] == ["input"]   # no label: the loss is gone
    s = session(model)
    assert rel_err(s.run(None, {"input": x.numpy()})[0], ref) < RTOL
    # symbolic N, H, W: another batch and image size runs through the same model
    x2 = torch.randn(1, 3, 10, 16)
    (ref2,) = EN.reference(net, {"input": x2})
    assert rel_err(s.run(None, {"input": x2.numpy()})[0], ref2) < RTOL


def test_simplenn_zoo_matches():
    net = EN.simple_zoo()
    x = torch.randn(2, 2, 9, 10)
    (ref,) = EN.reference(net, {"x0": x})
    model = to_onnx(net)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 2 and dims[2].dim_param   # C from meta, H symbolic
    (y,) = run(model, {"x0": x})
    assert rel_err(y, ref) < RTOL


def test_zoo_node_types():
    types = [n.op_type for n in to_onnx(EN.zoo()).graph.node]
    for t in ("Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "AveragePool", "Concat",
              "Sum", "ConvTranspose", "Slice", "Sigmoid", "Identity", "Softmax"):
        assert t in types, t
    conv2 = next(n for n in to_onnx(EN.zoo()).graph.node if n.name == "conv2")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv2.attribute}
    assert attrs["group"] == 2 and attrs["dilations"] == [2, 2] and attrs["pads"] == [2] * 4


def test_imported_layer_types():
    """PReLU, BinaryOp, Pad, Clip, HardSigmoid, Permute and Reshape export natively, and
    come back through load_onnx."""
    net = EN.interop_zoo()
    x = torch.randn(2, 3, 6, 5)
    (ref,) = EN.reference(net, {"input": x})
    model = to_onnx(net)
    types = {n.op_type for n in model.graph.node}
    assert types >= {"PRelu", "Add", "Div", "Mul", "Sub", "Pad", "Clip", "HardSigmoid",
                     "Transpose", "Reshape"}
    (y,) = run(model, {"input": x})
    assert rel_err(y, ref) < RTOL
    back = _load_onnx()(model, input_shapes={"input": [2, 3, 6, 5]})
    back.mode = "test"
    back.eval({"input": x})
    assert rel_err(back.vars[back.get_var_index(back.get_outputs()[0])].value, ref) < RTOL


# ----------------------------------------------------------------------------- conversions


def _one_layer(layer, x, channels=None):
    net = simple(layer, channels=channels)
    ref = EN.reference(net, {"x0": x})[0]
    (y,) = run(to_onnx(net), {"x0": x})
    return y, ref


def test_pooling_over_geometries():
    """MatConvNet's pads: asymmetric, up to the window size minus one; windows clipped."""
    checked = 0
    for pool, pad, stride, x in EN.pool_geometries(30):
        for method in ("max", "avg"):
            y, ref = _one_layer(dict(type="pool", method=method, pool=pool, pad=pad,
                                     stride=stride), x)
            assert rel_err(y, ref) < 1e-6, (method, pool, pad, stride, tuple(x.shape))
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 11, 12])
def test_lrn_alpha_and_window(size):
    """ONNX divides alpha by the window size, MatConvNet does not; windows longer than the
    channels (6) are clipped; even windows are built from AveragePool."""
    x = torch.randn(2, 6, 3, 4)
    y, ref = _one_layer(dict(type="lrn", param=[size, 1.5, 0.3, 0.75]), x)
    assert rel_err(y, ref) < 1e-6
    ops = {n.op_type for n in to_onnx(simple(dict(type="lrn", param=[size, 1, 1, 1]))).graph.node}
    assert ("LRN" in ops) == (size % 2 == 1)


def test_batch_norm_sigma_includes_epsilon():
    """var = sigma^2 - epsilon exactly; sigma^2 < epsilon and negative sigma too."""
    c = 5
    g, b = torch.rand(c) + 0.5, torch.randn(c)
    mu = torch.randn(c)
    sigma = torch.tensor([0.5, 2.0, 1e-3, -0.7, 3e-3])
    x = torch.randn(2, c, 3, 3)
    for eps in (1e-5, 1e-4, 0.0):
        layer = dict(type="bnorm", weights=[g, b, torch.stack((mu, sigma), 1)], epsilon=eps)
        y, ref = _one_layer(layer, x)
        assert rel_err(y, ref) < 1e-5
    model = to_onnx(simple(layer))
    node = model.graph.node[0]
    assert node.op_type == "BatchNormalization"
    assert onnx.helper.get_attribute_value(node.attribute[0]) == pytest.approx(0.0)


def test_convt_crop_upsample_groups():
    g = torch.Generator().manual_seed(3)
    for crop, up, groups in [((1, 2, 0, 3), (2, 3), 1), ((2, 0, 1, 1), (3, 2), 2),
                             ((1, 1, 1, 1), (2, 2), 4)]:
        layer = dict(type="convt", weights=[torch.randn(4, 3, 4, 5, generator=g),
                                            torch.randn(3 * groups, generator=g)],
                     upsample=up, crop=crop, numGroups=groups)
        y, ref = _one_layer(layer, torch.randn(2, 4, 5, 6, generator=g))
        assert rel_err(y, ref) < 1e-5


def test_float64_networks_stay_float64():
    """ONNX Runtime has no double Conv on the CPU: onnx's reference evaluator runs it."""
    from onnx.reference import ReferenceEvaluator
    net, x = EN.make("lenet")
    for l in net["layers"]:
        if "weights" in l:
            l["weights"] = [w.double() for w in l["weights"]]
    x = x.double()
    (ref,) = EN.reference(net, {"x0": x})
    model = to_onnx(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.DOUBLE}
    (y,) = ReferenceEvaluator(model).run(None, {"x0": x.numpy()})
    assert y.dtype == np.float64 and rel_err(y, ref) < 1e-12


# ----------------------------------------------------------------------------- files


def test_save_onnx_writes_a_checked_file(tmp_path):
    net, x = EN.make("lenet")
    path = tmp_path / "lenet.onnx"
    path.write_bytes(b"old contents")
    save_onnx(net, path, opset=13)
    assert sorted(os.listdir(tmp_path)) == ["lenet.onnx"]   # no temporary file left
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13 and model.producer_name == "matconvnet"
    assert {t.name for t in model.graph.initializer} >= {"layer1f", "layer2m", "layer10b"}
    (ref,) = EN.reference(net, {"x0": x})
    assert rel_err(run(str(path), {"x0": x})[0], ref) < RTOL


def test_errors_name_the_culprit(tmp_path):
    net, _ = EN.make("lenet")
    for opset in (12, 10 ** 6, 17.0):
        with pytest.raises(ValueError, match="opset: expected an integer from 13"):
            to_onnx(net, opset)
    dag = DagNN()
    dag.add_layer("s1", L.BilinearSampler(), ["input", "grid"], "a")
    dag.add_layer("r", L.ReLU(), "a", "b")
    dag.add_layer("s2", L.BilinearSampler(), ["b", "grid"], "c")
    with pytest.raises(ValueError, match=r"layers 's1' \(dagnn.BilinearSampler\), 's2'"):
        to_onnx(dag)
    with pytest.raises(FileNotFoundError):
        save_onnx(net, tmp_path / "missing" / "x.onnx")
    with pytest.raises(TypeError, match="net: expected"):
        save_onnx("lenet", tmp_path / "x.onnx")
