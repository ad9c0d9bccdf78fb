#!/usr/bin/env python3
"""Train MatConvNet's LeNet on MNIST by calling the blocks by hand (manual, chapter 2).

This is MatConvNet's ``cnn_mnist`` example reduced to its bones: the network of
``cnn_mnist_init`` (no batch normalisation), written as a SimpleNN-style list of layer dicts,
and trained with plain SGD with momentum, as ``cnn_train`` does.  There is no autograd: the
forward pass calls each block in forward mode, ``y = vl_nnconv(x, f, b)``, and the backward
pass walks the layers in reverse calling each block in backward mode,
``dzdx, dzdf, dzdb = vl_nnconv(x, f, b, dzdy)``, which is exactly backpropagation as chapter
2.3 of the manual describes it (and what ``vl_simplenn`` does).

Data: the 5,000 MNIST training digits and the full 10,000-digit MNIST test set bundled with
the package (``matconvnet.data.load_mnist``); nothing is downloaded.

Run it::

    python3 examples/mnist_blocks.py                # 8 epochs, then the test error
    python3 examples/mnist_blocks.py --epochs 2     # quick check
    python3 examples/mnist_blocks.py --help

Differences from ``cnn_mnist``: images are scaled to [0, 1] before the mean image is
subtracted (``cnn_mnist`` keeps 0..255), and the learning rate is 0.1 instead of 0.001, so
that the net trains in a few epochs on the small 5k training set (``cnn_mnist`` runs 20
epochs over 60k images).  With the 0.01 randn initialisation the objective sits near
log(10) = 2.30 for the first epoch or so before it starts to fall.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

try:
    import matconvnet as mcn
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import matconvnet as mcn
from matconvnet.data import load_mnist


# ----------------------------------------------------------------------------- the network


def cnn_mnist_init(generator: torch.Generator) -> Dict:
    """LeNet as MatConvNet's ``cnn_mnist_init`` builds it (``batchNormalization = false``).

    Shapes in this package's layout: data N x C x H x W, filters K x C x FH x FW.
    MatConvNet writes the same filters as FH x FW x C x K (e.g. ``randn(5,5,1,20)``).
    """
    def conv(k, c, size):
        f = 0.01 * torch.randn(k, c, size, size, generator=generator)  # f = 1/100 * randn
        b = torch.zeros(k)
        return {"type": "conv", "weights": [f, b], "stride": 1, "pad": 0}

    def maxpool():
        return {"type": "pool", "method": "max", "pool": [2, 2], "stride": 2, "pad": 0}

    layers = [
        conv(20, 1, 5),               # 1 x 28 x 28  -> 20 x 24 x 24
        maxpool(),                    #              -> 20 x 12 x 12
        conv(50, 20, 5),              #              -> 50 x 8 x 8
        maxpool(),                    #              -> 50 x 4 x 4
        conv(500, 50, 4),             #              -> 500 x 1 x 1  (fully connected)
        {"type": "relu"},
        conv(10, 500, 1),             #              -> 10 x 1 x 1   (class scores)
        {"type": "softmaxloss"},      #              -> scalar objective
    ]
    return {"layers": layers, "meta": {"inputSize": [1, 28, 28], "classes": list(range(10))}}


# ----------------------------------------------------------------------- forward, backward


def layer_forward(layer: Dict, x: torch.Tensor, labels: torch.Tensor):
    """Forward mode of one layer: ``y = block(x, params)``."""
    t = layer["type"]
    if t == "conv":
        f, b = layer["weights"]
        return mcn.vl_nnconv(x, f, b, pad=layer["pad"], stride=layer["stride"])
    if t == "pool":
        return mcn.vl_nnpool(x, layer["pool"], method=layer["method"],
                             pad=layer["pad"], stride=layer["stride"])
    if t == "relu":
        return mcn.vl_nnrelu(x)
    if t == "softmaxloss":
        return mcn.vl_nnsoftmaxloss(x, labels)
    raise ValueError(f"unknown layer type {t!r}")


def layer_backward(layer: Dict, x: torch.Tensor, labels: torch.Tensor, dzdy):
    """Backward mode of one layer: from ``dz/dy`` to ``dz/dx`` and ``dz/dw`` (manual 2.3)."""
    t = layer["type"]
    if t == "conv":
        f, b = layer["weights"]
        dzdx, dzdf, dzdb = mcn.vl_nnconv(x, f, b, dzdy, pad=layer["pad"], stride=layer["stride"])
        return dzdx, [dzdf, dzdb]
    if t == "pool":
        return mcn.vl_nnpool(x, layer["pool"], dzdy, method=layer["method"],
                             pad=layer["pad"], stride=layer["stride"]), None
    if t == "relu":
        return mcn.vl_nnrelu(x, dzdy), None
    if t == "softmaxloss":
        return mcn.vl_nnsoftmaxloss(x, labels, dzdy), None
    raise ValueError(f"unknown layer type {t!r}")


def simplenn(net: Dict, x: torch.Tensor, labels: torch.Tensor, dzdy: Optional[float] = None):
    """A minimal ``vl_simplenn``: returns ``res`` with ``res[i]['x']`` the input of layer ``i``
    (``res[-1]['x']`` the objective) and, when ``dzdy`` is given, ``res[i]['dzdx']`` and the
    parameter derivatives ``res[i]['dzdw']``."""
    layers = net["layers"]
    res = [{"x": x, "dzdx": None, "dzdw": None}]
    for layer in layers:                                   # forward: x_{l+1} = f_l(x_l, w_l)
        res.append({"x": layer_forward(layer, res[-1]["x"], labels), "dzdx": None, "dzdw": None})
    if dzdy is None:
        return res
    res[-1]["dzdx"] = dzdy                                 # dz/dz = 1
    for i in reversed(range(len(layers))):                 # backward: chain rule, layer by layer
        res[i]["dzdx"], res[i]["dzdw"] = layer_backward(
            layers[i], res[i]["x"], labels, res[i + 1]["dzdx"])
    return res


def sgd_step(net: Dict, res: List[Dict], momentum: List,
             lr: float, mu: float, weight_decay: float) -> None:
    """``cnn_train``'s SGD update, for every parameter ``w`` with derivative ``dzdw``::

        m = mu * m - (dzdw + weight_decay * w)
        w = w + lr * m

    ``vl_nnsoftmaxloss`` already divides the objective by the number of images in the batch,
    so ``dzdw`` is the derivative of the *mean* loss and needs no further normalisation."""
    for layer, r, m in zip(net["layers"], res, momentum):
        if "weights" not in layer:
            continue
        for w, dzdw, mw in zip(layer["weights"], r["dzdw"], m):
            mw.mul_(mu).sub_(dzdw).sub_(w, alpha=weight_decay)
            w.add_(mw, alpha=lr)


def class_errors(net: Dict, res: List[Dict], labels: torch.Tensor) -> int:
    """Number of top-1 errors of the class scores (the input of the loss layer)."""
    scores = res[len(net["layers"]) - 1]["x"]
    return int(mcn.vl_nnloss(scores, labels, loss="classerror", normalise=False))


def evaluate(net: Dict, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000):
    """Summed objective and error count over a whole set, forward mode only."""
    objective, errors = 0.0, 0
    for start in range(0, images.shape[0], batch_size):
        x, c = images[start:start + batch_size], labels[start:start + batch_size]
        res = simplenn(net, x, c)
        objective += float(res[-1]["x"]) * x.shape[0]     # the block returns the batch mean
        errors += class_errors(net, res, c)
    return objective, errors


# --------------------------------------------------------------------------------- driver


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train MatConvNet's MNIST LeNet with explicit block calls (no autograd) "
                    "on the bundled 5k MNIST training digits; report the 10k test error.")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--batch-size", type=int, default=100, help="images per batch (default 100)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="weight decay, cnn_train's default (default 5e-4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on a random subset of N of the 5,000 training digits")
    p.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="test on the first N of the 10,000 test digits")
    args = p.parse_args(argv)
    if args.epochs < 0:
        p.error(f"--epochs: expected a non-negative integer, got {args.epochs}")
    for name in ("batch_size", "limit", "test_limit"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, got {v}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Run the demo; returns the per-epoch history and the test error (for the tests)."""
    args = parse_args(argv)
    # Autograd is switched off: every derivative comes from a block's backward mode.
    with torch.no_grad():
        return _run(args)


