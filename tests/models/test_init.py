"""matconvnet.models: the example inits against the oracle's nets and published facts.

* MNIST LeNet (with and without batch norm), CIFAR LeNet and NIN: every layer's fields, field
  order, weight shapes and classes, the init scales and ``meta`` against the original
  ``cnn_*_init`` output (``../shared/oracle/models/*/net.mat``); then the oracle's own weights
  put into our structure reproduce the original ``vl_simplenn`` forward pass.
* ImageNet models (built on the ``meta`` device: no weights allocated): layer sequences,
  filter shapes, parameter counts, meta, and a shape-only forward pass through the blocks.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
import torch

import matconvnet as mcn
from matconvnet import models
from tests import oracle

ORACLE_MODELS = {
    "mnist_lenet": lambda: models.cnn_mnist_init(batch_normalization=False, seed=0),
    "mnist_lenet_bnorm": lambda: models.cnn_mnist_init(batch_normalization=True, seed=0),
    "cifar_lenet": lambda: models.cnn_cifar_init(seed=0),
    "cifar_nin": lambda: models.cnn_cifar_init_nin(seed=0),
}

needs_oracle = pytest.mark.skipif(not oracle.available(), reason="../shared/oracle is absent")


# ----------------------------------------------------------------------------- helpers


@lru_cache(maxsize=None)
def _built(name: str) -> dict:
    return ORACLE_MODELS[name]()


@lru_cache(maxsize=None)
def _oracle_net(name: str):
    """The oracle's net.mat as (layers: list of {field: value}, meta struct)."""
    import scipy.io as sio
    net = sio.loadmat(str(oracle.ORACLE / "models" / name / "net.mat"))["net"][0, 0]
    layers = []
    for cell in net["layers"].ravel():
        s = cell[0, 0]
        layers.append({f: s[f] for f in s.dtype.names})
    return layers, net["meta"][0, 0]


def _manifest_entry(name: str) -> dict:
    return next(m for m in oracle.manifest()["models"]["models"] if m["name"] == name)


def _string(a) -> str:
    return str(np.asarray(a).ravel()[0])


def _numbers(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).ravel()


def _to_ours(a: np.ndarray, kind: str) -> np.ndarray:
    """A MatConvNet weight -> our layout (filters FH x FW x C x K -> K x C x FH x FW)."""
    a = np.asarray(a)
    if kind == "filters":
        a = a.reshape(a.shape + (1,) * (4 - a.ndim))
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1))
    if kind == "moments":
        return a
    return a.ravel(order="F")


def _kinds(layer_type: str, n: int):
    if layer_type == "conv":
        return ["filters", "biases"][:n]
    if layer_type == "bnorm":
        return ["vector", "vector", "moments"][:n]
    return []


def simplenn_forward(net, x, labels=None, mode="test"):
    """A minimal vl_simplenn forward pass over the blocks; returns res[i].x for all i."""
    res = [x]
    for ly in net["layers"]:
        t = ly["type"]
        if t == "conv":
            f, b = ly["weights"]
            x = mcn.vl_nnconv(x, f, b, pad=ly["pad"], stride=ly["stride"], dilate=ly["dilate"])
        elif t == "pool":
            x = mcn.vl_nnpool(x, ly["pool"], method=ly["method"], pad=ly["pad"],
                              stride=ly["stride"])
        elif t == "relu":
            x = mcn.vl_nnrelu(x, leak=ly["leak"])
        elif t == "normalize":
            x = mcn.vl_nnnormalize(x, ly["param"])
        elif t == "bnorm":
            g, b, moments = ly["weights"]
            x = mcn.vl_nnbnorm(x, g, b, moments=None if mode == "normal" else moments,
                               epsilon=ly["epsilon"])
        elif t == "dropout":
            if mode == "normal":
                x, _ = mcn.vl_nndropout(x, rate=ly["rate"])
        elif t == "softmaxloss":
            if labels is None:  # e.g. shapes only, on the meta device
                break
            x = mcn.vl_nnsoftmaxloss(x, labels)
        else:
            raise AssertionError(f"unexpected layer type {t}")
        res.append(x)
    return res


def _count(net) -> int:
    return sum(w.numel() for ly in net["layers"] for w in ly["weights"])


