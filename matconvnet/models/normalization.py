"""Inference preprocessing from a model's ``meta.normalization`` (FEATURES.md 7.1, P-F-4).

``x = preprocess(image, meta)`` turns an image into the network input ``1 x C x H x W``
(float32, pixels in [0, 255] minus the average), as the original's code prepares it:

``mode='demo'`` (default): the quick start and demos (manual 1.1, ``cnn_imagenet_minimal.m``,
    ``cnn_imagenet_googlenet.m``)::

        im_ = single(im) ;                                   % [0, 255]
        im_ = imresize(im_, net.meta.normalization.imageSize(1:2)) ;
        im_ = im_ - net.meta.normalization.averageImage ;

    The whole image is resized to ``imageSize(1:2)`` (the aspect ratio is not kept).  The
    demos call ``imresize`` with its default, bicubic; here ``normalization.interpolation``
    is used when the model declares one, bicubic otherwise.

``mode='evaluate'``: the evaluation protocol of the published accuracies
    (``cnn_imagenet_evaluate.m`` -> ``getImageBatch.m`` -> ``vl_imreadjpeg``): a centre crop
    whose size is ``cropSize`` times the largest crop that fits, of the output's aspect ratio
    when ``keepAspect`` is true (the default), else of the image's own (the crop is then
    squashed to ``imageSize``), rounded half away from zero and placed at
    ``floor((W - w) / 2)``; the crop is resampled to ``imageSize(1:2)`` with
    ``interpolation`` (default bicubic, getImageBatch's) as ``vl_imreadjpeg`` does it: kernel
    taps beyond the crop read the image around it, taps beyond the image repeat its edge
    pixels; then the average is subtracted.  ``cropSize`` is a fraction (``224/256``: the
    centre 224 of an image whose shorter side is 256) or a per-axis pair ``[h, w]``; a legacy
    model with ``border`` but no ``cropSize`` uses ``imageSize ./ (imageSize + border)`` as
    ``vl_simplenn_tidy`` does.  Without either, the crop is the whole (largest fitting)
    region.

Both modes: ``averageImage`` is a colour (3 numbers, or a ``C x 1 x 1`` tensor as
``io.load`` returns a ``1 x 1 x 3`` one) subtracted from every pixel, or a ``C x H x W``
image (resized to ``imageSize`` with the same interpolation when its size differs); empty
or absent means none.  Without ``imageSize``, a model's ``meta.inputSize`` [H W C] stands in
for it; without either (fully convolutional models: FCN, Fast R-CNN) the image keeps its
size.  A grey image is repeated to three channels; a model whose
``imageSize`` has one channel gets the luminance ``0.2989 R + 0.5870 G + 0.1140 B``
(MATLAB's ``rgb2gray``).

:func:`imresize` is MATLAB's ``imresize(A, [H W], method)`` for floating-point images:
separable kernels (``nearest``, ``box``, ``bilinear``, ``bicubic`` (a = -0.5),
``lanczos2``, ``lanczos3``), widened when shrinking (antialiasing; not for ``nearest``),
pixel centres aligned (``u = x / s + (1 - 1 / s) / 2``), borders mirrored, the dimension
that shrinks most resized first.  ``vl_imreadjpeg`` (:mod:`matconvnet.data`) uses the same
weights but repeats edge pixels instead of mirroring them.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["preprocess", "imresize", "normalization_of", "INTERPOLATIONS", "MODES"]

MODES = ("demo", "evaluate")
_LUMA = (0.2989, 0.5870, 0.1140)  # MATLAB rgb2gray


# ----------------------------------------------------------------------------- kernels

def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + \
        (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _triangle(x: np.ndarray) -> np.ndarray:
    return (x + 1) * ((x >= -1) & (x < 0)) + (1 - x) * ((x >= 0) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def _lanczos(a: int) -> Callable[[np.ndarray], np.ndarray]:
    eps = np.finfo(np.float64).eps

    def kernel(x: np.ndarray) -> np.ndarray:
        return (np.sin(np.pi * x) * np.sin(np.pi * x / a) + eps) / \
            (np.pi ** 2 * x ** 2 / a + eps) * (np.abs(x) < a)
    return kernel


#: method -> (kernel, width, antialias when shrinking), as MATLAB's imresize defines them.
INTERPOLATIONS: Dict[str, Tuple[Callable[[np.ndarray], np.ndarray], float, bool]] = {
    "nearest": (_box, 1.0, False),
    "box": (_box, 1.0, True),
    "bilinear": (_triangle, 2.0, True),
    "bicubic": (_cubic, 4.0, True),
    "lanczos2": (_lanczos(2), 4.0, True),
    "lanczos3": (_lanczos(3), 6.0, True),
}


def _method(method: Any) -> str:
    m = str(method).lower() if isinstance(method, str) else method
    m = {"linear": "bilinear", "cubic": "bicubic", "triangle": "bilinear"}.get(m, m)
    if m not in INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {', '.join(INTERPOLATIONS)}, "
                         f"got {method!r}")
    return m


def resize_weights(in_length: int, out_length: int, method: str = "bicubic", *,
                   offset: int = 0, extent: Optional[int] = None, boundary: str = "mirror"):
    """The ``out_length x in_length`` sparse matrix resampling the window
    ``[offset, offset + extent)`` (default: the whole axis) of an ``in_length`` axis to
    ``out_length`` samples: row i holds the weights of output sample i (MATLAB's
    ``contributions``).  Taps beyond the axis are mirrored (``boundary='mirror'``,
    MATLAB's imresize) or take the edge sample (``'replicate'``, vl_imreadjpeg); taps
    beyond the window but inside the axis read the axis (vl_imreadjpeg's crops)."""
    from scipy.sparse import csr_matrix

    kernel, width, antialias = INTERPOLATIONS[_method(method)]
    extent = in_length if extent is None else extent
    scale = out_length / extent
    if scale < 1 and antialias:
        def h(x):
            return scale * kernel(scale * x)
        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale) + offset     # 1-based input coordinate
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left + np.arange(taps)[None, :]
    w = h(u - idx)
    w = w / w.sum(axis=1, keepdims=True)
    idx = idx.astype(np.int64) - 1
    if boundary == "mirror":  # MATLAB's [1:n, n:-1:1] table
        period = 2 * in_length
        m = np.mod(idx, period)
        cols = np.where(m < in_length, m, period - 1 - m)
    elif boundary == "replicate":
        cols = np.clip(idx, 0, in_length - 1)
    else:
        raise ValueError(f"boundary: expected 'mirror' or 'replicate', got {boundary!r}")
    rows = np.broadcast_to(np.arange(out_length)[:, None], cols.shape)
    keep = w != 0
    return csr_matrix((w[keep], (rows[keep], cols[keep])), shape=(out_length, in_length))


def _check_size(size: Sequence[int]) -> Tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"size: expected two positive integers (H, W), got {tuple(size)}")
    return int(size[0]), int(size[1])


