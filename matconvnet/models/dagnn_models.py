"""DagNN example networks, built as MatConvNet's DagNN init functions build them.

==================  ================================================================
``resnet50``        ResNet-50 (``examples/imagenet/cnn_imagenet_init_resnet.m``, beta25)
``inception_v3``    the Inception-v3-like net of ``cnn_imagenet_init_inception.m``
``googlenet``       GoogLeNet (Szegedy et al. 2014, no auxiliary classifiers), in the style
                    of the two above (no original init function; the original ships it
                    only as the imported ``imagenet-googlenet-dag`` model)
``fcn8s``           FCN-32s / 16s / 8s of matconvnet-fcn (``fcnInitializeModel.m``,
                    ``fcnInitializeModel16s.m``, ``fcnInitializeModel8s.m``) on VGG-VD-16
==================  ================================================================

Each returns a :class:`~matconvnet.dagnn.DagNN` whose parameters are initialised (float32,
by the layers' ``init_params`` as ``net.initParams()`` does, then adjusted as the originals
adjust them), with ``meta`` and loss layers as in the originals.  ``seed``: None (torch's
global generator), an int or a ``torch.Generator`` (a seed is drawn from it).
"""
from __future__ import annotations

import contextlib
from typing import Dict, Sequence

import numpy as np
import torch

from ..dagnn import layers as L
from ..dagnn.dagnn import DagNN
from ._common import FLOAT, Seed

__all__ = ["resnet50", "inception_v3", "googlenet", "fcn8s", "bilinear_filters",
           "DAGNN_ARCHITECTURES"]

WORKSPACE = 1024 * 1024 * 1204  # opts.cudnnWorkspaceLimit of the ImageNet inits ("1GB")

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


# ----------------------------------------------------------------------------- helpers

class _Builder:
    """A DagNN under construction, with the channel count of every variable added."""

    def __init__(self, workspace: int = WORKSPACE):
        self.net = DagNN()
        self.depth: Dict[str, int] = {"input": 3}
        self.opts = ["cudnnworkspacelimit", int(workspace)]

    def add(self, name, block, inputs, output, params=(), depth=None):
        self.net.add_layer(name, block, inputs, [output], list(params), skip_rebuild=True)
        first = inputs if isinstance(inputs, str) else inputs[0]
        self.depth[output] = self.depth[first] if depth is None else depth
        return output

    def conv(self, name, x, ksize, out, *, stride=1, pad=None, bias=True, layer=None):
        """Conv layer ``layer`` (default ``<name>_conv``) -> variable ``<name>_conv``, params
        ``<name>_f`` (``<name>_b``); ``ksize`` an int or [h, w]; pad (k-1)/2 by default."""
        kh, kw = (ksize, ksize) if isinstance(ksize, int) else ksize
        pad = [(kh - 1) // 2] * 2 + [(kw - 1) // 2] * 2 if pad is None else pad
        params = [name + "_f"] + ([name + "_b"] if bias else [])
        block = L.Conv(size=[kh, kw, self.depth[x], out], stride=stride, pad=pad,
                       hasBias=bias, opts=list(self.opts))
        return self.add(layer or name + "_conv", block, x, name + "_conv", params, out)

    def bn(self, name, x, eps=1e-5):
        return self.add(name + "_bn", L.BatchNorm(numChannels=self.depth[x], epsilon=eps), x,
                        name + "_bn", [name + "_bn_w", name + "_bn_b", name + "_bn_m"])

    def relu(self, layer, x, out):
        return self.add(layer, L.ReLU(), x, out)

    def pool(self, name, x, size, *, method="max", stride=1, pad=0, out=None):
        return self.add(name, L.Pooling(method=method, poolSize=[size, size], stride=stride,
                                        pad=pad), x, out or name)

    def losses(self, pred, names=("loss", "objective", "top1error", "top5error")):
        """softmaxlog, classerror and top-5 error Loss layers on (pred, 'label')."""
        loss, objective, top1, top5 = names
        self.add(loss, L.Loss(loss="softmaxlog"), [pred, "label"], objective)
        self.add(top1, L.Loss(loss="classerror"), [pred, "label"], top1)
        self.add(top5, L.Loss(loss="topkerror", opts=["topK", 5]), [pred, "label"], top5)

    def finish(self, seed: Seed) -> DagNN:
        """``net.initParams()`` (under ``seed``), parameters as float32."""
        net = self.net
        net.rebuild()
        with _seeded(seed):
            net.init_params()
        for p in net.params:
            if torch.is_tensor(p.value) and p.value.is_floating_point():
                p.value = p.value.to(FLOAT)
        return net


@contextlib.contextmanager
def _seeded(seed: Seed):
    if seed is None:
        yield
        return
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=seed))
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected None, an integer or a torch.Generator, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def _param(net: DagNN, name: str):
    return net.params[net.get_param_index(name)]


