"""Datasets and image reading (manual 1.4 and 3.4).

The bundled MNIST digits used by the runnable demo (``examples/mnist_blocks.py``) and the
tests: :func:`load_mnist`.  The threaded image reader :func:`vl_imreadjpeg` (imread.py),
``imdb`` builders (datasets.py: :func:`mnist_imdb`, :func:`cifar10_imdb`,
:func:`image_folder_imdb`, :func:`imagenet_imdb`), ``get_batch`` functions for ``cnn_train``
(batches.py) and ``python -m matconvnet.data.preprocess_imagenet SRC DST``.
"""
from .mnist import load_mnist, parse_idx, read_idx
from .imread import INTERPOLATIONS, ImageReadWarning, vl_imreadjpeg
from .datasets import cifar10_imdb, image_folder_imdb, imagenet_imdb, mnist_imdb
from .batches import (as_dag_batch, get_image_batch, get_image_stats, get_memory_batch,
                      make_image_get_batch, rgb_pca_deviation)
from .preprocess import preprocess_imagenet

__all__ = ["load_mnist"]
__all__ += ["read_idx", "parse_idx"]
__all__ += ["vl_imreadjpeg", "ImageReadWarning", "INTERPOLATIONS"]
__all__ += ["mnist_imdb", "cifar10_imdb", "image_folder_imdb", "imagenet_imdb"]
__all__ += ["get_memory_batch", "as_dag_batch", "get_image_batch", "make_image_get_batch",
            "get_image_stats", "rgb_pca_deviation", "preprocess_imagenet"]