def _resample(a: np.ndarray, out_hw: Tuple[int, int], method: str,
              box: Optional[Tuple[int, int, int, int]], boundary: str) -> np.ndarray:
    """``H x W x C`` float64 -> ``Ho x Wo x C``: the window ``box = (top, left, h, w)``
    (default the whole image) resampled, the dimension that shrinks most first."""
    top, left, bh, bw = box if box is not None else (0, 0) + a.shape[:2]
    windows = ((top, bh), (left, bw))
    scales = (out_hw[0] / bh, out_hw[1] / bw)
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    c = a.shape[2]
    for dim in order:
        (offset, extent), n_out = windows[dim], out_hw[dim]
        n_in = a.shape[dim]
        if extent == n_out:   # a window as long as the output: its samples, exactly
            a = a[offset:offset + extent] if dim == 0 else a[:, offset:offset + extent]
            continue
        w = resize_weights(n_in, n_out, method, offset=offset, extent=extent,
                           boundary=boundary)
        if dim == 0:
            a = (w @ a.reshape(n_in, -1)).reshape(n_out, a.shape[1], c)
        else:
            t = a.transpose(1, 0, 2)
            a = (w @ t.reshape(n_in, -1)).reshape(n_out, t.shape[1], c).transpose(1, 0, 2)
    return a