def _average(average_image) -> torch.Tensor:
    a = torch.zeros(3, 1, 1, dtype=torch.float64) if average_image is None \
        else torch.as_tensor(np.asarray(average_image, dtype=np.float64))
    return a.reshape(3, 1, 1) if a.numel() == 3 else a


def _jitter_meta():
    """The augmentation fields of the ImageNet inits that set ``jitter``."""
    return {"rgbSqrtCovariance": torch.zeros(3, 3, dtype=FLOAT), "jitter": True,
            "jitterLight": 0.1, "jitterBrightness": 0.4, "jitterSaturation": 0.4,
            "jitterContrast": 0.4}


def _check_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    return int(num_classes)


# ----------------------------------------------------------------------------- ResNet-50

def resnet50(num_classes: int = 1000, batch_normalization: bool = True, *,
             class_names: Sequence[str] = (), class_descriptions: Sequence[str] = (),
             average_image=None, color_deviation=None,
             cudnn_workspace_limit: int = WORKSPACE, seed: Seed = None) -> DagNN:
    """ResNet-50 as ``cnn_imagenet_init_resnet`` (beta25) builds it.

    Units ``<name>``: Conv ``<name>_conv`` (params ``<name>_f``; no bias), BatchNorm
    ``<name>_bn`` (epsilon 1e-5; ``<name>_bn_w/_b/_m``), ReLU ``<name>_relu`` (variables
    named as their layers).  conv1 7x7x3x64 stride 2 pad 3, ``conv1_pool`` max 3x3 stride 2
    pad 1 (variable ``conv1``); sections s = 2..5 of 3, 4, 6, 3 bottleneck blocks
    ``conv<s>_<l>``: a 1x1 ``a``, 3x3 ``b`` (stride 2 in the first block of sections 3-5)
    and 1x1 ``c`` (no ReLU) unit with 2^(s+4), 2^(s+4), 2^(s+6) channels; the first block
    of each section sums with a 1x1 projection unit ``<name>_adapt_conv`` (stride 2 from
    section 3, no ReLU), the others with their input; ``<name>_sum`` (Sum) and
    ``<name>_relu`` (variable ``<name>``).  Then ``prediction_avg`` (avg 7x7), the 1x1
    ``prediction`` Conv 2048 -> ``num_classes`` (with bias) and the Loss layers ``loss``
    (softmaxlog -> ``objective``), ``top1error`` (classerror), ``top5error``
    (topkerror, topK 5), all on (``prediction``, ``label``).

    After ``initParams``: ``conv1_f`` is divided by 100 and its learning rate by 100^2; the
    BatchNorm moments get learning rate 0.3.  ``batch_normalization=False`` (not in the
    original) leaves out the BatchNorm layers and gives every convolution a bias.

    ``meta``: ``normalization`` (``imageSize [224, 224, 3]``, ``cropSize 224/256``,
    ``averageImage`` (default zeros (3, 1, 1))), ``inputSize ['input', [224, 224, 3, 32]]``,
    ``classes``, ``augmentation`` (jitterLocation/Flip, ``jitterBrightness`` =
    0.1 ``color_deviation``, ``jitterAspect [3/4, 4/3]``, ``jitterScale [0.4, 1.1]``),
    ``trainOpts`` (learning rate 0.1, 0.01, 0.001 x 30 epochs each, momentum 0.9, batch 256
    in 4 sub-batches, weight decay 1e-4).  25,557,032 parameters for 1000 classes, as
    torchvision counts ResNet-50, plus the BatchNorm moments (53,120 values).
    """
    num_classes = _check_classes(num_classes)
    bn = bool(batch_normalization)
    b = _Builder(cudnn_workspace_limit)

    def unit(name, x, ksize, depth, relu=True, downsample=False):
        x = b.conv(name, x, ksize, depth, stride=2 if downsample else 1, bias=not bn)
        if bn:
            x = b.bn(name, x, eps=1e-5)
        return b.relu(name + "_relu", x, name + "_relu") if relu else x

    x = unit("conv1", "input", 7, 64, downsample=True)
    x = b.pool("conv1_pool", x, 3, stride=2, pad=1, out="conv1")
    for s, length in zip(range(2, 6), (3, 4, 6, 3)):
        for l in range(1, length + 1):
            name = f"conv{s}_{l}"
            shortcut = x
            if l == 1:
                shortcut = unit(name + "_adapt_conv", x, 1, 2 ** (s + 6), relu=False,
                                downsample=s >= 3)
            y = unit(name + "a", x, 1, 2 ** (s + 4))
            y = unit(name + "b", y, 3, 2 ** (s + 4), downsample=s >= 3 and l == 1)
            y = unit(name + "c", y, 1, 2 ** (s + 6), relu=False)
            b.add(name + "_sum", L.Sum(), [shortcut, y], name + "_sum")
            x = b.relu(name + "_relu", name + "_sum", name)
    b.pool("prediction_avg", x, 7, method="avg")
    b.add("prediction", L.Conv(size=[1, 1, 2048, num_classes]), "prediction_avg",
          "prediction", ["prediction_f", "prediction_b"], num_classes)
    b.losses("prediction")

    net = b.finish(seed)
    p = _param(net, "conv1_f")
    p.value = p.value / 100
    p.learning_rate = p.learning_rate / 100 ** 2
    for layer in net.layers:
        if isinstance(layer.block, L.BatchNorm):
            _param(net, layer.params[2]).learning_rate = 0.3

    brightness = torch.zeros(3, 3, dtype=torch.float64) if color_deviation is None else \
        0.1 * torch.as_tensor(np.asarray(color_deviation, dtype=np.float64))
    lr = [0.1] * 30 + [0.01] * 30 + [0.001] * 30
    net.meta = {
        "normalization": {"imageSize": [224, 224, 3], "cropSize": 224 / 256,
                          "averageImage": _average(average_image)},
        "inputSize": ["input", [224, 224, 3, 32]],
        "classes": {"name": list(class_names), "description": list(class_descriptions)},
        "augmentation": {"jitterLocation": True, "jitterFlip": True,
                         "jitterBrightness": brightness, "jitterAspect": [3 / 4, 4 / 3],
                         "jitterScale": [0.4, 1.1]},
        "trainOpts": {"learningRate": lr, "numEpochs": len(lr), "momentum": 0.9,
                      "batchSize": 256, "numSubBatches": 4, "weightDecay": 0.0001},
    }
    return net