# ------------------------------------------------------------- the four oracle networks


@needs_oracle
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_layers_match_oracle(name):
    ref_layers, _ = _oracle_net(name)
    net = _built(name)
    assert list(net) == ["layers", "meta"]
    assert len(net["layers"]) == len(ref_layers)
    for i, (ours, ref) in enumerate(zip(net["layers"], ref_layers), 1):
        where = f"{name} layer {i}"
        assert list(ours) == list(ref), where  # same fields, in vl_simplenn_tidy's order
        for field, rv in ref.items():
            ov = ours[field]
            if field in ("type", "name", "method"):
                assert ov == _string(rv), (where, field)
            elif field == "precious":
                assert ov is bool(np.asarray(rv).ravel()[0]), (where, field)
            elif field == "opts":
                assert ov == [] and rv.size == 0, (where, field)
            elif field == "weights":
                assert isinstance(ov, list) and len(ov) == rv.size, where
                for k, (w, kind) in enumerate(zip(ov, _kinds(ours["type"], len(ov)))):
                    r = rv.ravel()[k]
                    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32, (where, k)
                    if r.size == 0:  # MATLAB [] (the bias removed before a bnorm)
                        assert w.numel() == 0, (where, k)
                        continue
                    assert r.dtype == np.float32
                    assert tuple(w.shape) == _to_ours(r, kind).shape, (where, k)
            else:  # pad, stride, pool, dilate, leak, rate, epsilon, learningRate, weightDecay
                np.testing.assert_array_equal(_numbers(ov), _numbers(rv), err_msg=f"{where} {field}")


@needs_oracle
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_layers_match_manifest(name):
    """The manifest's summary of the original layers (MatConvNet-order weight sizes)."""
    net, ref_layers = _built(name), _manifest_entry(name)["layers"]
    assert len(net["layers"]) == len(ref_layers)
    for ours, ref in zip(net["layers"], ref_layers):
        assert (ours["type"], ours["name"]) == (ref["type"], ref["name"])
        for key in ("pad", "stride", "pool", "dilate"):
            if key in ref:
                np.testing.assert_array_equal(_numbers(ours[key]), _numbers(ref[key]))
        if "method" in ref:
            assert ours["method"] == ref["method"]
        if ours["type"] == "conv":
            fh, fw, c, k = ref["weights_size"][0]
            assert tuple(ours["weights"][0].shape) == (k, c, fh, fw)
            assert ours["weights"][1].numel() == int(np.prod(ref["weights_size"][1]))


@needs_oracle
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_initial_values_match_oracle(name):
    """Biases and bnorm parameters equal the original's; filter scales agree (the samples
    differ: Octave's generator vs torch's)."""
    ref_layers, _ = _oracle_net(name)
    for ours, ref in zip(_built(name)["layers"], ref_layers):
        for k, (w, kind) in enumerate(zip(ours["weights"], _kinds(ours["type"], len(ours["weights"])))):
            r = ref["weights"].ravel()[k]
            if r.size == 0:
                continue
            r = _to_ours(r, kind)
            if kind == "filters":
                ours_std, ref_std = w.std().item(), float(r.std())
                assert ours_std == pytest.approx(ref_std, rel=0.15), (ours["name"], ours_std, ref_std)
                assert abs(w.mean().item()) < 5 * ours_std / math.sqrt(w.numel())
            else:
                np.testing.assert_array_equal(w.numpy(), r)


def test_init_scales():
    """The init formulas: 0.01 randn (MNIST), 0.01 / 0.05 randn (CIFAR LeNet), He
    sqrt(2 / (k^2 m)) with cccp6 x 0.1 (NIN)."""
    def stds(net):
        return {ly["name"]: ly["weights"][0].std().item() for ly in net["layers"]
                if ly["type"] == "conv"}

    for name in ("mnist_lenet", "mnist_lenet_bnorm"):
        for s in stds(_built(name)).values():
            assert s == pytest.approx(0.01, rel=0.1)
    lenet = list(stds(_built("cifar_lenet")).values())
    assert lenet[0] == pytest.approx(0.01, rel=0.1)
    for s in lenet[1:]:
        assert s == pytest.approx(0.05, rel=0.1)
    nin = _built("cifar_nin")
    for ly in nin["layers"]:
        if ly["type"] == "conv":
            k, m, fh, _ = ly["weights"][0].shape
            expected = math.sqrt(2 / (fh * fh * m)) * (0.1 if ly["name"] == "cccp6" else 1)
            assert ly["weights"][0].std().item() == pytest.approx(expected, rel=0.1), ly["name"]


