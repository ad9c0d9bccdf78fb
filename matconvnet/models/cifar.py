"""CIFAR-10 networks: MatConvNet's ``examples/cifar/cnn_cifar_init.m`` (LeNet,
"CIFAR10-quick") and ``examples/cifar/cnn_cifar_init_nin.m`` (Network in Network)."""
from __future__ import annotations

import math

from ._common import Random, Seed, tidy

__all__ = ["cnn_cifar_init", "cnn_cifar_init_nin"]


def cnn_cifar_init(*, seed: Seed = None, device=None) -> dict:
    """LeNet variant for CIFAR-10 (Caffe's "CIFAR10-quick"), as ``cnn_cifar_init()``.

    Architecture (input 32 x 32 x 3; filters K x C x FH x FW)::

        conv 32x3x5x5 pad 2   (0.01 randn) -> maxpool 3x3 s2 pad [0 1 0 1] -> relu
        conv 32x32x5x5 pad 2  (0.05 randn) -> relu -> avgpool 3x3 s2 pad [0 1 0 1]
        conv 64x32x5x5 pad 2  (0.05 randn) -> relu -> avgpool 3x3 s2 pad [0 1 0 1]
        conv 64x64x4x4 pad 0  (0.05 randn) -> relu
        conv 10x64x1x1 pad 0  (0.05 randn) -> softmaxloss

    (the ``[0 1 0 1]`` pooling pads emulate Caffe's rounding up).  Biases zero; every conv
    has ``learningRate [0.1, 2]``, the last ``0.1 *`` that.  ``net['meta']``:
    ``inputSize [32, 32, 3]``, ``trainOpts`` = learningRate 0.05 x 30, 0.005 x 10,
    0.0005 x 5 epochs, weightDecay 1e-4, batchSize 100, numEpochs 45.  Tidied as by
    ``vl_simplenn_tidy`` (layers named ``layer1`` ...).

    ``seed``: None (the original's default: MATLAB's global generator, here torch's), an
    int or a ``torch.Generator``.  ``device``: ``'meta'`` builds shapes only.
    """
    r = Random(seed, device)
    lr = [0.1, 2.0]

    def conv(k, c, size, scale, pad, learning_rate):
        return {"type": "conv", "weights": [r.randn(k, c, size, size, scale=scale), r.zeros(k)],
                "learningRate": learning_rate, "stride": 1, "pad": pad}

    def pool(method):
        return {"type": "pool", "method": method, "pool": [3, 3], "stride": 2,
                "pad": [0, 1, 0, 1]}  # Emulate caffe

    relu = {"type": "relu"}
    layers = [
        # Block 1
        conv(32, 3, 5, 0.01, 2, lr), pool("max"), dict(relu),
        # Block 2
        conv(32, 32, 5, 0.05, 2, lr), dict(relu), pool("avg"),
        # Block 3
        conv(64, 32, 5, 0.05, 2, lr), dict(relu), pool("avg"),
        # Block 4
        conv(64, 64, 4, 0.05, 0, lr), dict(relu),
        # Block 5
        conv(10, 64, 1, 0.05, 0, [0.1 * v for v in lr]),
        # Loss layer
        {"type": "softmaxloss"},
    ]
    learning_rate = [0.05] * 30 + [0.005] * 10 + [0.0005] * 5
    net = {"layers": layers,
           "meta": {"inputSize": [32, 32, 3],
                    "trainOpts": {"learningRate": learning_rate, "weightDecay": 0.0001,
                                  "batchSize": 100, "numEpochs": len(learning_rate)}}}
    return tidy(net)


def cnn_cifar_init_nin(*, seed: Seed = None, device=None) -> dict:
    """Network in Network for CIFAR-10 (Lin, Chen and Yan, 2013; NIN + dropout), as
    ``cnn_cifar_init_nin()``.

    Architecture (input 32 x 32 x 3; "cccp" = 1 x 1 convolution; each conv is followed by a
    relu named ``relu<n>`` / ``relu_cccp<n>``, except cccp6)::

        conv1 192x3x5x5 pad 2,   cccp1 160x192, cccp2 96x160,  maxpool pool1 3x3 s2, dropout1 0.5
        conv2 192x96x5x5 pad 2,  cccp3 192x192, cccp4 192x192, avgpool pool2 3x3 s2, dropout2 0.5
        conv3 192x192x3x3 pad 1, cccp5 192x192, cccp6 10x192,  avgpool pool3 7x7 s1
        softmaxloss

    Filters are He-initialised, ``randn * sqrt(2 / (k^2 m))`` (k the filter size, m the input
    depth), cccp6's then scaled by 0.1; biases zero.  ``learningRate [1, 10]``, cccp6
    ``0.001 *`` that.  ``net['meta']``: ``inputSize [32, 32, 3]``, ``trainOpts`` =
    learningRate 0.002, 0.01, 0.02, 0.04 x 80, 0.004 x 10, 0.0004 x 10 (103 epochs),
    weightDecay 5e-4, batchSize 100.  Tidied as by ``vl_simplenn_tidy``.

    ``seed``: None (torch's global generator), an int or a ``torch.Generator``.
    ``device``: ``'meta'`` builds shapes only.
    """
    r = Random(seed, device)
    lr = [1.0, 10.0]

    def init_weights(k, m, n):
        return [r.randn(n, m, k, k, scale=math.sqrt(2 / (k * k * m))), r.zeros(n)]

    def conv(name, k, m, n, pad, learning_rate=lr):
        return {"type": "conv", "name": name, "weights": init_weights(k, m, n),
                "learningRate": learning_rate, "stride": 1, "pad": pad}

    def relu(name):
        return {"type": "relu", "name": name}

    layers = [
        # Block 1
        conv("conv1", 5, 3, 192, 2), relu("relu1"),
        conv("cccp1", 1, 192, 160, 0), relu("relu_cccp1"),
        conv("cccp2", 1, 160, 96, 0), relu("relu_cccp2"),
        {"name": "pool1", "type": "pool", "method": "max", "pool": [3, 3], "stride": 2,
         "pad": 0},
        {"type": "dropout", "name": "dropout1", "rate": 0.5},
        # Block 2
        conv("conv2", 5, 96, 192, 2), relu("relu2"),
        conv("cccp3", 1, 192, 192, 0), relu("relu_cccp3"),
        conv("cccp4", 1, 192, 192, 0), relu("relu_cccp4"),
        {"name": "pool2", "type": "pool", "method": "avg", "pool": [3, 3], "stride": 2,
         "pad": 0},
        {"type": "dropout", "name": "dropout2", "rate": 0.5},
        # Block 3
        conv("conv3", 3, 192, 192, 1), relu("relu3"),
        conv("cccp5", 1, 192, 192, 0), relu("relu_cccp5"),
        conv("cccp6", 1, 192, 10, 0, [0.001 * v for v in lr]),
    ]
    layers[-1]["weights"][0] = r.scaled(layers[-1]["weights"][0], 0.1)
    layers += [
        {"type": "pool", "name": "pool3", "method": "avg", "pool": [7, 7], "stride": 1,
         "pad": 0},
        # Loss layer
        {"type": "softmaxloss"},
    ]
    learning_rate = [0.002, 0.01, 0.02] + [0.04] * 80 + [0.004] * 10 + [0.0004] * 10
    net = {"layers": layers,
           "meta": {"inputSize": [32, 32, 3],
                    "trainOpts": {"learningRate": learning_rate, "weightDecay": 0.0005,
                                  "batchSize": 100, "numEpochs": len(learning_rate)}}}
    return tidy(net)
