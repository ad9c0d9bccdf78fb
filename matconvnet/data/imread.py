r"""``vl_imreadjpeg``: read, crop, resize and colour-jitter batches of images in threads
(FEATURES.md 6.1, the MEX utility of the same name).

::

    ims = vl_imreadjpeg(paths)                                  # list of 3 x H x W tensors
    x = vl_imreadjpeg(paths, resize=(224, 224), pack=True,      # N x 3 x 224 x 224
                      crop_size=224 / 256, num_threads=4)
    vl_imreadjpeg(paths, prefetch=True, **opts)                 # start reading, return None
    x = vl_imreadjpeg(paths, **opts)                            # ... then collect the batch

Each image goes through the original's pipeline (U-IJ-16): decode to ``float32`` RGB in
``[0, 255]`` -> output shape -> crop aspect -> crop size -> crop location -> flip -> resize the
crop to the output shape -> subtract the average -> colour jitter.

========================  ===============  ==================================================
option                    default          meaning
========================  ===============  ==================================================
num_threads               None             reader threads; ``None`` keeps the current pool
                                           (1 thread at first); a new count replaces the pool
prefetch                  False            start reading and return ``None`` at once; a later
                                           call with the same files and options returns the
                                           images
verbose                   0                1: one line per call; 2: one line per image
resize                    None             ``S``: shorter side ``S`` (``scale = max(S/W, S/H)``,
                                           ``Ho = max(1, round(scale*H))``); ``(H, W)``: fixed
pack                      False            one ``N x 3 x H x W`` tensor (needs ``resize=(H, W)``)
device / gpu              None / False     device of the result (``gpu=True``: ``'cuda'``)
subtract_average          None             RGB 3-vector (or scalar), or a ``3 x H x W`` average
                                           image (needs ``resize=(H, W)``)
crop_anisotropy           1                scalar or ``(min, max)``: ``Wcrop/Hcrop`` relative
                                           to the output's, log-uniform; a 0 stretches the
                                           whole image to the output aspect
crop_size                 1                scalar or ``(min, max)`` in [0, 1]: fraction of the
                                           largest crop of that aspect that fits, uniform in
                                           area (``size = sqrt(U(min^2, max^2))``)
crop_location             ``'center'``     ``'center'`` (offset ``floor((W - w)/2)``) or
                                           ``'random'`` (uniform integer offset)
flip                      False            horizontal flip with probability 1/2
brightness                0                scalar ``b``, 3-vector ``b`` or 3 x 3 matrix ``B``
                                           (a scalar/vector means ``diag(b)``): add ``B w``,
                                           ``w ~ N(0, I_3)``, to every pixel
contrast                  0                ``c`` in [0, 1]: scale each channel about its mean
                                           by ``1 + c U(-1, 1)``
saturation                0                ``s`` in [0, 1]: mix each pixel with its grey value,
                                           factor ``1 + s U(-1, 1)``
interpolation             ``'bilinear'``   ``'box'``, ``'bilinear'``, ``'bicubic'``,
                                           ``'lanczos2'``, ``'lanczos3'``
draft                     False            JPEG only: decode at 1/2, 1/4 or 1/8 scale (DCT
                                           scaling) when the crop is still at least twice
                                           the output size there; faster, slightly
                                           different pixels
seed / generator          None             random source of the jitter: an ``int`` seed, a
                                           ``torch.Generator`` or a NumPy ``Generator``; by
                                           default torch's global generator (which
                                           ``cnn_train`` seeds each epoch)
========================  ===============  ==================================================

MATLAB-style names are accepted as well, case-insensitively (``NumThreads=4``,
``CropSize=0.875``, ``SubtractAverage=...``).

Randomness: when an option is random, the calling thread draws, before any image is read,
``N x 7`` uniform numbers in [0, 1) (anisotropy, size, x offset, y offset, flip, saturation,
contrast of each image) and then ``N x 3`` standard normal ones (the brightness ``w``) --
``torch.rand`` / ``torch.randn`` in float64, or ``rng.random`` / ``rng.standard_normal`` for
a NumPy generator.  So a seed gives the same images whatever the number of threads, and a
call without random options leaves the generator untouched.

Colour (U-IJ-16), with ``v`` a pixel (3-vector), ``m`` the per-channel mean over the image,
``a`` the average (colour or image), ``c`` the contrast and ``s`` the saturation factor and
``g(v) = (v_R + v_G + v_B) / 3``::

    v <- v - a(image)                              # average image, if any
    d <- B w - a(colour) + (1 - c) m               # (1 - c) m: contrast is about the mean
    d <- s d + (1 - s) g(d)
    v <- c (s v + (1 - s) g(v)) + d

Output: a list (one entry per file) of ``float32`` tensors ``3 x H x W``, or with ``pack=True``
a single ``N x 3 x H x W`` tensor, on ``device`` (CPU by default).  A file that cannot be read
or decoded (missing, empty, truncated, not an image) gives ``None`` in its slot (zeros in a
pack) and an :class:`ImageReadWarning` naming the file; the other images are returned.

Differences from the original, on purpose:

* **Brightness** (FEATURES.md Q-05): the MEX wrote a 3-vector to the matrix entries 0, 3, 8
  instead of the diagonal 0, 4, 8 and multiplied by ``w[i]`` instead of ``w[j]``, so its shift
  was ``w_i * sum_j B(i, j)``.  Here the shift is ``B w`` as documented; with the PCA
  deviation ``B = 0.1 V sqrt(D)`` of the RGB covariance (``cnn_imagenet``) this is
  AlexNet-style lighting noise of covariance ``0.01 V D V^T``.
* Greyscale (and CMYK) images come out as RGB (the MEX kept one channel unless ``Pack``, and
  then subtracted the *red* average from all three channels).
* Prefetched images are returned only when the options match too, not just the file list
  (the MEX silently returned images made with the prefetch call's options).
* An image the MEX could not read left garbage in a pack; here its slot is zero.
* ``crop_size`` so small that a crop rounds to 0 pixels gives a 1-pixel crop (the MEX divided
  by zero); a box filter centred exactly between two pixels takes the right one (the MEX's
  weights summed to zero there).

Resampling follows the original filters (separable, antialiased when shrinking: the kernel is
stretched by the shrink factor, weights normalised to sum 1, taps beyond the image border
read the edge pixel; box, bilinear, bicubic (Keys, ``a = -0.5``), lanczos2 and lanczos3).
Each axis is a sparse matrix of those weights, applied in float32 (vertical pass, then
horizontal) by SciPy's CSR kernel, which releases the GIL.  A crop that is not resized is
copied exactly, so an image read without options equals its decoded pixels.  At an exact tie
(a box filter centred between two pixels) the right pixel is taken.

Decoder and resampler choice, measured on this project's 2-core machine (CPU time per image,
best of 8 rounds of 32 generated 500 x 375 photo-like JPEGs, quality 90, 4:2:0; see
``benchmarks/README.md``):

========================================================  ===========  ===============
step                                                      ms / image   releases GIL
========================================================  ===========  ===============
simplejpeg (libjpeg-turbo) into a reused buffer           0.75         yes
simplejpeg into a new array (page faults)                 0.99         yes
Pillow ``Image.open(...).load()``                         0.85         per 64 KB chunk
Pillow with ``draft`` to 1/2 scale                        0.84         per 64 KB chunk
simplejpeg with DCT scaling to 1/2                        0.65         yes
resample 336 x 336 x 3 -> 224 x 224: SciPy CSR, buffers   0.68         yes
the same, SciPy CSR with fresh arrays                     2.4          yes
the same, Pillow ``'F'`` planes (+ plane conversion)      0.74         no (Pillow 13)
the same, Pillow 8-bit ``'RGB'`` (rounds, clips)          0.54         yes
the same, torch ``interpolate(antialias=True)``           0.60         yes
the same, NumPy gathers                                   2.5          yes
========================================================  ===========  ===============

So JPEGs are decoded by simplejpeg when it is installed (one call, into a per-thread
buffer), everything else -- CMYK/YCCK JPEGs, PNG and other formats, or a JPEG simplejpeg
rejects -- by Pillow (``Image.convert('RGB')``); the two give identical pixels for 4:4:4,
4:2:2, 4:2:0, progressive and greyscale JPEGs.  ``draft`` gains little at 1/2 (entropy
decoding dominates) and is off by default.  16-bit greyscale PNGs are scaled by 255/65535.
Pillow's float resampler is exact but holds the GIL, which capped two threads at 1.6x a
Pillow loop; torch's antialiased interpolation cannot take an arbitrary crop box.  Fresh
memory is costly here, so the resampling works in per-thread buffers and packs are allocated
by NumPy (huge pages: writing a 224 x 224 image cost 0.05 instead of 0.24 ms).
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import io
import math
import numbers
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

import scipy.sparse

try:  # libjpeg-turbo through simplejpeg: the fastest decoder measured (see above)
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - optional dependency
    _simplejpeg = None

try:  # SciPy's CSR x dense kernel, writing into our buffers (see _accumulate)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a SciPy without it: the public interface
    _csr_matvecs = None

__all__ = ["vl_imreadjpeg", "ImageReadWarning", "INTERPOLATIONS"]

INTERPOLATIONS = ("box", "bilinear", "bicubic", "lanczos2", "lanczos3")
_SUPPORT = {"box": 0.5, "bilinear": 1.0, "bicubic": 2.0, "lanczos2": 2.0, "lanczos3": 3.0}
Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


class ImageReadWarning(UserWarning):
    """An image of a batch could not be read or decoded; its slot is ``None`` (zeros if packed).

    ``index`` is its position in the batch and ``name`` its path (or a description of bytes).
    """

    def __init__(self, message: str, index: Optional[int] = None, name: Optional[str] = None):
        super().__init__(message)
        self.index = index
        self.name = name


class _DecodeError(Exception):
    """Reading or decoding one file failed (reported as a warning, not raised)."""


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    resize: Optional[Tuple[int, ...]]
    pack: bool
    device: torch.device
    average: Tuple[float, float, float]
    average_image: Optional[np.ndarray]       # 3 x H x W float32 (compared by content)
    crop_anisotropy: Tuple[float, float]
    crop_size: Tuple[float, float]
    crop_location: str
    flip: bool
    brightness: Tuple[float, ...]             # 3 x 3 matrix B, row-major
    contrast: float
    saturation: float
    interpolation: str
    draft: bool

    def key(self) -> tuple:
        avg = None if self.average_image is None \
            else hashlib.blake2b(self.average_image.tobytes(), digest_size=16).digest()
        return (self.resize, self.pack, str(self.device), self.average, avg,
                self.crop_anisotropy, self.crop_size, self.crop_location, self.flip,
                self.brightness, self.contrast, self.saturation, self.interpolation, self.draft)

    @property
    def colour(self) -> bool:
        """Whether any colour step (average, brightness, contrast, saturation) is on."""
        return self.average_image is not None or any(self.average) \
            or any(self.brightness) or self.contrast > 0 or self.saturation > 0

    @property
    def random(self) -> bool:
        """Whether any option draws random numbers (else no generator is touched)."""
        lo, hi = self.crop_anisotropy
        return (lo > 0 and hi > 0 and lo != hi) or self.crop_size[0] != self.crop_size[1] \
            or self.crop_location == "random" or self.flip or self.contrast > 0 \
            or self.saturation > 0 or any(self.brightness)


def _numbers(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected numbers, got {value!r}") from None
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: expected finite numbers, got {value!r}")
    return v


def _range(value: Any, name: str, hi: Optional[float]) -> Tuple[float, float]:
    """Scalar or ``(min, max)`` with ``0 <= min <= max (<= hi)``."""
    v = _numbers(value, name).ravel()
    if v.size not in (1, 2):
        raise ValueError(f"{name}: expected a number or (min, max), got {value!r}")
    lo, up = float(v[0]), float(v[-1])
    if lo < 0 or lo > up or (hi is not None and up > hi):
        bound = f" <= {hi:g}" if hi is not None else ""
        raise ValueError(f"{name}: expected 0 <= min <= max{bound}, got {value!r}")
    return lo, up


def _unit(value: Any, name: str) -> float:
    v = _numbers(value, name).ravel()
    if v.size != 1 or not 0 <= v[0] <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(v[0])


def _resize_option(value: Any) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    v = _numbers(value, "resize").ravel()
    if v.size not in (1, 2) or np.any(v < 1) or np.any(v != np.round(v)):
        raise ValueError(f"resize: expected a positive integer S (shorter side) or (H, W), "
                         f"got {value!r}")
    return tuple(int(x) for x in v)


def _brightness(value: Any) -> Tuple[float, ...]:
    v = _numbers(value, "brightness")
    if v.size == 1:
        b = np.eye(3) * float(v.ravel()[0])
    elif v.size == 3:
        b = np.diag(v.ravel())
    elif v.size == 9:
        b = v.reshape(3, 3)
    else:
        raise ValueError(f"brightness: expected a number, 3 numbers or a 3 x 3 matrix, "
                         f"got shape {v.shape}")
    return tuple(float(x) for x in b.ravel())


def _average(value: Any, resize) -> Tuple[Tuple[float, float, float], Optional[np.ndarray]]:
    """``subtract_average``: a colour (1 or 3 numbers) or a 3 x H x W average image."""
    if value is None:
        return (0.0, 0.0, 0.0), None
    arr = _numbers(value, "subtract_average")
    if arr.size in (1, 3):
        v = arr.ravel()
        return (float(v[0]), float(v[min(1, v.size - 1)]), float(v[min(2, v.size - 1)])), None
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if resize is None or len(resize) != 2:
        raise ValueError("subtract_average: an average image needs resize=(H, W) to fix the "
                         f"output size; got an array of shape {arr.shape} and "
                         f"resize={resize!r}")
    if arr.shape != (3,) + tuple(resize):
        raise ValueError(f"subtract_average: expected an RGB 3-vector or a 3 x {resize[0]} x "
                         f"{resize[1]} average image, got shape {np.shape(value)}")
    return (0.0, 0.0, 0.0), np.ascontiguousarray(arr, dtype=np.float32)


def _device(device: Any, gpu: bool) -> torch.device:
    if gpu and device is None:
        device = "cuda"
    try:
        dev = torch.device("cpu" if device is None else device)
    except (TypeError, RuntimeError):
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device: CUDA is not available, cannot return images on {dev}")
    return dev


_CANONICAL = ("num_threads", "prefetch", "verbose", "resize", "pack", "gpu", "device",
              "subtract_average", "crop_anisotropy", "crop_size", "crop_location", "flip",
              "brightness", "contrast", "saturation", "interpolation", "draft", "seed",
              "generator")
_ALIASES = {name.replace("_", ""): name for name in _CANONICAL}


def _merge_aliases(explicit: dict, extra: dict) -> dict:
    """Fold MATLAB-style option names (``NumThreads``, ``CropSize``) into ``explicit``."""
    for name, value in extra.items():
        canon = _ALIASES.get(name.replace("_", "").lower())
        if canon is None:
            raise TypeError(f"vl_imreadjpeg: unknown option {name!r}; expected one of "
                            f"{', '.join(_CANONICAL)}")
        explicit[canon] = value
    return explicit


# ----------------------------------------------------------------------------- decoding


def _read(src: Source) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError as e:
            raise _DecodeError(e.strerror or str(e)) from None
    if not data:
        raise _DecodeError("the file is empty")
    return data


def _is_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8"


def _draft_shape(h: int, w: int, geometry: "_Geometry") -> Tuple[int, int]:
    """Smallest JPEG decode size (1/2, 1/4, 1/8) whose crop still has at least twice the
    output's pixels along each side (Pillow's ``thumbnail`` keeps the same margin), so that
    the final resampling still filters."""
    factor = 1
    while factor < 8 and geometry.crop_h / (2 * factor) >= 2 * geometry.out_h \
            and geometry.crop_w / (2 * factor) >= 2 * geometry.out_w:
        factor *= 2
    return math.ceil(h / factor), math.ceil(w / factor)


def _decode_pillow(data: bytes, draft: Optional[Tuple[int, int]] = None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        if draft is not None:
            im.draft(None, (draft[1], draft[0]))
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):      # 16-bit: scale to [0, 255]
            a = np.asarray(im, dtype=np.float32) * np.float32(255.0 / 65535.0)
            return a[:, :, None]
        if im.mode == "F":
            return np.asarray(im, dtype=np.float32)[:, :, None]
        if im.mode in ("L", "1"):
            return np.asarray(im.convert("L"))[:, :, None]
        return np.asarray(im.convert("RGB"))


def _header(data: bytes) -> Tuple[int, int]:
    """Image height and width from the file header, without decoding the pixels."""
    if _simplejpeg is not None and _is_jpeg(data):
        try:
            h, w, _, _ = _simplejpeg.decode_jpeg_header(data)
            return h, w
        except ValueError:
            pass
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.height, im.width
    except Exception as e:  # noqa: BLE001 - any Pillow failure means "not an image"
        raise _DecodeError(_pil_message(e)) from None


def _pil_message(e: Exception) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "not an image file in a format Pillow knows"
    return str(e) or type(e).__name__


_LOCAL = threading.local()


def _buffer(size: int) -> np.ndarray:
    """This thread's reusable decode buffer: a fresh one per image costs page faults that
    made decoding 30% slower."""
    buf = getattr(_LOCAL, "buffer", None)
    if buf is None or buf.size < size:
        buf = _LOCAL.buffer = np.empty(max(size, 1 << 20), np.uint8)
    return buf


def _decode(data: bytes, draft: Optional[Tuple[int, int]]) -> np.ndarray:
    """H x W x C (C = 1 or 3) uint8 or float32 array; raises :class:`_DecodeError`.  A JPEG
    decoded by simplejpeg lives in this thread's buffer until its next decode."""
    first_error = None
    if _simplejpeg is not None and _is_jpeg(data):
        try:
            kw = {} if draft is None else {"min_height": draft[0], "min_width": draft[1]}
            h, w, space, _ = _simplejpeg.decode_jpeg_header(data, **kw)
            if space in ("YCbCr", "RGB", "Gray"):
                gray = space == "Gray"
                buf = _buffer(h * w * (1 if gray else 3))
                return _simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB",
                                               buffer=buf, **kw)
        except ValueError as e:   # corrupt, truncated: let Pillow try before giving up
            first_error = str(e)
    try:
        return _decode_pillow(data, draft)
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
        raise _DecodeError(first_error or _pil_message(e)) from None


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Geometry:
    out_h: int
    out_w: int
    crop_h: int
    crop_w: int
    off_y: int
    off_x: int
    flip: bool