@needs_oracle
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_meta_matches_oracle(name):
    _, ref = _oracle_net(name)
    meta = _built(name)["meta"]
    assert list(meta) == list(ref.dtype.names)
    assert meta["inputSize"] == _numbers(ref["inputSize"]).astype(int).tolist()
    ref_train = ref["trainOpts"][0, 0]
    assert list(meta["trainOpts"]) == list(ref_train.dtype.names)
    for key, value in meta["trainOpts"].items():
        np.testing.assert_array_equal(_numbers(value), _numbers(ref_train[key]), err_msg=key)


@needs_oracle
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_oracle_weights_reproduce_simplenn(name):
    """Our structure (pads, strides, pool methods, layer order ...) carrying the original
    weights computes what the original vl_simplenn computed (test mode)."""
    import scipy.io as sio
    entry = _manifest_entry(name)
    ref_layers, _ = _oracle_net(name)
    net = ORACLE_MODELS[name]()
    moments = {}
    if "eval_moments_file" in entry:
        moments = sio.loadmat(str(oracle.ORACLE / entry["eval_moments_file"]))
    for i, (ours, ref) in enumerate(zip(net["layers"], ref_layers), 1):
        weights = []
        for k, kind in enumerate(_kinds(ours["type"], len(ours["weights"]))):
            r = ref["weights"].ravel()[k]
            if kind == "moments" and f"moments_{i:02d}" in moments:
                r = moments[f"moments_{i:02d}"]
            weights.append(torch.from_numpy(_to_ours(r, kind).astype(np.float32)))
        ours["weights"] = weights
    test = next(s for s in entry["simplenn"] if s["mode"] == "test")
    data = sio.loadmat(str(oracle.ORACLE / test["file"]))
    x = torch.from_numpy(oracle.to_nchw(data["x"], entry["input"]["size"]).astype(np.float32))
    labels = torch.from_numpy(np.asarray(data["labels"], dtype=np.float32).ravel())
    res = simplenn_forward(net, x, labels, mode="test")
    assert len(res) == len(net["layers"]) + 1
    # Batch norm over 2 images at 1 x 1 (the 500-channel layer) amplifies rounding: ~6e-4.
    rel = 2e-3 if moments else 1e-4
    for i, got in enumerate(res[1:-1], 2):
        n, c, h, w = got.shape
        ref = oracle.to_nchw(data[f"res_x_{i:02d}"], (h, w, c, n))
        tol = rel * max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=tol, err_msg=f"res({i}).x")
    assert res[-1].item() == pytest.approx(test["loss"], rel=1e-5)


@pytest.mark.parametrize("build", [
    lambda: models.cnn_mnist_init(False, seed=1),
    lambda: models.cnn_mnist_init(True, seed=1),
    lambda: models.cnn_cifar_init(seed=1),
    lambda: models.cnn_cifar_init_nin(seed=1),
], ids=["mnist", "mnist-bnorm", "cifar-lenet", "cifar-nin"])
def test_fresh_nets_compose_with_the_blocks(build):
    """A freshly initialised net runs through the blocks in training mode (batch moments,
    dropout) and in test mode; at init the loss is close to log(10)."""
    net = build()
    h, w, c = net["meta"]["inputSize"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, c, h, w, generator=g)
    labels = torch.tensor([1.0, 5.0, 10.0])
    torch.manual_seed(0)
    res = simplenn_forward(net, x, labels, mode="normal")
    assert res[-2].shape == (3, 10, 1, 1)
    loss = res[-1].item()
    assert math.isfinite(loss)
    assert loss == pytest.approx(math.log(10), abs=0.5)  # vl_nnsoftmaxloss: mean over images
    if not any(ly["type"] == "bnorm" for ly in net["layers"]):  # zero moments: no test mode
        res = simplenn_forward(net, x, labels, mode="test")
        assert math.isfinite(res[-1].item())