def imresize(image: Any, size: Sequence[int], method: str = "bicubic") -> np.ndarray:
    """``imresize(A, [H W], method)`` of an ``H0 x W0`` or ``H0 x W0 x C`` image as float32
    (computed in double precision).  ``size`` is the output ``(H, W)``."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image: expected an H x W or H x W x C array, got shape {a.shape}")
    out_hw = _check_size(size)
    method = _method(method)
    gray = a.ndim == 2
    out = _resample(a[:, :, None] if gray else a, out_hw, method, None, "mirror")
    out = out.astype(np.float32)
    return out[:, :, 0] if gray else out


# ----------------------------------------------------------------------------- meta

def _split_meta(meta: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(meta, meta.normalization) of a SimpleNN net dict, a DagNN, a ``meta`` dict, or the
    normalization dict itself (meta is then empty)."""
    if hasattr(meta, "meta") and not isinstance(meta, dict):  # a DagNN
        meta = meta.meta
    if not isinstance(meta, dict):
        raise TypeError(f"meta: expected a network, its meta dict or meta.normalization, "
                        f"got {type(meta).__name__}")
    if "meta" in meta and isinstance(meta["meta"], dict):  # a net
        meta = meta["meta"]
    if "normalization" in meta:
        norm = meta["normalization"]
        if not isinstance(norm, dict):
            raise TypeError(f"meta.normalization: expected a struct (dict), "
                            f"got {type(norm).__name__}")
        return meta, norm
    if any(k in meta for k in ("imageSize", "averageImage", "cropSize", "border")):
        return {}, meta
    return meta, {}


def normalization_of(meta: Any) -> Dict[str, Any]:
    """``meta.normalization`` of a SimpleNN net dict, a DagNN, a ``meta`` dict, or the
    normalization dict itself."""
    return _split_meta(meta)[1]


def _numbers(v: Any) -> list:
    if v is None:
        return []
    if torch.is_tensor(v):
        v = v.detach().cpu().numpy()
    return [float(x) for x in np.asarray(v, dtype=np.float64).reshape(-1)]


def _image_size(meta: Dict[str, Any], norm: Dict[str, Any]) -> Optional[Tuple[int, int, int]]:
    """``normalization.imageSize``, else the network's declared ``meta.inputSize`` when it
    gives [H W C] (as vl_simplenn_display looks for them, the other way round)."""
    s, what = _numbers(norm.get("imageSize")), "meta.normalization.imageSize"
    if not s:
        s, what = _numbers(meta.get("inputSize")), "meta.inputSize"
        if len(s) < 3:
            return None
    if len(s) < 2 or any(not math.isfinite(x) or x < 1 or x != int(x) for x in s[:3]):
        raise ValueError(f"{what}: expected [H W] or [H W C] positive integers, got {s}")
    return int(s[0]), int(s[1]), int(s[2]) if len(s) > 2 else 3


def _crop_fraction(norm: Dict[str, Any], size: Tuple[int, int]) -> Tuple[float, float]:
    crop = _numbers(norm.get("cropSize"))
    if not crop:
        border = _numbers(norm.get("border"))
        if border:
            border = border * 2 if len(border) == 1 else border[:2]
            crop = [size[0] / (size[0] + border[0]), size[1] / (size[1] + border[1])]
    if not crop:
        return 1.0, 1.0
    crop = crop * 2 if len(crop) == 1 else crop[:2]
    if any(not (0 < c <= 1) for c in crop):
        raise ValueError(f"meta.normalization.cropSize: expected fractions in (0, 1], "
                         f"got {crop}")
    return crop[0], crop[1]


def _as_bool(v: Any, default: bool) -> bool:
    if v is None or (isinstance(v, (list, tuple)) and not v):
        return default
    n = _numbers(v) if not isinstance(v, bool) else [float(v)]
    return bool(n[0]) if n else default


def centre_crop_box(in_hw: Tuple[int, int], out_hw: Tuple[int, int],
                    crop: Tuple[float, float], keep_aspect: bool) -> Tuple[int, int, int, int]:
    """``(top, left, height, width)`` of ``vl_imreadjpeg``'s centre crop: the largest region
    of the output's aspect ratio (``keep_aspect``) or of the image's own, scaled by ``crop``
    per axis, rounded, clipped to the image and centred (``floor((W - w) / 2)``)."""
    h, w = in_hw
    if keep_aspect:
        aspect = out_hw[1] / out_hw[0]  # width / height of the crop
        ch, cw = (h, h * aspect) if h * aspect <= w else (w / aspect, w)
    else:
        ch, cw = h, w
    ch = min(max(int(math.floor(ch * crop[0] + 0.5)), 1), h)
    cw = min(max(int(math.floor(cw * crop[1] + 0.5)), 1), w)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