def _round(x: float) -> int:
    """C's ``round`` (halves away from zero) for non-negative ``x``."""
    return int(math.floor(x + 0.5))


def _output_size(h: int, w: int, resize: Optional[Tuple[int, ...]]) -> Tuple[int, int]:
    if resize is None:
        return h, w
    if len(resize) == 1:
        scale = max(resize[0] / w, resize[0] / h)
        return max(1, _round(scale * h)), max(1, _round(scale * w))
    return resize[0], resize[1]


def _geometry(h: int, w: int, opts: _Options, z: np.ndarray) -> _Geometry:
    """Output size, crop and flip of one image (U-IJ-4, 7-10); ``z`` are 5 uniform variates
    (anisotropy, size, x, y, flip) in [0, 1)."""
    out_h, out_w = _output_size(h, w, opts.resize)
    amin, amax = opts.crop_anisotropy
    if amin == 0 or amax == 0:          # stretch: the crop has the input's aspect
        ratio = (w / h) / (out_w / out_h)
    elif amin == amax:
        ratio = amin
    else:                               # log-uniform in [amin, amax]
        ratio = math.exp(z[0] * (math.log(amin) - math.log(amax)) + math.log(amax))
    crop_w = out_w * math.sqrt(ratio)
    crop_h = out_h / math.sqrt(ratio)
    smin, smax = opts.crop_size
    size = smax if smin == smax else math.sqrt(z[1] * (smin ** 2 - smax ** 2) + smax ** 2)
    scale = min(w / crop_w, h / crop_h) * size
    cw = max(1, min(_round(crop_w * scale), w))
    ch = max(1, min(_round(crop_h * scale), h))
    dx, dy = w - cw, h - ch
    if opts.crop_location == "center":
        ox, oy = dx // 2, dy // 2
    else:
        ox, oy = min(int(z[2] * (dx + 1)), dx), min(int(z[3] * (dy + 1)), dy)
    return _Geometry(out_h, out_w, ch, cw, oy, ox, bool(opts.flip and z[4] > 0.5))


