r"""LeNet on MNIST with ``cnn_train`` / ``cnn_train_dag`` (MatConvNet's ``cnn_mnist.m``).

::

    python -m matconvnet.examples.mnist                      # SimpleNN LeNet, then test accuracy
    python -m matconvnet.examples.mnist --batch-norm         # LeNet with batch normalisation
    python -m matconvnet.examples.mnist --dagnn              # the same net as a DagNN
    python -m matconvnet.examples.mnist --epochs 4 --exp-dir data/mnist-lenet

The network is :func:`matconvnet.models.cnn_mnist_init`; the data are the 5,000 MNIST training
digits bundled with the package (500 per class) and the trained net is tested on the full
10,000-digit MNIST test set (:func:`matconvnet.data.load_mnist`).  Nothing is downloaded.
Checkpoints ``net-epoch-N.mat`` and the figure ``net-train.png`` go to ``--exp-dir`` (by
default a temporary folder, removed at the end); with a folder of your own, running again
resumes from its last checkpoint, as MatConvNet does.

Differences from ``cnn_mnist`` (which trains on 60,000 digits for 20 epochs at learning rate
0.001): images are scaled to [0, 1] before the mean training image is subtracted, the
learning rate is 0.1 for the first ``epochs - 3`` epochs and 0.01 for the last 3 (momentum
0.9, weight decay 5e-4, batch 100), and the test digits are evaluated once at the end
(``--val`` evaluates them after every epoch instead, as the original's validation set).
The DagNN variant adds the original's ``top1err`` (``classerror``, output ``error``) and
``top5err`` (``topkerror``, K = 5) loss layers.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..dagnn import DagNN
from ..data import load_mnist
from ..models import cnn_mnist_init
from ..simplenn import vl_simplenn
from ..train import cnn_train, cnn_train_dag
from ._common import non_negative as _non_negative
from ._common import positive as _positive
from ._common import with_error_layers

__all__ = ["main", "parse_args", "get_imdb", "get_batch", "get_batch_dag", "evaluate",
           "learning_rates", "make_net"]

EPOCHS = 20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m matconvnet.examples.mnist",
                                description="Train LeNet on the bundled MNIST digits with "
                                "cnn_train and report the test accuracy.")
    p.add_argument("--epochs", type=_positive, default=EPOCHS,
                   help=f"training epochs (default {EPOCHS})")
    p.add_argument("--batch-norm", action="store_true",
                   help="LeNet with batch normalisation")
    p.add_argument("--dagnn", action="store_true",
                   help="train the DagNN version with cnn_train_dag")
    p.add_argument("--exp-dir", default=None,
                   help="checkpoint folder (default: a temporary one, removed at the end)")
    p.add_argument("--lr", type=_non_negative, default=0.1,
                   help="learning rate; 1/10 of it for the last 3 epochs (default 0.1)")
    p.add_argument("--momentum", type=_non_negative, default=0.9, help="default 0.9")
    p.add_argument("--weight-decay", type=_non_negative, default=5e-4, help="default 5e-4")
    p.add_argument("--batch-size", type=_positive, default=100, help="default 100")
    p.add_argument("--solver", default=None,
                   help="sgd (default), adam, adagrad, adadelta or rmsprop")
    p.add_argument("--val", action="store_true",
                   help="evaluate the test digits after every epoch (slower)")
    p.add_argument("--limit", type=_positive, default=None,
                   help="use this many training digits (a random subset)")
    p.add_argument("--test-limit", type=_positive, default=None,
                   help="use the first this many test digits")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    p.add_argument("--prefetch", action="store_true",
                   help="load the next batch in a background thread")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                   help="0 quiet, 1 progress (default), 2 a line per batch")
    return p.parse_args(argv)


def learning_rates(lr: float, epochs: int) -> List[float]:
    """The per-epoch schedule: ``lr``, then ``lr / 10`` for the last 3 epochs (runs of 3
    epochs or fewer use ``lr`` throughout)."""
    if epochs <= 3:
        return [lr] * epochs
    return [lr] * (epochs - 3) + [lr / 10] * 3


def get_imdb(limit: Optional[int] = None, test_limit: Optional[int] = None,
             seed: int = 0) -> Dict:
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
            "meta": {"classes": [str(d) for d in range(10)], "sets": ["train", "val", "test"]},
            "averageImage": mean}


def get_batch(imdb: Dict, batch) -> tuple:
    """SimpleNN ``get_batch``: ``(images, labels)`` of the 0-based indices ``batch``."""
    return imdb["images"]["data"][batch], imdb["images"]["labels"][batch]


def get_batch_dag(imdb: Dict, batch) -> Dict:
    """DagNN ``get_batch``: ``{'input': images, 'label': labels}``."""
    return {"input": imdb["images"]["data"][batch], "label": imdb["images"]["labels"][batch]}


def make_net(batch_norm: bool = False, dagnn: bool = False, seed: int = 0):
    """LeNet (``cnn_mnist_init``); as a DagNN with the original's error layers if ``dagnn``."""
    net = cnn_mnist_init(batch_normalization=batch_norm, seed=seed)
    if not dagnn:
        return net
    return with_error_layers(DagNN.from_simplenn(net, canonical_names=True))


