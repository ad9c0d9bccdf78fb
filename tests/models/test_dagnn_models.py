"""matconvnet.models.dagnn_models: ResNet-50, the Inception init, GoogLeNet and FCN-32s/16s/8s.

For each net: it builds with float32 parameters; the structure and the initialisation
adjustments of the original init function (learning rates, zero / bilinear filters, meta);
parameter counts against published numbers (ResNet-50 as torchvision counts it, Caffe's
bvlc_googlenet without auxiliary classifiers, VGG-16 + FCN heads); ``get_var_sizes`` equals
the shape of every variable after a real forward/backward pass (``conserve_memory=False``),
which also checks that every parameter receives a derivative of its own shape.

The nets are built once per module.  Measured on 2 CPU cores: ResNet-50 224 x 224
forward+backward 0.6 s, Inception 299 x 299 0.7 s, GoogLeNet 224 x 224 0.3 s; an FCN build
takes 2 s (134 M random numbers); only FCN-8s runs backward (1-2 s with oneDNN off, see
``_without_onednn``; 8-10 s with it).
"""
from __future__ import annotations

import contextlib
import math

import pytest
import torch

from matconvnet.dagnn import layers as L
from matconvnet.models import dagnn_models as M


BUILDERS = {"resnet50": lambda: M.resnet50(seed=0),
            "inception": lambda: M.inception_v3(seed=0),
            "googlenet": lambda: M.googlenet(seed=0)}


