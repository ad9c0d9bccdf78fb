r"""Train an ImageNet network on an ImageNet-style folder: MatConvNet's ``cnn_imagenet.m``.

::

    python -m matconvnet.examples.imagenet --data data/ILSVRC2012 --model alexnet
    python -m matconvnet.examples.imagenet --data data/imagenette --model resnet-50 --gpus 1
    matconvnet train imagenet --data data/ILSVRC2012 --model vgg-f --dagnn --lite

Data (``--data``, default ``data/ILSVRC2012`` when it exists; read by
:func:`matconvnet.data.imagenet_imdb`): ``train/<wnid>/*.JPEG``, ``val/`` with a labels file
(``--val-labels``, one label per sorted image or ``<file> <wnid>`` lines), the devkit's ground
truth, or ``val/<wnid>/`` folders; directly or under ``images/``.  The validation images are
evaluated after every epoch.  ``--lite``: the first 10 classes, 256 training and 40
validation images each.  Pre-resizing the images (shorter side 256,
``python -m matconvnet.data.preprocess_imagenet SRC DST``) makes reading much faster.

As in the original:

1. Image statistics -- the average image, the RGB mean and the RGB covariance -- are computed
   from every ``--stats-every``-th training image (100) read at 256 x 256
   (:func:`matconvnet.data.get_image_stats`) and cached in ``<exp-dir>/imageStats.mat``.
2. The network (``--model``) is :func:`matconvnet.models.cnn_imagenet_init` (``alexnet``,
   ``vgg-f``, ``vgg-m``, ``vgg-m-1024``, ``vgg-s``, ``vgg-vd-16``, ``vgg-vd-19``; SimpleNN, or
   a DagNN with ``top1err`` / ``top5err`` layers with ``--dagnn``; batch normalisation on
   unless ``--no-batch-norm``; ``--weight-init``) or :func:`matconvnet.models.resnet50`
   (``resnet-50``, always a DagNN, as many outputs as classes), built with
   ``averageImage = rgbMean`` in ``meta.normalization`` and the colour jitter
   ``0.1 V sqrt(D)`` (``C = V D V^T`` the RGB covariance) in ``meta.augmentation``.  The
   SimpleNN inits keep the original's 1000 outputs whatever the number of classes.
3. Batches are read by :func:`matconvnet.data.make_image_get_batch` (``getImageBatch`` on
   ``vl_imreadjpeg``, ``--num-threads`` threads): images resized so that a centre crop of
   ``cropSize`` (``imageSize / 256``) of the shorter side becomes ``imageSize``, minus the
   RGB mean; training batches are jittered by ``meta.augmentation`` (random crop location and
   aspect ratio, flips, PCA colour shifts, and for ResNet-50 a random scale).  The
   ``--jitter-*`` options change the augmentation, ``--no-augmentation`` turns it off and
   ``--image-size`` / ``--crop-size`` change the input geometry (the size must give the
   network a 1 x 1 prediction; the error names the sizes that do).
4. ``cnn_train`` / ``cnn_train_dag`` run with the network's ``meta.trainOpts`` (learning-rate
   schedule, batch size, weight decay; ResNet-50: 4 sub-batches), each overridable.
5. A SimpleNN is deployed (:func:`matconvnet.vl_simplenn_deploy`: batch norm folded into the
   convolutions, dropout removed, softmax output) to ``<exp-dir>/net-deployed.mat``.  (The
   original's DagNN deployment is not done.)

``main(argv, network=net)`` trains a network of your own instead of ``--model`` (the
original's ``network`` option), as does ``--network FILE.mat``; its ``meta.normalization``
must give ``imageSize`` (or pass ``--image-size``), a missing ``averageImage`` becomes the
RGB mean.  The experiment folder (``--exp-dir``) defaults to
``data/imagenet-<model>[-bn]-<simplenn|dagnn>``; running again resumes from its last
checkpoint.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import io as mio
from ..dagnn import DagNN
from ..data import get_image_stats, imagenet_imdb, make_image_get_batch, rgb_pca_deviation
from ..geometry import simplenn_geometry
from ..models import IMAGENET_MODELS, cnn_imagenet_init, load_model, resnet50
from ..simplenn import vl_simplenn_deploy, vl_simplenn_tidy
from ..train import cnn_train, cnn_train_dag
from ._common import (add_training_args, describe_schedule, non_negative, positive, report,
                      training_options, with_error_layers)

__all__ = ["MODELS", "main", "build_parser", "parse_args", "image_stats", "make_net",
           "prediction_size", "supported_image_sizes", "set_image_size", "batch_options",
           "deploy"]

#: ``--model`` choices: ``cnn_imagenet_init``'s models and ResNet-50.
MODELS = tuple(IMAGENET_MODELS) + ("resnet-50",)
WEIGHT_INIT_METHODS = ("gaussian", "xavier", "xavierimproved")
STATS_FILE = "imageStats.mat"
DEFAULT_DATA = os.path.join("data", "ILSVRC2012")

# meta.augmentation field -> get_image_batch option
_AUGMENTATION = {"jitterLocation": "jitter_location", "jitterFlip": "jitter_flip",
                 "jitterBrightness": "jitter_brightness", "jitterAspect": "jitter_aspect",
                 "jitterScale": "jitter_scale", "jitterContrast": "jitter_contrast",
                 "jitterSaturation": "jitter_saturation"}


# ----------------------------------------------------------------------------- statistics

def _array(v: Any) -> np.ndarray:
    return np.asarray(v.detach().cpu().numpy() if torch.is_tensor(v) else v, dtype=np.float64)


def image_stats(imdb: Dict, path: Optional[str] = None, *, every: int = 100,
                image_size: int = 256, num_threads: Optional[int] = None,
                device=None) -> Dict[str, np.ndarray]:
    """``averageImage`` (3 x S x S), ``rgbMean`` (3,) and ``rgbCovariance`` (3 x 3) of every
    ``every``-th training image (set 1) read at ``S x S`` (``cnn_imagenet``'s
    ``getImageStats`` call).  With ``path``, loaded from that MAT file when it holds them, else
    computed and written there (atomically)."""
    keys = ("averageImage", "rgbMean", "rgbCovariance")
    if path is not None and os.path.isfile(path):
        try:
            saved = mio.load(path)
            out = {k: np.asarray(saved[k], dtype=np.float64) for k in keys}
            if out["rgbMean"].size == 3 and out["rgbCovariance"].shape == (3, 3):
                out["rgbMean"] = out["rgbMean"].reshape(3)
                return out
        except Exception as e:  # noqa: BLE001 - a damaged cache is recomputed
            warnings.warn(f"image_stats: recomputing the statistics: cannot read {path} ({e})",
                          RuntimeWarning, stacklevel=2)
    sets = np.asarray(imdb["images"]["set"]).reshape(-1)
    train = np.flatnonzero(sets == 1)[::int(every)]
    if not len(train):
        raise ValueError("imdb: no training images (set 1) to compute the image statistics of")
    root = imdb.get("imageDir", "")
    paths = [os.path.join(root, imdb["images"]["name"][i]) for i in train]
    s = get_image_stats(paths, image_size=(image_size, image_size), num_threads=num_threads,
                        device=device)
    out = {"averageImage": np.asarray(s["average_image"], np.float64),
           "rgbMean": np.asarray(s["rgb_mean"], np.float64).reshape(3),
           "rgbCovariance": np.asarray(s["rgb_covariance"], np.float64)}
    if path is not None:
        mio.save(path, out)
    return out


# ----------------------------------------------------------------------------- network

def make_net(model: str, *, classes: Sequence[str] = (), descriptions: Sequence[str] = (),
             batch_norm: bool = True, weight_init: str = "gaussian", dagnn: bool = False,
             rgb_mean: Any = None, rgb_deviation: Any = None, seed: int = 0, device=None):
    """``cnn_imagenet``'s network: ``cnn_imagenet_init`` (a SimpleNN, or a DagNN with the
    ``top1err`` / ``top5err`` layers if ``dagnn``) or, for ``'resnet-50'``, ``resnet50`` with
    ``len(classes)`` outputs (a DagNN; ``weight_init`` does not apply).  ``rgb_mean`` becomes
    ``meta.normalization.averageImage`` and ``rgb_deviation`` (``V sqrt(D)``) the colour jitter.
    ``device='meta'`` (SimpleNN models only) builds shapes without weights."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    if model == "resnet-50":
        if device is not None:
            raise ValueError("device: resnet-50 is built on the CPU (device=None)")
        return resnet50(max(len(classes), 1), batch_normalization=batch_norm,
                        class_names=classes, class_descriptions=descriptions,
                        average_image=rgb_mean, color_deviation=rgb_deviation, seed=seed)
    net = cnn_imagenet_init(model, batch_normalization=batch_norm,
                            weight_init_method=weight_init, class_names=classes,
                            class_descriptions=descriptions, average_image=rgb_mean,
                            color_deviation=rgb_deviation, seed=seed, device=device)
    outputs = int(net["layers"][-2]["weights"][0].shape[0])
    if len(classes) > outputs:
        raise ValueError(f"classes: {model} has {outputs} outputs, the data {len(classes)} "
                         f"classes")
    return as_dagnn(net, top1="top1err") if dagnn else net


