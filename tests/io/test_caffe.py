"""Caffe importer (matconvnet.io.caffe): real models, exactness against Caffe's semantics,
malformed inputs and a fuzz loop.

Real files come from ../shared/data (skipped cleanly when absent): LeNet (new-style
``layer``) on the MNIST test digits, CIFAR10-quick (V1 ``layers`` caffemodel) on the CIFAR-10
test JPEGs.  Synthetic networks (prototxt text + caffemodel bytes written with the importer's
schema) cover every converted layer type and are checked against a direct PyTorch
implementation of Caffe's definitions (ceil-mode pooling, AVE divisors counting the padding,
LRN's alpha / n, InnerProduct's C-order flattening, ...).
"""
from __future__ import annotations

import gzip
import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matconvnet.dagnn import DagNN
from matconvnet.geometry import simplenn_geometry
from matconvnet.io.caffe import CaffeImportError, _schema, load_caffe, read_caffemodel
from matconvnet.simplenn import vl_simplenn

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LENET = DATA / "caffe" / "lenet-mnist"
CIFAR = DATA / "caffe" / "cifar10-quick"
SQUEEZE = DATA / "caffe" / "squeezenet-v1.0-deepcompression"
needs_lenet = pytest.mark.skipif(not (LENET.is_dir() and (DATA / "mnist").is_dir()),
                                 reason="../shared/data/caffe/lenet-mnist or mnist is absent")
needs_cifar = pytest.mark.skipif(
    not (CIFAR.is_dir() and (DATA / "cifar10-test-jpeg").is_dir()),
    reason="../shared/data/caffe/cifar10-quick or cifar10-test-jpeg is absent")
CIFAR_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


# ----------------------------------------------------------------------------- helpers


def run(net, x):
    """The network's (last) output for input x (test mode)."""
    if isinstance(net, DagNN):
        net.mode = "test"
        net.eval({net.get_inputs()[0]: x})
        return net.vars[net.get_var_index(net.get_outputs()[-1])].value
    return vl_simplenn(net, x, mode="test")[-1]["x"]


def caffemodel(weights, v1=False):
    """Caffemodel bytes: {layer name: [arrays]}; V1 files keep 4-D num/channels/h/w blobs."""
    S = _schema()
    net = S["NetParameter"]()
    for name, arrays in weights.items():
        layer = net.layers.add() if v1 else net.layer.add()
        layer.name = name
        for a in arrays:
            a = np.asarray(a, np.float32)
            blob = layer.blobs.add()
            if v1:
                shape = (1,) * (4 - a.ndim) + a.shape
                blob.num, blob.channels, blob.height, blob.width = shape
            else:
                blob.shape.dim.extend(a.shape)
            blob.data.extend(a.ravel().tolist())
    return net.SerializeToString()


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.fixture(scope="module")
def mnist():
    x = np.frombuffer(gzip.open(DATA / "mnist" / "t10k-images-idx3-ubyte.gz").read(), np.uint8)
    y = np.frombuffer(gzip.open(DATA / "mnist" / "t10k-labels-idx1-ubyte.gz").read(), np.uint8)
    x = x[16:].reshape(-1, 1, 28, 28).astype(np.float32) / 255  # the prototxt's scale 1/256
    return torch.from_numpy(x), y[8:].astype(np.int64)