@pytest.fixture(scope="module")
def nets():
    """The classification nets, each built on first use and freed after the module."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = BUILDERS[name]()
        return built[name]
    yield get
    built.clear()


def _count(net, skip=lambda p: False):
    return sum(p.value.numel() for p in net.params if not skip(p))


def _run_and_check_sizes(net, x, label, der_outputs=None):
    """Forward (and backward) with every value kept; compare each variable's shape with
    get_var_sizes and each parameter derivative's shape with the parameter's."""
    net.conserve_memory = False
    try:
        net.eval({"input": x, "label": label}, der_outputs)
        sizes = net.get_var_sizes({"input": tuple(x.shape)})
        losses = {v for l in net.layers if isinstance(l.block, L.Loss) for v in l.outputs}
        for v in net.vars:
            if v.name == "label":
                continue
            assert v.value is not None, f"{v.name}: no value after the forward pass"
            expected = tuple(int(s) for s in sizes[v.name])
            if v.name in losses:
                # a Loss returns a scalar; its size is (N, 1, 1, 1)
                assert v.value.numel() == 1 and expected == (x.shape[0], 1, 1, 1), v.name
                assert math.isfinite(float(v.value)), v.name
                continue
            assert tuple(v.value.shape) == expected, \
                f"{v.name}: get_var_sizes {expected}, forward pass {tuple(v.value.shape)}"
            assert v.value.dtype == torch.float32, v.name
            if der_outputs:
                assert v.der is not None and v.der.shape == v.value.shape, v.name
        if der_outputs:
            for p in net.params:
                assert p.der is not None and p.der.shape == p.value.shape, p.name
                assert bool(torch.isfinite(p.der).all()), p.name
        return sizes
    finally:
        net.reset()
        net.conserve_memory = True


def _param(net, name):
    return net.params[net.get_param_index(name)]


# ----------------------------------------------------------------------------- ResNet-50


def test_resnet50_structure_and_init(nets):
    net = nets("resnet50")
    assert len(net.layers) == 177
    # 25,557,032 as torchvision counts (BN scale and shift, no moments; no conv biases)
    moments = lambda p: p.name.endswith("_bn_m")  # noqa: E731
    assert _count(net, moments) == 25_557_032
    assert _count(net) - _count(net, moments) == 2 * 26_560
    assert all(p.value.dtype == torch.float32 for p in net.params)
    assert net.get_inputs() == ["input", "label"]
    assert sorted(net.get_outputs()) == ["objective", "top1error", "top5error"]
    kinds = {l.name: l.block for l in net.layers}
    assert kinds["top5error"].loss == "topkerror" and list(kinds["top5error"].opts) == ["topK", 5]
    assert kinds["conv1_conv"].hasBias is False and list(kinds["conv1_conv"].stride) == [2, 2]
    # stride 2 on the 3x3 unit and on the projection of the first block of sections 3-5
    for s in (3, 4, 5):
        assert list(kinds[f"conv{s}_1b_conv"].stride) == [2, 2]
        assert list(kinds[f"conv{s}_1_adapt_conv_conv"].stride) == [2, 2]
        assert list(kinds[f"conv{s}_1a_conv"].stride) == [1, 1]
    assert list(kinds["conv2_1_adapt_conv_conv"].stride) == [1, 1]
    assert kinds["conv2_1_sum"].__class__ is L.Sum
    layer = {l.name: l for l in net.layers}
    assert layer["conv2_1_sum"].inputs == ["conv2_1_adapt_conv_bn", "conv2_1c_bn"]
    assert layer["conv2_2_sum"].inputs == ["conv2_1", "conv2_2c_bn"]
    # conv1 divided by 100, learning rate by 100^2; BN moments learning rate 0.3, averaged
    f = _param(net, "conv1_f")
    assert f.learning_rate == pytest.approx(1e-4)
    assert float(f.value.std()) == pytest.approx(math.sqrt(2 / 147) / 100, rel=0.1)
    for p in net.params:
        if p.name.endswith("_bn_m"):
            assert p.learning_rate == 0.3 and p.train_method == "average", p.name
    assert net.meta["inputSize"] == ["input", [224, 224, 3, 32]]
    assert net.meta["normalization"]["imageSize"] == [224, 224, 3]
    assert net.meta["trainOpts"]["numEpochs"] == 90


def test_resnet50_sizes_forward_backward(nets):
    net = nets("resnet50")
    sizes = _run_and_check_sizes(net, torch.randn(1, 3, 224, 224), torch.tensor([7.0]),
                                 {"objective": 1.0})
    assert sizes["conv5_3"] == (1, 2048, 7, 7)
    assert sizes["prediction"] == (1, 1000, 1, 1)


def test_resnet50_without_batch_normalization():
    net = M.resnet50(num_classes=10, batch_normalization=False, seed=0)
    assert not any(isinstance(l.block, L.BatchNorm) for l in net.layers)
    assert all(l.block.hasBias for l in net.layers if isinstance(l.block, L.Conv))
    # minus the 53,120 BN scale/shift values, plus 26,560 conv biases; 10 classes
    assert _count(net) == 25_557_032 - 2 * 26_560 + 26_560 - 990 * 2049
    assert net.get_var_sizes({"input": (2, 3, 224, 224)})["prediction"] == (2, 10, 1, 1)


# ----------------------------------------------------------------------------- Inception


def test_inception_structure_and_sizes(nets):
    net = nets("inception")
    assert _count(net) == 22_042_664
    assert all(p.value.dtype == torch.float32 for p in net.params)
    assert sorted(net.get_outputs()) == ["prediction_loss", "prediction_top1error",
                                         "prediction_top5error"]
    # the fixed bug: numEpochs is the length of the learning-rate schedule
    assert net.meta["trainOpts"]["numEpochs"] == len(net.meta["trainOpts"]["learningRate"]) == 60
    assert net.meta["inputSize"] == ["input", [299, 299, 3, 32]]
    kinds = {l.name: l.block for l in net.layers}
    assert list(kinds["inception6_1_b2"].size) == [1, 7, 160, 160]
    assert list(kinds["inception6_1_b2"].pad) == [0, 0, 3, 3]
    assert kinds["prediction_dropout"].rate == 0.2
    sizes = _run_and_check_sizes(net, torch.randn(1, 3, 299, 299), torch.tensor([3.0]),
                                 {"prediction_loss": 1.0})
    assert sizes["inception5_3"] == (1, 288, 35, 35)
    assert sizes["inception6_4"] == (1, 768, 17, 17)
    assert sizes["inception7_2"] == (1, 1280, 8, 8)
    assert sizes["prediction"] == (1, 1000, 1, 1)


# ----------------------------------------------------------------------------- GoogLeNet


def test_googlenet_structure_and_sizes(nets):
    net = nets("googlenet")
    assert _count(net) == 6_998_552  # bvlc_googlenet without its two auxiliary classifiers
    assert sorted(net.get_outputs()) == ["objective", "top1error", "top5error"]
    sizes = _run_and_check_sizes(net, torch.randn(1, 3, 224, 224), torch.tensor([5.0]),
                                 {"objective": 1.0})
    for module, (c, hw) in {"3a": (256, 28), "3b": (480, 28), "4a": (512, 14),
                            "4e": (832, 14), "5b": (1024, 7)}.items():
        assert sizes["inception_" + module] == (1, c, hw, hw), module
    assert sizes["prediction"] == (1, 1000, 1, 1)


def test_seed_reproducible():
    a, b, c = M.googlenet(10, seed=3), M.googlenet(10, seed=3), M.googlenet(10, seed=4)
    pa, pb, pc = (_param(n, "inception_4a_3x3_f").value for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(_param(M.googlenet(10, seed=g), "conv1_f").value,
                           _param(M.googlenet(10, seed=g), "conv1_f").value)


# ----------------------------------------------------------------------------- FCN


def test_bilinear_filters():
    f = M.bilinear_filters(4, 21, 21)
    assert f.shape == (21, 1, 4, 4)
    c = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.equal(f[5, 0], torch.outer(c, c))
    f = M.bilinear_filters(4, 1, 3)
    assert f.shape == (3, 3, 4, 4)
    assert torch.equal(f[1, 1], torch.outer(c, c)) and float(f[0, 1].abs().sum()) == 0
    f = M.bilinear_filters(3, 2, 2)
    assert torch.equal(f[0, 0], torch.outer(torch.tensor([0.5, 1, 0.5]),
                                            torch.tensor([0.5, 1, 0.5])))


FCN_PARAMS = {"32s": 134_432_597, "16s": 134_385_914, "8s": 134_382_239}
VGG16_FCN32 = 134_346_581  # VGG-VD-16 convolutions, fc6 (7x7 pad 3), fc7, fc8 to 21 classes


@contextlib.contextmanager
def _without_onednn():
    """PyTorch's oneDNN filter derivative for fc6 (7 x 7 x 512 x 4096 on a 2 x 3 map) takes
    7-10 s on 2 cores, its native one 0.2-0.3 s; only the kernel choice changes."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn(variant):
    net = M.fcn8s(variant=variant, seed=0)
    try:
        _check_fcn(net, variant)
    finally:
        del net