def as_dagnn(net: Dict, top1: str = "top1err") -> DagNN:
    """``DagNN.fromSimpleNN(net, 'canonicalNames', true)`` plus the error layers."""
    return with_error_layers(DagNN.from_simplenn(net, canonical_names=True), top1=top1)


def _loss_input(net: DagNN) -> Tuple[str, str]:
    """(image input, prediction) of a DagNN classifier: the first input of its first Loss."""
    images = [v for v in net.get_inputs() if v != "label"]
    for layer in net.layers:
        if layer.block.type_name == "dagnn.Loss":
            if len(images) != 1:
                break
            return images[0], layer.inputs[0]
    raise ValueError(f"network: expected a classifier with one image input and a Loss layer; "
                     f"got inputs {net.get_inputs()}")


def prediction_size(net, size: int) -> Tuple[int, int]:
    """Spatial size of the prediction (the loss layer's input) for a ``size x size`` image
    (``(0, 0)`` when the image is too small for the network)."""
    if isinstance(net, DagNN):
        image, pred = _loss_input(net)
        try:
            s = net.get_var_sizes({image: (1, 3, size, size)})[pred]
            h, w = s[2], s[3]
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
            return (0, 0)
    else:
        try:
            h, w = simplenn_geometry(net["layers"], [size, size, 3, 1]).data_size[-2][:2]
        except (ValueError, ZeroDivisionError):
            return (0, 0)
    if not (np.isfinite(h) and np.isfinite(w)):
        return (0, 0)
    return max(int(h), 0), max(int(w), 0)


