"""Pieces shared by the training examples (:mod:`.cifar`, :mod:`.imagenet`, :mod:`.mnist`,
:mod:`.toy`): command-line value types, the training options every example takes, the
experiment folder, the DagNN error layers of the original inits and the closing report.

Private to :mod:`matconvnet.examples`.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import tempfile
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import torch

from ..dagnn import DagNN
from ..dagnn.layers import Loss

__all__ = ["positive", "non_negative", "fraction", "schedule", "gpu_ids", "add_training_args",
           "training_options", "describe_schedule", "experiment_folder", "with_error_layers",
           "top_errors", "report"]


# ----------------------------------------------------------------------------- value types

def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def non_negative(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {v}")
    return v


def fraction(text: str) -> float:
    """argparse type: a number in the open interval (0, 1)."""
    v = non_negative(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {v}")
    return v


_REPEAT = re.compile(r"^\s*([^*x]+?)\s*(?:[*x]\s*(\d+))?\s*$")


def schedule(text: str) -> List[float]:
    """argparse type: a learning-rate schedule, one rate per epoch, the last one repeating
    (``cnn_train``'s ``learning_rate`` list): ``0.05``, ``0.1,0.01`` or with repeat counts
    ``0.05*30,0.005*10,0.0005*5`` (``x`` works as ``*``)."""
    rates: List[float] = []
    for part in str(text).split(","):
        m = _REPEAT.match(part)
        if not m:
            raise argparse.ArgumentTypeError(
                f"expected rates like 0.05 or 0.05*30,0.005*10, got {text!r}")
        rate = non_negative(m.group(1))
        count = int(m.group(2)) if m.group(2) else 1
        if count < 1:
            raise argparse.ArgumentTypeError(f"expected a repeat count >= 1 in {part!r}")
        rates += [rate] * count
    return rates


def gpu_ids(text: str) -> List[int]:
    """argparse type: MatConvNet's 1-based GPU ids, ``1`` or ``1,2`` (``cnn_train``'s
    ``gpus``)."""
    try:
        ids = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GPU ids like 1 or 1,2, got {text!r}") \
            from None
    if not ids or any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"expected 1-based GPU ids like 1 or 1,2, got "
                                         f"{text!r}")
    return ids


# ----------------------------------------------------------------------------- training options

def add_training_args(p: argparse.ArgumentParser, *, exp_dir_help: str) -> None:
    """The ``cnn_train`` options every example takes.  ``None`` defaults mean "the network's
    ``meta.trainOpts``" (see :func:`training_options`)."""
    g = p.add_argument_group("training (defaults: the network's meta.trainOpts)")
    g.add_argument("--dagnn", action="store_true",
                   help="train the DagNN version with cnn_train_dag")
    g.add_argument("--exp-dir", default=None, help=exp_dir_help)
    g.add_argument("--epochs", type=positive, default=None, help="number of epochs")
    g.add_argument("--batch-size", type=positive, default=None, help="images per update")
    g.add_argument("--num-sub-batches", type=positive, default=None,
                   help="split each batch into this many sub-batches")
    g.add_argument("--lr", type=schedule, default=None, metavar="SCHEDULE",
                   help="learning rate(s) per epoch, the last repeating: 0.05 or "
                        "0.05*30,0.005*10")
    g.add_argument("--weight-decay", type=non_negative, default=None)
    g.add_argument("--momentum", type=non_negative, default=None, help="default 0.9")
    g.add_argument("--solver", default=None, choices=("sgd", "adam", "adagrad", "adadelta",
                                                        "rmsprop"), help="default sgd")
    g.add_argument("--gpus", type=gpu_ids, default=None, metavar="IDS",
                   help="1-based GPU id (one; several need torchrun, see matconvnet.train)")
    g.add_argument("--prefetch", action="store_true",
                   help="load the next batch in a background thread")
    g.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    g.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                   help="0 quiet, 1 progress (default), 2 a line per batch")


_TRAIN_OPTS = {"learningRate": "learning_rate", "numEpochs": "num_epochs",
               "batchSize": "batch_size", "weightDecay": "weight_decay", "momentum": "momentum",
               "numSubBatches": "num_sub_batches"}


