"""matconvnet.models.preprocess and imresize against NumPy reference computations.

imresize: MATLAB's documented values (``imresize([1 2 3 4], [1 2])``), a direct per-pixel
NumPy evaluation of MATLAB's resampling formulas (kernel, antialiasing width, centre
alignment, mirrored borders), and PIL's resampler of the same kernels away from the borders
(where only the border rule differs).  preprocess: each mode's steps computed by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from matconvnet.models import preprocess
from matconvnet.models.normalization import centre_crop_box, imresize, normalization_of


def _kernel(method):
    if method == "bilinear":
        return (lambda x: max(0.0, 1 - abs(x))), 2.0
    if method == "bicubic":
        def cubic(x):
            a = abs(x)
            if a <= 1:
                return 1.5 * a ** 3 - 2.5 * a ** 2 + 1
            if a <= 2:
                return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2
            return 0.0
        return cubic, 4.0
    if method == "lanczos3":
        def lanczos3(x):
            if abs(x) >= 3:
                return 0.0
            if x == 0:
                return 1.0
            return 3 * math.sin(math.pi * x) * math.sin(math.pi * x / 3) / (math.pi * x) ** 2
        return lanczos3, 6.0
    raise ValueError(method)


def _reference_1d(signal: np.ndarray, n_out: int, method: str, offset: int = 0,
                  extent=None, mirror: bool = True) -> np.ndarray:
    """One output sample at a time: MATLAB's imresize formulas along axis 0, for the window
    [offset, offset + extent) of the axis; beyond the axis mirrored or the edge repeated."""
    kernel, width = _kernel(method)
    n_in = signal.shape[0]
    s = n_out / (n_in if extent is None else extent)
    out = np.zeros((n_out,) + signal.shape[1:])
    for i in range(n_out):
        u = (i + 1) / s + 0.5 * (1 - 1 / s) + offset  # 1-based input coordinate
        w_eff = width / s if s < 1 else width
        total, acc = 0.0, 0.0
        for j in range(int(math.floor(u - w_eff / 2)), int(math.floor(u - w_eff / 2))
                       + int(math.ceil(w_eff)) + 2):
            k = s * kernel(s * (u - j)) if s < 1 else kernel(u - j)
            jj = j
            if mirror:
                while jj < 1 or jj > n_in:              # ... 2 1 | 1 2 ... n | n n-1 ...
                    jj = 1 - jj if jj < 1 else 2 * n_in + 1 - jj
            else:
                jj = min(max(jj, 1), n_in)
            acc = acc + k * signal[jj - 1]
            total += k
        out[i] = acc / total
    return out


def _reference(image: np.ndarray, size, method: str, box=None) -> np.ndarray:
    """imresize of the whole image (box None, mirrored borders), or vl_imreadjpeg's
    resampling of the window box = (top, left, h, w) (edge pixels repeated)."""
    top, left, h, w = box or (0, 0, None, None)
    a = _reference_1d(image.astype(np.float64), size[0], method, top, h, box is None)
    return _reference_1d(a.transpose(1, 0, 2), size[1], method, left, w,
                         box is None).transpose(1, 0, 2)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    # smooth structure plus noise, 37 x 53 x 3, uint8
    y, x = np.mgrid[0:37, 0:53]
    base = 127 + 60 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None] * [1, 0.5, -1]
    return np.clip(base + rng.normal(0, 20, (37, 53, 3)), 0, 255).astype(np.uint8)


def test_imresize_matlab_values():
    row = np.array([[1.0, 2, 3, 4]])
    # MATLAB: imresize([1 2 3 4], [1 2], 'bilinear') = [1.625 3.375]; bicubic (default)
    # = [1.4609375 3.5390625]
    np.testing.assert_allclose(imresize(row, (1, 2), "bilinear"), [[1.625, 3.375]])
    np.testing.assert_allclose(imresize(row, (1, 2)), [[1.4609375, 3.5390625]])
    np.testing.assert_allclose(imresize(row, (1, 2), "nearest"), [[2, 4]])


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "lanczos3"])
@pytest.mark.parametrize("size", [(20, 31), (37, 71), (64, 25), (5, 6)])
def test_imresize_matches_reference(photo, method, size):
    got = imresize(photo, size, method)
    assert got.shape == size + (3,) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(photo, size, method), rtol=0, atol=2e-3)


@pytest.mark.parametrize("method,pil", [("bilinear", Image.BILINEAR),
                                        ("bicubic", Image.BICUBIC),
                                        ("lanczos3", Image.LANCZOS)])
def test_imresize_interior_matches_pil(method, pil):
    rng = np.random.default_rng(1)
    a = (rng.random((90, 120)) * 255).astype(np.float32)
    for size in [(41, 53), (150, 170)]:
        ours = imresize(a, size, method)
        theirs = np.asarray(Image.fromarray(a, "F").resize(size[::-1], pil))
        m = 8  # PIL clips kernels at the border where MATLAB mirrors the image
        np.testing.assert_allclose(ours[m:-m, m:-m], theirs[m:-m, m:-m], rtol=0, atol=1e-3)


@pytest.mark.parametrize("method", ["nearest", "box", "bilinear", "bicubic", "lanczos2",
                                    "lanczos3"])
def test_imresize_constant_and_identity(photo, method):
    const = np.full((13, 17, 3), 42.5)
    np.testing.assert_allclose(imresize(const, (7, 29), method), 42.5, atol=1e-4)
    np.testing.assert_array_equal(imresize(photo, photo.shape[:2], method), photo)


def test_imresize_rejects_bad_arguments(photo):
    with pytest.raises(ValueError, match="interpolation"):
        imresize(photo, (4, 4), "spline")
    with pytest.raises(ValueError, match="size"):
        imresize(photo, (0, 4))
    with pytest.raises(ValueError, match="image"):
        imresize(np.zeros((2, 3, 4, 5)), (4, 4))


def _expected(a: np.ndarray, avg) -> torch.Tensor:
    return torch.from_numpy((a - avg).transpose(2, 0, 1)[None].astype(np.float32))


def test_demo_mode_resizes_whole_image_and_subtracts_colour(photo):
    colour = [104.0, 117.0, 123.0]
    meta = {"normalization": {"imageSize": [24, 20, 3], "interpolation": "bilinear",
                              "averageImage": torch.tensor(colour).reshape(3, 1, 1),
                              "keepAspect": True, "cropSize": 0.5}}
    x = preprocess(photo, meta)
    assert x.shape == (1, 3, 24, 20) and x.dtype == torch.float32
    ref = _reference(photo, (24, 20), "bilinear") - np.array(colour)
    np.testing.assert_allclose(x[0].numpy().transpose(1, 2, 0), ref, atol=2e-3)
    # the same from a list colour, a float image, a PIL image, the net / normalization dicts
    meta2 = {"normalization": dict(meta["normalization"], averageImage=colour)}
    for image, m in [(photo.astype(np.float64), meta), (Image.fromarray(photo), meta2),
                     (photo, {"layers": [], "meta": meta}),
                     (photo, meta["normalization"])]:
        torch.testing.assert_close(preprocess(image, m), x)


def test_demo_mode_default_bicubic_and_average_image(photo):
    avg = np.random.default_rng(2).random((3, 16, 16)).astype(np.float32) * 255
    meta = {"normalization": {"imageSize": [16, 16, 3], "averageImage": torch.from_numpy(avg)}}
    x = preprocess(photo, meta)
    ref = _reference(photo, (16, 16), "bicubic") - avg.transpose(1, 2, 0)
    np.testing.assert_allclose(x[0].numpy().transpose(1, 2, 0), ref, atol=2e-3)
    # an average image of another size is resized to the input size first
    big = {"normalization": {"imageSize": [16, 16, 3], "averageImage": torch.from_numpy(
        np.ascontiguousarray(imresize(avg.transpose(1, 2, 0), (40, 40)).transpose(2, 0, 1)))}}
    shrunk = imresize(big["normalization"]["averageImage"].numpy().transpose(1, 2, 0), (16, 16))
    torch.testing.assert_close(preprocess(photo, big),
                               _expected(imresize(photo, (16, 16)), shrunk))


def test_evaluate_mode_centre_crop_keep_aspect(photo):
    # 37 x 53 image, square output: the largest square (37) times 0.875 = 32.4 -> 32, centred
    norm = {"imageSize": [10, 10, 3], "cropSize": 0.875, "keepAspect": True,
            "interpolation": "bicubic", "averageImage": [1.0, 2.0, 3.0]}
    box = centre_crop_box((37, 53), (10, 10), (0.875, 0.875), True)
    assert box == (2, 10, 32, 32)
    x = preprocess(photo, norm, mode="evaluate")
    np.testing.assert_allclose(x[0].numpy().transpose(1, 2, 0),
                               _reference(photo, (10, 10), "bicubic", box) - [1, 2, 3],
                               atol=2e-3)
    # taps beyond the crop read the image around it: not the same as resizing the crop alone
    alone = imresize(photo[2:34, 10:42], (10, 10)) - np.array([1, 2, 3])
    assert np.abs(x[0].numpy().transpose(1, 2, 0) - alone).max() > 0.5


def test_evaluate_mode_without_keep_aspect_and_legacy_border(photo):
    # keepAspect false: the crop has the image's aspect, 0.5 * 37 = 18.5 -> 19 (half away
    # from zero, as C's round), 0.5 * 53 = 26.5 -> 27
    norm = {"imageSize": [8, 12, 3], "cropSize": [0.5, 0.5], "keepAspect": False,
            "interpolation": "bilinear"}
    box = centre_crop_box((37, 53), (8, 12), (0.5, 0.5), False)
    assert box == (9, 13, 19, 27)
    np.testing.assert_allclose(preprocess(photo, norm, mode="evaluate")[0].numpy()
                               .transpose(1, 2, 0), _reference(photo, (8, 12), "bilinear", box),
                               atol=2e-3)
    # legacy border [8 8] without cropSize: cropSize = 24 / 32 (vl_simplenn_tidy's rule)
    legacy = {"imageSize": [24, 24, 3], "border": [8, 8], "keepAspect": True}
    box = centre_crop_box((37, 53), (24, 24), (0.75, 0.75), True)
    assert box[2:] == (28, 28)
    np.testing.assert_allclose(preprocess(photo, legacy, mode="evaluate")[0].numpy()
                               .transpose(1, 2, 0), _reference(photo, (24, 24), "bicubic", box),
                               atol=2e-3)
    # no cropSize: the largest centred region of the output's aspect; at the output's size
    # its pixels are copied exactly
    whole = {"imageSize": [37, 37, 3]}
    torch.testing.assert_close(preprocess(photo, whole, mode="evaluate"),
                               _expected(photo[:, 8:45].astype(np.float32), 0))


@pytest.mark.parametrize("keep_aspect,crop,interpolation", [
    (True, 0.875, "bicubic"), (False, 0.9, "bilinear"), (True, 1.0, "lanczos3")])
def test_evaluate_mode_equals_vl_imreadjpeg(photo, tmp_path, keep_aspect, crop, interpolation):
    """getImageBatch's call: vl_imreadjpeg(..., Resize imageSize(1:2), CropSize cropSize,
    CropAnisotropy 0 unless keepAspect, centre crop, SubtractAverage averageImage)."""
    imread = pytest.importorskip("matconvnet.data.imread")
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    colour = [120.0, 110.0, 100.0]
    norm = {"imageSize": [14, 18, 3], "cropSize": crop, "keepAspect": keep_aspect,
            "interpolation": interpolation, "averageImage": colour}
    theirs = imread.vl_imreadjpeg([str(path)], resize=(14, 18), pack=True, crop_size=crop,
                                  crop_anisotropy=1 if keep_aspect else 0,
                                  interpolation=interpolation, subtract_average=colour)
    torch.testing.assert_close(preprocess(photo, norm, mode="evaluate"), theirs,
                               rtol=0, atol=2e-3)


def test_channels_and_sizes(photo):
    grey = photo[:, :, 0]
    x = preprocess(grey, {"imageSize": [10, 10, 3]})
    torch.testing.assert_close(x[:, 0], x[:, 2])
    luma = photo.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    y = preprocess(photo, {"normalization": {"averageImage": torch.zeros(1, 1, 1)},
                           "inputSize": [10, 10, 1]})
    assert y.shape == (1, 1, 10, 10)
    np.testing.assert_allclose(y[0, 0].numpy(), imresize(luma, (10, 10)), atol=1e-3)
    # no imageSize (fully convolutional models): the image keeps its size
    z = preprocess(photo, {"averageImage": [10.0, 10.0, 10.0]})
    assert z.shape == (1, 3, 37, 53)
    torch.testing.assert_close(z, _expected(photo.astype(np.float32), 10.0))
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    torch.testing.assert_close(preprocess(rgba, {}), preprocess(photo, {}))


def test_dagnn_meta_is_read():
    from matconvnet.dagnn import DagNN
    net = DagNN()
    net.meta = {"normalization": {"imageSize": [4, 4, 3]}}
    assert normalization_of(net) == {"imageSize": [4, 4, 3]}
    assert preprocess(np.zeros((9, 9, 3), np.uint8), net).shape == (1, 3, 4, 4)


def test_bad_input_names_the_argument(photo):
    with pytest.raises(ValueError, match="mode"):
        preprocess(photo, {}, mode="train")
    with pytest.raises(ValueError, match=r"image: .*got shape \(4, 4, 2\)"):
        preprocess(np.zeros((4, 4, 2)), {})
    with pytest.raises(TypeError, match="image"):
        preprocess(np.zeros((4, 4, 3), bool), {})
    with pytest.raises(TypeError, match="image"):
        preprocess("picture.jpg", {})
    with pytest.raises(ValueError, match="averageImage"):
        preprocess(photo, {"averageImage": [1.0, 2.0]})
    with pytest.raises(ValueError, match="imageSize"):
        preprocess(photo, {"imageSize": [0, 4, 3]})
    with pytest.raises(ValueError, match="cropSize"):
        preprocess(photo, {"imageSize": [4, 4, 3], "cropSize": 1.5}, mode="evaluate")
    with pytest.raises(TypeError, match="meta"):
        preprocess(photo, None)
