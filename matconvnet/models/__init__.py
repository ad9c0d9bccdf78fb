"""The example networks of MatConvNet, built as their original init functions build them.

Each builder returns a SimpleNN structure (``{'layers': [...], 'meta': {...}}``, see
``docs/net-structure.md``), tidied as by ``vl_simplenn_tidy``, with float32 weights in this
package's layout (filters K x C/g x FH x FW, biases (K,), bnorm ``[g (C,), b (C,),
moments (C, 2)]``):

==========================  ===============================================================
``cnn_mnist_init``          LeNet for MNIST (``examples/mnist/cnn_mnist_init.m``)
``cnn_cifar_init``          LeNet / CIFAR10-quick (``examples/cifar/cnn_cifar_init.m``)
``cnn_cifar_init_nin``      Network in Network (``examples/cifar/cnn_cifar_init_nin.m``)
``cnn_imagenet_init``       AlexNet, VGG-F/M/M-1024/S, VGG-VD-16/19
                            (``examples/imagenet/cnn_imagenet_init.m``)
==========================  ===============================================================

``ARCHITECTURES`` maps a name to its builder; keyword arguments pass through, e.g.
``ARCHITECTURES['vgg-vd-16'](batch_normalization=True, device='meta')``.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict

from .cifar import cnn_cifar_init, cnn_cifar_init_nin
from .imagenet import IMAGENET_MODELS, cnn_imagenet_init
from .mnist import cnn_mnist_init

__all__ = ["cnn_mnist_init", "cnn_cifar_init", "cnn_cifar_init_nin", "cnn_imagenet_init",
           "ARCHITECTURES", "IMAGENET_MODELS"]

#: name -> builder returning a SimpleNN net dict (keyword arguments as the builder's).
ARCHITECTURES: Dict[str, Callable[..., dict]] = {
    "mnist-lenet": cnn_mnist_init,
    "cifar-lenet": cnn_cifar_init,
    "cifar-nin": cnn_cifar_init_nin,
    **{name: partial(cnn_imagenet_init, name) for name in IMAGENET_MODELS},
}

# DagNN example networks (``dagnn_models``): ResNet-50, the Inception init, GoogLeNet, FCNs.
from .dagnn_models import (DAGNN_ARCHITECTURES, bilinear_filters, fcn8s, googlenet,  # noqa: E402
                           inception_v3, resnet50)

__all__ += ["resnet50", "inception_v3", "googlenet", "fcn8s", "bilinear_filters",
            "DAGNN_ARCHITECTURES"]

# Published pretrained models (``registry``) and their input preprocessing (``normalization``).
from .normalization import preprocess  # noqa: E402
from .registry import (PRETRAINED, ChecksumError, DownloadError, ModelNotFoundError,  # noqa: E402
                       PretrainedModel, UnknownModelError, cache_dir, download, load_model,
                       model_path, pretrained)

__all__ += ["pretrained", "download", "preprocess", "PRETRAINED", "PretrainedModel",
            "load_model", "model_path", "cache_dir", "ModelNotFoundError",
            "UnknownModelError", "ChecksumError", "DownloadError"]
