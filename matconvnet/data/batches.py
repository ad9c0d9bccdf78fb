r"""``get_batch`` functions for ``cnn_train`` / ``cnn_train_dag`` (FEATURES.md 4.2 and 5.1).

``cnn_train`` calls ``images, labels = get_batch(imdb, idx)`` with ``idx`` 0-based positions
(a NumPy integer array); ``cnn_train_dag`` calls ``inputs = get_batch(imdb, idx)`` and takes a
dict ``{'input': images, 'label': labels}``.  Images are ``N x C x H x W`` float32 tensors,
labels the imdb's 1-based classes as an ``int64`` tensor.

* In-memory imdbs (``images.data``, as :func:`mnist_imdb`, :func:`cifar10_imdb`)::

      get_batch = get_memory_batch                              # cnn_mnist
      get_batch = functools.partial(get_memory_batch, flip=True) # cnn_cifar: flip whole batch
      get_batch_dag = as_dag_batch(get_batch)

* Images on disk (``images.name`` + ``imageDir``, as :func:`imagenet_imdb`), through
  :func:`get_image_batch` (the original's ``getImageBatch``, built on :func:`vl_imreadjpeg`)::

      stats = get_image_stats(paths_of_some_training_images)
      get_batch = make_image_get_batch(
          train=dict(image_size=(224, 224), crop_size=224 / 256,
                     subtract_average=stats['rgb_mean'], jitter_location=True,
                     jitter_flip=True, jitter_aspect=(2 / 3, 3 / 2),
                     jitter_brightness=0.1, rgb_covariance=stats['rgb_covariance']),
          num_threads=4)

  The training options are used when the batch's first image is a training image (set 1),
  the test options (by default: the training ones without jitter, i.e. a centre crop)
  otherwise (E-GB-13).  ``get_batch(imdb, idx, prefetch=True)`` starts reading the batch in
  the background and returns ``None``; the next call with the same ``idx`` collects it.

``jitter_brightness`` (E-GB-12) is passed to ``vl_imreadjpeg``'s ``brightness``: a scalar,
3-vector or 3 x 3 matrix ``B`` (shift ``B w``, ``w ~ N(0, I_3)``).  With ``rgb_covariance``
``C = V D V^T`` a scalar ``j`` becomes ``B = j V sqrt(D)`` (:func:`rgb_pca_deviation`), the
ImageNet example's PCA colour jitter: shifts along the principal colour axes with standard
deviations ``j sqrt(d_k)``.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .imread import INTERPOLATIONS, vl_imreadjpeg

__all__ = ["get_memory_batch", "as_dag_batch", "get_image_batch", "make_image_get_batch",
           "get_image_stats", "rgb_pca_deviation"]


def _as_tensor(x: Any) -> torch.Tensor:
    if torch.is_tensor(x):
        return x
    return torch.from_numpy(np.ascontiguousarray(x))


def _indices(batch: Any) -> np.ndarray:
    idx = np.asarray(batch.cpu() if torch.is_tensor(batch) else batch).reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"batch: expected integer (0-based) positions, got dtype {idx.dtype}")
    return idx.astype(np.int64)


def _labels(imdb: Dict, idx: np.ndarray) -> torch.Tensor:
    images = imdb["images"]
    lab = images["labels"] if "labels" in images else images.get("label")
    if lab is None:
        raise KeyError("imdb: no images.labels (or images.label)")
    lab = _as_tensor(lab)
    return lab[torch.from_numpy(idx).to(lab.device)]


def get_memory_batch(imdb: Dict, batch: Any, *, flip: bool = False, generator=None,
                     device: Union[None, str, torch.device] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``images, labels`` of the positions ``batch`` of an in-memory imdb (``images.data``).

    ``flip``: flip the whole batch horizontally with probability 1/2 (``cnn_cifar``'s
    ``getBatch``), drawn from ``generator`` (default: torch's global generator).
    ``device``: where to put both (default: where ``images.data`` is).
    """
    idx = _indices(batch)
    data = _as_tensor(imdb["images"]["data"])
    if data.dim() != 4:
        raise ValueError(f"imdb: expected images.data N x C x H x W, got shape "
                         f"{tuple(data.shape)}")
    images = data[torch.from_numpy(idx).to(data.device)]
    labels = _labels(imdb, idx)
    if flip and float(torch.rand((), generator=generator)) > 0.5:
        images = images.flip(3)
    if images.dtype != torch.float32:
        images = images.float()
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    return images, labels


