"""matconvnet.io.load_onnx against onnxruntime.

Small graphs built with onnx.helper, one or a few operators each (every supported
operator and the attribute cases of the docstring), run by onnxruntime and by the
imported DagNN on the same random inputs; the two real models of ../shared/data/onnx
(mnist-8 on the MNIST test digits, squeezenet-cifar10 on the CIFAR-10 test JPEGs) for
agreement and accuracy; malformed models (truncated, cyclic, missing initializer,
unsupported operators) and a seeded loop of byte corruptions of the real files, which
must give a ValueError or a working network, never another exception or a hang.
"""
from __future__ import annotations

import gzip
import io
import math
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from matconvnet.dagnn import DagNN  # noqa: E402
from matconvnet.io import load_onnx  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MNIST8 = DATA / "onnx" / "mnist-8" / "mnist-8.onnx"
SQUEEZENET = DATA / "onnx" / "squeezenet-cifar10" / "squeezenet_cifar10.onnx"
CIFAR = DATA / "cifar10-test-jpeg" / "cifar10_test_jpeg.zip"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]

@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors: threads only add overhead (and contention on a shared machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


needs = {p: pytest.mark.skipif(not p.is_file(), reason=f"{p} is absent (../shared/data)")
         for p in (MNIST8, SQUEEZENET, CIFAR)}


# ----------------------------------------------------------------------------- helpers


def make_model(nodes, inputs, outputs, inits=(), opset=13):
    """A model from nodes; ``inputs`` name -> shape (None entries symbolic), ``inits``
    name -> array."""
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT,
                                       [d if d is not None else "N" for d in s])
         for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(inits).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def ort_run(model, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    data = model.SerializeToString() if not isinstance(model, (str, Path)) else str(model)
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def dagnn_run(net: DagNN, feeds):
    """The imported network's outputs (meta order) for ONNX-layout feeds."""
    inputs = {}
    for entry in net.meta["inputs"]:
        x = torch.from_numpy(np.asarray(feeds[entry["name"]]))
        if x.dim() == 4:
            x = x.permute(*entry["permutation"])
        inputs[entry["name"]] = x.reshape(x.shape + (1,) * (4 - x.dim())).contiguous()
    net.eval(inputs)
    return [net.vars[net.get_var_index(o["name"])].value.numpy()
            for o in net.meta["outputs"]]


def agree(got, expected, rtol=1e-4, what=""):
    got = np.asarray(got, dtype=np.float64).reshape(np.shape(expected))
    expected = np.asarray(expected, dtype=np.float64)
    err = np.abs(got - expected).max() if expected.size else 0.0
    tol = rtol * max(np.abs(expected).max() if expected.size else 0.0, 1e-3)
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


def check(model, feeds, rtol=1e-4):
    net = load_onnx(model)
    expected = ort_run(model, feeds)
    got = dagnn_run(net, feeds)
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.size == e.size, f"output {k}: {g.shape} vs {e.shape}"
        agree(g, e, rtol, f"output {k}")
    return net


def rnd(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def single(op, x_shape, attrs=None, inits=(), opset=13, extra_inputs=(), n_out=1):
    """A model with one node reading input 'x' then the named initializers."""
    names = ["x"] + [n for n, _ in inits] + list(extra_inputs)
    outs = ["y"] + [f"y{k}" for k in range(1, n_out)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    model = make_model([node], {"x": x_shape}, outs, inits, opset)
    return model, {"x": rnd(*[d or 2 for d in x_shape], seed=1)}


# ----------------------------------------------------------------------------- operators

X4 = [2, 4, 9, 8]

CASES = {
    # convolutions
    "conv_groups_pads_dilation": lambda: single(
        "Conv", X4, dict(group=2, pads=[1, 2, 0, 1], strides=[2, 1], dilations=[1, 2]),
        [("w", rnd(6, 2, 3, 3, seed=2)), ("b", rnd(6, seed=3))]),
    "conv_no_bias_symbolic_batch": lambda: single(
        "Conv", [None, 4, 9, 8], dict(kernel_shape=[3, 2]), [("w", rnd(5, 4, 3, 2, seed=2))]),
    "conv_same_upper": lambda: single(
        "Conv", X4, dict(auto_pad="SAME_UPPER", strides=[2, 2]), [("w", rnd(3, 4, 4, 3))]),
    "conv_same_lower": lambda: single(
        "Conv", X4, dict(auto_pad="SAME_LOWER", strides=[2, 3]), [("w", rnd(3, 4, 4, 3))]),
    "conv_valid": lambda: single(
        "Conv", X4, dict(auto_pad="VALID", strides=[2, 2]), [("w", rnd(3, 4, 3, 3))]),
    "convt_groups_pads_outpad": lambda: single(
        "ConvTranspose", X4, dict(strides=[2, 3], pads=[1, 0, 2, 1], output_padding=[1, 2],
                                  group=2),
        [("w", rnd(4, 3, 3, 4, seed=4)), ("b", rnd(6, seed=5))]),
    "convt_dilation": lambda: single(
        "ConvTranspose", X4, dict(strides=[2, 2], dilations=[2, 3], pads=[1, 1, 1, 1]),
        [("w", rnd(4, 2, 3, 2, seed=4))]),
    "convt_outpad_beyond_pads_bias": lambda: single(
        "ConvTranspose", X4, dict(strides=[2, 2], output_padding=[1, 1]),
        [("w", rnd(4, 3, 3, 3, seed=4)), ("b", rnd(3, seed=5))]),
    "convt_output_shape_same_upper": lambda: single(
        "ConvTranspose", X4, dict(strides=[2, 2], auto_pad="SAME_UPPER",
                                  output_shape=[17, 16]),
        [("w", rnd(4, 3, 4, 3, seed=4))]),
    "convt_same_upper": lambda: single(
        "ConvTranspose", X4, dict(strides=[2, 2], auto_pad="SAME_UPPER"),
        [("w", rnd(4, 3, 3, 3, seed=4))]),
    # pooling
    "maxpool_pads": lambda: single(
        "MaxPool", X4, dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1])),
    "maxpool_ceil": lambda: single(
        "MaxPool", X4, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "maxpool_ceil_pads": lambda: single(
        "MaxPool", [2, 4, 8, 7], dict(kernel_shape=[3, 3], strides=[3, 2], pads=[1, 1, 1, 1],
                                      ceil_mode=1), opset=12),
    "maxpool_same_upper": lambda: single(
        "MaxPool", X4, dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    "avgpool_pads_exclude": lambda: single(
        "AveragePool", X4, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "avgpool_pads_include": lambda: single(
        "AveragePool", X4, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                count_include_pad=1)),
    "avgpool_ceil_include": lambda: single(
        "AveragePool", [2, 4, 8, 7], dict(kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[1, 0, 1, 2], ceil_mode=1,
                                          count_include_pad=1), opset=19),
    "avgpool_ceil_exclude": lambda: single(
        "AveragePool", [2, 4, 8, 7], dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1)),
    "global_avg": lambda: single("GlobalAveragePool", X4),
    "global_max": lambda: single("GlobalMaxPool", X4),
    # normalisation and pointwise
    "batchnorm": lambda: single(
        "BatchNormalization", X4, dict(epsilon=1e-3),
        [("g", rnd(4, seed=2)), ("b", rnd(4, seed=3)), ("m", rnd(4, seed=4)),
         ("v", np.abs(rnd(4, seed=5)) + 0.5)]),
    "relu": lambda: single("Relu", X4),
    "leaky_relu": lambda: single("LeakyRelu", X4, dict(alpha=0.2)),
    "prelu_channel": lambda: single("PRelu", X4, inits=[("a", rnd(4, 1, 1, seed=2))]),
    "prelu_scalar": lambda: single("PRelu", X4, inits=[("a", np.array([0.3], np.float32))]),
    "prelu_width": lambda: single("PRelu", X4, inits=[("a", rnd(8, seed=2))]),
    "sigmoid": lambda: single("Sigmoid", X4),
    "hard_sigmoid": lambda: single("HardSigmoid", X4, dict(alpha=0.3, beta=0.4)),
    "clip_inputs": lambda: single("Clip", X4, inits=[("lo", np.array(-0.5, np.float32)),
                                                     ("hi", np.array(0.7, np.float32))]),
    "clip_max_only": lambda: _clip_max_only(),
    "clip_attrs_opset6": lambda: single("Clip", X4, dict(min=-0.1, max=0.3), opset=6),
    "softmax_axis1": lambda: single("Softmax", X4, dict(axis=1)),
    "softmax_last_axis": lambda: single("Softmax", X4),
    "softmax_axis2": lambda: single("Softmax", X4, dict(axis=2)),
    "softmax_coerced_opset11": lambda: single("Softmax", X4, dict(axis=1), opset=11),
    "softmax_2d": lambda: single("Softmax", [3, 7], dict(axis=1)),
    "lrn": lambda: single("LRN", [2, 7, 5, 4], dict(size=5, alpha=0.01, beta=0.75, bias=2.0)),
    "dropout_ratio": lambda: single("Dropout", X4, inits=[("r", np.array(0.3, np.float32))],
                                    opset=12),
    "identity": lambda: single("Identity", X4),
    "pad_constant": lambda: single("Pad", X4, inits=[
        ("p", np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64)),
        ("v", np.array(0.5, np.float32))]),
    "pad_opset2": lambda: single("Pad", X4, dict(pads=[0, 0, 2, 1, 0, 0, 0, 1], value=-1.0),
                                 opset=2),
    # arithmetic with constants
    "add_channel_const": lambda: single("Add", X4, inits=[("c", rnd(4, 1, 1, seed=2))]),
    "add_full_const": lambda: single("Add", X4, inits=[("c", rnd(4, 9, 8, seed=2))]),
    "sub_row_const": lambda: single("Sub", X4, inits=[("c", rnd(9, 1, seed=2))]),
    "mul_scalar": lambda: single("Mul", X4, inits=[("c", np.array(2.5, np.float32))]),
    "div_width_const": lambda: single("Div", X4, inits=[("c", np.abs(rnd(8, seed=2)) + 1)]),
    "add_broadcast_grows": lambda: single("Add", [2, 4, 1, 8],
                                          inits=[("c", rnd(1, 5, 1, seed=2))]),
}


def _clip_max_only():
    node = helper.make_node("Clip", ["x", "", "hi"], ["y"])
    return (make_model([node], {"x": X4}, ["y"], {"hi": np.array(0.2, np.float32)}),
            {"x": rnd(*X4, seed=1)})


def _graph(nodes, inputs, outputs, inits=(), opset=13, seed=1):
    model = make_model(nodes, inputs, outputs, inits, opset)
    feeds = {n: rnd(*[d or 2 for d in s], seed=seed + k) for k, (n, s) in
             enumerate(inputs.items())}
    return model, feeds


N = helper.make_node

GRAPHS = {
    "const_minus_var": lambda: _graph([N("Sub", ["c", "x"], ["y"])], {"x": X4}, ["y"],
                                      {"c": rnd(4, 1, 1, seed=3)}),
    "const_div_var": lambda: _graph([N("Div", ["c", "x"], ["y"])], {"x": X4}, ["y"],
                                    {"c": rnd(1, 8, seed=3)}),
    "var_ops_same_shape": lambda: _graph(
        [N("Add", ["x", "z"], ["a"]), N("Mul", ["a", "z"], ["b"]), N("Sub", ["b", "x"], ["c"]),
         N("Div", ["c", "d"], ["y"]), N("Sum", ["y", "x", "z"], ["s"])],
        {"x": X4, "z": X4, "d": X4}, ["y", "s"]),
    "var_broadcast_channel": lambda: _graph(
        [N("GlobalAveragePool", ["x"], ["g"]), N("Mul", ["x", "g"], ["y"])], {"x": X4}, ["y"]),
    "conv_then_bias_add": lambda: _graph(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), N("Add", ["c", "b"], ["y"])],
        {"x": X4}, ["y"], {"w": rnd(5, 4, 3, 3, seed=2), "b": rnd(5, 1, 1, seed=3)}),
    "conv_bias_used_twice": lambda: _graph(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), N("Add", ["c", "b"], ["y"]),
         N("Relu", ["c"], ["r"])],
        {"x": X4}, ["y", "r"], {"w": rnd(5, 4, 3, 3, seed=2), "b": rnd(5, 1, 1, seed=3)}),
    "flatten_gemm": lambda: _graph(
        [N("Flatten", ["x"], ["f"]),
         N("Gemm", ["f", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)],
        {"x": X4}, ["y"], {"w": rnd(7, 4 * 9 * 8, seed=2), "c": rnd(7, seed=3)}),
    "reshape_matmul_add": lambda: _graph(
        [N("Reshape", ["x", "s"], ["f"]), N("MatMul", ["f", "w"], ["m"]),
         N("Add", ["m", "c"], ["y"])],
        {"x": [1, 4, 9, 8]}, ["y"],
        {"s": np.array([1, -1], np.int64), "w": rnd(288, 5, seed=2), "c": rnd(1, 5, seed=3)},
        opset=8),
    "gemm_chain_batchnorm_softmax": lambda: _graph(
        [N("Flatten", ["x"], ["f"]), N("Gemm", ["f", "w"], ["h"]),
         N("BatchNormalization", ["h", "g", "b", "m", "v"], ["n"]), N("Relu", ["n"], ["r"]),
         N("Gemm", ["r", "w2", "c2"], ["z"], transB=1), N("Softmax", ["z"], ["y"], axis=1)],
        {"x": X4}, ["y"],
        {"w": rnd(288, 6, seed=2), "g": rnd(6, seed=3), "b": rnd(6, seed=4),
         "m": rnd(6, seed=5), "v": np.abs(rnd(6, seed=6)) + 1, "w2": rnd(3, 6, seed=7),
         "c2": rnd(3, seed=8)}),
    "nhwc_input_transpose": lambda: _graph(
        [N("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
         N("Conv", ["t", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        {"x": [None, 7, 6, 3]}, ["y"], {"w": rnd(4, 3, 3, 3, seed=2), "b": rnd(4, seed=3)}),
    "mid_transpose_then_conv": lambda: _graph(
        [N("Relu", ["x"], ["r"]), N("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
         N("Conv", ["t", "w"], ["y"], kernel_shape=[2, 3])],
        {"x": X4}, ["y"], {"w": rnd(3, 4, 2, 3, seed=2)}),
    "permute_flatten_gemm": lambda: _graph(
        [N("Transpose", ["x"], ["t"], perm=[0, 3, 2, 1]), N("Flatten", ["t"], ["f"]),
         N("Gemm", ["f", "w", "c"], ["y"])],
        {"x": X4}, ["y"], {"w": rnd(288, 5, seed=2), "c": rnd(5, seed=3)}),
    "squeeze_unsqueeze": lambda: _graph(
        [N("GlobalAveragePool", ["x"], ["g"]), N("Squeeze", ["g", "ax"], ["s"]),
         N("Unsqueeze", ["s", "ax"], ["u"]), N("Conv", ["u", "w"], ["y"], kernel_shape=[1, 1])],
        {"x": X4}, ["y"], {"ax": np.array([2, 3], np.int64), "w": rnd(3, 4, 1, 1, seed=2)}),
    "squeeze_attr_opset11": lambda: _graph(
        [N("GlobalMaxPool", ["x"], ["g"]), N("Squeeze", ["g"], ["s"], axes=[3, 2]),
         N("Softmax", ["s"], ["y"])],
        {"x": X4}, ["y"], opset=11),
    "shape_gather_reshape": lambda: _graph(
        [N("Shape", ["x"], ["sh"]), N("Gather", ["sh", "i0"], ["n"], axis=0),
         N("Unsqueeze", ["n", "ax0"], ["nn"]), N("Concat", ["nn", "m1"], ["tgt"], axis=0),
         N("Reshape", ["x", "tgt"], ["f"]), N("Gemm", ["f", "w"], ["y"], transB=1)],
        {"x": X4}, ["y"],
        {"i0": np.array(0, np.int64), "ax0": np.array([0], np.int64),
         "m1": np.array([-1], np.int64), "w": rnd(3, 288, seed=2)}),
    "constant_nodes_and_cast": lambda: _graph(
        [N("Constant", [], ["w"], value=numpy_helper.from_array(rnd(3, 4, 3, 3, seed=2))),
         N("Constant", [], ["b"], value_floats=[0.1, -0.2, 0.3]),
         N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
         N("Constant", [], ["k"], value_float=2.0), N("Cast", ["c"], ["cc"], to=1),
         N("Mul", ["cc", "k"], ["y"])],
        {"x": X4}, ["y"]),
    "concat_channels_and_rows": lambda: _graph(
        [N("Relu", ["x"], ["a"]), N("Sigmoid", ["x"], ["b"]),
         N("Concat", ["a", "b", "x"], ["c"], axis=1), N("Concat", ["c", "c"], ["y"], axis=-2)],
        {"x": X4}, ["y"]),
    "concat_vectors": lambda: _graph(
        [N("GlobalAveragePool", ["x"], ["g"]), N("Flatten", ["g"], ["f"]),
         N("Flatten", ["x"], ["h"]), N("Concat", ["f", "h"], ["y"], axis=1)],
        {"x": X4}, ["y"]),
    "one_flatten_two_readers": lambda: _graph(
        [N("Relu", ["x"], ["r"]), N("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
         N("Flatten", ["t"], ["f"]), N("Softmax", ["f"], ["b"], axis=1),
         N("Concat", ["f", "b"], ["y"], axis=1)],
        {"x": X4}, ["y"]),
    "crop_computed_from_shapes": lambda: _graph(
        [N("ConvTranspose", ["x", "w"], ["u"], strides=[2, 2]),
         N("Shape", ["u"], ["su"]), N("Slice", ["su", "two", "four"], ["hu"]),
         N("Shape", ["x"], ["sx"]), N("Slice", ["sx", "two", "four"], ["hx"]),
         N("Sub", ["hu", "hx"], ["excess"]), N("Min", ["excess", "crop"], ["start"]),
         N("Max", ["start", "zero"], ["start0"]), N("Add", ["start0", "hx"], ["end"]),
         N("Slice", ["u", "start0", "end", "axes"], ["y"])],
        {"x": X4}, ["y"],
        {"w": rnd(4, 3, 4, 3, seed=2), "two": np.array([2], np.int64),
         "four": np.array([4], np.int64), "crop": np.array([3, 1], np.int64),
         "zero": np.array([0, 0], np.int64), "axes": np.array([2, 3], np.int64)}),
    "slice_negative_and_full_axes": lambda: _graph(
        [N("Slice", ["x", "st", "en", "ax"], ["y"])], {"x": X4}, ["y"],
        {"st": np.array([0, -7, 1], np.int64), "en": np.array([4, -1, 1 << 40], np.int64),
         "ax": np.array([1, 2, 3], np.int64)}),
    "slice_attrs_opset9": lambda: _graph(
        [N("Slice", ["x"], ["y"], starts=[2, 1], ends=[5, 100], axes=[3, 2])], {"x": X4}, ["y"],
        opset=9),
    "pad_negative_crops": lambda: _graph(
        [N("Pad", ["x", "p"], ["y"])], {"x": X4}, ["y"],
        {"p": np.array([0, 0, -2, 1, 0, 0, 1, -3], np.int64)}),
    "flatten_negative_axis_softmax": lambda: _graph(
        [N("Flatten", ["x"], ["f"], axis=-3), N("Softmax", ["f"], ["y"])],
        {"x": X4}, ["y"]),
    "nhwc_normalised_then_transposed": lambda: _graph(
        [N("Sub", ["x", "mean"], ["a"]), N("Mul", ["a", "scale"], ["b"]),
         N("Transpose", ["b"], ["t"], perm=[0, 3, 1, 2]),
         N("Conv", ["t", "w"], ["y"], kernel_shape=[3, 3])],
        {"x": [2, 7, 6, 3]}, ["y"],
        {"mean": rnd(3, seed=2), "scale": rnd(3, seed=3), "w": rnd(4, 3, 3, 3, seed=4)}),
    "input_is_output_and_dropout_chain": lambda: _graph(
        [N("Dropout", ["x"], ["d"], ratio=0.2), N("Identity", ["d"], ["y"])],
        {"x": X4}, ["y", "d"], opset=10),
    "two_inputs_two_outputs": lambda: _graph(
        [N("Conv", ["x", "w"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         N("Add", ["a", "z"], ["y"]), N("Relu", ["a"], ["r"])],
        {"x": X4, "z": [2, 3, 9, 8]}, ["y", "r"], {"w": rnd(3, 4, 3, 3, seed=2)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_agrees_with_onnxruntime(case):
    model, feeds = CASES[case]()
    check(model, feeds)


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_graph_agrees_with_onnxruntime(case):
    model, feeds = GRAPHS[case]()
    check(model, feeds)


def test_layer_types_of_the_conversions():
    types = lambda net: [l.block.type_name for l in net.layers]  # noqa: E731
    net = load_onnx(GRAPHS["flatten_gemm"]()[0])
    assert types(net) == ["dagnn.Conv"]          # flatten + Gemm: one exact convolution
    f = net.params[0].value
    assert tuple(f.shape) == (7, 4, 9, 8) and net.layers[0].block.hasBias
    net = load_onnx(GRAPHS["conv_then_bias_add"]()[0])
    assert types(net) == ["dagnn.Conv"] and net.layers[0].block.hasBias  # bias folded
    net = load_onnx(GRAPHS["conv_bias_used_twice"]()[0])
    assert sorted(types(net)) == ["dagnn.BinaryOp", "dagnn.Conv", "dagnn.ReLU"]  # no fold
    net = load_onnx(GRAPHS["nhwc_input_transpose"]()[0])
    assert types(net) == ["dagnn.Conv"]          # the input transpose folds away
    assert net.meta["inputs"][0]["permutation"] == [0, 3, 1, 2]
    assert net.meta["inputs"][0]["size"] == [7, 6, 3, 1]
    assert math.isnan(net.meta["inputs"][0]["onnxShape"][0])
    net = load_onnx(GRAPHS["mid_transpose_then_conv"]()[0])
    assert types(net) == ["dagnn.ReLU", "dagnn.Permute", "dagnn.Conv"]
    net = load_onnx(GRAPHS["one_flatten_two_readers"]()[0])
    assert types(net).count("dagnn.Permute") == 1 and types(net).count("dagnn.Reshape") == 1
    net = load_onnx(CASES["avgpool_pads_include"]()[0])
    assert types(net) == ["dagnn.Pad", "dagnn.Pooling"]
    assert net.mode == "test"


def test_input_shapes_for_symbolic_sizes():
    node = helper.make_node("Relu", ["x"], ["y"])
    model = make_model([node], {"x": [None, 3, None, None]}, ["y"])
    with pytest.raises(ValueError, match=r"symbolic; pass input_shapes"):
        load_onnx(model)
    net = load_onnx(model, input_shapes={"x": [1, 3, 5, 6]})
    assert net.get_var_sizes({"x": (2, 3, 5, 6)})["y"] == (2, 3, 5, 6)
    with pytest.raises(ValueError, match="contradicts"):
        load_onnx(model, input_shapes={"x": [1, 4, 5, 6]})
    with pytest.raises(ValueError, match=r"input_shapes: \['z'\] are not inputs"):
        load_onnx(model, input_shapes={"z": [1, 3, 5, 6]})
    assert math.isnan(net.meta["outputs"][0]["onnxShape"][0])


def test_batch_size_is_free():
    model, feeds = GRAPHS["gemm_chain_batchnorm_softmax"]()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    net = load_onnx(model)
    x = rnd(5, 4, 9, 8, seed=9)
    agree(dagnn_run(net, {"x": x})[0], ort_run(model, {"x": x})[0])


def test_even_lrn_follows_the_onnx_window():
    # onnxruntime rejects even sizes; the ONNX definition sums the squares over the
    # channels [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)]
    model, feeds = single("LRN", [2, 7, 5, 4], dict(size=4, alpha=0.02, beta=0.6, bias=1.5))
    x = feeds["x"].astype(np.float64)
    sq = np.pad(x * x, ((0, 0), (1, 2), (0, 0), (0, 0)))
    window = sum(sq[:, k:k + 7] for k in range(4))
    agree(dagnn_run(load_onnx(model), feeds)[0], x / (1.5 + 0.02 / 4 * window) ** 0.6)


def test_legacy_broadcast_before_opset_7():
    # onnxruntime no longer runs opset-6 Add; B aligns with A's axes from 'axis'
    c = rnd(4, seed=2)
    model, feeds = single("Add", X4, dict(broadcast=1, axis=1), inits=[("c", c)], opset=6)
    agree(dagnn_run(load_onnx(model), feeds)[0], feeds["x"] + c.reshape(1, 4, 1, 1))


# ----------------------------------------------------------------------------- real models


def _mnist_test():
    import matconvnet.data as mdata
    root = DATA / "mnist"
    if (root / "t10k-images-idx3-ubyte.gz").is_file():
        images = np.frombuffer(gzip.open(root / "t10k-images-idx3-ubyte.gz").read(), np.uint8,
                               offset=16).reshape(-1, 1, 28, 28)
        labels = np.frombuffer(gzip.open(root / "t10k-labels-idx1-ubyte.gz").read(), np.uint8,
                               offset=8).astype(np.int64)
        return images.astype(np.float32), labels
    images, labels = mdata.load_mnist("test")
    return images, labels - 1


def _cifar_test():
    """The 10,000 test images (N x 32 x 32 x 3, RGB / 255, float32) and their labels."""
    from PIL import Image
    with zipfile.ZipFile(CIFAR) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith(".jpg"))
        images = np.stack([np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB"))
                           for n in names])
    labels = np.array([CIFAR_CLASSES.index(n.split("/")[-2]) for n in names])
    return images.astype(np.float32) / 255.0, labels


@needs[MNIST8]
def test_mnist8_agrees_with_onnxruntime_and_scores_98_9():
    net = load_onnx(MNIST8)
    assert [l.block.type_name for l in net.layers] == [
        "dagnn.Conv", "dagnn.ReLU", "dagnn.Pooling", "dagnn.Conv", "dagnn.ReLU",
        "dagnn.Pooling", "dagnn.Conv"]
    images, labels = _mnist_test()
    x = images / 255.0
    out = net.meta["outputs"][0]["name"]
    net.eval({"Input3": torch.from_numpy(x)})
    scores = net.vars[net.get_var_index(out)].value.reshape(len(x), 10).numpy()
    accuracy = float((scores.argmax(1) == labels).mean())
    assert abs(accuracy - 0.989) < 0.0005, accuracy     # SOURCES.md: 98.9%
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(MNIST8), opts, providers=["CPUExecutionProvider"])
    for k in range(0, 10000, 50):                       # the file fixes the batch at 1
        expected = sess.run(None, {"Input3": x[k:k + 1]})[0]
        agree(scores[k:k + 1], expected, what=f"digit {k}")


@needs[SQUEEZENET]
@needs[CIFAR]
def test_squeezenet_cifar10_agrees_with_onnxruntime_and_scores_75_4():
    net = load_onnx(SQUEEZENET)
    assert "dagnn.Permute" not in [l.block.type_name for l in net.layers]
    x, labels = _cifar_test()
    scores = np.concatenate([dagnn_run(net, {"input_1": x[k:k + 1000]})[0].reshape(-1, 10)
                             for k in range(0, len(x), 1000)])
    accuracy = float((scores.argmax(1) == labels).mean())
    assert abs(accuracy - 0.754) < 0.0005, accuracy     # SOURCES.md: 75.4% (75.37%)
    some = np.arange(0, len(x), 25)                     # 400 images, 40 per class
    expected = ort_run(SQUEEZENET, {"input_1": x[some]})[0]
    agree(scores[some], expected)


# ----------------------------------------------------------------------------- bad input


def test_unsupported_operators_are_listed_together():
    model = make_model([N("Tanh", ["x"], ["a"]), N("Relu", ["a"], ["b"]),
                        N("Exp", ["b"], ["c"]), N("Tanh", ["c"], ["y"])],
                       {"x": X4}, ["y"])
    with pytest.raises(ValueError) as e:
        load_onnx(model)
    msg = str(e.value)
    assert "unsupported operators" in msg and "Exp (1x" in msg and "Tanh (2x" in msg


def test_unsupported_attribute_cases_name_the_node():
    model, _ = single("Pad", X4, inits=[("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))],
                      attrs=dict(mode="reflect"))
    with pytest.raises(ValueError, match=r"node '#0' \(Pad\): mode: only constant"):
        load_onnx(model)
    model, _ = single("MaxPool", X4, dict(kernel_shape=[2, 2], dilations=[2, 2]))
    with pytest.raises(ValueError, match="dilated pooling"):
        load_onnx(model)
    model = make_model([N("MatMul", ["w", "x"], ["y"])], {"x": [3, 4]}, ["y"],
                       {"w": rnd(2, 3)})
    with pytest.raises(ValueError, match="expected a tensor computed from the inputs"):
        load_onnx(model)
    model = make_model([N("Max", ["x", "c"], ["y"])], {"x": X4}, ["y"], {"c": rnd(1)})
    with pytest.raises(ValueError, match=r"\(Max\): Max is supported on constants only"):
        load_onnx(model)
    model = make_model([N("Slice", ["x", "s", "e", "a"], ["y"])], {"x": X4}, ["y"],
                       {"s": np.array([1], np.int64), "e": np.array([3], np.int64),
                        "a": np.array([1], np.int64)})
    with pytest.raises(ValueError, match="along the H and W axes"):
        load_onnx(model)


def test_cycle_is_an_error():
    model = make_model([N("Relu", ["x2"], ["x1"]), N("Sigmoid", ["x1"], ["x2"]),
                        N("Add", ["x", "x2"], ["y"])], {"x": X4}, ["y"])
    with pytest.raises(ValueError, match=r"cycle: node '#0' \(Relu\) -> node '#1' "
                                         r"\(Sigmoid\) -> node '#0' \(Relu\)"):
        load_onnx(model)


def test_missing_initializer_is_an_error(tmp_path):
    model = make_model([N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3])], {"x": X4},
                       ["y"], {"w": rnd(3, 4, 3, 3)})
    with pytest.raises(ValueError, match=r"'b' \(read by node '#0' \(Conv\)\)"):
        load_onnx(model)
    if MNIST8.is_file():
        m = onnx.load(str(MNIST8))
        keep = [t for t in m.graph.initializer if t.name != "Parameter87"]
        del m.graph.initializer[:]
        m.graph.initializer.extend(keep)
        inputs = [i for i in m.graph.input if i.name != "Parameter87"]
        del m.graph.input[:]
        m.graph.input.extend(inputs)
        path = tmp_path / "broken.onnx"
        path.write_bytes(m.SerializeToString())
        with pytest.raises(ValueError, match=r"broken.onnx: .*missing.*'Parameter87'"):
            load_onnx(path)


@needs[MNIST8]
def test_truncated_and_garbage_files(tmp_path):
    data = MNIST8.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="cut.onnx: .*(truncated|decoding)"):
        load_onnx(path)
    with pytest.raises(ValueError, match="holds no graph"):
        load_onnx(b"")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        load_onnx(b"\xff\xfe not a protobuf \x00\x01")
    with pytest.raises(FileNotFoundError):
        load_onnx(tmp_path / "nope.onnx")
    with pytest.raises(TypeError, match="path_or_model"):
        load_onnx(42)


def test_output_that_is_a_constant_or_computed_twice():
    model = make_model([N("Constant", [], ["y"], value_float=1.0)], {"x": X4}, ["y"])
    with pytest.raises(ValueError, match="constant"):
        load_onnx(model)
    model = make_model([N("Relu", ["x"], ["y"]), N("Sigmoid", ["x"], ["y"])], {"x": X4}, ["y"])
    with pytest.raises(ValueError, match="computed twice"):
        load_onnx(model)


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:                                       # flip a few bytes
        for i in rng.integers(0, len(b), rng.integers(1, 9)):
            b[i] ^= int(rng.integers(1, 256))
    elif kind == 1:                                     # truncate
        b = b[:int(rng.integers(0, len(b)))]
    elif kind == 2:                                     # overwrite a span with noise
        i = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, 64))
        b[i:i + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    else:                                               # insert noise
        i = int(rng.integers(0, len(b)))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
    return bytes(b)


@pytest.mark.parametrize("path", [pytest.param(MNIST8, id="mnist-8", marks=needs[MNIST8]),
                                  pytest.param(SQUEEZENET, id="squeezenet",
                                               marks=needs[SQUEEZENET])])
def test_fuzzed_files_give_clear_errors_or_working_nets(path):
    data = path.read_bytes()
    rng = np.random.default_rng(8)
    outcomes = {"error": 0, "net": 0}
    start = time.perf_counter()
    for case in range(200):
        corrupted = _corrupt(data, rng)
        try:
            net = load_onnx(corrupted)
        except ValueError as e:
            assert str(e), f"case {case}: empty message"
            outcomes["error"] += 1
            continue
        outcomes["net"] += 1
        sizes = {e["name"]: e["size"] for e in net.meta["inputs"]}
        inputs = {n: torch.zeros(1, s[2], s[0], s[1]) for n, s in sizes.items()}
        var_sizes = net.get_var_sizes({n: tuple(t.shape) for n, t in inputs.items()})
        if max(math.prod(v) for v in var_sizes.values()) <= 1 << 20:   # else: too big to run
            net.eval(inputs)
            for o in net.meta["outputs"]:
                assert net.vars[net.get_var_index(o["name"])].value is not None
    assert outcomes["error"] > 0 and outcomes["net"] > 0, outcomes
    assert time.perf_counter() - start < 60