def supported_image_sizes(net, largest: int) -> List[Tuple[int, int]]:
    """The ranges ``(first, last)`` of image sizes up to ``largest`` that give ``net`` a 1 x 1
    prediction."""
    ranges: List[Tuple[int, int]] = []
    for s in range(1, int(largest) + 1):
        if prediction_size(net, s) == (1, 1):
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1] = (ranges[-1][0], s)
            else:
                ranges.append((s, s))
    return ranges


def _normalization(net) -> Dict:
    meta = net.meta if isinstance(net, DagNN) else net.setdefault("meta", {})
    return meta.setdefault("normalization", {})


def _meta(net) -> Dict:
    return net.meta if isinstance(net, DagNN) else net["meta"]


def set_image_size(net, size: Optional[int] = None, crop_size: Optional[float] = None):
    """Set ``meta.normalization.imageSize`` (and ``cropSize``) and check that the size gives a
    1 x 1 prediction; raises ``ValueError`` naming the sizes that do.  Returns the size."""
    norm = _normalization(net)
    if size is None:
        declared = np.asarray(_array(norm.get("imageSize", []))).reshape(-1)
        if declared.size < 2:
            raise ValueError("network: meta.normalization.imageSize is missing; pass "
                             "--image-size")
        size = int(declared[0])
        if int(declared[1]) != size:
            raise ValueError(f"network: expected a square imageSize, got "
                             f"{declared[:2].tolist()}")
    got = prediction_size(net, size)
    if got != (1, 1):
        sizes = supported_image_sizes(net, max(2 * size, 512))
        ok = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in sizes) or "none up to " \
            f"{max(2 * size, 512)}"
        raise ValueError(f"--image-size: {size} gives this network a {got[0]} x {got[1]} "
                         f"prediction; it needs 1 x 1, which these sizes give: {ok}")
    norm["imageSize"] = [size, size, 3]
    if crop_size is not None:
        norm["cropSize"] = float(crop_size)
    meta = _meta(net)
    if isinstance(net, dict) and isinstance(meta.get("inputSize"), list) \
            and len(meta["inputSize"]) >= 2:
        meta["inputSize"] = [size, size] + list(meta["inputSize"][2:])
    return size


