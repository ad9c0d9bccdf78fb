r"""A custom ``imdb`` and ``get_batch``: MatConvNet's ``examples/custom_imdb/cnn_toy_data.m``.

::

    python -m matconvnet.examples.toy                        # generate, train, validate
    python -m matconvnet.examples.toy --data-dir data/toy-dataset --exp-dir data/toy

How to train on data of your own: the images are files on disk, the ``imdb`` lists them
(``images.name``, ``images.labels``, ``images.set``: 1 train, 2 val) and ``get_batch`` reads
the ones a batch needs; ``cnn_train`` only ever sees indices.

1. :func:`generate` draws 32 x 32 grey PNG images of three shapes -- ``triangle``,
   ``square``, ``circle`` -- at random sizes, positions and rotations, with noise
   (1,500 training and 150 validation images per class by default), into
   ``<data-dir>/<set>/<class>/<i>.png``, as ``cnn_toy_data_generator``.  An existing,
   complete folder is reused.
2. :func:`get_imdb` lists the files; :func:`get_batch` reads a batch with Pillow and
   returns images N x 1 x 32 x 32 in [-0.5, 0.5] and labels 1..3.  Training prefetches: the
   next batch is read in a background thread while the current one computes.
3. :func:`toy_net` is a 3-convolution SimpleNN (conv 5x5x10 - maxpool - relu - conv 5x5x20 -
   maxpool - relu - conv 5x5x3 - softmaxloss), trained with ``cnn_train`` (batch 200 and
   10 epochs as the original; learning rate 0.05, where the original's 0.01 stops near 80%
   validation accuracy with these images) and validated on the val images: about 99.8%.

The data folder and the experiment folder are temporary unless given.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..simplenn import vl_simplenn_tidy
from ..train import cnn_train
from ._common import positive as _positive

__all__ = ["CLASSES", "draw_shape", "generate", "get_imdb", "get_batch", "toy_net", "main",
           "parse_args"]

CLASSES = ("triangle", "square", "circle")
SETS = ("train", "val")
SIZE = 32
_COMPLETE = ".complete"


def draw_shape(kind: str, rng: np.random.Generator, size: int = SIZE,
               noise: float = 0.1) -> np.ndarray:
    """A ``size x size`` uint8 image of a bright ``kind`` (one of :data:`CLASSES`) on a dark
    background: radius 20-45% of ``size``, random centre (the shape stays inside) and
    rotation, Gaussian noise of deviation ``noise`` (in [0, 1] units)."""
    if kind not in CLASSES:
        raise ValueError(f"kind: expected one of {', '.join(CLASSES)}, got {kind!r}")
    r = rng.uniform(0.2, 0.45) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if kind == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
    else:
        n = 3 if kind == "triangle" else 4
        angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(n) / n
        vx, vy = cx + r * np.cos(angles), cy + r * np.sin(angles)
        mask = np.ones((size, size), bool)
        for k in range(n):    # inside a convex polygon: on the same side of every edge
            ex, ey = vx[(k + 1) % n] - vx[k], vy[(k + 1) % n] - vy[k]
            mask &= ex * (yy - vy[k]) - ey * (xx - vx[k]) >= 0
    img = mask * 0.8 + 0.1 + rng.normal(0, noise, (size, size))
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def generate(data_dir, per_class: Dict[str, int], seed: int = 0) -> str:
    """Write ``per_class[set]`` images of each class into ``data_dir/<set>/<class>/<i>.png``
    (``cnn_toy_data_generator``), unless a complete folder with those counts is there.
    Returns ``data_dir``."""
    from PIL import Image
    data_dir = os.fspath(data_dir)
    stamp = os.path.join(data_dir, _COMPLETE)
    want = " ".join(f"{s}={int(per_class[s])}" for s in SETS) + f" seed={seed}"
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == want:
                return data_dir
    rng = np.random.default_rng(seed)
    for s in SETS:
        for kind in CLASSES:
            folder = os.path.join(data_dir, s, kind)
            os.makedirs(folder, exist_ok=True)
            for i in range(int(per_class[s])):
                Image.fromarray(draw_shape(kind, rng)).save(os.path.join(folder, f"{i}.png"))
    with open(stamp, "w") as f:     # written last: an interrupted run is redone
        f.write(want + "\n")
    return data_dir


def get_imdb(data_dir) -> Dict:
    """The imdb of a generated folder: ``images.name`` (paths), ``images.labels`` (1..3,
    the index in :data:`CLASSES` plus one), ``images.set`` (1 train, 2 val)."""
    names, labels, sets = [], [], []
    for s_index, s in enumerate(SETS, start=1):
        for c_index, kind in enumerate(CLASSES, start=1):
            folder = os.path.join(os.fspath(data_dir), s, kind)
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"data_dir: no folder {folder}; run generate() first")
            files = sorted((f for f in os.listdir(folder) if f.endswith(".png")),
                           key=lambda f: int(f[:-4]) if f[:-4].isdigit() else f)
            names += [os.path.join(folder, f) for f in files]
            labels += [c_index] * len(files)
            sets += [s_index] * len(files)
    return {"images": {"name": names, "labels": np.array(labels, np.int64),
                       "set": np.array(sets, np.int64)},
            "meta": {"classes": list(CLASSES), "sets": list(SETS)}}


def get_batch(imdb: Dict, batch) -> tuple:
    """Read the images of the 0-based indices ``batch``: ``(images, labels)``, images
    N x 1 x 32 x 32 float32 in [-0.5, 0.5], labels int64 1..3."""
    from PIL import Image
    ims = []
    for i in batch:
        with Image.open(imdb["images"]["name"][int(i)]) as im:
            ims.append(np.asarray(im.convert("L"), dtype=np.float32))
    x = torch.from_numpy(np.stack(ims)[:, None] / np.float32(255) - np.float32(0.5))
    return x, torch.from_numpy(imdb["images"]["labels"][np.asarray(batch)])


def toy_net(seed: int = 0) -> dict:
    """The 3-convolution SimpleNN: 32 -> conv5 (10) 28 -> pool 14 -> conv5 (20) 10 -> pool 5
    -> conv5 (3) 1 -> softmaxloss; filters ``randn * sqrt(2 / fan-in)``, biases zero."""
    g = torch.Generator().manual_seed(seed)

    def conv(k, c):
        return {"type": "conv", "weights": [torch.randn(k, c, 5, 5, generator=g)
                                            * math.sqrt(2 / (c * 25)), torch.zeros(k)]}

    def pool():
        return {"type": "pool", "method": "max", "pool": [2, 2], "stride": 2}

    layers = [conv(10, 1), pool(), {"type": "relu"}, conv(20, 10), pool(), {"type": "relu"},
              conv(3, 20), {"type": "softmaxloss"}]
    return vl_simplenn_tidy({"layers": layers, "meta": {"inputSize": [SIZE, SIZE, 1],
                                                        "classes": {"name": list(CLASSES)}}})


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m matconvnet.examples.toy",
                                description="Train a small CNN on generated shapes through "
                                "a custom imdb and get_batch (cnn_toy_data).")
    p.add_argument("--data-dir", default=None,
                   help="image folder (generated if missing; default: a temporary one)")
    p.add_argument("--exp-dir", default=None,
                   help="checkpoint folder (default: a temporary one)")
    p.add_argument("--epochs", type=_positive, default=10, help="default 10")
    p.add_argument("--per-class", type=_positive, default=1500,
                   help="training images per class (default 1500)")
    p.add_argument("--val-per-class", type=_positive, default=150,
                   help="validation images per class (default 150)")
    p.add_argument("--batch-size", type=_positive, default=200, help="default 200")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--no-prefetch", action="store_true",
                   help="read each batch when it is needed")
    p.add_argument("--seed", type=int, default=0, help="data, initialisation and shuffling")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    args = p.parse_args(argv)
    if not (math.isfinite(args.lr) and args.lr >= 0):
        p.error(f"--lr: expected a non-negative number, got {args.lr}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Generate (if needed), train, validate; returns ``{'net', 'stats', 'val_error',
    'seconds'}``."""
    args = parse_args(argv)
    start = time.perf_counter()
    temps = []

    def folder(given, prefix):
        if given is not None:
            return given
        temps.append(tempfile.TemporaryDirectory(prefix=prefix))
        return temps[-1].name

    try:
        data_dir = generate(folder(args.data_dir, "mcn-toy-data-"),
                            {"train": args.per_class, "val": args.val_per_class}, args.seed)
        imdb = get_imdb(data_dir)
        n = np.bincount(imdb["images"]["set"], minlength=3)
        print(f"toy shapes {', '.join(CLASSES)}: {n[1]} training / {n[2]} validation images "
              f"in {data_dir}; {args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g}",
              flush=True)
        net, stats = cnn_train(toy_net(args.seed), imdb, get_batch,
                               exp_dir=folder(args.exp_dir, "mcn-toy-exp-"),
                               num_epochs=args.epochs, batch_size=args.batch_size,
                               learning_rate=args.lr, weight_decay=5e-4, momentum=0.9,
                               random_seed=args.seed, prefetch=not args.no_prefetch,
                               verbose=args.verbose)
    finally:
        for t in temps:
            t.cleanup()
    val_error = stats["val"][-1]["top1err"]
    seconds = time.perf_counter() - start
    print(f"validation accuracy: {100 * (1 - val_error):.2f}% ({stats['val'][-1]['num']} "
          f"images); {seconds:.1f} s")
    return {"net": net, "stats": stats, "val_error": val_error, "seconds": seconds}


if __name__ == "__main__":
    main()