# ----------------------------------------------------------------------------- Inception

def _inception_unit(b: _Builder, name, x, ksize, out, *, stride=1, pad=None, bn=True):
    """``cnn_imagenet_init_inception``'s Conv: Conv ``<name>`` (with bias; variable
    ``<name>_conv``), BatchNorm ``<name>_bn``, ReLU ``<name>_relu`` (variable ``<name>``);
    without ``bn`` Conv and ReLU only."""
    x = b.conv(name, x, ksize, out, stride=stride, pad=pad, bias=True, layer=name)
    if bn:
        x = b.bn(name, x)
    return b.relu(name + "_relu", x, name)


def _classifier(b: _Builder, x, num_classes, rate, loss_names):
    """Pred: DropOut ``prediction_dropout``, 1x1 Conv ``prediction``, Loss layers."""
    x = b.add("prediction_dropout", L.DropOut(rate=rate), x, "prediction_dropout")
    b.add("prediction", L.Conv(size=[1, 1, b.depth[x], num_classes]), x, "prediction",
          ["prediction_f", "prediction_b"], num_classes)
    b.losses("prediction", loss_names)


def inception_v3(num_classes: int = 1000, *, cudnn_workspace_limit: int = WORKSPACE,
                 seed: Seed = None) -> DagNN:
    """The Inception-v3-like DagNN of ``cnn_imagenet_init_inception.m`` (299 x 299 input).

    Every convolution is a Conv (with bias) + BatchNorm + ReLU unit (see
    ``_inception_unit``), pad (k-1)/2 unless 0 is given.  Stem: ``conv`` 3x3 32 s2 pad 0,
    ``conv1`` 3x3 32 pad 0, ``conv2`` 3x3 64, ``pool`` max 3 s2, ``conv3`` 1x1 80,
    ``conv4`` 3x3 192 pad 0, ``pool1`` max 3 s2 (pooling variables ``<name>_pool``).
    ``inception5_1..3`` (1x1 64 | 1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 | avg 3 s1 pad 1,
    1x1 64), ``inception5_4`` (3x3 384 s2 | 1x1 64, 3x3 96, 3x3 96 s2 | max 3 s2),
    ``inception6_1..4`` (192 | 160: 1x7, 7x1 -> 192 | 160: 7x1, 1x7, 7x1, 1x7 -> 192 | avg,
    192), ``inception6_5`` (1x1 192, 3x3 320 s2 | 1x1 192, 1x7, 7x1, 3x3 192 s2 | max 3 s2),
    ``inception7_1..2`` (320 | 1x1 384, 1x3 384, 3x1 384 | 1x1 448, 3x3 384, 1x3 384,
    3x1 384 | avg, 192: 1280 channels; the original chains the 1x3 and 3x1 convolutions
    where Inception-v3 concatenates them); each module a Concat of its branches.
    ``pool_2`` avg 8, then DropOut ``prediction_dropout`` (0.2), 1x1 Conv ``prediction``
    1280 -> ``num_classes`` and the Loss layers ``prediction_loss`` (softmaxlog),
    ``prediction_top1error``, ``prediction_top5error`` (as in the original: the objective
    variable is ``prediction_loss``, not ``objective``).

    ``meta``: ``inputSize ['input', [299, 299, 3, 32]]``, ``normalization`` (``imageSize
    [299, 299, 3]``, ``fullImageSize 310``, ``averageImage []``), ``augmentation``
    (rgbSqrtCovariance zeros, jitter, jitterLight 0.1, jitterBrightness / Saturation /
    Contrast 0.4), ``trainOpts`` (learning rate ``logspace(-1, -3, 60)``, batch 256 in 3
    sub-batches, weight decay 1e-4).  The original sets ``numEpochs = numel(lr)`` with
    ``lr`` undefined, an error (Q-16); here ``numEpochs`` is the length of the schedule, 60.
    """
    num_classes = _check_classes(num_classes)
    b = _Builder(cudnn_workspace_limit)

    def U(name, x, k, out, **kw):
        return _inception_unit(b, name, x, k, out, **kw)

    def pool(name, x, k, method="max", stride=1, pad=None):
        return b.pool(name, x, k, method=method, stride=stride,
                      pad=(k - 1) // 2 if pad is None else pad, out=name + "_pool")

    def concat(name, xs):
        return b.add(name, L.Concat(dim=3), xs, name, depth=sum(b.depth[v] for v in xs))

    x = U("conv", "input", 3, 32, stride=2, pad=0)
    x = U("conv1", x, 3, 32, pad=0)
    x = U("conv2", x, 3, 64)
    x = pool("pool", x, 3, stride=2, pad=0)
    x = U("conv3", x, 1, 80, pad=0)
    x = U("conv4", x, 3, 192, pad=0)
    x = pool("pool1", x, 3, stride=2, pad=0)
    for t in (1, 2, 3):
        p = f"inception5_{t}"
        x = concat(p, [U(p + "_a1", x, 1, 64),
                       U(p + "_b2", U(p + "_b1", x, 1, 48), 5, 64),
                       U(p + "_c3", U(p + "_c2", U(p + "_c1", x, 1, 64), 3, 96), 3, 96),
                       U(p + "_d2", pool(p + "_d1", x, 3, "avg"), 1, 64)])
    p = "inception5_4"
    x = concat(p, [U(p + "_a1", x, 3, 384, stride=2, pad=0),
                   U(p + "_b3", U(p + "_b2", U(p + "_b1", x, 1, 64), 3, 96), 3, 96,
                     stride=2, pad=0),
                   pool(p + "_c1", x, 3, "max", stride=2, pad=0)])
    for t in (1, 2, 3, 4):
        p = f"inception6_{t}"
        y = U(p + "_b3", U(p + "_b2", U(p + "_b1", x, 1, 160), [1, 7], 160), [7, 1], 192)
        z = U(p + "_c1", x, 1, 160)
        for i, (k, out) in enumerate((([7, 1], 160), ([1, 7], 160), ([7, 1], 160),
                                      ([1, 7], 192)), 2):
            z = U(f"{p}_c{i}", z, k, out)
        x = concat(p, [U(p + "_a1", x, 1, 192), y, z,
                       U(p + "_d2", pool(p + "_d1", x, 3, "avg"), 1, 192)])
    p = "inception6_5"
    y = U(p + "_b3", U(p + "_b2", U(p + "_b1", x, 1, 192), [1, 7], 192), [7, 1], 192)
    x = concat(p, [U(p + "_a2", U(p + "_a1", x, 1, 192), 3, 320, stride=2, pad=0),
                   U(p + "_b4", y, 3, 192, stride=2, pad=0),
                   pool(p + "_c1", x, 3, "max", stride=2, pad=0)])
    for t in (1, 2):
        p = f"inception7_{t}"
        y = U(p + "_b3", U(p + "_b2", U(p + "_b1", x, 1, 384), [1, 3], 384), [3, 1], 384)
        z = U(p + "_c2", U(p + "_c1", x, 1, 448), 3, 384)
        z = U(p + "_c4", U(p + "_c3", z, [1, 3], 384), [3, 1], 384)
        x = concat(p, [U(p + "_a1", x, 1, 320), y, z,
                       U(p + "_d2", pool(p + "_d1", x, 3, "avg"), 1, 192)])
    x = pool("pool_2", x, 8, "avg", pad=0)
    _classifier(b, x, num_classes, 0.2, ("prediction_loss", "prediction_loss",
                                         "prediction_top1error", "prediction_top5error"))
    net = b.finish(seed)
    lr = [float(v) for v in np.logspace(-1, -3, 60)]
    net.meta = {
        "inputSize": ["input", [299, 299, 3, 32]],
        "normalization": {"imageSize": [299, 299, 3], "fullImageSize": 310,
                          "averageImage": torch.zeros(0, dtype=torch.float64)},
        "augmentation": _jitter_meta(),
        "trainOpts": {"learningRate": lr, "numEpochs": len(lr), "batchSize": 256,
                      "numSubBatches": 3, "weightDecay": 0.0001},
    }
    return net


#: GoogLeNet's inception modules: name -> (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(num_classes: int = 1000, *, cudnn_workspace_limit: int = WORKSPACE,
              seed: Seed = None) -> DagNN:
    """GoogLeNet (Inception v1, Szegedy et al. 2014; Caffe's ``bvlc_googlenet`` without the
    two auxiliary classifiers), 224 x 224 input.

    Convolutions have biases and a ReLU, no batch normalization: Conv ``<name>`` (variable
    ``<name>_conv``), ReLU ``<name>_relu`` (variable ``<name>``).  ``conv1`` 7x7 64 s2 pad 3,
    ``pool1`` max 3 s2 pad [0 1 0 1] (Caffe's ceil rounding, as the imported model has it),
    ``norm1`` LRN [5 1 1e-4/5 0.75], ``conv2_reduce`` 1x1 64, ``conv2`` 3x3 192, ``norm2``,
    ``pool2``; inception modules ``inception_3a``, ``3b``, ``pool3``, ``4a``-``4e``,
    ``pool4``, ``5a``, ``5b`` (branches ``_1x1`` | ``_3x3_reduce``, ``_3x3`` |
    ``_5x5_reduce``, ``_5x5`` | ``_pool`` max 3 s1 pad 1, ``_pool_proj``; widths in
    ``GOOGLENET_MODULES``; Concat ``<module>``), ``pool5`` avg 7, DropOut (0.4) and the
    classifier of ``inception_v3`` (``prediction`` 1024 -> ``num_classes``) with the Loss
    layers of ``resnet50`` (``loss`` -> ``objective``, ``top1error``, ``top5error``).
    6,998,552 parameters for 1000 classes.

    ``meta`` as ``inception_v3``'s, for a 224 x 224 input (``fullImageSize`` 256).
    """
    num_classes = _check_classes(num_classes)
    b = _Builder(cudnn_workspace_limit)
    ceil_pool = dict(stride=2, pad=[0, 1, 0, 1])

    def U(name, x, k, out, **kw):
        return _inception_unit(b, name, x, k, out, bn=False, **kw)

    def lrn(name, x):
        return b.add(name, L.LRN(param=[5, 1, 0.0001 / 5, 0.75]), x, name)

    x = U("conv1", "input", 7, 64, stride=2, pad=3)
    x = lrn("norm1", b.pool("pool1", x, 3, **ceil_pool))
    x = U("conv2", U("conv2_reduce", x, 1, 64), 3, 192)
    x = b.pool("pool2", lrn("norm2", x), 3, **ceil_pool)
    for m, (c1, r3, c3, r5, c5, pp) in GOOGLENET_MODULES.items():
        if m in ("4a", "5a"):
            x = b.pool(f"pool{int(m[0]) - 1}", x, 3, **ceil_pool)
        p = "inception_" + m
        xs = [U(p + "_1x1", x, 1, c1),
              U(p + "_3x3", U(p + "_3x3_reduce", x, 1, r3), 3, c3),
              U(p + "_5x5", U(p + "_5x5_reduce", x, 1, r5), 5, c5),
              U(p + "_pool_proj", b.pool(p + "_pool", x, 3, pad=1), 1, pp)]
        x = b.add(p, L.Concat(dim=3), xs, p, depth=sum(b.depth[v] for v in xs))
    x = b.pool("pool5", x, 7, method="avg")
    _classifier(b, x, num_classes, 0.4, ("loss", "objective", "top1error", "top5error"))
    net = b.finish(seed)
    lr = [float(v) for v in np.logspace(-1, -3, 60)]
    net.meta = {
        "inputSize": ["input", [224, 224, 3, 32]],
        "normalization": {"imageSize": [224, 224, 3], "fullImageSize": 256,
                          "averageImage": torch.zeros(0, dtype=torch.float64)},
        "augmentation": _jitter_meta(),
        "trainOpts": {"learningRate": lr, "numEpochs": len(lr), "batchSize": 256,
                      "numSubBatches": 3, "weightDecay": 0.0001},
    }
    return net