# ----------------------------------------------------------------------------- resampling


def _kernel(name: str, d: np.ndarray) -> np.ndarray:
    a = np.abs(d)
    if name == "box":
        return ((d >= -0.5) & (d < 0.5)).astype(np.float64)
    if name == "bilinear":
        return np.maximum(0.0, 1.0 - a)
    if name == "bicubic":
        return np.where(a <= 1, (1.5 * a - 2.5) * a * a + 1,
                        np.where(a <= 2, ((-0.5 * a + 2.5) * a - 4) * a + 2, 0.0))
    n = 2.0 if name == "lanczos2" else 3.0
    return np.where(a < n, np.sinc(d) * np.sinc(d / n), 0.0)


def _taps(out: int, size: int, crop: float, offset: float,
          interpolation: str) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and weights (``out x T``) of the original's 1-D resampling of the crop
    ``[offset, offset + crop)`` of a ``size``-long axis to ``out`` samples: output ``v`` sits
    at ``u = alpha v + (alpha - 1)/2 + offset`` (``alpha = crop/out``), the kernel is stretched
    by ``alpha`` when shrinking, weights sum to 1, indices outside the axis use the edge."""
    alpha = crop / out
    stretch = max(alpha, 1.0)
    support = _SUPPORT[interpolation] * stretch
    u = alpha * np.arange(out) + 0.5 * (alpha - 1) + offset
    count = int(math.floor(2 * support)) + 2
    k = np.floor(u - support).astype(np.int64)[:, None] + 1 + np.arange(count)[None, :]
    if interpolation == "box" and float(crop).is_integer() and float(offset).is_integer():
        # Exactly, in integers (2 out u = crop (2v + 1) - out + 2 out offset), so that a box
        # centred between two pixels always takes the right one.
        two_out_u = int(crop) * (2 * np.arange(out) + 1) - out + 2 * out * int(offset)
        r = two_out_u[:, None] - 2 * out * k
        wide = max(int(crop), out)
        h = ((r >= -wide) & (r < wide)).astype(np.float64)
    else:
        h = _kernel(interpolation, (u[:, None] - k) / stretch)
    h /= h.sum(axis=1, keepdims=True)
    return np.clip(k, 0, size - 1), h.astype(np.float32)


@dataclass(frozen=True)
class _Axis:
    """One axis of a resampling as a sparse (CSR) ``out x (hi - lo)`` matrix over the input
    range ``[lo, hi)``: row ``v`` holds the taps of output ``v``."""
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    lo: int
    hi: int


@functools.lru_cache(maxsize=1024)
def _axis(out: int, size: int, crop: float, offset: float, interpolation: str,
          flip: bool) -> _Axis:
    k, w = _taps(out, size, crop, offset, interpolation)
    if flip:
        k, w = k[::-1], w[::-1]
    lo, hi = int(k.min()), int(k.max()) + 1
    taps = k.shape[1]
    return _Axis(np.arange(0, out * taps + 1, taps, dtype=np.int32),
                 np.ascontiguousarray(k - lo, dtype=np.int32).ravel(),
                 np.ascontiguousarray(w, dtype=np.float32).ravel(), lo, hi)


def _accumulate(axis: _Axis, x: np.ndarray, y: np.ndarray) -> None:
    """``y += A x`` for the axis matrix ``A``, ``x`` (hi - lo) x V and ``y`` out x V, both
    C-contiguous float32.  SciPy's CSR kernel releases the GIL, so reader threads overlap."""
    if _csr_matvecs is not None:
        _csr_matvecs(y.shape[0], x.shape[0], x.shape[1], axis.indptr, axis.indices, axis.data,
                     x.ravel(), y.ravel())
    else:  # pragma: no cover - the same through the public (allocating) interface
        y += scipy.sparse.csr_matrix((axis.data, axis.indices, axis.indptr),
                                     shape=(y.shape[0], x.shape[0])) @ x