def test_seeding():
    a = models.cnn_mnist_init(False)  # the original's own rng(0): deterministic by default
    b = models.cnn_mnist_init(False, seed=0)
    c = models.cnn_mnist_init(False, seed=1)
    for la, lb, lc in zip(a["layers"], b["layers"], c["layers"]):
        for wa, wb, wc in zip(la["weights"], lb["weights"], lc["weights"]):
            assert torch.equal(wa, wb)
            if la["type"] == "conv" and wa.numel() > 10 and wa.std() > 0:
                assert not torch.equal(wa, wc)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    n1, n2 = models.cnn_cifar_init(seed=g1), models.cnn_cifar_init(seed=g2)
    assert torch.equal(n1["layers"][0]["weights"][0], n2["layers"][0]["weights"][0])
    torch.manual_seed(3)
    n3 = models.cnn_cifar_init()
    torch.manual_seed(3)
    n4 = models.cnn_cifar_init()
    assert torch.equal(n3["layers"][3]["weights"][0], n4["layers"][3]["weights"][0])
    with pytest.raises(TypeError, match="seed"):
        models.cnn_cifar_init(seed="zero")


def test_mnist_structure_without_bnorm_defaults():
    net = models.cnn_mnist_init()  # the original cnn_mnist_init defaults to batch norm
    assert [ly["type"] for ly in net["layers"]].count("bnorm") == 3
    assert net["layers"][0]["weights"][1].numel() == 0
    assert all(w.dtype == torch.float32 for ly in net["layers"] for w in ly["weights"])


# ----------------------------------------------------------------------- ImageNet models

ALEXNET_NAMES = ["conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2",
                 "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
                 "fc6", "relu6", "dropout6", "fc7", "relu7", "dropout7", "fc8", "loss"]
ALEXNET_BN_NAMES = ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2",
                    "conv3", "bn3", "relu3", "conv4", "bn4", "relu4", "conv5", "bn5", "relu5",
                    "pool5", "fc6", "bn6", "relu6", "fc7", "bn7", "relu7", "fc8", "loss"]

# name: (K, C/g, FH, FW), stride, pad -- the conv/fc layers of each model.
CONVS = {
    "alexnet": [((96, 3, 11, 11), 4, 0), ((256, 48, 5, 5), 1, 2), ((384, 256, 3, 3), 1, 1),
                ((384, 192, 3, 3), 1, 1), ((256, 192, 3, 3), 1, 1), ((4096, 256, 6, 6), 1, 0),
                ((4096, 4096, 1, 1), 1, 0), ((1000, 4096, 1, 1), 1, 0)],
    "vgg-f": [((64, 3, 11, 11), 4, 0), ((256, 64, 5, 5), 1, 2), ((256, 256, 3, 3), 1, 1),
              ((256, 256, 3, 3), 1, 1), ((256, 256, 3, 3), 1, 1), ((4096, 256, 6, 6), 1, 0),
              ((4096, 4096, 1, 1), 1, 0), ((1000, 4096, 1, 1), 1, 0)],
    "vgg-m": [((96, 3, 7, 7), 2, 0), ((256, 96, 5, 5), 2, 1), ((512, 256, 3, 3), 1, 1),
              ((512, 512, 3, 3), 1, 1), ((512, 512, 3, 3), 1, 1), ((4096, 512, 6, 6), 1, 0),
              ((4096, 4096, 1, 1), 1, 0), ((1000, 4096, 1, 1), 1, 0)],
    "vgg-m-1024": [((96, 3, 7, 7), 2, 0), ((256, 96, 5, 5), 2, 1), ((512, 256, 3, 3), 1, 1),
                   ((512, 512, 3, 3), 1, 1), ((512, 512, 3, 3), 1, 1),
                   ((4096, 512, 6, 6), 1, 0), ((1024, 4096, 1, 1), 1, 0),
                   ((1000, 1024, 1, 1), 1, 0)],
    "vgg-s": [((96, 3, 7, 7), 2, 0), ((256, 96, 5, 5), 1, 0), ((512, 256, 3, 3), 1, 1),
              ((512, 512, 3, 3), 1, 1), ((512, 512, 3, 3), 1, 1), ((4096, 512, 6, 6), 1, 0),
              ((4096, 4096, 1, 1), 1, 0), ((1000, 4096, 1, 1), 1, 0)],
}
for _depth, _per_stage in (("vgg-vd-16", (2, 2, 3, 3, 3)), ("vgg-vd-19", (2, 2, 4, 4, 4))):
    _convs, _cin = [], 3
    for _cout, _n in zip((64, 128, 256, 512, 512), _per_stage):
        for _ in range(_n):
            _convs.append(((_cout, _cin, 3, 3), 1, 1))
            _cin = _cout
    CONVS[_depth] = _convs + [((4096, 512, 7, 7), 1, 0), ((4096, 4096, 1, 1), 1, 0),
                              ((1000, 4096, 1, 1), 1, 0)]