def as_dag_batch(get_batch: Callable, input: str = "input", label: str = "label") -> Callable:
    """Wrap a SimpleNN ``get_batch`` (returning ``images, labels``) for ``cnn_train_dag``."""
    @functools.wraps(get_batch)
    def dag_batch(imdb, batch, **kw):
        out = get_batch(imdb, batch, **kw)
        if out is None:                  # a prefetch call
            return None
        images, labels = out
        return {input: images, label: labels}
    return dag_batch


def rgb_pca_deviation(rgb_covariance: Any) -> np.ndarray:
    """``V sqrt(D)`` for the RGB covariance ``C = V D V^T``: the 3 x 3 matrix whose columns are
    the principal colour axes scaled by their standard deviations (``cnn_imagenet``)."""
    c = np.asarray(rgb_covariance.cpu() if torch.is_tensor(rgb_covariance) else rgb_covariance,
                   dtype=np.float64)
    if c.shape != (3, 3):
        raise ValueError(f"rgb_covariance: expected a 3 x 3 matrix, got shape {c.shape}")
    d, v = np.linalg.eigh((c + c.T) / 2)
    return v * np.sqrt(np.maximum(d, 0.0))[None, :]


def _average(avg: Any, image_size: Tuple[int, int]) -> Any:
    """A colour passes; an average image is resized (bilinear) to ``image_size``."""
    if avg is None:
        return None
    t = _as_tensor(np.asarray(avg) if not torch.is_tensor(avg) else avg).detach().cpu().float()
    if t.numel() in (1, 3):
        return t.reshape(-1).numpy()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"subtract_average: expected an RGB colour or a 3 x H x W average "
                         f"image, got shape {tuple(t.shape)}")
    if tuple(t.shape[1:]) != tuple(image_size):
        t = F.interpolate(t[None], size=tuple(image_size), mode="bilinear",
                          align_corners=False, antialias=True)[0]
    return t.numpy()


def get_image_batch(image_paths: Sequence[Any], *, image_size: Sequence[int] = (227, 227),
                    crop_size: float = 227 / 256, keep_aspect: bool = True,
                    subtract_average: Any = None, jitter_flip: bool = False,
                    jitter_location: bool = False,
                    jitter_aspect: Union[float, Sequence[float]] = 1.0,
                    jitter_scale: Union[float, Sequence[float]] = 1.0,
                    jitter_brightness: Any = 0.0, jitter_contrast: float = 0.0,
                    jitter_saturation: float = 0.0, rgb_covariance: Any = None,
                    interpolation: str = "bicubic", num_threads: Optional[int] = None,
                    prefetch: bool = False, device: Union[None, str, torch.device] = None,
                    seed: Optional[int] = None, generator=None) -> Optional[torch.Tensor]:
    """Read and jitter a batch of images: the ImageNet example's ``getImageBatch`` (E-GB-1..12).

    One :func:`vl_imreadjpeg` call with ``pack=True``, ``resize=image_size``,
    ``interpolation`` and: ``crop_size = crop_size * jitter_scale`` (a scalar or ``(min, max)``
    range), ``crop_anisotropy = jitter_aspect`` (0 -- squash the whole image -- when
    ``keep_aspect`` is false), ``crop_location = 'random' if jitter_location else 'center'``,
    ``flip = jitter_flip``, ``brightness / contrast / saturation = jitter_*`` (see the module
    help for ``rgb_covariance``), ``subtract_average`` (an RGB colour, or an average image,
    resized to ``image_size`` if needed).  Returns ``N x 3 x H x W`` float32 on ``device``, or
    ``None`` with ``prefetch=True``.
    """
    size = tuple(int(v) for v in np.asarray(image_size).reshape(-1)[:2])
    if len(size) != 2:
        raise ValueError(f"image_size: expected (H, W), got {image_size!r}")
    scale = np.asarray(jitter_scale, dtype=np.float64).reshape(-1)
    if scale.size not in (1, 2):
        raise ValueError(f"jitter_scale: expected a number or (min, max), got {jitter_scale!r}")
    brightness = jitter_brightness
    if rgb_covariance is not None and np.size(jitter_brightness) == 1:
        brightness = float(np.asarray(jitter_brightness).reshape(-1)[0]) \
            * rgb_pca_deviation(rgb_covariance)
    return vl_imreadjpeg(
        list(image_paths), num_threads=num_threads, prefetch=prefetch, pack=True,
        resize=size, interpolation=interpolation,
        crop_size=tuple(float(crop_size) * scale),
        crop_anisotropy=jitter_aspect if keep_aspect else 0,
        crop_location="random" if jitter_location else "center", flip=bool(jitter_flip),
        brightness=brightness, contrast=jitter_contrast, saturation=jitter_saturation,
        subtract_average=_average(subtract_average, size), device=device, seed=seed,
        generator=generator)