def _run(args: argparse.Namespace) -> Dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()

    # Data: N x 1 x 28 x 28 pixels in [0, 255], labels 1..10 (digit + 1).
    train_x, train_y = (torch.from_numpy(a) for a in load_mnist("train"))
    test_x, test_y = (torch.from_numpy(a) for a in load_mnist("test"))
    if args.limit is not None:                          # the file is sorted by class: sample
        keep = torch.randperm(train_x.shape[0], generator=gen)[:args.limit]
        train_x, train_y = train_x[keep], train_y[keep]
    if args.test_limit is not None:
        test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]
    train_x, test_x = train_x / 255, test_x / 255
    mean_image = train_x.mean(dim=0, keepdim=True)      # as cnn_mnist: subtract the mean image
    train_x, test_x = train_x - mean_image, test_x - mean_image

    net = cnn_mnist_init(gen)
    momentum = [[torch.zeros_like(w) for w in layer.get("weights", [])]
                for layer in net["layers"]]
    n = train_x.shape[0]
    print(f"LeNet on MNIST: {n} training / {test_x.shape[0]} test images, "
          f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
          f"momentum {args.momentum}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)

    history = []
    for epoch in range(1, args.epochs + 1):
        tic = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        objective, errors = 0.0, 0
        for first in range(0, n, args.batch_size):
            batch = order[first:first + args.batch_size]
            x, c = train_x[batch], train_y[batch]
            res = simplenn(net, x, c, dzdy=1.0)                # forward and backward
            objective += float(res[-1]["x"]) * len(batch)     # the block returns the batch mean
            errors += class_errors(net, res, c)
            sgd_step(net, res, momentum, args.lr, args.momentum, args.weight_decay)
        seconds = time.perf_counter() - tic
        history.append({"epoch": epoch, "objective": objective / n, "error": errors / n,
                        "seconds": seconds})
        print(f"epoch {epoch:2d}: train objective {objective / n:.4f}, "
              f"train error {100 * errors / n:5.2f}%, {seconds:.1f} s "
              f"({n / seconds:.0f} images/s)", flush=True)

    tic = time.perf_counter()
    test_objective, test_errors = evaluate(net, test_x, test_y)
    m = test_x.shape[0]
    total = time.perf_counter() - start
    print(f"test objective: {test_objective / m:.4f} ({time.perf_counter() - tic:.1f} s)")
    print(f"test error: {100 * test_errors / m:.2f}% ({m} images)")
    print(f"total time: {total:.1f} s")
    return {"history": history, "test_error": test_errors / m,
            "test_objective": test_objective / m, "seconds": total, "net": net}


if __name__ == "__main__":
    main()