def _scratch(name: str, size: int) -> np.ndarray:
    """A reusable float32 buffer of this thread (fresh temporaries cost page faults: 3.5x
    slower resampling, measured)."""
    bufs = getattr(_LOCAL, "scratch", None)
    if bufs is None:
        bufs = _LOCAL.scratch = {}
    buf = bufs.get(name)
    if buf is None or buf.size < size:
        buf = bufs[name] = np.empty(max(size, 1 << 16), np.float32)
    return buf[:size]


def _resize(img: np.ndarray, g: _Geometry, box: Tuple[float, float, float, float],
            interpolation: str, out: np.ndarray) -> None:
    """Write the crop ``box = (y0, x0, h, w)`` of ``img`` (H x W x C, C = 1 or 3) resampled to
    ``out`` (3 x Ho x Wo; one channel is repeated), flipped horizontally if ``g.flip``:
    a vertical then a horizontal pass, each a sparse matrix product."""
    y0, x0, ch, cw = box
    if (ch, cw) == (g.out_h, g.out_w) and float(y0).is_integer() and float(x0).is_integer():
        y0, x0 = int(y0), int(x0)                    # a plain crop: an exact copy
        crop = img[y0:y0 + g.out_h, x0:x0 + g.out_w].transpose(2, 0, 1)
        out[...] = crop[:, :, ::-1] if g.flip else crop
        return
    ay = _axis(g.out_h, img.shape[0], ch, y0, interpolation, False)
    ax = _axis(g.out_w, img.shape[1], cw, x0, interpolation, g.flip)
    region = img[ay.lo:ay.hi, ax.lo:ax.hi]
    rows, cols, chans = region.shape
    x = _scratch("x", region.size).reshape(region.shape)
    np.copyto(x, region)
    t1 = _scratch("t1", g.out_h * cols * chans).reshape(g.out_h, cols * chans)
    t1.fill(0)
    _accumulate(ay, x.reshape(rows, cols * chans), t1)
    t1t = _scratch("t1t", t1.size).reshape(cols, g.out_h, chans)
    np.copyto(t1t, t1.reshape(g.out_h, cols, chans).transpose(1, 0, 2))
    t2 = _scratch("t2", g.out_w * g.out_h * chans).reshape(g.out_w, g.out_h * chans)
    t2.fill(0)
    _accumulate(ax, t1t.reshape(cols, g.out_h * chans), t2)
    out[...] = t2.reshape(g.out_w, g.out_h, chans).transpose(2, 1, 0)