def batch_options(meta: Dict, augmentation: bool = True) -> Tuple[Dict, Dict]:
    """``getBatchFn``'s option sets for :func:`~matconvnet.data.make_image_get_batch`: test =
    image size, crop size, ``keepAspect`` and the average (a colour, or an image) of
    ``meta.normalization``; train = test plus ``meta.augmentation`` (if ``augmentation``)."""
    norm = meta.get("normalization", {})
    size = _array(norm["imageSize"]).reshape(-1)[:2].astype(int)
    avg = norm.get("averageImage")
    avg = None if avg is None else _array(avg)
    if avg is not None and avg.size == 3:
        avg = avg.reshape(3)
    elif avg is not None and avg.size == 0:
        avg = None
    test = {"image_size": tuple(int(v) for v in size),
            "crop_size": float(norm.get("cropSize", 1.0)),
            "keep_aspect": bool(norm.get("keepAspect", True)), "subtract_average": avg}
    train = dict(test)
    if augmentation:
        for field, option in _AUGMENTATION.items():
            v = meta.get("augmentation", {}).get(field)
            if v is None:
                continue
            if torch.is_tensor(v) or isinstance(v, (list, tuple, np.ndarray)):
                v = _array(v)
                v = float(v) if v.size == 1 else (tuple(v.tolist()) if v.ndim == 1 else v)
            train[option] = v
    return train, test


def deploy(net: Dict) -> Dict:
    """``cnn_imagenet_deploy`` for a SimpleNN: :func:`~matconvnet.vl_simplenn_deploy` (batch
    norm folded, dropout removed, ``softmaxloss`` -> ``softmax``) without momentum fields."""
    out = vl_simplenn_deploy(net)
    for layer in out["layers"]:
        layer.pop("momentum", None)
    return out


# ----------------------------------------------------------------------------- command line