def _check_fcn(net, variant):
    assert _count(net) == FCN_PARAMS[variant]
    heads = {"32s": ["deconv32"], "16s": ["deconv2", "skip4", "sum1", "deconv16"],
             "8s": ["deconv2", "skip4", "sum1", "deconv2bis", "skip3", "sum2", "deconv8"]}
    names = [l.name for l in net.layers]
    assert names[37] == "fc8" and net.layers[37].outputs == ["x38"]
    assert names[16] == "pool3" and names[23] == "pool4"
    assert [n for n in names[38:] if n != "objective"] == heads[variant]
    head_params = {p for l in net.layers if l.name in heads[variant] for p in l.params}
    assert _count(net, lambda p: p.name in head_params) == VGG16_FCN32
    assert net.get_outputs() == ["objective"]
    assert net.vars[net.get_var_index("prediction")].precious
    assert all(p.value.dtype == torch.float32 for p in net.params)
    for l in net.layers[:38]:
        if isinstance(l.block, L.Pooling):
            assert list(l.block.pad) == [0, 1, 0, 1], l.name
        if isinstance(l.block, L.Conv):
            assert _param(net, l.params[1]).learning_rate == 2.0, l.name
    assert float(_param(net, "fc8f").value.abs().sum()) == 0
    for l in net.layers:
        if isinstance(l.block, L.ConvTranspose):
            f = _param(net, l.params[0])
            assert f.learning_rate == 0 and not l.block.hasBias
            k = int(l.block.size[0])
            grouped = l.block.numGroups == 21
            assert torch.equal(f.value, M.bilinear_filters(k, 21 if grouped else 1, 21))
        elif l.name.startswith("skip"):
            assert float(_param(net, l.params[0]).value.abs().sum()) == 0
            assert _param(net, l.params[0]).learning_rate == {"skip4": 0.1, "skip3": 0.01}[l.name]
    assert net.meta["classes"][15] == "person"
    # the upsampled scores line up with the input pixels (matconvnet-fcn's design)
    rf = net.get_var_receptive_fields("input")["prediction"]
    assert rf["stride"] == (1.0, 1.0) and rf["offset"] == (1.0, 1.0)

    x = torch.randn(1, 3, 64, 96)
    label = torch.randint(0, 22, (1, 1, 64, 96)).float()
    backward = {"objective": 1.0} if variant == "8s" else None
    with _without_onednn():
        sizes = _run_and_check_sizes(net, x, label, backward)
    assert sizes["prediction"] == (1, 21, 64, 96)
    assert sizes["x38"] == (1, 21, 2, 3)
    # with zero scores and bilinear upsampling the initial prediction is zero everywhere
    net.conserve_memory = True
    net.eval({"input": x})
    assert float(net.vars[net.get_var_index("prediction")].value.abs().max()) == 0
    net.reset()


def test_fcn_arguments():
    with pytest.raises(ValueError, match="variant"):
        M.fcn8s(variant="4s")
    with pytest.raises(ValueError, match="num_classes"):
        M.resnet50(num_classes=0)
    with pytest.raises(TypeError, match="seed"):
        M.googlenet(seed="x")