# ----------------------------------------------------------------------------- colour


def _colour(x: np.ndarray, opts: _Options, b_shift: np.ndarray, contrast: float,
            saturation: float) -> None:
    """In place on the 3 x H x W image ``x``: average subtraction and colour jitter."""
    if opts.average_image is not None:
        x -= opts.average_image
    dv = b_shift - np.asarray(opts.average)
    if contrast != 1.0:
        dv = dv + (1.0 - contrast) * x.mean(axis=(1, 2), dtype=np.float64)
    dv = saturation * dv + (1.0 - saturation) * dv.mean()
    a = contrast * saturation
    b = contrast * (1.0 - saturation) / 3.0
    if b != 0.0:
        grey = x.sum(axis=0)
        grey *= np.float32(b)
    if a != 1.0:
        x *= np.float32(a)
    if b != 0.0:
        x += grey
    if np.any(dv != 0):
        x += dv.astype(np.float32)[:, None, None]


# ----------------------------------------------------------------------------- one image


@dataclass(frozen=True)
class _Jitter:
    uniform: np.ndarray      # (anisotropy, size, x, y, flip, saturation, contrast) in [0, 1)
    normal: np.ndarray       # w ~ N(0, I_3) of the brightness shift


_NO_JITTER = _Jitter(np.zeros(7), np.zeros(3))