def _range(text: str) -> Tuple[float, float]:
    """``LO,HI`` or one number (a fixed value)."""
    parts = [t for t in str(text).split(",") if t.strip()]
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected LO,HI or one number, got {text!r}")
    vals = [non_negative(t) for t in parts]
    if len(vals) == 2 and vals[0] > vals[1]:
        raise argparse.ArgumentTypeError(f"expected LO <= HI, got {text!r}")
    return (vals[0], vals[-1])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m matconvnet.examples.imagenet",
        description="Train an ImageNet network (AlexNet, VGG, ResNet-50) on an ImageNet-style "
                    "folder with cnn_train (MatConvNet's cnn_imagenet) and report the "
                    "validation error.")
    d = p.add_argument_group("data")
    d.add_argument("--data", default=None, metavar="DIR",
                   help="train/<wnid>/*.JPEG, val/ (+ labels), optional devkit (default "
                        f"{DEFAULT_DATA} when it exists)")
    d.add_argument("--val-labels", default=None, metavar="FILE",
                   help="labels of the val/ images: one per sorted image, or <file> <wnid>")
    d.add_argument("--lite", action="store_true",
                   help="10 classes, 256 training and 40 validation images each")
    d.add_argument("--num-threads", type=positive, default=min(12, os.cpu_count() or 1),
                   help="image reading threads (default min(12, CPUs))")
    d.add_argument("--stats-every", type=positive, default=100,
                   help="image statistics from every N-th training image (default 100)")
    n = p.add_argument_group("network")
    n.add_argument("--model", default="resnet-50", choices=MODELS, help="default resnet-50")
    n.add_argument("--network", default=None, metavar="FILE.mat",
                   help="train this model file instead of a new --model")
    n.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="no batch normalisation (the LRN and dropout layers instead)")
    n.add_argument("--weight-init", default="gaussian", choices=WEIGHT_INIT_METHODS,
                   help="cnn_imagenet_init's weightInitMethod (default gaussian)")
    n.add_argument("--image-size", type=positive, default=None,
                   help="network input size (default the model's: 227 alexnet, 224 others)")
    n.add_argument("--crop-size", type=non_negative, default=None,
                   help="crop, a fraction of the shorter side (default image size / 256)")
    n.add_argument("--no-deploy", dest="deploy", action="store_false",
                   help="do not write net-deployed.mat")
    a = p.add_argument_group("augmentation (defaults: the network's meta.augmentation)")
    a.add_argument("--no-augmentation", dest="augmentation", action="store_false",
                   help="train on centre crops, no jitter")
    a.add_argument("--jitter-brightness", type=non_negative, default=None, metavar="J",
                   help="PCA colour shift J V sqrt(D) (default 0.1)")
    a.add_argument("--jitter-aspect", type=_range, default=None, metavar="LO,HI",
                   help="crop aspect ratio range (default 2/3,3/2; resnet 3/4,4/3)")
    a.add_argument("--jitter-scale", type=_range, default=None, metavar="LO,HI",
                   help="crop size factor range (resnet 0.4,1.1)")
    a.add_argument("--jitter-contrast", type=non_negative, default=None, metavar="C")
    a.add_argument("--jitter-saturation", type=non_negative, default=None, metavar="S")
    a.add_argument("--no-jitter-flip", dest="jitter_flip", action="store_false")
    a.add_argument("--no-jitter-location", dest="jitter_location", action="store_false",
                   help="centre crops")
    add_training_args(p, exp_dir_help="checkpoints, imageStats.mat, net-deployed.mat "
                                      "(default data/imagenet-<model>[-bn]-<simplenn|dagnn>)")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _apply_augmentation(meta: Dict, args: argparse.Namespace, rgb_deviation) -> None:
    aug = meta.setdefault("augmentation", {})
    if args.jitter_brightness is not None:
        aug["jitterBrightness"] = args.jitter_brightness * np.asarray(rgb_deviation)
    for field, value in (("jitterAspect", args.jitter_aspect), ("jitterScale", args.jitter_scale),
                         ("jitterContrast", args.jitter_contrast),
                         ("jitterSaturation", args.jitter_saturation)):
        if value is not None:
            aug[field] = list(value) if isinstance(value, tuple) else value
    if not args.jitter_flip:
        aug["jitterFlip"] = False
    if not args.jitter_location:
        aug["jitterLocation"] = False


def _given_network(network, args, rgb_mean, classes, descriptions):
    if isinstance(network, (str, os.PathLike)):
        network = load_model(network)
    elif isinstance(network, DagNN):
        network = copy.deepcopy(network)
    elif isinstance(network, dict):
        network = vl_simplenn_tidy(network)
    else:
        raise TypeError(f"network: expected a SimpleNN dict, a DagNN or a model file, got "
                        f"{type(network).__name__}")
    if args.dagnn and not isinstance(network, DagNN):
        network = as_dagnn(network)
    norm = _normalization(network)
    if norm.get("averageImage") is None or _array(norm["averageImage"]).size == 0:
        norm["averageImage"] = torch.as_tensor(rgb_mean).reshape(3, 1, 1)
    meta = _meta(network)
    if not meta.get("classes", {}).get("name"):
        meta["classes"] = {"name": list(classes), "description": list(descriptions)}
    return network