@pytest.fixture(scope="module")
def cifar():
    """CIFAR-10 test images (N x 3 x 32 x 32, RGB) minus the per-pixel test-set mean."""
    from PIL import Image
    with zipfile.ZipFile(DATA / "cifar10-test-jpeg" / "cifar10_test_jpeg.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".jpg"))
        ims = np.stack([np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB"))
                        for n in names]).astype(np.float32)
    labels = np.array([CIFAR_CLASSES.index(n.split("/")[-2]) for n in names])
    ims -= ims.mean(axis=0)
    return torch.from_numpy(ims.transpose(0, 3, 1, 2).copy()), labels


def accuracy(net, x, y, batch=2000):
    preds = [run(net, x[i:i + batch]).reshape(len(x[i:i + batch]), -1).argmax(1)
             for i in range(0, len(x), batch)]
    return float((torch.cat(preds).numpy() == y).mean())


# ----------------------------------------------------------------------------- schema


def test_schema_matches_protoc():
    """The runtime .proto parser gives protoc's descriptor (json names aside)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    import tempfile
    from google.protobuf import descriptor_pb2
    from matconvnet.io import _proto
    src = Path(__file__).resolve().parents[2] / "matconvnet" / "io"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "caffe.desc"
        assert protoc.main(["protoc", f"-I{src}", f"--descriptor_set_out={out}",
                            "caffe.proto"]) == 0
        ref = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]

    def strip(messages):
        for m in messages:
            for f in m.field:
                f.ClearField("json_name")
            strip(m.nested_type)
    strip(ref.message_type)
    assert _proto.parse_proto((src / "caffe.proto").read_text()) == ref


def test_proto_parser_rejects_what_it_does_not_understand():
    from matconvnet.io._proto import parse_proto
    with pytest.raises(ValueError, match="line 2: unsupported declaration 'oneof'"):
        parse_proto('message A {\n oneof x { int32 a = 1; }\n}')
    with pytest.raises(ValueError, match="unknown type 'B'"):
        parse_proto("message A { optional B b = 1; }")
    with pytest.raises(ValueError, match="only proto2"):
        parse_proto('syntax = "proto3";')


# ----------------------------------------------------------------------------- real models


@needs_lenet
def test_lenet_imports_as_simplenn_and_scores_99_04(mnist):
    net = load_caffe(LENET / "lenet_deploy.prototxt", LENET / "lenet_iter_10000.caffemodel")
    assert isinstance(net, dict)
    assert [l["type"] for l in net["layers"]] == ["conv", "pool", "conv", "pool", "conv",
                                                  "relu", "conv", "softmax"]
    ip1 = net["layers"][4]
    assert tuple(ip1["weights"][0].shape) == (500, 50, 4, 4)  # InnerProduct 500 x 800
    assert net["layers"][1]["pad"] == [0, 1, 0, 1]            # Caffe's ceil rule
    assert net["meta"]["normalization"]["imageSize"] == [28, 28, 1]
    assert net["meta"]["inputSize"] == [28, 28, 1, 1]
    assert "channelOrder" not in net["meta"]                  # one channel
    x, y = mnist
    assert accuracy(net, x, y) == pytest.approx(0.9904, abs=1e-9)


@needs_lenet
def test_lenet_as_dagnn_gives_the_simplenn_outputs(mnist):
    files = (LENET / "lenet_deploy.prototxt", LENET / "lenet_iter_10000.caffemodel")
    simple, dag = load_caffe(*files), load_caffe(*files, wrapper="dagnn")
    assert isinstance(dag, DagNN) and dag.meta["inputs"] == [{"name": "data",
                                                               "size": [28, 28, 1, 1]}]
    x = mnist[0][:50]
    torch.testing.assert_close(run(dag, x), run(simple, x), rtol=0, atol=0)


def caffe_reference_cifar(weights, x):
    """CIFAR10-quick by Caffe's definitions, in PyTorch (weights: Caffe blobs by layer)."""
    def conv(name, x):
        w, b = weights[name]
        return F.conv2d(x, torch.from_numpy(w.reshape(b.size, -1, 5, 5)),
                        torch.from_numpy(b.ravel()), padding=2)

    def ip(name, x):
        w, b = weights[name]
        return x.flatten(1) @ torch.from_numpy(w.reshape(b.size, -1)).T + torch.from_numpy(
            b.ravel())
    x = F.relu(F.max_pool2d(conv("conv1", x), 3, 2, ceil_mode=True))
    x = F.avg_pool2d(F.relu(conv("conv2", x)), 3, 2, ceil_mode=True)
    x = F.avg_pool2d(F.relu(conv("conv3", x)), 3, 2, ceil_mode=True)
    return F.softmax(ip("ip2", ip("ip1", x)), dim=1)


@needs_cifar
def test_cifar10_quick_v1_matches_caffe_semantics(cifar):
    model = read_caffemodel(CIFAR / "cifar10_quick_iter_5000.caffemodel")
    assert len(model.layers) and not len(model.layer)  # V1 format
    weights = {l.name: [np.array(b.data, np.float32).reshape(b.num, b.channels, b.height,
                                                             b.width) for b in l.blobs]
               for l in model.layers if len(l.blobs)}
    net = load_caffe(CIFAR / "cifar10_quick.prototxt", CIFAR / "cifar10_quick_iter_5000.caffemodel",
                     channel_order="RGB")
    assert isinstance(net, dict) and net["meta"]["channelOrder"] == "RGB"
    x = cifar[0][:64]
    y = run(net, x).reshape(64, 10)
    assert rel_err(y, caffe_reference_cifar(weights, x)) < 1e-5


@needs_cifar
def test_cifar10_quick_scores_about_74_percent_on_a_subset(cifar):
    net = load_caffe(CIFAR / "cifar10_quick.prototxt", CIFAR / "cifar10_quick_iter_5000.caffemodel")
    x, y = cifar
    pick = np.arange(0, len(y), 10)  # 1000 images, 100 per class
    acc = accuracy(net, x[pick], y[pick])
    assert acc == pytest.approx(0.741, abs=0.03)


@pytest.mark.slow
@needs_cifar
def test_cifar10_quick_scores_74_1_percent_on_all_10k(cifar):
    net = load_caffe(CIFAR / "cifar10_quick.prototxt", CIFAR / "cifar10_quick_iter_5000.caffemodel")
    assert accuracy(net, *cifar) == pytest.approx(0.7412, abs=1e-9)


@pytest.mark.skipif(not SQUEEZE.is_dir(), reason="../shared/data/caffe/squeezenet is absent")
def test_squeezenet_structure_is_a_dagnn_with_input_dim_and_global_pooling():
    net = load_caffe(SQUEEZE / "SqueezeNet_deploy.prototxt")
    assert isinstance(net, DagNN)
    assert net.get_inputs() == ["data"] and net.get_outputs() == ["pool_final"]
    assert net.meta["channelOrder"] == "BGR"
    assert net.meta["normalization"]["imageSize"] == [227, 227, 3]
    sizes = net.get_var_sizes({"data": (1, 3, 227, 227)})
    assert tuple(sizes["pool_final"]) == (1, 1000, 1, 1)
    with pytest.raises(CaffeImportError,
                       match="cannot be a SimpleNN chain: layer .* does not read"):
        load_caffe(SQUEEZE / "SqueezeNet_deploy.prototxt", wrapper="simplenn")


# ----------------------------------------------------------------------------- synthetic

# Every converted layer type in one graph, with Caffe's 2-D option forms.
ALL_LAYERS = """
name: "all"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 4 dim: 9 dim: 11 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1
                            stride_h: 1 stride_w: 2 dilation: 2 group: 2 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"
        batch_norm_param { eps: 0.001 } }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "ave" type: "Pooling" bottom: "conv1" top: "ave"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "max" type: "Pooling" bottom: "conv1" top: "max"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "cat" type: "Concat" bottom: "ave" bottom: "max" top: "cat" }
layer { name: "lrn" type: "LRN" bottom: "cat" top: "lrn"
        lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layer { name: "split" type: "Split" bottom: "lrn" top: "a" top: "b" }
layer { name: "sc2" type: "Scale" bottom: "b" top: "b2" }
layer { name: "up" type: "Deconvolution" bottom: "b2" top: "up"
        convolution_param { num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 3 } }
layer { name: "down" type: "Convolution" bottom: "up" top: "down"
        convolution_param { num_output: 12 kernel_size: 2 stride: 2 bias_term: false } }
layer { name: "drop" type: "Dropout" bottom: "down" top: "down"
        dropout_param { dropout_ratio: 0.3 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "down" top: "sum"
        eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "sum" bottom: "a" bottom: "b2" top: "prod"
        eltwise_param { operation: PROD } }
layer { name: "sig" type: "Sigmoid" bottom: "prod" top: "sig" }
layer { name: "ip" type: "InnerProduct" bottom: "sig" top: "ip"
        inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""


def all_layers_weights(seed=0):
    g = np.random.default_rng(seed)
    r = lambda *s: g.standard_normal(s).astype(np.float32)  # noqa: E731
    return {
        "conv1": [r(6, 2, 3, 2), r(6)],
        "bn1": [r(6), np.abs(r(6)) * 3, np.array([2.5], np.float32)],
        "sc1": [r(6), r(6)],
        "sc2": [r(12)],
        "up": [r(12, 2, 4, 4), r(6)],
        "down": [r(12, 6, 2, 2)],
        "ip": [r(5, 12 * 5 * 4), r(5)],
    }


def all_layers_reference(w, x):
    t = {k: [torch.from_numpy(a) for a in v] for k, v in w.items()}
    y = F.conv2d(x, *t["conv1"], stride=(1, 2), padding=(2, 1), dilation=2, groups=2)
    mean, var, s = t["bn1"]
    y = (y - (mean / s).view(1, -1, 1, 1)) / torch.sqrt(var / s + 0.001).view(1, -1, 1, 1)
    y = y * t["sc1"][0].view(1, -1, 1, 1) + t["sc1"][1].view(1, -1, 1, 1)
    y = F.leaky_relu(y, 0.1)
    y = torch.cat([F.avg_pool2d(y, 3, 2, 1, ceil_mode=True, count_include_pad=True),
                   F.max_pool2d(y, 3, 2, 1, ceil_mode=True)], 1)
    a = F.local_response_norm(y, 3, alpha=0.5, beta=0.75, k=2.0)
    b2 = a * t["sc2"][0].view(1, -1, 1, 1)
    up = F.conv_transpose2d(b2, *t["up"], stride=2, padding=1, groups=3)
    down = F.conv2d(up, t["down"][0], stride=2)
    s = 0.5 * a + -2 * down
    y = torch.sigmoid(s * a * b2)
    return F.softmax(y.flatten(1) @ t["ip"][0].T + t["ip"][1], dim=1)


def test_every_layer_type_matches_caffe_semantics():
    w = all_layers_weights()
    net = load_caffe(ALL_LAYERS.encode(), caffemodel(w))
    assert isinstance(net, DagNN)
    names = [l.name for l in net.layers]
    assert "sc1" not in names                 # folded into bn1
    assert "ave_pad" in names                 # AVE with padding: explicit zero padding
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 4, 9, 11)).astype(
        np.float32))
    y = run(net, x)
    assert y.shape == (2, 5, 1, 1)
    assert rel_err(y.reshape(2, 5), all_layers_reference(w, x)) < 1e-5
    sizes = net.get_var_sizes({"data": (2, 4, 9, 11)})
    assert tuple(sizes["prob"]) == (2, 5, 1, 1)
    coeff = net.params[net.get_param_index("sum_coeff2")]
    assert coeff.value.item() == -2 and coeff.learning_rate == 0


def test_imported_networks_round_trip_through_mat_files(tmp_path):
    from matconvnet.io import load, load_dagnn, save, save_dagnn
    dag = load_caffe(ALL_LAYERS.encode(), caffemodel(all_layers_weights()))
    simple = load_caffe(V1_NET.encode(), caffemodel(
        {"conv": [np.ones((3, 2, 3, 3)), np.ones(3)], "ip": [np.ones((4, 48)), np.ones(4)]},
        v1=True))
    save_dagnn(tmp_path / "dag.mat", dag)
    save(tmp_path / "simple.mat", simple)
    x = torch.randn(2, 4, 9, 11)
    torch.testing.assert_close(run(load_dagnn(tmp_path / "dag.mat"), x), run(dag, x),
                               rtol=0, atol=0)
    x = torch.randn(3, 2, 7, 6)
    torch.testing.assert_close(run(load(tmp_path / "simple.mat"), x), run(simple, x),
                               rtol=0, atol=0)


V1_NET = """
name: "v1"
input: "data"
input_dim: 3 input_dim: 2 input_dim: 7 input_dim: 6
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "pool" type: POOLING bottom: "conv" top: "pool"
         pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
layers { name: "ip" type: INNER_PRODUCT bottom: "pool" top: "ip"
         inner_product_param { num_output: 4 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip" bottom: "label" top: "loss"
         include { phase: TRAIN } }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" exclude { phase: TRAIN } }
"""


def test_v1_format_with_legacy_blobs_and_phase_rules():
    g = np.random.default_rng(2)
    w = {"conv": [g.standard_normal((3, 2, 3, 3)), g.standard_normal(3)],
         "ip": [g.standard_normal((4, 3 * 4 * 4)), g.standard_normal(4)]}  # pool: 4 x 4
    model = caffemodel(w, v1=True)
    simple = load_caffe(V1_NET.encode(), model)
    dag = load_caffe(V1_NET.encode(), model, wrapper="dagnn")
    assert isinstance(simple, dict) and [l["type"] for l in simple["layers"]] == [
        "conv", "relu", "conv", "pool", "conv", "softmax"]
    x = torch.from_numpy(g.standard_normal((3, 2, 7, 6)).astype(np.float32))
    t = {k: [torch.from_numpy(np.asarray(a, np.float32)) for a in v] for k, v in w.items()}
    ref = F.avg_pool2d(F.relu(F.conv2d(x, *t["conv"], padding=1)), 2, 2, 1, ceil_mode=True)
    ref = F.softmax(ref.flatten(1) @ t["ip"][0].T + t["ip"][1], dim=1)
    assert rel_err(run(simple, x).reshape(3, 4), ref) < 1e-5
    torch.testing.assert_close(run(dag, x), run(simple, x), rtol=0, atol=0)


def test_data_layer_records_mean_scale_and_size_in_meta():
    proto = b"""
    layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }
            transform_param { crop_size: 8 mean_value: 104 mean_value: 117 mean_value: 123
                              scale: 0.5 } }
    layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN } }
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
            convolution_param { num_output: 2 kernel_size: 8 } }
    layer { name: "acc" type: "Accuracy" bottom: "c" bottom: "label" include { phase: TRAIN } }
    """
    net = load_caffe(proto, caffemodel({"c": [np.ones((2, 3, 8, 8)), np.zeros(2)]}))
    meta = net["meta"]
    assert meta["normalization"]["imageSize"][:2] == [8, 8]
    assert meta["normalization"]["averageImage"].reshape(-1).tolist() == [104, 117, 123]
    assert meta["caffe"]["scale"] == 0.5 and meta["channelOrder"] == "BGR"
    # without a caffemodel the weights are zero, shaped from the input channels when known
    with pytest.raises(CaffeImportError, match="channels are unknown"):
        load_caffe(proto)


def test_without_caffemodel_the_weights_are_zero():
    net = load_caffe(V1_NET.encode())
    weighted = [l for l in net["layers"] if l["name"] in ("conv", "ip")]
    assert len(weighted) == 2
    assert all(float(w.abs().sum()) == 0 for l in weighted for w in l["weights"])
    assert tuple(net["layers"][4]["weights"][0].shape) == (4, 3, 4, 4)


# ----------------------------------------------------------------------------- errors


def test_unknown_layer_types_are_all_listed():
    proto = ALL_LAYERS.replace('type: "LRN"', 'type: "Frobnicate"').replace(
        'type: "Sigmoid"', 'type: "TanH"')
    with pytest.raises(CaffeImportError, match=r"'Frobnicate' \(layer 'lrn'\), 'TanH' "
                                               r"\(layer 'sig'\)"):
        load_caffe(proto.encode())


@needs_lenet
def test_truncated_caffemodel_is_a_clear_error():
    raw = (LENET / "lenet_iter_10000.caffemodel").read_bytes()
    for cut in (3, 1000, len(raw) // 2, len(raw) - 1):
        with pytest.raises(CaffeImportError, match="caffemodel"):
            load_caffe(LENET / "lenet_deploy.prototxt", raw[:cut])


@needs_lenet
def test_weight_shape_mismatch_names_layer_and_expected_shape():
    proto = (LENET / "lenet_deploy.prototxt").read_text().replace("num_output: 20",
                                                                  "num_output: 21")
    with pytest.raises(CaffeImportError, match=r"layer 'conv1' \(Convolution\): filters: has "
                                               r"shape \(20, 1, 5, 5\), expected 21 x 1 x 5 x 5"):
        load_caffe(proto.encode(), LENET / "lenet_iter_10000.caffemodel")
    proto = (LENET / "lenet_deploy.prototxt").read_text().replace("dim: 28 dim: 28",
                                                                  "dim: 32 dim: 32")
    with pytest.raises(CaffeImportError, match=r"'ip1'.*shape \(500, 800\), expected 500 x 1250"):
        load_caffe(proto.encode(), LENET / "lenet_iter_10000.caffemodel")


@pytest.mark.parametrize("proto, message", [
    (b"input: 'data'\nlayer { name: 'x' type: 'ReLU' bottom: 'data' top: 'y' ",
     "invalid prototxt"),
    (b"input: 'data' input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n"
     b"layer { name: 'x' type: 'ReLU' bottom: 'nope' top: 'y' }",
     "bottom blob 'nope' is not produced"),
    (b"input: 'data' input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n"
     b"layer { name: 'm' type: 'Eltwise' bottom: 'data' bottom: 'data' top: 'y'"
     b"        eltwise_param { operation: MAX } }", "Eltwise MAX is not supported"),
    (b"input: 'data' input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n"
     b"layer { name: 'p' type: 'Pooling' bottom: 'data' top: 'y'"
     b"        pooling_param { kernel_size: 1 stride: 2 } }", "cannot reproduce Caffe's output"),
    (b"input: 'data' input_dim: 1 input_dim: 1 input_dim: 4\n"
     b"layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'y' }", "need 4 input_dim values"),
    (b"layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'y' }", "not produced"),
    (b"input: 'data'\nlayer { name: 'l' type: 'LRN' bottom: 'data' top: 'y' "
     b"lrn_param { local_size: 4 } }", "local_size must be odd"),
    (b"\xff\xfe garbage", "not a text prototxt"),
    (b"input: 'data'\nlayer { name: 'x' type: 'ReLU' pad: 3 }",
     "expected at least 1 bottom blob"),
])
def test_malformed_prototxt_is_a_clear_error(proto, message):
    with pytest.raises(CaffeImportError, match=message):
        load_caffe(proto)


def test_missing_or_extra_weights_are_clear_errors():
    with pytest.raises(CaffeImportError, match="has no weights for this layer"):
        load_caffe(V1_NET.encode(), caffemodel({"conv": [np.zeros((3, 2, 3, 3)), np.zeros(3)]}))
    with pytest.raises(CaffeImportError, match="has 1 weight blob.*expected 2"):
        load_caffe(V1_NET.encode(), caffemodel({"conv": [np.zeros((3, 2, 3, 3))]}))


def test_bad_arguments():
    with pytest.raises(ValueError, match="wrapper"):
        load_caffe(V1_NET.encode(), wrapper="matconvnet")
    with pytest.raises(TypeError, match="prototxt: expected a path"):
        load_caffe(12)
    with pytest.raises(FileNotFoundError):
        load_caffe("/nonexistent/net.prototxt")


# ----------------------------------------------------------------------------- fuzz


def corrupt(raw: bytes, rng: np.random.Generator, hot: np.ndarray) -> bytes:
    """One random corruption: byte changes (half of them near protobuf structure when
    ``hot`` offsets are given), a truncation, an insertion or a deletion."""
    data = bytearray(raw)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 9)):
            i = int(rng.choice(hot)) if len(hot) and rng.random() < 0.5 \
                else int(rng.integers(len(data)))
            data[i] = int(rng.integers(256))
    elif kind == 1:
        del data[int(rng.integers(len(data))):]
    elif kind == 2:
        i = int(rng.integers(len(data) + 1))
        data[i:i] = rng.integers(0, 256, int(rng.integers(1, 16))).astype(np.uint8).tobytes()
    else:
        i = int(rng.integers(len(data)))
        del data[i:i + int(rng.integers(1, 64))]
    return bytes(data)


def structure_offsets(raw: bytes) -> np.ndarray:
    """Offsets of the caffemodel bytes outside the float payloads (the message structure)."""
    model = read_caffemodel(raw)
    mask = np.ones(len(raw), bool)
    for layer in list(model.layer) + list(model.layers):
        for b in layer.blobs:
            payload = np.asarray(b.data, np.float32).tobytes()
            at = raw.find(payload) if payload else -1
            if at >= 0:
                mask[at:at + len(payload)] = False
    return np.flatnonzero(mask)


def check_loads_or_fails_cleanly(proto, model):
    try:
        net = load_caffe(proto, model)
    except CaffeImportError:
        return "error"
    size = (net.meta["inputs"][0]["size"] if isinstance(net, DagNN)
            else net["meta"]["inputSize"])
    if all(np.isfinite(size)) and np.prod(size) <= 4096:   # a valid net runs
        h, w, c, n = (int(v) for v in size)
        if isinstance(net, DagNN):
            sizes = net.get_var_sizes({net.get_inputs()[0]: (n, c, h, w)}).values()
        else:
            sizes = simplenn_geometry(net, [h, w, c, n]).data_size
        if max(np.prod(s) for s in sizes) <= 1e6:
            run(net, torch.zeros(n, c, h, w))
    return "net"


@pytest.fixture
def one_thread():
    """Tiny forward passes: thread hand-offs would cost more than the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("folder, proto_name, model_name", [
    pytest.param(CIFAR, "cifar10_quick.prototxt", "cifar10_quick_iter_5000.caffemodel",
                 id="cifar10-quick"),
    pytest.param(LENET, "lenet_deploy.prototxt", "lenet_iter_10000.caffemodel", id="lenet"),
])
def test_fuzz_byte_corruptions(folder, proto_name, model_name, one_thread):
    """300 seeded corruptions per model (150 of the caffemodel, 150 of the prototxt): each
    gives a CaffeImportError or a network that runs; nothing else, no hang."""
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    proto, model = (folder / proto_name).read_bytes(), (folder / model_name).read_bytes()
    hot = structure_offsets(model)
    rng = np.random.default_rng(20240601)
    outcomes = {"caffemodel": {"error": 0, "net": 0}, "prototxt": {"error": 0, "net": 0}}
    slowest = 0.0
    for case in range(150):
        for source, args in (("caffemodel", (proto, corrupt(model, rng, hot))),
                             ("prototxt", (corrupt(proto, rng, np.array([], int)), model))):
            start = time.perf_counter()
            outcomes[source][check_loads_or_fails_cleanly(*args)] += 1
            slowest = max(slowest, time.perf_counter() - start)
    # both outcomes occur: the loop reaches the converter, not only the parsers
    assert all(n > 0 for o in outcomes.values() for n in o.values()), outcomes
    assert slowest < 10, f"a corrupted file took {slowest:.1f} s"
