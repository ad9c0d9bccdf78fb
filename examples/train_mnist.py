#!/usr/bin/env python3
"""Train MatConvNet's LeNet on MNIST with ``cnn_train`` / ``cnn_train_dag`` (``cnn_mnist.m``).

The network is ``matconvnet.models.cnn_mnist_init`` (optionally with batch normalisation);
the data are the 5,000 MNIST training digits bundled with the package, and the trained net
is evaluated on the full 10,000-digit MNIST test set (``matconvnet.data.load_mnist``).
Nothing is downloaded.  Checkpoints ``net-epoch-N.mat`` go to ``--exp-dir`` (a temporary
folder by default); give a folder to keep them, and run again to resume.

Run it::

    python3 examples/train_mnist.py                         # SimpleNN, 8 epochs
    python3 examples/train_mnist.py --network dagnn --batch-norm
    python3 examples/train_mnist.py --epochs 2 --exp-dir data/mnist-lenet

As ``examples/mnist_blocks.py`` (and unlike ``cnn_mnist``, tuned for 60k images), images are
scaled to [0, 1] before the mean training image is subtracted, and the learning rate is 0.1
(momentum 0.9, weight decay 5e-4, batch 100).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

try:
    import matconvnet as mcn  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from matconvnet.dagnn import DagNN
from matconvnet.dagnn.layers import Loss
from matconvnet.data import load_mnist
from matconvnet.models import cnn_mnist_init
from matconvnet.simplenn import vl_simplenn
from matconvnet.train import cnn_train, cnn_train_dag


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--network", choices=("simplenn", "dagnn"), default="simplenn",
                   help="wrapper to train with (default simplenn)")
    p.add_argument("--batch-norm", action="store_true", help="LeNet with batch normalisation")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="default 5e-4")
    p.add_argument("--batch-size", type=int, default=100, help="default 100")
    p.add_argument("--solver", default=None, help="sgd (default), adam, adagrad, adadelta, "
                   "rmsprop")
    p.add_argument("--exp-dir", default=None, help="checkpoint folder (default: a temporary "
                   "one, removed at the end)")
    p.add_argument("--limit", type=int, default=None, help="use this many training digits")
    p.add_argument("--test-limit", type=int, default=None, help="use this many test digits")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    p.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 default, 2 every batch")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs: expected a positive integer, got {args.epochs}")
    for name in ("batch_size", "limit", "test_limit"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, got {v}")
    return args


def get_imdb(limit=None, test_limit=None, seed=0) -> Dict:
    """MatConvNet-style imdb: ``images.data`` (N x 1 x 28 x 28, /255 minus the mean training
    image), ``images.labels`` (1..10), ``images.set`` (1 train, 3 test)."""
    gen = torch.Generator().manual_seed(seed)
    tx, ty = (torch.from_numpy(a) for a in load_mnist("train"))
    vx, vy = (torch.from_numpy(a) for a in load_mnist("test"))
    if limit is not None:       # the file is sorted by class: sample
        keep = torch.randperm(tx.shape[0], generator=gen)[:limit]
        tx, ty = tx[keep], ty[keep]
    if test_limit is not None:
        vx, vy = vx[:test_limit], vy[:test_limit]
    tx, vx = tx / 255, vx / 255
    mean = tx.mean(dim=0, keepdim=True)
    data = torch.cat([tx, vx]) - mean
    return {"images": {"data": data, "labels": torch.cat([ty, vy]),
                       "set": np.array([1] * len(ty) + [3] * len(vy))},
            "meta": {"classes": [str(d) for d in range(10)]}, "averageImage": mean}


def get_batch(imdb, batch):
    return imdb["images"]["data"][batch], imdb["images"]["labels"][batch]


def get_batch_dag(imdb, batch):
    return {"input": imdb["images"]["data"][batch], "label": imdb["images"]["labels"][batch]}


def evaluate(net, imdb, indices, batch_size=1000):
    """Test error (fraction) of a trained net on ``indices``."""
    wrong = 0
    for first in range(0, len(indices), batch_size):
        b = indices[first:first + batch_size]
        x, c = get_batch(imdb, b)
        if isinstance(net, DagNN):
            net.mode = "test"
            net.eval({"input": x, "label": c})
            pred = net.vars[net.get_var_index("prediction")].value
        else:
            layers = net["layers"][:-1]          # drop the loss
            pred = vl_simplenn({"layers": layers}, x, mode="test")[-1]["x"]
        wrong += int((pred.reshape(len(b), -1).argmax(dim=1) + 1 != c).sum())
    if isinstance(net, DagNN):
        net.reset()
    return wrong / len(indices)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    start = time.perf_counter()
    imdb = get_imdb(args.limit, args.test_limit, args.seed)
    sets = imdb["images"]["set"]
    train, test = np.flatnonzero(sets == 1), np.flatnonzero(sets == 3)
    net = cnn_mnist_init(batch_normalization=args.batch_norm, seed=args.seed)
    opts = dict(train=train, val=[], num_epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                solver=args.solver, random_seed=args.seed, verbose=args.verbose)
    print(f"LeNet{' + batch norm' if args.batch_norm else ''} ({args.network}) on MNIST: "
          f"{len(train)} training / {len(test)} test images, {args.epochs} epochs, "
          f"batch {args.batch_size}, lr {args.lr}, solver {args.solver or 'sgd'}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    tmp = None
    exp_dir = args.exp_dir
    if exp_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mcn-mnist-")
        exp_dir = tmp.name
    try:
        with torch.no_grad():
            if args.network == "dagnn":
                dag = DagNN.from_simplenn(net, canonical_names=True)
                dag.add_layer("top1err", Loss(loss="classerror"), ["prediction", "label"],
                              "top1err")
                dag.vars[dag.get_var_index("prediction")].precious = True
                net, stats = cnn_train_dag(dag, imdb, get_batch_dag, exp_dir=exp_dir, **opts)
            else:
                net, stats = cnn_train(net, imdb, get_batch, exp_dir=exp_dir, **opts)
            train_seconds = time.perf_counter() - start
            test_error = evaluate(net, imdb, test)
    finally:
        if tmp is not None:
            tmp.cleanup()
    total = time.perf_counter() - start
    print(f"test error: {100 * test_error:.2f}% (accuracy {100 * (1 - test_error):.2f}%, "
          f"{len(test)} images)")
    print(f"time: {train_seconds:.1f} s training, {total:.1f} s in all")
    return {"stats": stats, "test_error": test_error, "seconds": total, "net": net}


if __name__ == "__main__":
    main()