# Parameters (filters + biases, no batch norm).  VGG-16/19 and the two-group AlexNet are the
# published counts; the others follow from the layer tables above.
PARAMETERS = {"alexnet": 60_965_224, "vgg-f": 60_834_536, "vgg-m": 102_908_520,
              "vgg-m-1024": 87_250_536, "vgg-s": 102_908_520, "vgg-vd-16": 138_357_544,
              "vgg-vd-19": 143_667_240}
POOLS = {  # (window, stride, pad) of the max-pooling layers in order
    "alexnet": [(3, 2, 0)] * 3,
    "vgg-f": [(3, 2, [0, 1, 0, 1]), (3, 2, 0), (3, 2, 0)],
    "vgg-m": [(3, 2, 0), (3, 2, [0, 1, 0, 1]), (3, 2, 0)],
    "vgg-m-1024": [(3, 2, 0), (3, 2, [0, 1, 0, 1]), (3, 2, 0)],
    "vgg-s": [(3, 3, [0, 2, 0, 2]), (2, 2, [0, 1, 0, 1]), (3, 3, [0, 1, 0, 1])],
    "vgg-vd-16": [(2, 2, 0)] * 5,
    "vgg-vd-19": [(2, 2, 0)] * 5,
}
BATCH = {"alexnet": 256, "vgg-f": 256, "vgg-m": 196, "vgg-m-1024": 196, "vgg-s": 128,
         "vgg-vd-16": 32, "vgg-vd-19": 24}


@lru_cache(maxsize=None)
def _imagenet(model: str, bn: bool) -> dict:
    return models.cnn_imagenet_init(model, bn, device="meta")


def test_alexnet_layer_sequence():
    assert [ly["name"] for ly in _imagenet("alexnet", False)["layers"]] == ALEXNET_NAMES
    assert [ly["name"] for ly in _imagenet("alexnet", True)["layers"]] == ALEXNET_BN_NAMES


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bnorm"])
@pytest.mark.parametrize("model", list(CONVS))
def test_imagenet_structure(model, bn):
    net = _imagenet(model, bn)
    layers = net["layers"]
    convs = [ly for ly in layers if ly["type"] == "conv"]
    assert len(convs) == len(CONVS[model])
    for ly, (shape, stride, pad) in zip(convs, CONVS[model]):
        f, b = ly["weights"]
        assert tuple(f.shape) == shape and tuple(b.shape) == (shape[0],), ly["name"]
        assert f.dtype == b.dtype == torch.float32
        assert (ly["stride"], ly["pad"], ly["dilate"]) == (stride, pad, 1), ly["name"]
        assert ly["learningRate"] == [1, 2] and ly["weightDecay"] == [1, 0]
        assert ly["opts"] == ["CudnnWorkspaceLimit", 1024 * 1024 * 1204]
        assert ly["precious"] is False
    assert [ly["name"] for ly in convs[-3:]] == ["fc6", "fc7", "fc8"]
    assert all(ly["name"].startswith("conv") for ly in convs[:-3])
    pools = [(ly["pool"], ly["stride"], ly["pad"]) for ly in layers if ly["type"] == "pool"]
    assert pools == [([p, p], s, pad) for p, s, pad in POOLS[model]]
    assert all(ly["method"] == "max" for ly in layers if ly["type"] == "pool")
    assert layers[-1]["type"] == "softmaxloss" and layers[-1]["name"] == "loss"
    assert layers[-2]["name"] == "fc8"  # no relu / bnorm after the classifier
    types = [ly["type"] for ly in layers]
    n = len(CONVS[model])
    assert types.count("relu") == n - 1
    if bn:
        assert "normalize" not in types and "dropout" not in types
        bnorms = [ly for ly in layers if ly["type"] == "bnorm"]
        assert len(bnorms) == n - 1
        for conv, bnorm in zip(convs, bnorms):
            assert layers[layers.index(conv) + 1] is bnorm
            assert bnorm["name"] == "bn" + conv["name"].removeprefix("conv").removeprefix("fc")
            k = conv["weights"][0].shape[0]
            assert [tuple(w.shape) for w in bnorm["weights"]] == [(k,), (k,), (k, 2)]
            assert bnorm["epsilon"] == 1e-4
            assert bnorm["learningRate"] == [2, 1, 0.1] and bnorm["weightDecay"] == [0, 0]
    else:
        assert "bnorm" not in types
        assert [ly["rate"] for ly in layers if ly["type"] == "dropout"] == [0.5, 0.5]
        norms = [ly for ly in layers if ly["type"] == "normalize"]
        assert len(norms) == (0 if model.startswith("vgg-vd") else 2)
        assert all(ly["param"] == [5, 1, 0.0001 / 5, 0.75] for ly in norms)
        assert _count(net) == PARAMETERS[model]