_JITTER = ("jitter_flip", "jitter_location", "jitter_aspect", "jitter_scale",
           "jitter_brightness", "jitter_contrast", "jitter_saturation", "rgb_covariance")


def make_image_get_batch(train: Optional[Dict] = None, test: Optional[Dict] = None, *,
                         num_threads: Optional[int] = None,
                         device: Union[None, str, torch.device] = None,
                         dag: bool = False) -> Callable:
    """A ``get_batch(imdb, idx, prefetch=False)`` for an imdb of image files (``images.name``
    relative to ``imdb['imageDir']``, ``images.label(s)``), as ``cnn_imagenet``'s.

    ``train`` / ``test``: keyword options of :func:`get_image_batch`; ``test`` defaults to
    ``train`` without the ``jitter_*`` options.  The training options are used when the
    batch's first image has set 1.  ``dag=True`` returns ``{'input': images, 'label': labels}``.
    """
    train = dict(train or {})
    test = dict(test) if test is not None else {k: v for k, v in train.items() if k not in _JITTER}
    for name, o in (("train", train), ("test", test)):
        for k in ("prefetch", "device", "num_threads"):
            if k in o:
                raise ValueError(f"{name}: give {k!r} to make_image_get_batch, not in the "
                                 f"options")
        if "interpolation" in o and o["interpolation"] not in INTERPOLATIONS:
            raise ValueError(f"{name}: interpolation must be one of {INTERPOLATIONS}")

    def get_batch(imdb: Dict, batch: Any, prefetch: bool = False):
        idx = _indices(batch)
        names = imdb["images"]["name"]
        root = imdb.get("imageDir", "")
        paths = [os.path.join(root, names[i]) for i in idx]
        sets = np.asarray(imdb["images"]["set"]).reshape(-1)
        opts = train if idx.size and sets[idx[0]] == 1 else test
        images = get_image_batch(paths, num_threads=num_threads, prefetch=prefetch,
                                 device=device, **opts)
        if prefetch:
            return None
        labels = _labels(imdb, idx)
        if device is not None:
            labels = labels.to(device)
        return {"input": images, "label": labels} if dag else (images, labels)

    return get_batch


def get_image_stats(image_paths: Sequence[Any], *, batch_size: int = 256,
                    image_size: Sequence[int] = (256, 256), crop_size: float = 1.0,
                    num_threads: Optional[int] = None,
                    device: Union[None, str, torch.device] = None) -> Dict[str, np.ndarray]:
    """``getImageStats`` (E-GB-14): the images' ``average_image`` (3 x H x W), ``rgb_mean`` (3,)
    and ``rgb_covariance`` (3 x 3, ``E[z z^T] - mu mu^T`` over all pixels).

    The images are read ``batch_size`` at a time with :func:`get_image_batch` (centre crop,
    no jitter) at ``image_size``; as in the original, the statistics are the plain means of
    the per-batch statistics (a short last batch weighs as much as a full one).
    """
    paths = list(image_paths)
    if not paths:
        raise ValueError("image_paths: expected at least one image")
    avg, m1, m2 = [], [], []
    for first in range(0, len(paths), int(batch_size)):
        x = get_image_batch(paths[first:first + int(batch_size)], image_size=image_size,
                            crop_size=crop_size, num_threads=num_threads, device=device,
                            interpolation="bilinear").double()
        z = x.permute(1, 0, 2, 3).reshape(3, -1)
        avg.append(x.mean(dim=0))
        m1.append(z.mean(dim=1))
        m2.append(z @ z.T / z.shape[1])
    mu = torch.stack(m1).mean(dim=0)
    cov = torch.stack(m2).mean(dim=0) - torch.outer(mu, mu)
    return {"average_image": torch.stack(avg).mean(dim=0).float().cpu().numpy(),
            "rgb_mean": mu.cpu().numpy(), "rgb_covariance": cov.cpu().numpy()}