def _load(src: Source, opts: _Options, jitter: _Jitter,
          out: Optional[np.ndarray]) -> Tuple[np.ndarray, _Geometry, Tuple[int, int]]:
    """Read one image into ``out`` (3 x Ho x Wo, or a new array); :class:`_DecodeError` if the
    file cannot be read or decoded."""
    data = _read(src)
    h, w = _header(data)
    g = _geometry(h, w, opts, jitter.uniform)
    draft = _draft_shape(h, w, g) if opts.draft and _is_jpeg(data) else None
    if draft == (h, w):
        draft = None
    img = _decode(data, draft)
    sy, sx = img.shape[0] / h, img.shape[1] / w
    box = (g.off_y * sy, g.off_x * sx, g.crop_h * sy, g.crop_w * sx)
    if draft is None and img.shape[:2] != (h, w):
        raise _DecodeError(f"decoded {img.shape[1]} x {img.shape[0]} pixels, the header "
                           f"says {w} x {h}")
    if out is None:
        out = np.empty((3, g.out_h, g.out_w), np.float32)
    _resize(img, g, box, opts.interpolation, out)
    if opts.colour:
        u = jitter.uniform
        b_shift = np.asarray(opts.brightness).reshape(3, 3) @ jitter.normal
        _colour(out, opts, b_shift, 1.0 + opts.contrast * (2.0 * u[6] - 1.0),
                1.0 + opts.saturation * (2.0 * u[5] - 1.0))
    return out, g, (h, w)


# ----------------------------------------------------------------------------- batches


def _draw(n: int, opts: _Options, seed, generator) -> List[_Jitter]:
    """Per-image random variates, drawn in the calling thread so that the result does not
    depend on the number of threads."""
    if not opts.random:
        return [_NO_JITTER] * n
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    if isinstance(generator, np.random.Generator):
        uni, nor = generator.random((n, 7)), generator.standard_normal((n, 3))
    else:
        uni = torch.rand((n, 7), generator=generator, dtype=torch.float64).numpy()
        nor = torch.randn((n, 3), generator=generator, dtype=torch.float64).numpy()
    return [_Jitter(uni[i], nor[i]) for i in range(n)]