def test_vgg_published_facts():
    vgg16, vgg19 = _imagenet("vgg-vd-16", False), _imagenet("vgg-vd-19", False)
    for net, n_conv, n_params in ((vgg16, 13, 138_357_544), (vgg19, 16, 143_667_240)):
        convs = [ly for ly in net["layers"] if ly["type"] == "conv"]
        assert len(convs) == n_conv + 3  # + fc6, fc7, fc8
        assert all(tuple(ly["weights"][0].shape[2:]) == (3, 3) for ly in convs[:n_conv])
        assert tuple(convs[n_conv]["weights"][0].shape) == (4096, 512, 7, 7)  # 7x7x512x4096
        assert _count(net) == n_params
    assert len(vgg16["layers"]) == 39 and len(vgg19["layers"]) == 45


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bnorm"])
@pytest.mark.parametrize("model", list(CONVS))
def test_imagenet_meta_and_shapes(model, bn):
    """meta as in cnn_imagenet_init, and a shape-only (meta device) forward pass through the
    blocks: the classifier sees exactly its fc6 support and outputs 1 x 1 x 1000."""
    net = _imagenet(model, bn)
    meta = net["meta"]
    size = 227 if model == "alexnet" else 224
    assert list(meta) == ["normalization", "inputSize", "classes", "augmentation", "trainOpts"]
    assert meta["inputSize"] == [size, size, 3, 32]
    norm = meta["normalization"]
    assert norm["imageSize"] == [size, size, 3] and norm["cropSize"] == size / 256
    assert tuple(norm["averageImage"].shape) == (3, 1, 1) and not norm["averageImage"].any()
    assert meta["classes"] == {"name": [], "description": []}
    aug = meta["augmentation"]
    assert aug["jitterLocation"] is True and aug["jitterFlip"] is True
    assert aug["jitterAspect"] == [2 / 3, 3 / 2] and tuple(aug["jitterBrightness"].shape) == (3, 3)
    train = meta["trainOpts"]
    lr = np.logspace(-1, -4, 20) if bn else np.logspace(-2, -4, 60)
    np.testing.assert_allclose(train["learningRate"], lr, rtol=1e-15)
    assert train["numEpochs"] == len(lr) and train["batchSize"] == BATCH[model]
    assert train["weightDecay"] == 0.0005

    x = torch.empty(2, 3, size, size, device="meta")
    res = simplenn_forward(net, x, mode="normal" if bn else "test")
    fc6 = next(i for i, ly in enumerate(net["layers"]) if ly["name"] == "fc6")
    assert tuple(res[fc6].shape[2:]) == tuple(net["layers"][fc6]["weights"][0].shape[2:])
    assert tuple(res[-1].shape) == (2, 1000, 1, 1)