def main(argv: Optional[Sequence[str]] = None, *, network=None) -> Dict:
    """Set up, train, validate and deploy; returns ``{'net', 'stats', 'val_error',
    'val_top5_error', 'image_stats', 'exp_dir', 'deployed', 'train_seconds', 'seconds'}``.
    ``network``: a SimpleNN dict or DagNN (or a model file) to train instead of ``--model``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = args.data
    if data is None:
        if not os.path.isdir(DEFAULT_DATA):
            parser.error(f"no ImageNet data: pass --data DIR, a folder with train/<wnid>/*.JPEG "
                         f"and val/ (with --val-labels FILE, the devkit, or val/<wnid>/); "
                         f"{DEFAULT_DATA} does not exist")
        data = DEFAULT_DATA
    if network is None and args.network is not None:
        network = args.network
    try:
        imdb = imagenet_imdb(data, val_labels=args.val_labels, lite=args.lite)
    except (FileNotFoundError, ValueError) as e:
        parser.error(f"--data {data}: {e}")
    classes = list(imdb["classes"]["name"])
    descriptions = list(imdb["classes"]["description"])
    sets = imdb["images"]["set"]
    if not (sets == 1).any():
        parser.error(f"--data {data}: no training images (train/<wnid>/*.JPEG)")
    dagnn = bool(args.dagnn or (network is None and args.model == "resnet-50"))
    name = "network" if network is not None else args.model
    default_exp = os.path.join("data", f"imagenet-{name}{'-bn' if args.batch_norm else ''}-"
                                       f"{'dagnn' if dagnn else 'simplenn'}")
    exp_dir = args.exp_dir if args.exp_dir is not None else default_exp
    os.makedirs(exp_dir, exist_ok=True)

    stats_ = image_stats(imdb, os.path.join(exp_dir, STATS_FILE), every=args.stats_every,
                         num_threads=args.num_threads)
    deviation = rgb_pca_deviation(stats_["rgbCovariance"])
    try:
        if network is not None:
            net = _given_network(network, args, stats_["rgbMean"], classes, descriptions)
        else:
            net = make_net(args.model, classes=classes, descriptions=descriptions,
                           batch_norm=args.batch_norm, weight_init=args.weight_init,
                           dagnn=dagnn, rgb_mean=stats_["rgbMean"], rgb_deviation=deviation,
                           seed=args.seed)
        image_size = set_image_size(net, args.image_size, args.crop_size)
    except ValueError as e:
        parser.error(str(e))
    meta = _meta(net)
    _apply_augmentation(meta, args, deviation)
    is_dag = isinstance(net, DagNN)
    train_opts, test_opts = batch_options(meta, args.augmentation)
    get_batch = make_image_get_batch(train=train_opts, test=test_opts,
                                     num_threads=args.num_threads, dag=is_dag)
    opts = training_options(args, meta.get("trainOpts"))
    n_train, n_val = int((sets == 1).sum()), int((sets == 2).sum())
    jitter = sorted(k for k in train_opts if k not in test_opts)
    subs = opts.get("num_sub_batches", 1)
    print(f"ImageNet {name}{' + batch norm' if args.batch_norm and network is None else ''} "
          f"({'DagNN' if is_dag else 'SimpleNN'}) on {data}: {len(classes)} classes, "
          f"{n_train} training / {n_val} validation images at {image_size} x {image_size} "
          f"(crop {test_opts['crop_size']:.3g}; jitter: {', '.join(jitter) or 'none'}); "
          f"{opts['num_epochs']} epochs, batch {opts.get('batch_size', 256)}"
          f"{f' in {subs} sub-batches' if subs > 1 else ''}"
          f", lr {describe_schedule(opts.get('learning_rate', 0.001), opts['num_epochs'])}, "
          f"weight decay {opts.get('weight_decay', 5e-4):g}; exp dir {exp_dir}", flush=True)
    with torch.no_grad():
        if is_dag:
            net, stats = cnn_train_dag(net, imdb, get_batch, exp_dir=exp_dir, **opts)
        else:
            net, stats = cnn_train(net, imdb, get_batch, exp_dir=exp_dir, **opts)
    train_seconds = time.perf_counter() - start
    deployed = None
    if args.deploy and not is_dag:
        deployed = os.path.join(exp_dir, "net-deployed.mat")
        mio.save(deployed, deploy(net))
    errs = report("validation", stats["val"][-1] if stats["val"] else {}, train_seconds,
                  time.perf_counter() - start, exp_dir)
    if deployed:
        print(f"deployed network: {deployed}")
    return {"net": net, "stats": stats, "val_error": errs.get("top1"),
            "val_top5_error": errs.get("top5"), "image_stats": stats_, "exp_dir": exp_dir,
            "deployed": deployed, "train_seconds": train_seconds,
            "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    main()
