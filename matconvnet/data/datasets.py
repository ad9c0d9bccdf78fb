r"""Datasets as MatConvNet ``imdb`` structures (the examples' ``get*Imdb`` / ``*_setup_data``).

An ``imdb`` is a plain dict, as the MATLAB struct of the examples::

    imdb = {'images': {'data': N x C x H x W float32 (mean image subtracted),
                       'data_mean': C x H x W float32,
                       'labels': (N,) int64, 1-based classes,
                       'set': (N,) int64, 1 = train, 2 = val, 3 = test},
            'meta': {'sets': ['train', 'val', 'test'], 'classes': [names]}}

or, for data read from disk batch by batch, ``images.name`` (paths relative to
``imdb['imageDir']``) instead of ``images.data``.  ``cnn_train`` reads only ``images.set``;
the ``get_batch`` functions of :mod:`matconvnet.data.batches` read the rest.

=====================  =====================================================================
builder                source
=====================  =====================================================================
:func:`mnist_imdb`     MNIST IDX files (``train-images-idx3-ubyte[.gz]``, ``t10k-...``); by
                       default the digits bundled with the package (``cnn_mnist``)
:func:`cifar10_imdb`   CIFAR-10 python batches (folder or ``cifar-10-python.tar.gz``;
                       ``cnn_cifar``), or an image folder / zip as below
:func:`image_folder_imdb`  ``[split/]class/image`` folders or a zip of them (e.g. the CIFAR-10
                       JPEG sets), decoded with :func:`vl_imreadjpeg` into ``images.data``,
                       or listed by name
:func:`imagenet_imdb`  an ILSVRC-style tree: ``train/<wnid>/*.JPEG``, ``val/`` with a labels
                       file (or ``val/<wnid>/``), ``test/`` (``cnn_imagenet_setup_data``)
=====================  =====================================================================

As in the examples, the mean training image (``images.data_mean``) is subtracted from
``images.data``; when there are no training images the mean of all images is used.
"""
from __future__ import annotations

import glob
import io
import os
import pickle
import re
import tarfile
import warnings
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import io as mio
from .imread import ImageReadWarning, vl_imreadjpeg
from .mnist import load_mnist, read_idx

__all__ = ["mnist_imdb", "cifar10_imdb", "image_folder_imdb", "imagenet_imdb",
           "SETS", "IMAGE_EXTENSIONS"]

SETS = ["train", "val", "test"]
_SPLITS = {"train": 1, "val": 2, "valid": 2, "validation": 2, "test": 3}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _data_imdb(data: np.ndarray, labels: np.ndarray, sets: np.ndarray, classes: List[str],
               subtract_mean: bool) -> Dict:
    """``images.data`` minus the mean training image (``getMnistImdb``, ``getCifarImdb``)."""
    data = np.asarray(data, dtype=np.float32)
    sets = np.asarray(sets, dtype=np.int64)
    train = sets == 1
    mean = (data[train] if train.any() else data).mean(axis=0, dtype=np.float64) \
        .astype(np.float32) if len(data) else np.zeros(data.shape[1:], np.float32)
    if subtract_mean:
        data -= mean
    return {"images": {"data": data, "data_mean": mean,
                       "labels": np.asarray(labels, dtype=np.int64), "set": sets},
            "meta": {"sets": list(SETS), "classes": list(classes)}}


# ----------------------------------------------------------------------------- MNIST


def _find(folder: str, stems: Sequence[str]) -> Optional[str]:
    for stem in stems:
        for name in (stem, stem + ".gz"):
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                return p
    return None


