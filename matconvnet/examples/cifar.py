r"""LeNet ("CIFAR10-quick") or Network in Network on CIFAR-10: MatConvNet's ``cnn_cifar.m``.

::

    python -m matconvnet.examples.cifar --data data/cifar-10-batches-py     # LeNet, 45 epochs
    python -m matconvnet.examples.cifar --data cifar-10-python.tar.gz --model nin --dagnn
    python -m matconvnet.examples.cifar --epochs 5     # the JPEG test set, split for a demo
    matconvnet train cifar --data data/cifar10-jpeg.zip --batch-norm

Networks (``--model``): ``lenet`` (:func:`matconvnet.models.cnn_cifar_init`) and ``nin``
(:func:`~matconvnet.models.cnn_cifar_init_nin`), trained with their ``meta.trainOpts``
(learning-rate schedule, weight decay, batch 100; every one can be overridden) by
``cnn_train``, or by ``cnn_train_dag`` with ``--dagnn`` (the DagNN gets the original's
``top1err`` / ``top5err`` error layers).  ``--batch-norm`` (not in the original) puts a
``bnorm`` layer after every convolution but the last and drops those convolutions' biases.

Data (``--data``; :func:`matconvnet.data.cifar10_imdb`): the ``cifar-10-batches-py`` folder
(or ``cifar-10-python.tar.gz``), or a folder / zip of JPEGs laid out as
``[train|test]/<class>/<image>``.  As in ``getCifarImdb``, the mean training image is
subtracted, then contrast normalisation and ZCA whitening are applied (both on by default, as
the original; ``--no-contrast-normalization``, ``--no-whiten``).  Every training batch is
flipped horizontally with probability 1/2, and the test images (set 3) are the validation set,
evaluated after every epoch.

An image set without training images -- such as the CIFAR-10 test set as JPEGs,
``test/<class>/NNNN.jpg`` -- is split for a short demo: per class a seeded random
``--val-fraction`` (0.2: 8,000 training and 2,000 validation images of the 10,000) is held
out (:func:`split_image_set`).  ``--limit N`` trains on a stratified subset of an image set.
Without ``--data`` that JPEG test set is looked for at
``../shared/data/cifar10-test-jpeg/cifar10_test_jpeg.zip`` next to the working folder and
next to the checkout; it is not shipped with the package (its licence is not stated).

Checkpoints ``net-epoch-N.mat`` and ``net-train.png`` go to ``--exp-dir`` (by default a
temporary folder, removed at the end; with a folder of your own a second run resumes).
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..dagnn import DagNN
from ..data import as_dag_batch, cifar10_imdb, get_memory_batch
from ..data.datasets import IMAGE_EXTENSIONS
from ..models import cnn_cifar_init, cnn_cifar_init_nin
from ..simplenn import vl_simplenn_tidy
from ..train import cnn_train, cnn_train_dag
from ._common import (add_training_args, describe_schedule, experiment_folder, fraction,
                      positive, report, training_options, with_error_layers)

__all__ = ["MODELS", "main", "build_parser", "parse_args", "default_data", "list_images",
           "split_image_set", "load_imdb", "insert_bnorm", "make_net", "get_batch",
           "get_batch_dag"]

#: ``--model`` -> network builder.
MODELS = {"lenet": cnn_cifar_init, "nin": cnn_cifar_init_nin}
#: The CIFAR-10 test set as JPEGs, under the shared data folder.
JPEG_TEST_SET = Path("cifar10-test-jpeg") / "cifar10_test_jpeg.zip"
VAL_FRACTION = 0.2
_SPLITS = ("train", "val", "valid", "validation", "test")


# ----------------------------------------------------------------------------- data

def default_data(roots: Optional[Sequence[os.PathLike]] = None) -> Optional[Path]:
    """The CIFAR-10 JPEG test set at ``<root>/../shared/data/`` (or ``<root>/shared/data/``)
    for ``root`` the working folder, then the checkout; None if absent."""
    if roots is None:
        roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in roots:
        root = Path(root).resolve()
        for base in (root.parent / "shared" / "data", root / "shared" / "data"):
            if (base / JPEG_TEST_SET).is_file():
                return base / JPEG_TEST_SET
    return None


def list_images(path: os.PathLike) -> List[Tuple[str, Optional[str], str]]:
    """``(name, split, class)`` of each image of a folder or zip: ``name`` the '/'-separated
    path inside it, ``class`` the image's folder, ``split`` the folder above that when it is
    ``train``, ``val``, ``valid``, ``validation`` or ``test`` (lower case), else None.  Sorted
    by name; an empty list when ``path`` holds no images (e.g. the python batches)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            return []
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
    elif os.path.isdir(path):
        names = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            rel = os.path.relpath(root, path)
            prefix = "" if rel == "." else "/".join(rel.split(os.sep)) + "/"
            names += [prefix + f for f in files]
    else:
        raise FileNotFoundError(f"path: {path!r} does not exist")
    out = []
    for n in sorted(names):
        parts = n.split("/")
        if not n.lower().endswith(IMAGE_EXTENSIONS) or len(parts) < 2:
            continue
        split = parts[-3].lower() if len(parts) >= 3 and parts[-3].lower() in _SPLITS else None
        out.append((n, split, parts[-2]))
    return out