def training_options(args: argparse.Namespace, train_opts: Optional[Mapping[str, Any]]
                     ) -> Dict[str, Any]:
    """``cnn_train`` keyword options: the network's ``meta.trainOpts`` (camelCase, as the
    original passes ``net.meta.trainOpts`` to the trainer) overridden by the command line.
    Without ``numEpochs`` the schedule's length is the number of epochs."""
    opts: Dict[str, Any] = {}
    for camel, snake in _TRAIN_OPTS.items():
        if train_opts and camel in train_opts and train_opts[camel] is not None:
            v = np.asarray(_numeric(train_opts[camel]), dtype=np.float64).reshape(-1)
            if v.size == 0:
                continue
            opts[snake] = v.tolist() if snake == "learning_rate" else float(v[0])
    given = {"learning_rate": args.lr, "num_epochs": args.epochs, "batch_size": args.batch_size,
             "weight_decay": args.weight_decay, "momentum": args.momentum,
             "num_sub_batches": args.num_sub_batches}
    opts.update({k: v for k, v in given.items() if v is not None})
    if "num_epochs" not in opts:
        opts["num_epochs"] = len(opts.get("learning_rate", [0.001]))
    for k in ("num_epochs", "batch_size", "num_sub_batches"):
        if k in opts:
            opts[k] = int(opts[k])
    opts.update(solver=None if args.solver in (None, "sgd") else args.solver,
                gpus=list(args.gpus or []), prefetch=bool(args.prefetch),
                random_seed=int(args.seed), verbose=int(args.verbose))
    return opts


def _numeric(v: Any) -> Any:
    return v.detach().cpu().numpy() if torch.is_tensor(v) else v


def describe_schedule(lr: Any, epochs: int) -> str:
    """The rates of ``epochs`` epochs as ``0.05 x 30, 0.005 x 10`` (``cnn_train``'s rule: the
    last rate of a short list repeats)."""
    lr = [float(v) for v in lr] if isinstance(lr, (list, tuple)) else [float(lr)]
    runs: List[List[float]] = []
    for v in [lr[min(e, len(lr) - 1)] for e in range(int(epochs))]:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return ", ".join(f"{v:g}" + (f" x {n}" if n > 1 else "") for v, n in runs)


@contextlib.contextmanager
def experiment_folder(given: Optional[str], prefix: str) -> Iterator[str]:
    """``given``, or a temporary folder removed on exit."""
    if given is not None:
        yield os.fspath(given)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield tmp


# ----------------------------------------------------------------------------- networks, results

def with_error_layers(net: DagNN, top1: str = "error", top5: str = "top5err") -> DagNN:
    """The original inits' DagNN error layers on (``prediction``, ``label``): ``top1err``
    (``classerror``, output ``top1``) and ``top5err`` (``topkerror``, K = 5, output
    ``top5``).  ``net`` is changed and returned."""
    net.add_layer("top1err", Loss(loss="classerror"), ["prediction", "label"], top1)
    net.add_layer("top5err", Loss(loss="topkerror", opts=["topK", 5]), ["prediction", "label"],
                  top5)
    return net


_TOP1 = ("top1err", "error", "top1error")
_TOP5 = ("top5err", "top5error")


def top_errors(entry: Mapping[str, Any]) -> Dict[str, float]:
    """``{'top1': e1, 'top5': e5}`` (fractions; an entry missing when the statistics lack it)
    from one epoch's statistics of ``cnn_train`` (``top1err``, ``top5err``) or
    ``cnn_train_dag`` (the Loss outputs ``error`` / ``top1err`` / ``top1error``, ...)."""
    out = {}
    for key, names in (("top1", _TOP1), ("top5", _TOP5)):
        for n in names:
            if n in entry and entry[n] is not None and not math.isnan(float(entry[n])):
                out[key] = float(entry[n])
                break
    return out


def report(what: str, entry: Mapping[str, Any], train_seconds: float, seconds: float,
           exp_dir: Optional[str] = None) -> Dict[str, float]:
    """Print ``<what> accuracy: ..% (top-1 error ..%, top-5 error ..%, N images)`` for one
    epoch's statistics and the times; returns :func:`top_errors` of ``entry``."""
    errs = top_errors(entry)
    num = int(entry.get("num", 0))
    if "top1" in errs:
        parts = [f"top-1 error {100 * errs['top1']:.2f}%"]
        if "top5" in errs:
            parts.append(f"top-5 error {100 * errs['top5']:.2f}%")
        print(f"{what} accuracy: {100 * (1 - errs['top1']):.2f}% ({', '.join(parts)}, "
              f"{num} images)")
    print(f"time: {train_seconds:.1f} s training, {seconds:.1f} s in all"
          + ("" if exp_dir is None else f"; checkpoints and net-train.png in {exp_dir}"),
          flush=True)
    return errs