def test_imagenet_real_build():
    """One full build (AlexNet + batch norm, 'xavierimproved', init_bias 0.1): every filter
    ~ randn * sqrt(2 / (h w out)), fc8 then divided by 10; biases init_bias; bnorm [1, 0, 0]."""
    net = models.cnn_imagenet_init("alexnet", True, weight_init_method="xavierimproved",
                                   init_bias=0.1, seed=0)
    for ly in net["layers"]:
        if ly["type"] == "conv":
            f, b = ly["weights"]
            k, _, h, w = f.shape
            expected = math.sqrt(2 / (h * w * k)) / (10 if ly["name"] == "fc8" else 1)
            assert f.std().item() == pytest.approx(expected, rel=0.05), ly["name"]
            assert torch.all(b == torch.tensor(0.1, dtype=torch.float32))
        if ly["type"] == "bnorm":
            g, b, m = ly["weights"]
            assert torch.all(g == 1) and not b.any() and not m.any()
            assert g.dtype == b.dtype == m.dtype == torch.float32


@pytest.mark.parametrize("method", ["gaussian", "xavier", "xavierimproved"])
def test_imagenet_init_formulas(method):
    """init_weight on small filter banks (a full net is 61-144 M parameters): gaussian
    0.01 / scale randn; xavier U(-1, 1) sqrt(3 / (h w in)); xavierimproved
    sqrt(2 / (h w out)) randn."""
    from matconvnet.models._common import Random
    from matconvnet.models.imagenet import _Builder
    b = _Builder("alexnet", False, method, 2, 0, 1, 0, (227, 227), Random(0))
    h, w, cin, cout = 3, 3, 64, 128
    f = b.init_weight(h, w, cin, cout)
    assert tuple(f.shape) == (cout, cin, h, w) and f.dtype == torch.float32
    if method == "gaussian":
        assert f.std().item() == pytest.approx(0.01 / 2, rel=0.03)
    elif method == "xavier":
        bound = math.sqrt(3 / (h * w * cin))
        assert bound * 0.99 < f.abs().max().item() <= bound
        assert f.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    else:
        assert f.std().item() == pytest.approx(math.sqrt(2 / (h * w * cout)), rel=0.03)
    assert abs(f.mean().item()) < 5 * f.std().item() / math.sqrt(f.numel())


def test_imagenet_options():
    net = models.cnn_imagenet_init(
        "vgg-f", device="meta", weight_decay=0.5, cudnn_workspace_limit=1024,
        class_names=["a", "b"], class_descriptions=["A", "B"],
        average_image=[1.0, 2.0, 3.0], color_deviation=np.eye(3))
    conv = net["layers"][0]
    assert conv["weightDecay"] == [0.5, 0] and conv["opts"] == ["CudnnWorkspaceLimit", 1024]
    assert net["meta"]["classes"] == {"name": ["a", "b"], "description": ["A", "B"]}
    assert net["meta"]["normalization"]["averageImage"].reshape(-1).tolist() == [1, 2, 3]
    assert tuple(net["meta"]["normalization"]["averageImage"].shape) == (3, 1, 1)
    torch.testing.assert_close(net["meta"]["augmentation"]["jitterBrightness"],
                               0.1 * torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="model"):
        models.cnn_imagenet_init("resnet-50", device="meta")
    with pytest.raises(ValueError, match="weight_init_method"):
        models.cnn_imagenet_init("alexnet", weight_init_method="he", device="meta")


def test_architectures_registry():
    assert set(models.ARCHITECTURES) == {
        "mnist-lenet", "cifar-lenet", "cifar-nin", "alexnet", "vgg-f", "vgg-m", "vgg-m-1024",
        "vgg-s", "vgg-vd-16", "vgg-vd-19"}
    for name, build in models.ARCHITECTURES.items():
        net = build(device="meta")
        assert net["layers"][-1]["type"] == "softmaxloss", name
        assert all(w.device.type == "meta" for ly in net["layers"] for w in ly["weights"])
    bn = models.ARCHITECTURES["vgg-vd-16"](batch_normalization=True, device="meta")
    assert sum(ly["type"] == "bnorm" for ly in bn["layers"]) == 15
