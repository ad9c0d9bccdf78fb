"""Test images and a direct NumPy reference of vl_imreadjpeg's geometry and resampling,
written from FEATURES.md 6.1 and the original's filter definitions (not from the module)."""
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CIFAR_ZIP = SHARED / "cifar10-test-jpeg" / "cifar10_test_jpeg.zip"


def smooth_rgb(h, w, seed=0, channels=3):
    """A photo-like uint8 image: a smooth colour field plus mild noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 8, 2), max(w // 8, 2), channels), dtype=np.uint8)
    mode = "RGB" if channels == 3 else "L"
    base = Image.fromarray(small.squeeze()).resize((w, h), Image.Resampling.BICUBIC)
    a = np.asarray(base.convert(mode), dtype=np.float64).reshape(h, w, channels)
    a += rng.normal(0, 6, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def save(path, arr, **kw):
    arr = arr.squeeze() if arr.ndim == 3 and arr.shape[2] == 1 else arr
    Image.fromarray(arr).save(path, **kw)
    return os.fspath(path)


def pil_rgb(path):
    """Pillow's decode of a file, as 3 x H x W float32 (the acceptance reference)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy()


# --------------------------------------------------------------------- the original's filters

def _kernel(name, d):
    a = np.abs(d)
    if name == "box":
        return ((-0.5 <= d) & (d < 0.5)).astype(float)
    if name == "bilinear":
        return np.maximum(0.0, 1.0 - a)
    if name == "bicubic":
        return np.where(a <= 1, 1.5 * a ** 3 - 2.5 * a ** 2 + 1,
                        np.where(a <= 2, -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2, 0.0))
    n = {"lanczos2": 2.0, "lanczos3": 3.0}[name]
    eps = 1e-5   # the MEX's regularised form of sinc(d) sinc(d / n)
    h = (np.sin(np.pi * d) * np.sin(np.pi * d / n) + eps) / (np.pi ** 2 * d * d / n + eps)
    return np.where(a < n, h, 0.0)


SUPPORT = {"box": 0.5, "bilinear": 1, "bicubic": 2, "lanczos2": 2, "lanczos3": 3}


def ref_weights(out, size, crop, offset, interp):
    """Dense out x size matrix: output v at u = alpha v + (alpha - 1)/2 + offset, the kernel
    stretched by alpha when shrinking, normalised, samples beyond the border on the edge."""
    alpha = crop / out
    st = max(alpha, 1.0)
    u = alpha * np.arange(out) + 0.5 * (alpha - 1) + offset
    reach = int(math.ceil(SUPPORT[interp] * st)) + 2
    k = np.arange(-reach, size + reach)
    if interp == "box":   # exact rationals: a tie between two pixels takes the right one
        a, s = Fraction(crop, out), max(Fraction(crop, out), Fraction(1))
        h = np.array([[1.0 if -Fraction(1, 2) <= (a * v + (a - 1) / 2 + offset - kk) / s
                       < Fraction(1, 2) else 0.0 for kk in k] for v in range(out)])
    else:
        h = _kernel(interp, (u[:, None] - k[None, :]) / st)
    m = np.zeros((out, size))
    cols = np.clip(k, 0, size - 1)
    for j in range(len(k)):
        m[:, cols[j]] += h[:, j]
    return m / m.sum(axis=1, keepdims=True)


def ref_resize(img, out_h, out_w, ch, cw, oy, ox, interp):
    """img: C x H x W float; the crop (oy, ox, ch, cw) resampled to C x out_h x out_w."""
    my = ref_weights(out_h, img.shape[1], ch, oy, interp)
    mx = ref_weights(out_w, img.shape[2], cw, ox, interp)
    return np.einsum("vh,chw->cvw", my, img.astype(np.float64)) @ mx.T


def output_size(h, w, resize):
    if resize is None:
        return h, w
    if np.size(resize) == 1:
        s = float(np.ravel(resize)[0])
        scale = max(s / w, s / h)
        return max(1, int(math.floor(scale * h + 0.5))), max(1, int(math.floor(scale * w + 0.5)))
    return tuple(resize)


def crop_box(h, w, out_h, out_w, size=1.0, ratio=1.0, zx=None, zy=None):
    """(ch, cw, oy, ox) of U-IJ-7..9 for a given crop size and anisotropy ratio; a centre crop
    unless the uniform variates zx, zy are given."""
    cw0, ch0 = out_w * math.sqrt(ratio), out_h / math.sqrt(ratio)
    scale = min(w / cw0, h / ch0) * size
    cw = max(1, min(int(math.floor(cw0 * scale + 0.5)), w))
    ch = max(1, min(int(math.floor(ch0 * scale + 0.5)), h))
    if zx is None:
        return ch, cw, (h - ch) // 2, (w - cw) // 2
    return ch, cw, min(int(zy * (h - ch + 1)), h - ch), min(int(zx * (w - cw + 1)), w - cw)
