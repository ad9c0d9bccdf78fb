"""LeNet for MNIST: MatConvNet's ``examples/mnist/cnn_mnist_init.m``."""
from __future__ import annotations

from ._common import Random, Seed, tidy

__all__ = ["cnn_mnist_init"]


def cnn_mnist_init(batch_normalization: bool = True, *, seed: Seed = 0, device=None) -> dict:
    """LeNet for MNIST, as ``cnn_mnist_init('batchNormalization', batch_normalization)``.

    Architecture (input 28 x 28 x 1; filters in this package's K x C x FH x FW layout)::

        conv 20x1x5x5  -> maxpool 2x2 s2 -> conv 50x20x5x5 -> maxpool 2x2 s2
        -> conv 500x50x4x4 -> relu -> conv 10x500x1x1 -> softmaxloss

    all convolutions stride 1, pad 0.  Filters are ``0.01 * randn`` (float32), biases zero.
    With ``batch_normalization`` (the original's default is **true**; ``cnn_mnist`` passes
    false unless asked), a ``bnorm`` layer follows each of the first three convolutions
    (weights ``[ones(C), zeros(C), zeros(C, 2)]``, ``learningRate [1, 1, 0.05]``,
    ``weightDecay [0, 0]``, epsilon 1e-5 from ``vl_simplenn_tidy``) and those convolutions
    lose their bias (``weights[1]`` is an empty tensor, MATLAB's ``[]``).

    ``net['meta']``: ``inputSize [28, 28, 1]``, ``trainOpts`` = learningRate 0.001,
    numEpochs 20, batchSize 100.  The net is tidied as by ``vl_simplenn_tidy`` (layers named
    ``layer1``, ``layer2``, ...).

    ``seed``: the original seeds MATLAB's generator with ``rng(0)`` itself, so the default
    here is the fixed seed 0 (torch's generator: the numbers differ from MATLAB's);
    ``None`` draws from torch's global generator, a ``torch.Generator`` is used as given.
    ``device``: where the weights live; ``'meta'`` builds shapes only.
    """
    r = Random(seed, device)
    f = 1 / 100

    def conv(k, c, size):
        return {"type": "conv", "weights": [r.randn(k, c, size, size, scale=f), r.zeros(k)],
                "stride": 1, "pad": 0}

    def maxpool():
        return {"type": "pool", "method": "max", "pool": [2, 2], "stride": 2, "pad": 0}

    layers = [conv(20, 1, 5), maxpool(), conv(50, 20, 5), maxpool(), conv(500, 50, 4),
              {"type": "relu"}, conv(10, 500, 1), {"type": "softmaxloss"}]

    if batch_normalization:
        for l in (0, 3, 6):  # MATLAB's insertBnorm(net, 1), (net, 4), (net, 7)
            layers = _insert_bnorm(layers, l, r)

    net = {"layers": layers,
           "meta": {"inputSize": [28, 28, 1],
                    "trainOpts": {"learningRate": 0.001, "numEpochs": 20, "batchSize": 100}}}
    return tidy(net)


def _insert_bnorm(layers, l, r):
    """``insertBnorm``: a bnorm layer after conv ``l`` (0-based), whose bias is removed."""
    conv = layers[l]
    ndim = conv["weights"][0].shape[0]
    bnorm = {"type": "bnorm", "weights": [r.ones(ndim), r.zeros(ndim)],
             "learningRate": [1.0, 1.0, 0.05], "weightDecay": [0.0, 0.0]}
    conv["weights"][1] = r.empty()  # eliminate bias in previous conv layer
    return layers[:l + 1] + [bnorm] + layers[l + 1:]