def mnist_imdb(data_dir: Optional[str] = None, *, subtract_mean: bool = True) -> Dict:
    """The MNIST ``imdb`` of ``cnn_mnist`` (``getMnistImdb``).

    ``data_dir``: a folder with LeCun's IDX files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``
    (each optionally ``.gz``; either split may be missing); ``None``: the digits bundled with
    the package (5,000 training digits and the 10,000-digit test set, see
    :func:`load_mnist`).  Training digits get set 1, test digits set 3.

    ``images.data`` is ``N x 1 x 28 x 28`` float32, pixel values 0..255 minus the mean
    training image (``images.data_mean``, ``1 x 28 x 28``); ``images.labels`` are
    ``digit + 1``; ``meta.classes`` are ``'0'`` .. ``'9'``.
    """
    parts = []
    if data_dir is None:
        for split, s in (("train", 1), ("test", 3)):
            x, y = load_mnist(split)
            parts.append((x, y, s))
    else:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"data_dir: {data_dir!r} is not a folder")
        for prefix, s in (("train", 1), ("t10k", 3)):
            ip = _find(data_dir, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"])
            lp = _find(data_dir, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])
            if ip is None and lp is None:
                continue
            if ip is None or lp is None:
                raise FileNotFoundError(f"data_dir: found only one of the {prefix} image and "
                                        f"label files in {data_dir!r}")
            x, y = read_idx(ip), read_idx(lp)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{ip}: expected N x 28 x 28 images and N labels, got shapes "
                                 f"{x.shape} and {y.shape}")
            parts.append((x.astype(np.float32)[:, None], y.astype(np.int64) + 1, s))
        if not parts:
            raise FileNotFoundError(f"data_dir: no MNIST IDX files (train-images-idx3-ubyte, "
                                    f"t10k-images-idx3-ubyte, optionally .gz) in {data_dir!r}")
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    sets = np.concatenate([np.full(len(p[1]), p[2]) for p in parts])
    return _data_imdb(data, labels, sets, [str(d) for d in range(10)], subtract_mean)