def _source_key(src: Source) -> Any:
    if isinstance(src, (bytes, bytearray, memoryview)):
        return ("bytes", id(src), len(src))
    return os.fspath(src)


def _name(src: Source, i: int) -> str:
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes, item {i}>"
    return os.fspath(src)


class _Batch:
    """The images of one call.  ``min(threads, N)`` pool tasks take the images in order, one
    at a time (as the MEX's readers borrow items); ``result()`` waits for them."""

    def __init__(self, key, sources: Sequence[Source], opts: _Options,
                 jitters: List[_Jitter], executor: cf.Executor, threads: int, verbose: int):
        self.key = key
        self.sources = sources
        self.opts = opts
        self.jitters = jitters
        self.verbose = verbose
        n = len(sources)
        self.errors: List[Optional[str]] = [None] * n
        self.failures: List[Optional[BaseException]] = [None] * n
        self.images: List[Optional[torch.Tensor]] = [None] * n
        self.info: List[Optional[str]] = [None] * n
        self.pack = self.slots = None
        if opts.pack:   # not zeroed here: the workers touch the pages in parallel
            shape = (n, 3) + tuple(opts.resize)
            if opts.device.type == "cuda":   # pinned, for an asynchronous copy
                self.pack = torch.empty(shape, dtype=torch.float32, pin_memory=True)
            else:   # NumPy's allocator (huge pages): 4x fewer page faults, measured
                self.pack = torch.from_numpy(np.empty(shape, np.float32))
            self.slots = self.pack.numpy()
        self.moved: Any = None
        self.move_error: Optional[BaseException] = None
        self.cancelled = False
        self._next = iter(range(n))      # next() on it is atomic under the GIL
        self._left = n
        self._lock = threading.Lock()
        self._finished = threading.Event()
        if n == 0:
            self._finish()
        for _ in range(min(threads, n)):
            executor.submit(self._work)

    def _work(self) -> None:
        for i in self._next:
            if self.cancelled:
                return
            try:
                self._one(i)
            except BaseException as e:  # noqa: BLE001 - re-raised by result()
                self.failures[i] = e
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self._finish()

    def _one(self, i: int) -> None:
        out = None if self.slots is None else self.slots[i]
        try:
            arr, g, (h, w) = _load(self.sources[i], self.opts, self.jitters[i], out)
        except _DecodeError as e:
            self.errors[i] = str(e)
            if out is not None:
                out[...] = 0
            return
        if self.slots is None:
            self.images[i] = torch.from_numpy(arr)
        if self.verbose >= 2:
            flipped = " flipped" if g.flip else ""
            self.info[i] = (f"{_name(self.sources[i], i)}: {w} x {h} -> crop {g.crop_w} x "
                            f"{g.crop_h} at ({g.off_x}, {g.off_y}){flipped} -> {g.out_w} x "
                            f"{g.out_h}")

    def _finish(self) -> None:
        """Runs once, after the last image: the copy to the device overlaps a prefetch."""
        try:
            dev = self.opts.device
            if self.pack is not None:
                self.moved = self.pack.to(dev, non_blocking=True) if dev.type != "cpu" \
                    else self.pack
            else:
                self.moved = [None if t is None else t.to(dev, non_blocking=True)
                              for t in self.images] if dev.type != "cpu" else self.images
        except BaseException as e:  # noqa: BLE001 - re-raised by result()
            self.move_error = e
        finally:
            self._finished.set()

    def cancel(self) -> None:
        self.cancelled = True

    def result(self):
        self._finished.wait()
        for e in self.failures:
            if e is not None:
                raise e                  # an unexpected error of a worker
        if self.move_error is not None:
            raise self.move_error
        for msg in self.info:
            if msg is not None:
                print(f"vl_imreadjpeg: {msg}", flush=True)
        for i, err in enumerate(self.errors):
            if err is not None:
                name = _name(self.sources[i], i)
                warnings.warn(ImageReadWarning(f"vl_imreadjpeg: could not read image '{name}': "
                                               f"{err}", i, name), stacklevel=3)
        return self.moved


class _Reader:
    """The persistent pool of reader threads and the prefetched batch (module state, as the
    MEX's)."""

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):   # a forked child has none of the threads
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.executor: Optional[cf.ThreadPoolExecutor] = None
        self.size = 0
        self.pending: Optional[_Batch] = None

    def pool(self, num_threads: Optional[int]) -> cf.ThreadPoolExecutor:
        want = (self.size or 1) if num_threads is None else num_threads
        if self.executor is None or want != self.size:
            if self.executor is not None:
                self.executor.shutdown(wait=False)     # queued images still get read
            self.executor = cf.ThreadPoolExecutor(want, thread_name_prefix="vl_imreadjpeg")
            self.size = want
        return self.executor


_READER = _Reader()