def evaluate(net, imdb: Dict, indices, batch_size: int = 1000) -> float:
    """Top-1 error (a fraction) of a trained SimpleNN or DagNN on ``indices``."""
    indices = np.asarray(indices)
    if indices.size == 0:
        raise ValueError("indices: expected at least one image to evaluate")
    wrong = 0
    with torch.no_grad():
        for first in range(0, len(indices), batch_size):
            b = indices[first:first + batch_size]
            x, c = get_batch(imdb, b)
            if isinstance(net, DagNN):
                net.mode = "test"
                pv = net.vars[net.get_var_index("prediction")]
                keep, pv.precious = pv.precious, True
                try:
                    net.eval({"input": x, "label": c})
                    pred = pv.value
                finally:
                    pv.precious = keep
            else:
                pred = vl_simplenn({"layers": net["layers"][:-1]}, x, mode="test")[-1]["x"]
            wrong += int((pred.reshape(len(b), -1).argmax(dim=1) + 1 != c).sum())
    if isinstance(net, DagNN):
        net.reset()
    return wrong / len(indices)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train and test; returns ``{'net', 'stats', 'test_error', 'train_seconds', 'seconds'}``."""
    args = parse_args(argv)
    start = time.perf_counter()
    imdb = get_imdb(args.limit, args.test_limit, args.seed)
    sets = imdb["images"]["set"]
    train, test = np.flatnonzero(sets == 1), np.flatnonzero(sets == 3)
    net = make_net(args.batch_norm, args.dagnn, args.seed)
    lrs = learning_rates(args.lr, args.epochs)
    opts = dict(train=train, val=test if args.val else [], num_epochs=args.epochs,
                batch_size=args.batch_size, learning_rate=lrs, momentum=args.momentum,
                weight_decay=args.weight_decay, solver=args.solver, random_seed=args.seed,
                prefetch=args.prefetch, verbose=args.verbose)
    print(f"LeNet{' + batch norm' if args.batch_norm else ''} "
          f"({'DagNN' if args.dagnn else 'SimpleNN'}) on MNIST: {len(train)} training / "
          f"{len(test)} test digits, {args.epochs} epochs, batch {args.batch_size}, "
          f"lr {args.lr:g}{f' ({lrs[-1]:g} for the last 3)' if lrs[-1] != lrs[0] else ''}, "
          f"solver {args.solver or 'sgd'}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="mcn-mnist-") if args.exp_dir is None else None
    exp_dir = tmp.name if tmp is not None else args.exp_dir
    try:
        with torch.no_grad():
            if args.dagnn:
                net, stats = cnn_train_dag(net, imdb, get_batch_dag, exp_dir=exp_dir, **opts)
            else:
                net, stats = cnn_train(net, imdb, get_batch, exp_dir=exp_dir, **opts)
        train_seconds = time.perf_counter() - start
        test_error = evaluate(net, imdb, test)
    finally:
        if tmp is not None:
            tmp.cleanup()
    total = time.perf_counter() - start
    print(f"test accuracy: {100 * (1 - test_error):.2f}% (error {100 * test_error:.2f}%, "
          f"{len(test)} test digits)")
    print(f"time: {train_seconds:.1f} s training, {total:.1f} s in all"
          + ("" if args.exp_dir is None else f"; checkpoints and net-train.png in {exp_dir}"))
    return {"net": net, "stats": stats, "test_error": test_error,
            "train_seconds": train_seconds, "seconds": total}


if __name__ == "__main__":
    main()