def _quota(sizes: Sequence[int], total: int) -> List[int]:
    """Split ``total`` over groups in proportion to ``sizes`` (largest remainders)."""
    exact = [s * total / sum(sizes) for s in sizes]
    q = [min(s, math.floor(e)) for s, e in zip(sizes, exact)]
    for i in sorted(range(len(sizes)), key=lambda i: q[i] - exact[i]):
        if sum(q) >= total:
            break
        if q[i] < sizes[i]:
            q[i] += 1
    return q


def split_image_set(source: os.PathLike, dest: os.PathLike, *,
                    val_fraction: float = VAL_FRACTION, limit: Optional[int] = None,
                    seed: int = 0) -> Dict[str, Dict[str, int]]:
    """Copy the images of ``source`` (a folder or zip, :func:`list_images`) into a new zip
    ``dest`` laid out as ``<split>/<class>/<image>``, for :func:`~matconvnet.data.cifar10_imdb`.

    ``limit``: keep that many images, a seeded random subset stratified by split and class.
    When no image is under a ``train`` folder, a seeded random ``val_fraction`` of each class
    (rounded, at least one image and at most all but one when the class has two or more) goes
    to ``test/`` (the validation set of ``cnn_cifar``) and the rest to ``train/``; otherwise
    the splits are kept.  Returns the image counts ``{split: {class: n}}``.
    """
    entries = list_images(source)
    if not entries:
        raise FileNotFoundError(f"source: no images ({', '.join(IMAGE_EXTENSIONS)}) in "
                                f"<class>/ folders under {os.fspath(source)!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    groups: Dict[Tuple[Optional[str], str], List[str]] = {}
    for name, split, cls in entries:
        groups.setdefault((split, cls), []).append(name)
    keys = sorted(groups, key=lambda k: (k[0] or "", k[1]))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit: expected a positive number of images, got {limit}")
        quota = _quota([len(groups[k]) for k in keys], min(int(limit), len(entries)))
        groups = {k: sorted(rng.permutation(groups[k])[:q].tolist())
                  for k, q in zip(keys, quota) if q}
        keys = [k for k in keys if k in groups]
    has_train = any(split == "train" for split, _ in keys)
    plan: List[Tuple[str, str, str]] = []      # (source name, split, class)
    for split, cls in keys:
        names = groups[(split, cls)]
        if has_train:
            plan += [(n, split or "train", cls) for n in names]
            continue
        n_val = int(round(len(names) * val_fraction))
        if len(names) >= 2:
            n_val = min(max(n_val, 1), len(names) - 1)
        held = set(rng.permutation(len(names))[:n_val].tolist())
        plan += [(n, "test" if i in held else "train", cls) for i, n in enumerate(names)]
    counts: Dict[str, Dict[str, int]] = {}
    src = os.fspath(source)
    archive = zipfile.ZipFile(src) if os.path.isfile(src) else None
    try:
        with zipfile.ZipFile(os.fspath(dest), "w", zipfile.ZIP_STORED) as out:
            for k, (name, split, cls) in enumerate(plan):
                if archive is not None:
                    data = archive.read(name)
                else:
                    with open(os.path.join(src, *name.split("/")), "rb") as f:
                        data = f.read()
                # the index keeps images of same-named class folders apart
                out.writestr(f"{split}/{cls}/{k:06d}-{name.split('/')[-1]}", data)
                counts.setdefault(split, {}).setdefault(cls, 0)
                counts[split][cls] += 1
    finally:
        if archive is not None:
            archive.close()
    return counts


def load_imdb(data: os.PathLike, workdir: os.PathLike, *, contrast_normalization: bool = True,
              whiten: bool = True, val_fraction: float = VAL_FRACTION,
              limit: Optional[int] = None, seed: int = 0,
              num_threads: int = 2) -> Tuple[Dict, str]:
    """``cnn_cifar``'s imdb of ``data`` (:func:`~matconvnet.data.cifar10_imdb`); an image set
    without training images, or any image set with ``limit``, goes through
    :func:`split_image_set` first (its zip is written into ``workdir``).  Returns the imdb and
    a note on how the images were chosen ('' when used as they are)."""
    entries = list_images(data)
    note = ""
    if entries and (limit is not None or not any(s == "train" for _, s, _ in entries)):
        split_zip = os.path.join(os.fspath(workdir), "cifar-split.zip")
        counts = split_image_set(data, split_zip, val_fraction=val_fraction, limit=limit,
                                 seed=seed)
        n = {s: sum(c.values()) for s, c in counts.items()}
        notes = []
        if limit is not None:
            notes.append(f"a stratified random subset of {sum(n.values())} images")
        if not any(s == "train" for _, s, _ in entries):
            notes.append(f"no training images: split per class into {n.get('train', 0)} "
                         f"training / {n.get('test', 0)} validation, "
                         f"{100 * val_fraction:g}% held out")
        note = "; ".join(notes) + f"; seed {seed}"
        data = split_zip
    elif limit is not None:
        raise ValueError("--limit: only for image folders or zips (the python batches are "
                         "used whole)")
    imdb = cifar10_imdb(os.fspath(data), contrast_normalization=contrast_normalization,
                        whiten=whiten, num_threads=num_threads)
    return imdb, note


def get_batch(imdb: Dict, batch) -> Tuple[torch.Tensor, torch.Tensor]:
    """``cnn_cifar``'s ``getBatch``: images and labels of ``batch``, the whole batch flipped
    horizontally with probability 1/2."""
    return get_memory_batch(imdb, batch, flip=True)


get_batch_dag = as_dag_batch(get_batch)


# ----------------------------------------------------------------------------- network

def insert_bnorm(net: Dict) -> Dict:
    """A copy of the SimpleNN ``net`` with a ``bnorm`` layer after every convolution but the
    last (weights ``[ones, zeros, zeros(C, 2)]``, ``learningRate [1, 1, 0.05]``,
    ``weightDecay [0, 0]``, as ``cnn_mnist_init``'s) and those convolutions' biases dropped."""
    layers = net["layers"]
    convs = [i for i, l in enumerate(layers) if l["type"] == "conv"]
    out = []
    for i, l in enumerate(layers):
        l = dict(l)
        out.append(l)
        if l["type"] != "conv" or i == convs[-1]:
            continue
        f = l["weights"][0]
        c = int(f.shape[0])
        l["weights"] = [f, torch.zeros(0, dtype=f.dtype, device=f.device)]
        out.append({"type": "bnorm", "name": f"bn{len([j for j in convs if j <= i])}",
                    "weights": [torch.ones(c, dtype=f.dtype, device=f.device),
                                torch.zeros(c, dtype=f.dtype, device=f.device),
                                torch.zeros(c, 2, dtype=f.dtype, device=f.device)],
                    "learningRate": [1.0, 1.0, 0.05], "weightDecay": [0.0, 0.0]})
    return vl_simplenn_tidy({"layers": out, "meta": net.get("meta", {})})


def make_net(model: str = "lenet", *, batch_norm: bool = False, dagnn: bool = False,
             classes: Sequence[str] = (), seed: int = 0):
    """``cnn_cifar_init`` / ``cnn_cifar_init_nin``, optionally with batch normalisation,
    ``meta.classes.name = classes``; a DagNN with the ``top1err`` / ``top5err`` layers
    (outputs ``error``, ``top5err``) if ``dagnn``."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    net = MODELS[model](seed=seed)
    if batch_norm:
        net = insert_bnorm(net)
    net["meta"]["classes"] = {"name": list(classes)}
    if dagnn:
        return with_error_layers(DagNN.from_simplenn(net, canonical_names=True))
    return net


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m matconvnet.examples.cifar",
        description="Train LeNet or Network in Network on CIFAR-10 with cnn_train "
                    "(MatConvNet's cnn_cifar) and report the validation accuracy.")
    p.add_argument("--model", default="lenet", choices=sorted(MODELS), help="default lenet")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="cifar-10-batches-py folder, cifar-10-python.tar.gz, or a folder / "
                        "zip of [train|test]/<class>/<image> (default: the CIFAR-10 JPEG "
                        f"test set from ../shared/data/{JPEG_TEST_SET.as_posix()}, split)")
    p.add_argument("--batch-norm", action="store_true",
                   help="batch normalisation after every convolution but the last")
    p.add_argument("--no-contrast-normalization", dest="contrast_normalization",
                   action="store_false", help="skip the per-image contrast normalisation")
    p.add_argument("--no-whiten", dest="whiten", action="store_false",
                   help="skip the ZCA whitening")
    p.add_argument("--val-fraction", type=fraction, default=VAL_FRACTION,
                   help="share of each class held out when the data has no training images "
                        f"(default {VAL_FRACTION})")
    p.add_argument("--limit", type=positive, default=None,
                   help="use this many images of an image set (stratified random subset)")
    p.add_argument("--num-threads", type=positive, default=2,
                   help="image decoding threads (default 2)")
    add_training_args(p, exp_dir_help="checkpoint folder (default: a temporary one, removed "
                                      "at the end)")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _missing_data_message() -> str:
    return ("no CIFAR-10 data: pass --data PATH, the cifar-10-batches-py folder (or "
            "cifar-10-python.tar.gz) or a folder / zip of [train|test]/<class>/<image> "
            "images.  The CIFAR-10 JPEG test set is not shipped with the package; it was "
            f"looked for at ../shared/data/{JPEG_TEST_SET.as_posix()} next to the working "
            "folder and next to the checkout")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train and validate; returns ``{'net', 'stats', 'val_error', 'val_top5_error',
    'train_seconds', 'seconds', 'imdb_note'}``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = args.data if args.data is not None else default_data()
    if data is None:
        parser.error(_missing_data_message())
    with tempfile.TemporaryDirectory(prefix="mcn-cifar-data-") as work:
        try:
            imdb, note = load_imdb(data, work, contrast_normalization=args.contrast_normalization,
                                   whiten=args.whiten, val_fraction=args.val_fraction,
                                   limit=args.limit, seed=args.seed,
                                   num_threads=args.num_threads)
        except (FileNotFoundError, ValueError) as e:
            parser.error(f"--data {os.fspath(data)}: {e}")
    sets = imdb["images"]["set"]
    train = np.flatnonzero(sets == 1)
    val = np.flatnonzero(sets == 3) if (sets == 3).any() else np.flatnonzero(sets == 2)
    if not len(train):
        parser.error(f"--data {os.fspath(data)}: no training images")
    net = make_net(args.model, batch_norm=args.batch_norm, classes=imdb["meta"]["classes"],
                   seed=args.seed)
    opts = training_options(args, net["meta"].get("trainOpts"))
    if args.dagnn:
        net = with_error_layers(DagNN.from_simplenn(net, canonical_names=True))
    steps = [s for s, on in (("contrast normalisation", args.contrast_normalization),
                             ("ZCA whitening", args.whiten)) if on]
    print(f"CIFAR-10 {args.model}{' + batch norm' if args.batch_norm else ''} "
          f"({'DagNN' if args.dagnn else 'SimpleNN'}) on {os.fspath(data)}: {len(train)} "
          f"training / {len(val)} validation images"
          + (f" ({note})" if note else "")
          + f"; mean image subtracted{''.join(', ' + s for s in steps)}; "
          f"{opts['num_epochs']} epochs, batch {opts['batch_size']}, lr "
          f"{describe_schedule(opts['learning_rate'], opts['num_epochs'])}, weight decay "
          f"{opts.get('weight_decay', 5e-4):g}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    with experiment_folder(args.exp_dir, "mcn-cifar-") as exp_dir:
        with torch.no_grad():
            if args.dagnn:
                net, stats = cnn_train_dag(net, imdb, get_batch_dag, exp_dir=exp_dir,
                                           train=train, val=val, **opts)
            else:
                net, stats = cnn_train(net, imdb, get_batch, exp_dir=exp_dir, train=train,
                                       val=val, **opts)
    train_seconds = time.perf_counter() - start
    errs = report("validation", stats["val"][-1] if stats["val"] else {}, train_seconds,
                  time.perf_counter() - start, args.exp_dir)
    return {"net": net, "stats": stats, "val_error": errs.get("top1"),
            "val_top5_error": errs.get("top5"), "train_seconds": train_seconds,
            "seconds": time.perf_counter() - start, "imdb_note": note}


if __name__ == "__main__":
    main()
