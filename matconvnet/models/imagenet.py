"""ImageNet networks: MatConvNet's ``examples/imagenet/cnn_imagenet_init.m`` (beta25):
AlexNet, VGG-F, VGG-M, VGG-M-1024, VGG-S, VGG-VD-16 and VGG-VD-19."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ._common import Random, Seed, data_size, tidy

__all__ = ["cnn_imagenet_init", "IMAGENET_MODELS"]

#: model name -> (image size, batch size), as in ``cnn_imagenet_init``'s switch.
IMAGENET_MODELS = {
    "alexnet": (227, 256),
    "vgg-f": (224, 256),
    "vgg-m": (224, 196),
    "vgg-m-1024": (224, 196),
    "vgg-s": (224, 128),
    "vgg-vd-16": (224, 32),
    "vgg-vd-19": (224, 24),
}

_WEIGHT_INIT_METHODS = ("gaussian", "xavier", "xavierimproved")


def cnn_imagenet_init(model: str = "alexnet", batch_normalization: bool = False, *,
                      weight_init_method: str = "gaussian", scale: float = 1,
                      init_bias: float = 0, weight_decay: float = 1,
                      cudnn_workspace_limit: int = 1024 * 1024 * 1204,
                      class_names: Sequence[str] = (), class_descriptions: Sequence[str] = (),
                      average_image=None, color_deviation=None,
                      seed: Seed = None, device=None) -> dict:
    """A standard ImageNet CNN, as ``cnn_imagenet_init('model', model, ...)`` (SimpleNN).

    Models (filters K x C/g x FH x FW; ``conv`` = conv + relu; fc layers are convolutions
    whose filters cover their whole input, named ``fc6``, ``fc7``, ``fc8``):

    * ``alexnet`` (227 x 227): conv1 96x3x11x11 s4, norm1, maxpool 3 s2; conv2 256x48x5x5
      pad 2 (**2 groups**), norm2, maxpool 3 s2; conv3 384x256x3x3 pad 1; conv4 384x192x3x3
      pad 1 (2 groups); conv5 256x192x3x3 pad 1 (2 groups); maxpool 3 s2; fc6 4096x256x6x6,
      dropout; fc7 4096x4096, dropout; fc8 1000x4096.  61.0 M parameters.
    * ``vgg-f`` (224): conv1 64x3x11x11 s4, norm, maxpool 3 s2 pad [0 1 0 1]; conv2 256x64x5x5
      pad 2, norm, maxpool 3 s2; conv3-5 256 3x3 pad 1; maxpool 3 s2; fc6 6x6x256 -> 4096,
      fc7, fc8.
    * ``vgg-m`` / ``vgg-m-1024`` (224): conv1 96x3x7x7 s2, norm, maxpool 3 s2; conv2 256x96x5x5
      s2 pad 1, norm, maxpool 3 s2 pad [0 1 0 1]; conv3-5 512 3x3 pad 1; maxpool 3 s2;
      fc6 6x6x512 -> 4096, fc7 4096 -> 4096 (1024 for vgg-m-1024), fc8.
    * ``vgg-s`` (224): conv1 96x3x7x7 s2, norm, maxpool 3 s3 pad [0 2 0 2]; conv2 256x96x5x5,
      norm, maxpool 2 s2 pad [0 1 0 1]; conv3-5 512 3x3 pad 1; maxpool 3 s3 pad [0 1 0 1];
      fc6 6x6x512 -> 4096, fc7, fc8.
    * ``vgg-vd-16`` / ``vgg-vd-19`` (224): 3x3 pad-1 convolutions conv1_1..conv5_3 (64, 64 |
      128, 128 | 256 x3 | 512 x3 | 512 x3; vd-19 adds conv3_4, conv4_4, conv5_4), each stage
      followed by maxpool 2 s2 (pool1..pool5); fc6 7x7x512 -> 4096, dropout, fc7, dropout,
      fc8.  138,357,544 / 143,667,240 parameters.

    Every conv: bias ``init_bias`` (default 0), ``stride``, ``pad``, ``dilate 1``,
    ``learningRate [1, 2]``, ``weightDecay [weight_decay, 0]``,
    ``opts ['CudnnWorkspaceLimit', cudnn_workspace_limit]``; relu after each conv but fc8;
    LRN ``normalize`` layers ``param [5, 1, 2e-5, 0.75]``; dropout rate 0.5; a final
    ``softmaxloss`` named ``loss``.  With ``batch_normalization`` a bnorm layer ``bn<id>``
    follows every conv but fc8 (weights ``[ones, zeros, zeros(C, 2)]``, epsilon 1e-4,
    ``learningRate [2, 1, 0.1]``, ``weightDecay [0, 0]``) and the LRN and dropout layers are
    left out.

    ``weight_init_method``: ``'gaussian'`` (``randn * 0.01 / scale``, the default),
    ``'xavier'`` (``U(-1, 1) * sqrt(3 / (h w in))``) or ``'xavierimproved'``
    (``randn * sqrt(2 / (h w out))``); with the two xavier methods fc8's filters are then
    divided by 10.

    ``net['meta']``: ``normalization`` (``imageSize [S, S, 3]``, ``cropSize S / 256``,
    ``averageImage``: ``average_image``, default zeros ``(3, 1, 1)`` float64, a per-channel
    mean), ``inputSize [S, S, 3, 32]``, ``classes`` (``name``, ``description``),
    ``augmentation`` (``jitterLocation`` and ``jitterFlip`` True, ``jitterBrightness``
    ``0.1 * color_deviation`` (3 x 3 float64, default zeros), ``jitterAspect [2/3, 3/2]``),
    ``trainOpts`` (learningRate ``logspace(-2, -4, 60)``, or ``logspace(-1, -4, 20)`` with
    batch normalization, ``numEpochs`` its length, ``batchSize`` 256 / 256 / 196 / 196 / 128
    / 32 / 24 in the order above, ``weightDecay`` 5e-4).  Tidied as by ``vl_simplenn_tidy``.

    ``seed``: None (torch's global generator), an int or a ``torch.Generator``.
    ``device``: where the weights live; ``'meta'`` builds the structure and shapes without
    allocating or drawing any weight (VGG-VD-19 has 144 M parameters, 575 MB in float32).
    The original's ``networkType 'dagnn'`` conversion is not part of this function.
    """
    if model not in IMAGENET_MODELS:
        raise ValueError(f"model: unknown model {model!r}; expected one of {list(IMAGENET_MODELS)}")
    method = str(weight_init_method).lower()
    if method not in _WEIGHT_INIT_METHODS:
        raise ValueError(
            f"weight_init_method: unknown weight initialization method {weight_init_method!r}; "
            f"expected one of {list(_WEIGHT_INIT_METHODS)}")

    image, batch = IMAGENET_MODELS[model]
    b = _Builder(model, bool(batch_normalization), method, scale, init_bias, weight_decay,
                 int(cudnn_workspace_limit), (image, image), Random(seed, device))
    _ARCHITECTURES[model](b)
    layers = b.layers

    # final touches
    if method in ("xavier", "xavierimproved"):
        layers[-1]["weights"][0] = b.r.scaled(layers[-1]["weights"][0], divisor=10)
    layers.append({"type": "softmaxloss", "name": "loss"})

    # Meta parameters
    if average_image is None:
        average = torch.zeros(3, 1, 1, dtype=torch.float64)
    else:
        average = torch.as_tensor(np.asarray(average_image) if not isinstance(
            average_image, torch.Tensor) else average_image)
        if average.numel() == 3:
            average = average.reshape(3, 1, 1)
    if color_deviation is None:
        brightness = torch.zeros(3, 3, dtype=torch.float64)
    else:
        dev = color_deviation if isinstance(color_deviation, torch.Tensor) else \
            torch.as_tensor(np.asarray(color_deviation))
        brightness = (0.1 * dev).to(torch.float64)
    lr = np.logspace(-2, -4, 60) if not batch_normalization else np.logspace(-1, -4, 20)
    lr = [float(v) for v in lr]
    meta = {
        "normalization": {"imageSize": [image, image, 3],
                          "cropSize": image / 256,
                          "averageImage": average},
        "inputSize": [image, image, 3, 32],
        "classes": {"name": list(class_names), "description": list(class_descriptions)},
        "augmentation": {"jitterLocation": True, "jitterFlip": True,
                         "jitterBrightness": brightness, "jitterAspect": [2 / 3, 3 / 2]},
        "trainOpts": {"learningRate": lr, "numEpochs": len(lr), "batchSize": batch,
                      "weightDecay": 0.0005},
    }
    return tidy({"layers": layers, "meta": meta})


class _Builder:
    """``add_block`` / ``add_norm`` / ``add_dropout`` and the pooling layers."""

    def __init__(self, model, bn, method, scale, init_bias, weight_decay, workspace,
                 image_size, r: Random):
        self.model, self.bn, self.method = model, bn, method
        self.scale, self.init_bias, self.weight_decay = scale, init_bias, weight_decay
        self.workspace, self.image_size, self.r = workspace, image_size, r
        self.layers = []

    def init_weight(self, h, w, cin, cout):
        # See K. He, X. Zhang, S. Ren, and J. Sun. Delving deep into rectifiers (2015).
        r = self.r
        if self.method == "gaussian":
            return r.randn(cout, cin, h, w, scale=0.01 / self.scale)
        if self.method == "xavier":
            return r.uniform(cout, cin, h, w, bound=math.sqrt(3 / (h * w * cin)))
        return r.randn(cout, cin, h, w, scale=math.sqrt(2 / (h * w * cout)))  # xavierimproved

    def block(self, id, h, w, cin, cout, stride, pad):
        # A filter covering the whole current data is a fully-connected layer.
        size = data_size(self.layers, self.image_size)
        name = "fc" if (h, w) == size else "conv"
        bias = torch.full((cout,), float(self.init_bias), dtype=torch.float32,
                          device=self.r.device)
        self.layers.append({
            "type": "conv", "name": f"{name}{id}",
            "weights": [self.init_weight(h, w, cin, cout), bias],
            "stride": stride, "pad": pad, "dilate": 1,
            "learningRate": [1.0, 2.0], "weightDecay": [float(self.weight_decay), 0.0],
            "opts": ["CudnnWorkspaceLimit", self.workspace]})
        if self.bn:
            r = self.r
            self.layers.append({
                "type": "bnorm", "name": f"bn{id}",
                "weights": [r.ones(cout), r.zeros(cout), r.zeros(cout, 2)],
                "epsilon": 1e-4, "learningRate": [2.0, 1.0, 0.1], "weightDecay": [0.0, 0.0]})
        self.layers.append({"type": "relu", "name": f"relu{id}"})

    def norm(self, id):
        if not self.bn:
            self.layers.append({"type": "normalize", "name": f"norm{id}",
                                "param": [5, 1, 0.0001 / 5, 0.75]})

    def dropout(self, id):
        if not self.bn:
            self.layers.append({"type": "dropout", "name": f"dropout{id}", "rate": 0.5})

    def pool(self, name, size, stride, pad):
        self.layers.append({"type": "pool", "name": name, "method": "max",
                            "pool": [size, size], "stride": stride, "pad": pad})

    def classifier(self, fc6_size, fc6_in, fc7_out=4096):
        """fc6, dropout, fc7, dropout, fc8 (without its relu / bnorm)."""
        self.block("6", fc6_size, fc6_size, fc6_in, 4096, 1, 0)
        self.dropout("6")
        self.block("7", 1, 1, 4096, fc7_out, 1, 0)
        self.dropout("7")
        self.block("8", 1, 1, fc7_out, 1000, 1, 0)
        del self.layers[-1]
        if self.bn:
            del self.layers[-1]


def _alexnet(b: _Builder):
    b.block("1", 11, 11, 3, 96, 4, 0)
    b.norm("1")
    b.pool("pool1", 3, 2, 0)
    b.block("2", 5, 5, 48, 256, 1, 2)
    b.norm("2")
    b.pool("pool2", 3, 2, 0)
    b.block("3", 3, 3, 256, 384, 1, 1)
    b.block("4", 3, 3, 192, 384, 1, 1)
    b.block("5", 3, 3, 192, 256, 1, 1)
    b.pool("pool5", 3, 2, 0)
    b.classifier(6, 256)


def _vgg_s(b: _Builder):
    b.block("1", 7, 7, 3, 96, 2, 0)
    b.norm("1")
    b.pool("pool1", 3, 3, [0, 2, 0, 2])
    b.block("2", 5, 5, 96, 256, 1, 0)
    b.norm("2")
    b.pool("pool2", 2, 2, [0, 1, 0, 1])
    b.block("3", 3, 3, 256, 512, 1, 1)
    b.block("4", 3, 3, 512, 512, 1, 1)
    b.block("5", 3, 3, 512, 512, 1, 1)
    b.pool("pool5", 3, 3, [0, 1, 0, 1])
    b.classifier(6, 512)


def _vgg_m(b: _Builder):
    b.block("1", 7, 7, 3, 96, 2, 0)
    b.norm("1")
    b.pool("pool1", 3, 2, 0)
    b.block("2", 5, 5, 96, 256, 2, 1)
    b.norm("2")
    b.pool("pool2", 3, 2, [0, 1, 0, 1])
    b.block("3", 3, 3, 256, 512, 1, 1)
    b.block("4", 3, 3, 512, 512, 1, 1)
    b.block("5", 3, 3, 512, 512, 1, 1)
    b.pool("pool5", 3, 2, 0)
    b.classifier(6, 512, 1024 if b.model == "vgg-m-1024" else 4096)


def _vgg_f(b: _Builder):
    b.block("1", 11, 11, 3, 64, 4, 0)
    b.norm("1")
    b.pool("pool1", 3, 2, [0, 1, 0, 1])
    b.block("2", 5, 5, 64, 256, 1, 2)
    b.norm("2")
    b.pool("pool2", 3, 2, 0)
    b.block("3", 3, 3, 256, 256, 1, 1)
    b.block("4", 3, 3, 256, 256, 1, 1)
    b.block("5", 3, 3, 256, 256, 1, 1)
    b.pool("pool5", 3, 2, 0)
    b.classifier(6, 256)


def _vgg_vd(b: _Builder):
    deep = b.model == "vgg-vd-19"
    stages = ((1, 64, 2), (2, 128, 2), (3, 256, 4 if deep else 3), (4, 512, 4 if deep else 3),
              (5, 512, 4 if deep else 3))
    cin = 3
    for stage, cout, n in stages:
        for i in range(1, n + 1):
            b.block(f"{stage}_{i}", 3, 3, cin, cout, 1, 1)
            cin = cout
        b.pool(f"pool{stage}", 2, 2, 0)
    b.classifier(7, 512)


_ARCHITECTURES = {"alexnet": _alexnet, "vgg-f": _vgg_f, "vgg-m": _vgg_m, "vgg-m-1024": _vgg_m,
                  "vgg-s": _vgg_s, "vgg-vd-16": _vgg_vd, "vgg-vd-19": _vgg_vd}