# ----------------------------------------------------------------------------- FCN

def bilinear_filters(k: int, num_groups: int, num_classes: int) -> torch.Tensor:
    """matconvnet-fcn's ``bilinear_u(k, numGroups, numClasses)`` in our ConvTranspose layout
    (D x K x k x k): a ``k x k`` bilinear interpolation kernel for each class.  With
    ``num_groups == num_classes`` one filter per group (``num_classes x 1 x k x k``);
    otherwise the diagonal of a ``num_classes x num_classes`` bank (class i to class i),
    as the original's array grows to ``k x k x numClasses x numClasses``."""
    factor = (k + 1) // 2
    center = factor if k % 2 == 1 else factor + 0.5
    c = 1 - np.abs(np.arange(1, k + 1) - center) / factor
    kernel = torch.as_tensor(np.outer(c, c), dtype=FLOAT)
    if num_groups == num_classes:
        return kernel.expand(num_classes, 1, k, k).clone()
    f = torch.zeros(num_classes, num_classes, k, k, dtype=FLOAT)
    f[range(num_classes), range(num_classes)] = kernel
    return f


_VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def fcn8s(num_classes: int = 21, variant: str = "8s", *, rgb_mean=None,
          class_names: Sequence[str] = None, seed: Seed = None) -> DagNN:
    """FCN-32s, FCN-16s or FCN-8s (``variant`` '32s', '16s', '8s') as matconvnet-fcn builds
    them (``fcnInitializeModel``, then ``fcnInitializeModel16s``, then ``...8s``), on a
    randomly initialised VGG-VD-16 instead of the downloaded ImageNet model.

    VGG-VD-16 as ``DagNN.fromSimpleNN(..., 'canonicalNames', true)`` converts it, with the
    two dropout layers the original inserts: variables ``input``, ``x1``, ... (``x<l>`` the
    output of layer l); layers ``conv1_1``, ``relu1_1``, ..., ``pool1``..``pool5`` (max 2x2
    stride 2, pad changed to [0 1 0 1]: ``x5``, ``x10``, ``x17``, ``x24``, ``x31``),
    ``fc6`` (7x7x512x4096, pad 3), ``relu6``, ``dropout1`` (0.5), ``fc7`` (1x1 4096),
    ``relu7``, ``dropout2``, ``fc8`` (1x1 4096 -> ``num_classes``, zero-initialised,
    variable ``x38``); conv parameters ``<layer>f`` / ``<layer>b``, bias learning rate 2.

    * 32s: ``deconv32`` ConvTranspose 64x64, upsample 32, crop 16, one group per class,
      bilinear filters, no bias (``deconvf``) -> ``prediction``.
    * 16s: ``deconv2`` (4x4, upsample 2, crop 1, full ``num_classes`` bank, bilinear
      diagonal; ``deconv1f``) ``x38`` -> ``x39``; ``skip4`` 1x1 Conv on pool4 ``x24`` ->
      ``x40`` (zeros; learning rates 0.1 / 2); ``sum1`` -> ``x41``; ``deconv16`` (32x32,
      upsample 16, crop 8, grouped) -> ``prediction``.
    * 8s: ``deconv2bis`` (4x4, upsample 2, crop 1) ``x41`` -> ``x42``; ``skip3`` on pool3
      ``x17`` -> ``x43`` (zeros; learning rates 0.01 / 2); ``sum2`` -> ``x44``;
      ``deconv8`` (16x16, upsample 8, crop 4, grouped) -> ``prediction``.

    The upsampling filters have learning rate 0; ``prediction`` is precious.  The objective
    is a Loss layer ``objective`` (softmaxlog) on (``prediction``, ``label``), labels 1..C
    with 0 for pixels to ignore.  (matconvnet-fcn uses its own ``SegmentationLoss``, which
    also divides by the number of labelled pixels, and a ``SegmentationAccuracy`` layer;
    neither is a MatConvNet layer, so they are not reproduced.)  Without Crop layers the
    score maps line up only for inputs whose height and width are multiples of 32, as in
    matconvnet-fcn.

    Parameters (21 classes): 134,432,597 (32s), 134,385,914 (16s), 134,382,239 (8s).
    ``meta``: ``normalization`` as the VGG-VD-16 model's (``imageSize [224, 224, 3]``,
    ``averageImage`` and ``rgbMean`` the ImageNet mean [123.68, 116.779, 103.939] (3, 1, 1)
    unless ``rgb_mean`` is given, which fcnTrain sets from the data), ``classes`` (a list of
    names, as fcnTrain sets it: the 21 PASCAL VOC names when ``num_classes`` is 21),
    ``cudnnOpts``.
    """
    num_classes = _check_classes(num_classes)
    if variant not in ("32s", "16s", "8s"):
        raise ValueError(f"variant: expected '32s', '16s' or '8s', got {variant!r}")
    b = _Builder()
    n, x = 0, "input"

    def add(name, block, params=(), depth=None):
        nonlocal n, x
        n += 1
        x = b.add(name, block, x, f"x{n}", params, depth)

    for stage, (reps, depth) in enumerate(_VGG16, 1):
        for i in range(1, reps + 1):
            name = f"conv{stage}_{i}"
            add(name, L.Conv(size=[3, 3, b.depth[x], depth], pad=1), [name + "f", name + "b"],
                depth)
            add(f"relu{stage}_{i}", L.ReLU())
        add(f"pool{stage}", L.Pooling(method="max", poolSize=[2, 2], stride=2, pad=[0, 1, 0, 1]))
    add("fc6", L.Conv(size=[7, 7, 512, 4096], pad=3), ["fc6f", "fc6b"], 4096)
    add("relu6", L.ReLU())
    add("dropout1", L.DropOut(rate=0.5))
    add("fc7", L.Conv(size=[1, 1, 4096, 4096]), ["fc7f", "fc7b"], 4096)
    add("relu7", L.ReLU())
    add("dropout2", L.DropOut(rate=0.5))
    add("fc8", L.Conv(size=[1, 1, 4096, num_classes]), ["fc8f", "fc8b"], num_classes)

    cudnn_opts = ["cudnnworkspacelimit", 512 * 1024 ** 3]
    nc, filters, skips = num_classes, {}, {}

    def deconv(name, src, out, fname, k, upsample, crop, grouped):
        # grouped: bilinear_u(k, nc, nc) with numGroups nc; else bilinear_u(k, 1, nc)
        extra = {"opts": list(cudnn_opts)} if grouped else {}
        b.add(name, L.ConvTranspose(size=[k, k, 1 if grouped else nc, nc], upsample=upsample,
                                    crop=[crop] * 4, numGroups=nc if grouped else 1,
                                    hasBias=False, **extra), src, out, [fname], nc)
        filters[fname] = (k, grouped)

    def skip(name, src, lr, up, sum_name, sum_out):
        """Score layer on a pooling output, summed with the upsampled scores ``up``."""
        out = f"x{int(up[1:]) + 1}"
        b.add(name, L.Conv(size=[1, 1, b.depth[src], nc], pad=0), src, out,
              [name + "f", name + "b"], nc)
        b.add(sum_name, L.Sum(), [up, out], sum_out)
        skips[name] = lr

    if variant == "32s":
        deconv("deconv32", "x38", "prediction", "deconvf", 64, 32, 16, True)
    else:
        deconv("deconv2", "x38", "x39", "deconv1f", 4, 2, 1, False)
        skip("skip4", "x24", 0.1, "x39", "sum1", "x41")
        if variant == "16s":
            deconv("deconv16", "x41", "prediction", "deconv16f", 32, 16, 8, True)
        else:
            deconv("deconv2bis", "x41", "x42", "deconv2bisf", 4, 2, 1, False)
            skip("skip3", "x17", 0.01, "x42", "sum2", "x44")
            deconv("deconv8", "x44", "prediction", "deconv8f", 16, 8, 4, True)
    b.add("objective", L.Loss(loss="softmaxlog"), ["prediction", "label"], "objective")

    net = b.finish(seed)
    for layer in net.layers[:38]:  # every VGG conv: bias learning rate twice the filters'
        if len(layer.params) == 2:
            f, bias = (_param(net, p) for p in layer.params)
            bias.learning_rate = 2 * f.learning_rate
    for p in ("fc8f", "fc8b"):
        _param(net, p).value = torch.zeros_like(_param(net, p).value)
    for fname, (k, grouped) in filters.items():
        p = _param(net, fname)
        p.value = bilinear_filters(k, nc if grouped else 1, nc)
        p.learning_rate, p.weight_decay = 0.0, 1.0
    for name, lr in skips.items():
        f, bias = _param(net, name + "f"), _param(net, name + "b")
        f.value, bias.value = torch.zeros_like(f.value), torch.zeros_like(bias.value)
        f.learning_rate, bias.learning_rate = lr, 2.0
        f.weight_decay = bias.weight_decay = 1.0
    net.vars[net.get_var_index("prediction")].precious = True

    mean = _average([123.68, 116.779, 103.939] if rgb_mean is None else rgb_mean)
    if class_names is None:
        class_names = VOC_CLASSES if nc == 21 else []
    net.meta = {
        "normalization": {"imageSize": [224, 224, 3], "averageImage": mean.clone(),
                          "rgbMean": mean},
        "classes": list(class_names),
        "cudnnOpts": cudnn_opts,
    }
    return net


#: name -> builder returning a DagNN (keyword arguments as the builder's).
DAGNN_ARCHITECTURES = {
    "resnet-50": resnet50,
    "inception": inception_v3,
    "googlenet": googlenet,
    "fcn32s": lambda **kw: fcn8s(variant="32s", **kw),
    "fcn16s": lambda **kw: fcn8s(variant="16s", **kw),
    "fcn8s": lambda **kw: fcn8s(variant="8s", **kw),
}