def _sources(files: Any) -> List[Source]:
    if isinstance(files, (str, os.PathLike, bytes, bytearray, memoryview)):
        return [files]
    if isinstance(files, np.ndarray):
        files = files.ravel().tolist()
    try:
        items = list(files)
    except TypeError:
        raise TypeError(f"files: expected a sequence of paths (or encoded images as bytes), "
                        f"got {type(files).__name__}") from None
    for i, f in enumerate(items):
        if not isinstance(f, (str, os.PathLike, bytes, bytearray, memoryview)):
            raise TypeError(f"files: entry {i} is {type(f).__name__} {f!r}, expected a path "
                            f"or bytes")
    return items


def vl_imreadjpeg(files: Union[Source, Sequence[Source]], *,
                  num_threads: Optional[int] = None, prefetch: bool = False, verbose: int = 0,
                  resize: Union[None, int, Sequence[int]] = None, pack: bool = False,
                  device: Union[None, str, torch.device] = None, gpu: bool = False,
                  subtract_average: Any = None,
                  crop_anisotropy: Union[float, Sequence[float]] = 1.0,
                  crop_size: Union[float, Sequence[float]] = 1.0,
                  crop_location: str = "center", flip: bool = False,
                  brightness: Any = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                  interpolation: str = "bilinear", draft: bool = False,
                  seed: Optional[int] = None, generator: Any = None,
                  **matlab_options: Any):
    """Read (and crop, resize, jitter) a batch of images with a pool of threads.

    ``images = vl_imreadjpeg(files, ...)``: ``files`` is a sequence of paths (or of encoded
    images as ``bytes``).  Returns a list of ``3 x H x W`` float32 tensors in ``[0, 255]``
    (``None`` for an unreadable file), or with ``pack=True`` one ``N x 3 x H x W`` tensor;
    ``None`` when ``prefetch=True``.  See the module documentation for every option.
    """
    o = _merge_aliases(dict(num_threads=num_threads, prefetch=prefetch, verbose=verbose,
                            resize=resize, pack=pack, device=device, gpu=gpu,
                            subtract_average=subtract_average, crop_anisotropy=crop_anisotropy,
                            crop_size=crop_size, crop_location=crop_location, flip=flip,
                            brightness=brightness, contrast=contrast, saturation=saturation,
                            interpolation=interpolation, draft=draft, seed=seed,
                            generator=generator), matlab_options)
    sources = _sources(files)
    threads = o["num_threads"]
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
            raise ValueError(f"num_threads: expected a positive integer, got {threads!r}")
        o["num_threads"] = int(threads)
    rsz = _resize_option(o["resize"])
    if o["pack"] and (rsz is None or len(rsz) != 2):
        raise ValueError(f"pack: needs resize=(H, W) so that all images have one size, "
                         f"got resize={o['resize']!r}")
    if o["seed"] is not None and o["generator"] is not None:
        raise ValueError("seed, generator: give one of them, not both")
    gen = o["generator"]
    if gen is not None and not isinstance(gen, (torch.Generator, np.random.Generator)):
        raise TypeError(f"generator: expected a torch.Generator or numpy.random.Generator, "
                        f"got {type(gen).__name__}")
    if not isinstance(o["crop_location"], str) \
            or o["crop_location"].lower() not in ("center", "random"):
        raise ValueError(f"crop_location: expected 'center' or 'random', "
                         f"got {o['crop_location']!r}")
    if not isinstance(o["interpolation"], str) \
            or o["interpolation"].lower() not in INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {', '.join(INTERPOLATIONS)}; "
                         f"got {o['interpolation']!r}")
    average, average_image = _average(o["subtract_average"], rsz)
    opts = _Options(resize=rsz, pack=bool(o["pack"]), device=_device(o["device"], o["gpu"]),
                    average=average, average_image=average_image,
                    crop_anisotropy=_range(o["crop_anisotropy"], "crop_anisotropy", None),
                    crop_size=_range(o["crop_size"], "crop_size", 1.0),
                    crop_location=o["crop_location"].lower(), flip=bool(o["flip"]),
                    brightness=_brightness(o["brightness"]),
                    contrast=_unit(o["contrast"], "contrast"),
                    saturation=_unit(o["saturation"], "saturation"),
                    interpolation=o["interpolation"].lower(), draft=bool(o["draft"]))
    seed_key = o["seed"] if o["seed"] is not None else gen   # a generator: by identity
    key = (tuple(_source_key(s) for s in sources), opts.key(), seed_key)
    verbose = int(o["verbose"])

    with _READER.lock:
        executor = _READER.pool(o["num_threads"])
        batch = _READER.pending
        _READER.pending = None
        if batch is not None and batch.key != key:
            batch.cancel()
            batch = None
        if batch is None:
            batch = _Batch(key, sources, opts, _draw(len(sources), opts, o["seed"], gen),
                           executor, _READER.size, verbose)
        if o["prefetch"]:
            _READER.pending = batch
    if verbose:
        print(f"vl_imreadjpeg: {len(sources)} images, {_READER.size} threads, "
              f"prefetch={bool(o['prefetch'])}, resize={rsz}, pack={opts.pack}, "
              f"device={opts.device}", flush=True)
    if o["prefetch"]:
        return None
    return batch.result()