# ----------------------------------------------------------------------------- preprocess

def _to_array(image: Any, channels: int) -> np.ndarray:
    """``H x W x C`` float32 in [0, 255] from a PIL image or an array."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL image
        image = np.asarray(image.convert("RGB"), dtype=np.float32)
    elif torch.is_tensor(image):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image: expected an H x W x 3 array or a PIL image, "
                        f"got {type(image).__name__}")
    if image.dtype.kind not in "uif" or image.dtype == np.bool_:
        raise TypeError(f"image: expected uint8 or floating-point pixels, got {image.dtype}")
    a = image.astype(np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image: expected H x W, H x W x 1, H x W x 3 or H x W x 4 (alpha "
                         f"ignored), got shape {image.shape}")
    a = a[:, :, :3]
    if channels == 1 and a.shape[2] == 3:
        a = np.tensordot(a, np.asarray(_LUMA, np.float32), axes=([2], [0]))[:, :, None]
    elif channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] != channels:
        raise ValueError(f"image: has {a.shape[2]} channels, the model expects {channels}")
    return a


def _average(norm: Dict[str, Any], out_hw: Tuple[int, int], channels: int,
             method: str) -> Optional[np.ndarray]:
    """The average to subtract, as ``H x W x C`` (an image) or ``1 x 1 x C`` (a colour)."""
    avg = norm.get("averageImage")
    if avg is None or (isinstance(avg, (list, tuple)) and not avg):
        return None
    if torch.is_tensor(avg):
        a = avg.detach().cpu().numpy().astype(np.float64)
        if a.size == 0:
            return None
        if a.ndim == 3:
            a = a.transpose(1, 2, 0)  # C x H x W (io.layout) -> H x W x C
        elif a.ndim == 2:
            a = a[:, :, None]
    else:
        a = np.asarray(avg, dtype=np.float64)
        if a.size == 0:
            return None
    if a.size == channels:
        return a.reshape(1, 1, channels).astype(np.float32)
    if a.ndim != 3 or a.shape[2] != channels:
        raise ValueError(f"meta.normalization.averageImage: expected {channels} numbers or a "
                         f"C x H x W image with C = {channels}, got shape "
                         f"{tuple(avg.shape) if hasattr(avg, 'shape') else a.shape}")
    if a.shape[:2] != tuple(out_hw):
        a = imresize(a, out_hw, method)
    return a.astype(np.float32)


def preprocess(image: Any, meta: Any, *, mode: str = "demo",
               interpolation: Optional[str] = None) -> torch.Tensor:
    """The network input ``1 x C x H x W`` (float32) for ``image`` (``H0 x W0 x 3`` uint8 or
    float array in [0, 255], or a PIL image), prepared as ``meta.normalization`` says (see
    the module's help).  ``meta``: the network, its ``meta`` or ``meta.normalization``.
    ``mode``: ``'demo'`` (resize the whole image) or ``'evaluate'`` (centre crop, as the
    evaluation of the published accuracies).  ``interpolation`` overrides the model's."""
    if mode not in MODES:
        raise ValueError(f"mode: expected 'demo' or 'evaluate', got {mode!r}")
    meta, norm = _split_meta(meta)
    size = _image_size(meta, norm)
    channels = size[2] if size else 3
    method = _method(interpolation if interpolation is not None
                     else norm.get("interpolation") or "bicubic")
    a = _to_array(image, channels)
    if size is not None:
        out_hw = size[:2]
        if mode == "evaluate":
            box = centre_crop_box(a.shape[:2], out_hw, _crop_fraction(norm, out_hw),
                                  _as_bool(norm.get("keepAspect"), True))
            a = _resample(a.astype(np.float64), out_hw, method, box, "replicate")
        else:
            a = _resample(a.astype(np.float64), out_hw, method, None, "mirror")
        a = a.astype(np.float32)
    avg = _average(norm, a.shape[:2], channels, method)
    if avg is not None:
        a = a - avg
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None], dtype=np.float32))
