"""Runnable examples (DESIGN.md floor 5; manual 1.3, 3.4): each module trains a network with
:func:`matconvnet.train.cnn_train` / :func:`~matconvnet.train.cnn_train_dag` and is run as
``python -m matconvnet.examples.<name> --help``.

* :mod:`.mnist` -- LeNet on the MNIST digits bundled with the package (``cnn_mnist.m``),
  SimpleNN or DagNN, optional batch normalisation; reports the accuracy on the 10,000 test
  digits.
* :mod:`.toy` -- a custom ``imdb`` and ``get_batch`` over generated PNG images of triangles,
  squares and circles (``examples/custom_imdb/cnn_toy_data.m``).
* :mod:`.cifar` -- LeNet or Network in Network on CIFAR-10 (``cnn_cifar.m``): the python
  batches, or an image folder / zip; the CIFAR-10 JPEG test set is split for a short demo.
* :mod:`.imagenet` -- AlexNet, VGG-F/M/S, VGG-VD-16/19 or ResNet-50 on an ImageNet-style
  folder (``cnn_imagenet.m``): image statistics, jittered batches read by ``vl_imreadjpeg``,
  deployment.

Each module's ``main(argv)`` returns the trained net and figures, so the examples can be
driven from Python as well.
"""

__all__ = ["mnist", "toy", "cifar", "imagenet"]