# ----------------------------------------------------------------------------- CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle only NumPy arrays and plain containers: a CIFAR batch needs nothing else, and a
    pickle can otherwise run arbitrary code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: a CIFAR batch "
                                     f"holds only arrays, lists and strings")


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means a bad batch file
        raise ValueError(f"{name}: not a CIFAR python batch ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{name}: expected a pickled dict, got {type(d).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


_CIFAR_FILES = [(f"data_batch_{i}", 1) for i in range(1, 6)] + [("test_batch", 3)]


def _cifar_batch_files(path: str) -> Dict[str, bytes]:
    wanted = {n for n, _ in _CIFAR_FILES} | {"batches.meta"}
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        out = {}
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                base = os.path.basename(m.name)
                if m.isfile() and base in wanted:
                    out[base] = tar.extractfile(m).read()
        return out
    folder = path
    if os.path.isdir(os.path.join(path, "cifar-10-batches-py")):
        folder = os.path.join(path, "cifar-10-batches-py")
    out = {}
    for base in wanted:
        p = os.path.join(folder, base)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[base] = f.read()
    return out


def _is_image_tree(path: str) -> bool:
    if os.path.isfile(path):
        return zipfile.is_zipfile(path)
    if not os.path.isdir(path):
        return False
    for _, _, files in os.walk(path):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False


def cifar10_imdb(path: str, *, contrast_normalization: bool = False, whiten: bool = False,
                 subtract_mean: bool = True, num_threads: int = 2) -> Dict:
    """The CIFAR-10 ``imdb`` of ``cnn_cifar`` (``getCifarImdb``).

    ``path``: the ``cifar-10-batches-py`` folder (or its parent, or the
    ``cifar-10-python.tar.gz`` archive) with ``data_batch_1`` .. ``data_batch_5`` (set 1),
    ``test_batch`` (set 3) and ``batches.meta``; or a folder / zip of JPEGs laid out as
    ``[train|test]/<class>/<image>`` (handed to :func:`image_folder_imdb`).

    ``images.data`` is ``N x 3 x 32 x 32`` float32 RGB (0..255) minus the mean training image,
    then optionally, as ``cnn_cifar`` (whose defaults are both ``True``):

    * ``contrast_normalization``: each image made zero-mean and scaled by
      ``mean(n) / max(n, 40)``, ``n`` the images' standard deviations;
    * ``whiten``: ZCA whitening ``z <- V diag(e / max(sqrt(d), 10)) V^T z``, ``V diag(d) V^T``
      the eigendecomposition of ``Z_train^T Z_train / N`` (``N`` all images, as the original's
      fixed 60000), ``e = sqrt(mean(d))``.
    """
    if _is_image_tree(path):
        imdb = image_folder_imdb(path, subtract_mean=subtract_mean, num_threads=num_threads)
    else:
        files = _cifar_batch_files(path)
        found = [(n, s) for n, s in _CIFAR_FILES if n in files]
        if not found:
            raise FileNotFoundError(f"path: no CIFAR-10 python batches (data_batch_1 .. 5, "
                                    f"test_batch) or images in {path!r}")
        data, labels, sets = [], [], []
        for name, s in found:
            d = _unpickle(files[name], name)
            x = np.asarray(d.get("data"))
            y = np.asarray(d.get("labels"), dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
                raise ValueError(f"{name}: expected data N x 3072 and N labels, got shapes "
                                 f"{x.shape} and {y.shape}")
            data.append(x.reshape(-1, 3, 32, 32))
            labels.append(y + 1)
            sets.append(np.full(len(y), s))
        classes = [f"class{i}" for i in range(1, 11)]
        if "batches.meta" in files:
            names = _unpickle(files["batches.meta"], "batches.meta").get("label_names", [])
            classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
        imdb = _data_imdb(np.concatenate(data), np.concatenate(labels), np.concatenate(sets),
                          classes, subtract_mean)
    x = imdb["images"]["data"]
    if contrast_normalization:
        z = x.reshape(len(x), -1).astype(np.float64)
        z -= z.mean(axis=1, keepdims=True)
        n = z.std(axis=1, ddof=1)
        z *= (n.mean() / np.maximum(n, 40.0))[:, None]
        x = z.astype(np.float32).reshape(x.shape)
    if whiten:
        train = imdb["images"]["set"] == 1
        if not train.any():
            raise ValueError(f"whiten: the whitening is estimated on the training images (set "
                             f"1), and {path!r} has none; pass whiten=False or data with a "
                             f"training split")
        x = _zca(x, train)
    imdb["images"]["data"] = x
    return imdb


def _zca(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``getCifarImdb``'s whitening: ``z <- V diag(e / max(sqrt(d), 10)) V^T z`` for the
    eigendecomposition ``V diag(d) V^T`` of ``Z_train^T Z_train / N``, ``e = sqrt(mean(d))``."""
    z = x.reshape(len(x), -1).astype(np.float64)
    zt = z[train]
    dim = z.shape[1]
    if len(zt) < dim:   # rank <= #train: the thin SVD gives the same result, much faster
        _, sv, vt = np.linalg.svd(zt, full_matrices=False)
        d2 = sv ** 2 / len(z)
        e = np.sqrt(d2.sum() / dim)                  # the other eigenvalues are 0
        rest = e / 10.0                              # their factor, as sqrt(0) < 10
        scale = e / np.maximum(np.sqrt(d2), 10.0) - rest
        out = rest * z + ((z @ vt.T) * scale) @ vt
    else:
        d2, v = np.linalg.eigh(zt.T @ zt / len(z))
        d2 = np.maximum(d2, 0.0)
        scale = np.sqrt(d2.mean()) / np.maximum(np.sqrt(d2), 10.0)
        out = z @ ((v * scale) @ v.T)
    return out.astype(np.float32).reshape(x.shape)


# ----------------------------------------------------------------------------- image folders


def _tree_entries(path: str) -> Tuple[List[str], Optional[zipfile.ZipFile]]:
    """Relative '/'-separated paths of the image files under a folder or in a zip."""
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"path: {path!r} is neither a folder nor a zip file")
        z = zipfile.ZipFile(path)
        return [n for n in z.namelist()
                if not n.endswith("/") and n.lower().endswith(IMAGE_EXTENSIONS)], z
    if not os.path.isdir(path):
        raise FileNotFoundError(f"path: {path!r} does not exist")
    names = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel = os.path.relpath(root, path)
        for f in sorted(files):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                names.append(f if rel == "." else "/".join(rel.split(os.sep) + [f]))
    return names, None


def _layout(names: List[str]) -> List[Tuple[str, int, str]]:
    """``(name, set, class)`` per image of a ``[split/]class/image`` tree."""
    parts = [n.split("/") for n in names]
    # Strip a common leading folder that is neither a split nor a class (e.g. 'cifar/...').
    while parts and all(len(p) > 2 for p in parts) and len({p[0] for p in parts}) == 1 \
            and parts[0][0].lower() not in _SPLITS:
        parts = [p[1:] for p in parts]
    split = bool(parts) and all(len(p) >= 3 and p[0].lower() in _SPLITS for p in parts)
    out = []
    for name, p in zip(names, parts):
        if split:
            out.append((name, _SPLITS[p[0].lower()], p[1]))
        elif len(p) >= 2:
            out.append((name, 1, p[0]))
        else:
            raise ValueError(f"path: image {name!r} is not inside a class folder; expected "
                             f"[train|val|test/]<class>/<image>")
    return out


def image_folder_imdb(path: str, *, load: bool = True,
                      image_size: Optional[Tuple[int, int]] = None,
                      subtract_mean: bool = True, num_threads: int = 2,
                      classes: Optional[Sequence[str]] = None) -> Dict:
    """An ``imdb`` of images in ``[train|val|test/]<class>/<image>`` folders, or in a zip of them.

    Images under ``train/`` get set 1, ``val/`` (or ``valid/``, ``validation/``) set 2,
    ``test/`` set 3; without split folders every image is set 1.  ``meta.classes`` are the
    class folder names in sorted order (or ``classes``), and ``images.labels`` their 1-based
    positions.  Images are ordered by set, class and file name.

    ``load=True``: the images are decoded with :func:`vl_imreadjpeg` (``num_threads``
    threads) into ``images.data``, ``N x 3 x H x W`` float32 minus the mean training image;
    they must share one size unless ``image_size=(H, W)`` resizes them (whole image, bilinear).
    An image that cannot be read is left out with a warning.  ``load=False`` (folders only):
    ``images.name`` lists the paths relative to ``imdb['imageDir']``.
    """
    names, archive = _tree_entries(path)
    if not names:
        raise FileNotFoundError(f"path: no images ({', '.join(IMAGE_EXTENSIONS)}) in {path!r}")
    entries = _layout(names)
    found = sorted({c for _, _, c in entries})
    classes = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"classes: the folders {unknown[:5]} are not among the {len(classes)} "
                         f"classes given")
    index = {c: i + 1 for i, c in enumerate(classes)}
    entries.sort(key=lambda e: (e[1], index[e[2]], e[0]))
    labels = np.array([index[c] for _, _, c in entries], dtype=np.int64)
    sets = np.array([s for _, s, _ in entries], dtype=np.int64)
    rel = [n for n, _, _ in entries]
    if not load:
        if archive is not None:
            archive.close()
            raise ValueError("load: images in a zip file must be loaded (load=True); extract "
                             "the zip to list them by name")
        return {"images": {"name": rel, "labels": labels, "set": sets},
                "imageDir": os.path.abspath(path),
                "meta": {"sets": list(SETS), "classes": classes}}
    if archive is not None:
        with archive:
            sources = [archive.read(n) for n in rel]
    else:
        sources = [os.path.join(path, *n.split("/")) for n in rel]
    opts = dict(num_threads=num_threads)
    if image_size is not None:
        opts.update(resize=tuple(image_size), pack=True, crop_anisotropy=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = vl_imreadjpeg(sources, **opts)
    bad = {w.message.index: str(w.message) for w in caught
           if isinstance(w.message, ImageReadWarning)}
    for w in caught:
        if not isinstance(w.message, ImageReadWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    keep = np.array([i not in bad for i in range(len(rel))], dtype=bool)
    for i in sorted(bad):
        warnings.warn(f"image_folder_imdb: left out {rel[i]!r}: {bad[i]}", stacklevel=2)
    if image_size is not None:
        data = images.numpy()[keep]
    else:
        kept = [im for im in images if im is not None]
        shapes = {tuple(im.shape) for im in kept}
        if len(shapes) > 1:
            raise ValueError(f"image_size: the images have {len(shapes)} different sizes "
                             f"(e.g. {sorted(shapes)[:3]}); pass image_size=(H, W) to resize "
                             f"them")
        data = np.stack([im.numpy() for im in kept]) if kept \
            else np.zeros((0, 3, 1, 1), np.float32)
    return _data_imdb(data, labels[keep], sets[keep], classes, subtract_mean)


# ----------------------------------------------------------------------------- ImageNet


def _images_in(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, f)))


def _subfolders(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def _devkit(data_dir: str) -> Tuple[Optional[List[dict]], Optional[str], Optional[str]]:
    """Synsets of the devkit's meta(_clsloc).mat, and its validation labels and blacklist."""
    kits = sorted(glob.glob(os.path.join(data_dir, "*devkit*")))
    if not kits:
        return None, None, None
    d = os.path.join(kits[0], "data")
    meta = [p for p in (os.path.join(d, "meta_clsloc.mat"), os.path.join(d, "meta.mat"))
            if os.path.isfile(p)]
    synsets = None
    if meta:
        s = mio.load(meta[0]).get("synsets")
        synsets = list(s) if isinstance(s, list) else None
    truth = sorted(glob.glob(os.path.join(d, "*_validation_ground_truth*")))
    black = sorted(glob.glob(os.path.join(d, "*_validation_blacklist*")))
    return synsets, truth[0] if truth else None, black[0] if black else None


def _read_val_labels(path: str, names: List[str], wnid_of_id, index) -> np.ndarray:
    """Labels of the sorted validation images from a file: one integer per line (image order;
    ILSVRC ids with a devkit, else 1-based class positions) or ``<file> <wnid|number>`` lines."""
    with open(path) as f:
        rows = [r for r in (re.split(r"[\s,]+", line.strip()) for line in f) if r and r[0]]
    labels = np.zeros(len(names), np.int64)

    def one(tok: str) -> int:
        if tok in index:
            return index[tok]
        if re.fullmatch(r"\d+", tok):
            k = int(tok)
            return index[wnid_of_id[k]] if wnid_of_id else k
        raise ValueError(f"{path}: unknown class {tok!r}")

    if all(len(r) == 1 for r in rows):
        if len(rows) != len(names):
            raise ValueError(f"{path}: {len(rows)} labels for {len(names)} validation images")
        return np.array([one(r[0]) for r in rows], np.int64)
    pos = {os.path.splitext(n)[0]: i for i, n in enumerate(names)}
    for r in rows:
        key = os.path.splitext(os.path.basename(r[0]))[0]
        if key in pos and len(r) >= 2:
            labels[pos[key]] = one(r[1])
    return labels


def imagenet_imdb(data_dir: str, *, val_labels: Optional[str] = None,
                  lite: bool = False) -> Dict:
    """The ImageNet ``imdb`` of ``cnn_imagenet_setup_data``, from an ILSVRC-style tree.

    ``data_dir`` holds ``train/<wnid>/*.JPEG``, ``val/`` and ``test/`` (directly or under
    ``data_dir/images``), and optionally the devkit (``*devkit*/data/meta.mat`` or
    ``meta_clsloc.mat``, ``*_validation_ground_truth*.txt``, ``*_validation_blacklist*``).
    Classes are the devkit's first 1000 synsets, or else the ``train/`` subfolders, sorted by
    WNID; labels are 1-based positions in that order.  Validation labels come from
    ``val/<wnid>/`` subfolders, from ``val_labels`` (one number per sorted image, or
    ``<file> <wnid>`` lines) or from the devkit's ground truth (blacklisted images dropped).
    Test images get label 0.

    Returns the original's fields (``images.id``, ``images.name`` relative to ``imageDir``,
    ``images.set``, ``images.label``, ``classes.name`` / ``classes.description``,
    ``imageDir``) plus ``images.labels`` (the same array) and ``meta.classes``.  ``lite``:
    the first 10 classes, 256 training and 40 validation images each, and 1000 test images.
    Unlike the original, sets of unexpected size are kept (with no warning).
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data_dir: {data_dir!r} is not a folder")
    root = os.path.join(data_dir, "images") if os.path.isdir(os.path.join(data_dir, "images")) \
        else data_dir
    synsets, truth, black = _devkit(data_dir)
    wnid_of_id = None
    if synsets:
        leaves = synsets[:1000]
        cats = [str(s["WNID"]) for s in leaves]
        descr = dict(zip(cats, (str(s.get("words", "")) for s in leaves)))
        wnid_of_id = {int(s.get("ILSVRC2012_ID", s.get("ILSVRC2014_ID", i + 1))): str(s["WNID"])
                      for i, s in enumerate(leaves)}
    else:
        cats = _subfolders(os.path.join(root, "train")) or _subfolders(os.path.join(root, "val"))
        descr = {}
        for f in ("synset_words.txt", "LOC_synset_mapping.txt"):
            p = os.path.join(data_dir, f)
            if os.path.isfile(p):
                with open(p) as fh:
                    for line in fh:
                        w, _, d = line.strip().partition(" ")
                        descr[w] = d
    if not cats:
        raise FileNotFoundError(f"data_dir: no classes: neither a devkit nor train/<wnid> "
                                f"folders under {root!r}")
    cats = sorted(cats)
    index = {c: i + 1 for i, c in enumerate(cats)}
    names: List[str] = []
    labels: List[int] = []
    sets: List[int] = []
    ids: List[int] = []

    def add(rel: Iterable[str], labs: Iterable[int], s: int, base: int) -> None:
        rel, labs = list(rel), list(labs)
        names.extend(rel)
        labels.extend(labs)
        sets.extend([s] * len(rel))
        ids.extend(range(base, base + len(rel)))

    for c in _subfolders(os.path.join(root, "train")):
        if c in index:
            files = _images_in(os.path.join(root, "train", c))
            add((f"train/{c}/{f}" for f in files), [index[c]] * len(files), 1, len(names) + 1)
    val_dir = os.path.join(root, "val")
    vsub = [c for c in _subfolders(val_dir) if c in index]
    if vsub:
        rel, labs = [], []
        for c in vsub:
            files = _images_in(os.path.join(val_dir, c))
            rel += [f"val/{c}/{f}" for f in files]
            labs += [index[c]] * len(files)
        add(rel, labs, 2, 10 ** 7)
    else:
        files = _images_in(val_dir)
        if files:
            src = val_labels or truth
            if src is None:
                warnings.warn(f"imagenet_imdb: no labels for the {len(files)} validation "
                              f"images (pass val_labels=); they get label 0", stacklevel=2)
                labs = np.zeros(len(files), np.int64)
            else:
                labs = _read_val_labels(src, files, wnid_of_id if src == truth else None, index)
            keep = np.ones(len(files), bool)
            if black is not None and src == truth:
                with open(black) as fh:
                    for tok in fh.read().split():
                        if tok.isdigit() and 1 <= int(tok) <= len(files):
                            keep[int(tok) - 1] = False
            add((f"val/{f}" for f, k in zip(files, keep) if k), labs[keep], 2, 10 ** 7)
    files = _images_in(os.path.join(root, "test"))
    add((f"test/{f}" for f in files), [0] * len(files), 3, 2 * 10 ** 7)

    label = np.asarray(labels, np.int64)
    sets_a = np.asarray(sets, np.int64)
    keep = np.arange(len(names))
    if lite:
        chosen = []
        for c in range(1, min(10, len(cats)) + 1):
            sel = np.flatnonzero(label == c)
            chosen += list(sel[sets_a[sel] == 1][:256]) + list(sel[sets_a[sel] == 2][:40])
        chosen += list(np.flatnonzero(sets_a == 3)[:1000])
        keep = np.sort(np.asarray(chosen, np.int64))
    label = label[keep]
    return {"images": {"id": np.asarray(ids, np.int64)[keep], "name": [names[i] for i in keep],
                       "set": sets_a[keep], "label": label, "labels": label},
            "classes": {"name": cats, "description": [descr.get(c, c) for c in cats]},
            "imageDir": os.path.abspath(root),
            "meta": {"sets": list(SETS), "classes": cats}}
