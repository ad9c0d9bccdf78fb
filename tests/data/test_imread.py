"""vl_imreadjpeg (FEATURES.md 6.1): decoding, geometry, resampling, colour, threads, prefetch,
bad files.  References are Pillow's decode and direct NumPy computations (tests/data/images.py)."""
import math
import os
import threading
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from matconvnet.data import INTERPOLATIONS, ImageReadWarning, vl_imreadjpeg
from tests.data.images import (crop_box, output_size, pil_rgb, ref_resize, save, smooth_rgb)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """RGB (4:2:0, 4:4:4, progressive), greyscale and CMYK JPEGs; RGB, grey, RGBA, palette and
    16-bit PNGs."""
    d = tmp_path_factory.mktemp("imread")
    rgb = smooth_rgb(37, 53, seed=1)
    out = {
        "rgb420": save(d / "rgb420.jpg", rgb, quality=90),
        "rgb444": save(d / "rgb444.jpg", rgb, quality=95, subsampling=0),
        "progressive": save(d / "prog.jpg", rgb, quality=80, progressive=True),
        "grey": save(d / "grey.jpg", smooth_rgb(29, 41, seed=2, channels=1), quality=90),
        "png": save(d / "rgb.png", rgb),
        "grey_png": save(d / "grey.png", smooth_rgb(20, 30, seed=3, channels=1)),
    }
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg", quality=90)
    out["cmyk"] = str(d / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(d / "rgba.png")
    out["rgba_png"] = str(d / "rgba.png")
    Image.fromarray(rgb).convert("P").save(d / "palette.png")
    out["palette_png"] = str(d / "palette.png")
    return out


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("photo")
    return save(d / "photo.jpg", smooth_rgb(60, 80, seed=4), quality=92)


def read1(path, **kw):
    return vl_imreadjpeg([path], **kw)[0].numpy()


# --------------------------------------------------------------------- decoding


@pytest.mark.parametrize("kind", ["rgb420", "rgb444", "progressive", "grey", "cmyk", "png",
                                  "grey_png", "rgba_png", "palette_png"])
def test_pixels_equal_pillow_decode(files, kind):
    x = vl_imreadjpeg([files[kind]])[0]
    assert x.dtype == torch.float32 and x.device.type == "cpu"
    ref = pil_rgb(files[kind])
    assert tuple(x.shape) == ref.shape            # 3 x H x W, grey and CMYK as RGB
    assert np.array_equal(x.numpy(), ref)


def test_sixteen_bit_png_is_scaled_to_255(tmp_path):
    a = (np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 500)
    Image.fromarray(a).save(tmp_path / "deep.png")
    x = read1(str(tmp_path / "deep.png"))
    assert x.shape == (3, 12, 10)
    np.testing.assert_allclose(x[1], a * (255 / 65535), rtol=1e-6)


def test_bytes_and_pathlike_sources(files, tmp_path):
    from pathlib import Path
    data = Path(files["rgb420"]).read_bytes()
    a, b, c = vl_imreadjpeg([data, Path(files["rgb420"]), files["rgb420"]])
    assert torch.equal(a, b) and torch.equal(b, c)
    assert torch.equal(vl_imreadjpeg(files["png"])[0], torch.from_numpy(pil_rgb(files["png"])))


# --------------------------------------------------------------------- geometry & resampling


@pytest.mark.parametrize("interp", INTERPOLATIONS)
@pytest.mark.parametrize("resize, crop_size", [((23, 31), 0.9), ((75, 41), 1.0), (29, 1.0),
                                                (101, 0.6), (None, 0.55)])
def test_resize_and_crop_match_numpy(photo, interp, resize, crop_size):
    img = pil_rgb(photo)
    h, w = img.shape[1:]
    x = read1(photo, resize=resize, crop_size=crop_size, interpolation=interp)
    oh, ow = output_size(h, w, resize)
    ch, cw, oy, ox = crop_box(h, w, oh, ow, size=crop_size)
    assert x.shape == (3, oh, ow)
    np.testing.assert_allclose(x, ref_resize(img, oh, ow, ch, cw, oy, ox, interp), atol=2e-3)


def test_plain_crop_is_exact_and_flip_mirrors(photo):
    """Without ``resize`` the output has the input's size (the crop is resampled to it); with
    an output the size of the crop the crop is copied exactly."""
    img = pil_rgb(photo)
    x = read1(photo, resize=(30, 40), crop_size=0.5)
    ch, cw, oy, ox = crop_box(60, 80, 30, 40, size=0.5)
    assert (ch, cw) == (30, 40)
    assert np.array_equal(x, img[:, oy:oy + ch, ox:ox + cw])
    assert read1(photo, crop_size=0.5).shape == (3, 60, 80)
    flipped = [read1(photo, resize=(30, 40), crop_size=0.5, flip=True, seed=s)
               for s in range(6)]
    kinds = {("same" if np.array_equal(f, x) else "flip" if np.array_equal(f, x[:, :, ::-1])
              else "other") for f in flipped}
    assert kinds == {"same", "flip"}


def test_anisotropy_zero_stretches_the_whole_image(photo):
    img = pil_rgb(photo)
    x = read1(photo, resize=(32, 32), crop_anisotropy=0, interpolation="bicubic")
    np.testing.assert_allclose(x, ref_resize(img, 32, 32, 60, 80, 0, 0, "bicubic"), atol=2e-3)


def test_fixed_anisotropy_changes_the_crop_aspect(photo):
    img = pil_rgb(photo)
    x = read1(photo, resize=(20, 20), crop_anisotropy=2.0)
    ch, cw, oy, ox = crop_box(60, 80, 20, 20, ratio=2.0)
    assert cw / ch == pytest.approx(2.0, abs=0.05)
    np.testing.assert_allclose(x, ref_resize(img, 20, 20, ch, cw, oy, ox, "bilinear"), atol=2e-3)


def test_random_crop_and_flip_follow_the_documented_draws(photo):
    """With a NumPy generator the variates are rng.random((N, 7)) then
    rng.standard_normal((N, 3)): anisotropy, size, x, y, flip, saturation, contrast."""
    img = pil_rgb(photo)
    n = 5
    xs = vl_imreadjpeg([photo] * n, resize=(16, 24), crop_location="random", flip=True,
                       crop_size=(0.5, 0.9), crop_anisotropy=(0.75, 1.5),
                       generator=np.random.default_rng(7))
    z = np.random.default_rng(7).random((n, 7))
    for i in range(n):
        ratio = math.exp(z[i, 0] * (math.log(0.75) - math.log(1.5)) + math.log(1.5))
        size = math.sqrt(z[i, 1] * (0.5 ** 2 - 0.9 ** 2) + 0.9 ** 2)
        ch, cw, oy, ox = crop_box(60, 80, 16, 24, size=size, ratio=ratio, zx=z[i, 2], zy=z[i, 3])
        ref = ref_resize(img, 16, 24, ch, cw, oy, ox, "bilinear")
        if z[i, 4] > 0.5:
            ref = ref[:, :, ::-1]
        np.testing.assert_allclose(xs[i].numpy(), ref, atol=2e-3)


def test_random_locations_cover_the_image(photo):
    offsets = set()
    img = pil_rgb(photo)
    for s in range(40):
        x = read1(photo, resize=(15, 20), crop_size=0.25, crop_location="random", seed=s)
        ch, cw = x.shape[1:]
        hits = [(oy, ox) for oy in range(60 - ch + 1) for ox in range(80 - cw + 1)
                if np.array_equal(img[:, oy:oy + ch, ox:ox + cw], x)]
        assert len(hits) >= 1
        offsets.add(hits[0])
    assert len(offsets) > 20


def test_seeded_jitter_is_reproducible_and_thread_independent(photo, files):
    paths = [photo, files["rgb420"], files["grey"], files["png"]] * 2
    opts = dict(resize=(24, 24), pack=True, crop_location="random", flip=True,
                crop_size=(0.6, 1), crop_anisotropy=(0.8, 1.25), brightness=10,
                contrast=0.4, saturation=0.4)
    a = vl_imreadjpeg(paths, num_threads=1, seed=3, **opts)
    b = vl_imreadjpeg(paths, num_threads=3, seed=3, **opts)
    c = vl_imreadjpeg(paths, num_threads=2, generator=torch.Generator().manual_seed(3), **opts)
    d = vl_imreadjpeg(paths, num_threads=2, seed=4, **opts)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, d)
    torch.manual_seed(11)
    e = vl_imreadjpeg(paths, **opts)
    torch.manual_seed(11)
    assert torch.equal(e, vl_imreadjpeg(paths, **opts))   # global generator, as cnn_train seeds


def test_no_jitter_leaves_the_global_generator_alone(photo):
    torch.manual_seed(5)
    vl_imreadjpeg([photo], resize=(10, 10), pack=True)
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(1))


# --------------------------------------------------------------------- colour


def test_colour_jitter_formula(photo):
    """out = c (s v + (1 - s) g(v)) + d, d = s d0 + (1 - s) g(d0), d0 = B w - avg + (1 - c) m."""
    img = pil_rgb(photo).astype(np.float64)
    b = np.array([[3.0, 1.0, 0.5], [0.0, 2.0, -1.0], [1.5, 0.0, 4.0]])
    avg = np.array([100.0, 110.0, 120.0])
    x = read1(photo, brightness=b, contrast=0.5, saturation=0.7, subtract_average=avg,
              generator=np.random.default_rng(2))
    rng = np.random.default_rng(2)
    z, w = rng.random((1, 7))[0], rng.standard_normal((1, 3))[0]
    s, c = 1 + 0.7 * (2 * z[5] - 1), 1 + 0.5 * (2 * z[6] - 1)
    d0 = b @ w - avg + (1 - c) * img.mean(axis=(1, 2))
    d = s * d0 + (1 - s) * d0.mean()
    ref = c * (s * img + (1 - s) * img.mean(axis=0)) + d[:, None, None]
    np.testing.assert_allclose(x, ref, atol=2e-3)


def test_brightness_is_B_times_w_not_the_original_bug(photo):
    """Q-05 fixed: a 3-vector is the diagonal, and the shift is sum_j B(i, j) w_j."""
    img = pil_rgb(photo)
    rng = np.random.default_rng(9)
    rng.random((1, 7))
    w = rng.standard_normal((1, 3))[0]
    rng = np.random.default_rng(9)
    x = read1(photo, brightness=[1.0, 2.0, 3.0], generator=rng)
    np.testing.assert_allclose((x - img).mean(axis=(1, 2)), np.array([1, 2, 3]) * w, atol=1e-4)
    b = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], float) * 5
    x = read1(photo, brightness=b, generator=np.random.default_rng(9))
    np.testing.assert_allclose((x - img).mean(axis=(1, 2)), b @ w, atol=1e-4)


def test_subtract_average_vector_and_image(photo):
    img = pil_rgb(photo)
    x = read1(photo, subtract_average=[10, 20, 30])
    np.testing.assert_allclose(x, img - np.array([10, 20, 30], np.float32)[:, None, None])
    avg = np.random.default_rng(0).uniform(0, 255, (3, 12, 16)).astype(np.float32)
    x = vl_imreadjpeg([photo], resize=(12, 16), pack=True, subtract_average=avg)
    y = vl_imreadjpeg([photo], resize=(12, 16), pack=True)
    np.testing.assert_allclose(x.numpy(), y.numpy() - avg[None], atol=1e-4)


def test_greyscale_stays_grey_under_saturation_and_contrast(files):
    x = read1(files["grey"], contrast=0.5, saturation=0.5, seed=1)
    assert np.allclose(x[0], x[1]) and np.allclose(x[1], x[2])


# --------------------------------------------------------------------- pack, device, options


def test_pack_shape_and_equals_the_list(files, photo):
    paths = [photo, files["rgb420"], files["grey"], files["cmyk"]]
    packed = vl_imreadjpeg(paths, resize=(20, 30), pack=True, interpolation="bicubic")
    each = vl_imreadjpeg(paths, resize=(20, 30), interpolation="bicubic")
    assert packed.shape == (4, 3, 20, 30) and packed.dtype == torch.float32
    for i in range(4):
        assert torch.equal(packed[i], each[i])


def test_device_option(photo):
    x = vl_imreadjpeg([photo], resize=(8, 8), pack=True, device="cpu")
    assert x.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            vl_imreadjpeg([photo], gpu=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
def test_device_option_cuda(photo):
    x = vl_imreadjpeg([photo], resize=(8, 8), pack=True, device="cpu")
    y = vl_imreadjpeg([photo], resize=(8, 8), pack=True, gpu=True)
    assert y.is_cuda and torch.equal(y.cpu(), x)
    ys = vl_imreadjpeg([photo, photo], device="cuda")
    assert all(t.is_cuda for t in ys)
    prefetched = vl_imreadjpeg([photo], resize=(8, 8), pack=True, device="cuda", prefetch=True)
    again = vl_imreadjpeg([photo], resize=(8, 8), pack=True, device="cuda")
    assert prefetched is None and again.is_cuda and torch.equal(again.cpu(), x)


def test_matlab_style_option_names(photo):
    a = vl_imreadjpeg([photo], Resize=[10, 12], Pack=True, CropSize=0.8, NumThreads=2,
                      Interpolation="BICUBIC")
    b = vl_imreadjpeg([photo], resize=(10, 12), pack=True, crop_size=0.8,
                      interpolation="bicubic")
    assert torch.equal(a, b)


@pytest.mark.parametrize("kw, match", [
    (dict(pack=True), "pack: needs resize"),
    (dict(resize=(0, 5)), "resize: expected a positive"),
    (dict(resize=[1, 2, 3]), "resize: expected"),
    (dict(crop_size=1.5), "crop_size: expected 0 <= min <= max <= 1"),
    (dict(crop_size=(0.8, 0.5)), "crop_size"),
    (dict(crop_anisotropy=-1), "crop_anisotropy"),
    (dict(crop_location="left"), "crop_location: expected 'center' or 'random'"),
    (dict(interpolation="nearest"), "interpolation: expected one of"),
    (dict(brightness=[1, 2]), "brightness: expected a number, 3 numbers or a 3 x 3"),
    (dict(contrast=2), r"contrast: expected a number in \[0, 1\]"),
    (dict(saturation=-0.1), "saturation"),
    (dict(subtract_average=np.zeros((3, 4, 4))), "needs resize=\\(H, W\\)"),
    (dict(resize=(5, 5), subtract_average=np.zeros((3, 4, 4))), "3 x 5 x 5 average image"),
    (dict(num_threads=0), "num_threads: expected a positive integer"),
    (dict(seed=1, generator=torch.Generator()), "give one of them"),
    (dict(Bogus=1), "unknown option 'Bogus'"),
])
def test_bad_options_are_named(photo, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        vl_imreadjpeg([photo], **kw)


def test_bad_files_argument():
    with pytest.raises(TypeError, match="files: entry 1 is int"):
        vl_imreadjpeg(["a.jpg", 3])


def test_draft_decodes_smaller_but_close(tmp_path):
    rng = np.random.default_rng(5)
    smooth = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)) \
        .resize((480, 400), Image.Resampling.BICUBIC)
    big = save(tmp_path / "big.jpg", np.asarray(smooth), quality=95)
    a = vl_imreadjpeg([big], resize=(48, 48), pack=True, draft=True, interpolation="bilinear")
    b = vl_imreadjpeg([big], resize=(48, 48), pack=True, interpolation="bilinear")
    assert a.shape == b.shape
    assert float((a - b).abs().mean()) < 0.5 and not torch.equal(a, b)
    png = save(tmp_path / "big.png", smooth_rgb(100, 120, seed=5))
    assert torch.equal(vl_imreadjpeg([png], resize=(10, 10), pack=True, draft=True),
                       vl_imreadjpeg([png], resize=(10, 10), pack=True))


# --------------------------------------------------------------------- threads and prefetch


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_prefetch_then_fetch_equals_direct_read(files, photo, threads):
    paths = [photo, files["rgb420"], files["grey"], files["cmyk"], files["png"]] * 2
    opts = dict(resize=(18, 22), crop_location="random", flip=True, crop_size=(0.5, 1),
                brightness=5, num_threads=threads)
    direct = vl_imreadjpeg(paths, seed=8, **opts)
    assert vl_imreadjpeg(paths, prefetch=True, seed=8, **opts) is None
    fetched = vl_imreadjpeg(paths, seed=8, **opts)
    assert len(fetched) == len(direct)
    for a, b in zip(direct, fetched):
        assert torch.equal(a, b)
    vl_imreadjpeg(paths, prefetch=True, seed=8, pack=True, **opts)
    assert torch.equal(vl_imreadjpeg(paths, seed=8, pack=True, **opts), torch.stack(direct))


def test_prefetch_uses_the_prefetch_draws(photo):
    """Global-generator jitter is drawn when the prefetch starts, as the MEX did."""
    opts = dict(resize=(12, 12), pack=True, crop_location="random", crop_size=0.5)
    torch.manual_seed(1)
    vl_imreadjpeg([photo] * 3, prefetch=True, **opts)
    torch.manual_seed(99)
    got = vl_imreadjpeg([photo] * 3, **opts)
    torch.manual_seed(1)
    assert torch.equal(got, vl_imreadjpeg([photo] * 3, **opts))


def test_prefetch_is_dropped_when_files_or_options_differ(photo, files):
    vl_imreadjpeg([photo, files["png"]], prefetch=True, resize=(9, 9), pack=True)
    other = vl_imreadjpeg([files["png"], photo], resize=(9, 9), pack=True)
    assert torch.equal(other[0], vl_imreadjpeg([files["png"]], resize=(9, 9), pack=True)[0])
    vl_imreadjpeg([photo], prefetch=True, resize=(9, 9), pack=True)
    x = vl_imreadjpeg([photo], resize=(7, 7), pack=True)
    assert x.shape == (1, 3, 7, 7)


# --------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory, photo, files):
    d = tmp_path_factory.mktemp("bad")
    good = open(photo, "rb").read()
    (d / "truncated.jpg").write_bytes(good[:len(good) // 2])
    (d / "text.jpg").write_text("this is not an image\n")
    (d / "empty.jpg").write_bytes(b"")
    return [photo, str(d / "truncated.jpg"), str(d / "text.jpg"), str(d / "missing.jpg"),
            str(d / "empty.jpg"), files["png"]]


def _read_in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()), daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "vl_imreadjpeg hung"
    return out["v"]


@pytest.mark.parametrize("threads", [1, 3])
def test_bad_files_give_none_and_a_warning_each(bad_batch, threads):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ims = _read_in_thread(lambda: vl_imreadjpeg(bad_batch, num_threads=threads))
    assert [im is None for im in ims] == [False, True, True, True, True, False]
    assert np.array_equal(ims[0].numpy(), pil_rgb(bad_batch[0]))
    assert np.array_equal(ims[5].numpy(), pil_rgb(bad_batch[5]))
    msgs = [w.message for w in caught if issubclass(w.category, ImageReadWarning)]
    assert [m.index for m in msgs] == [1, 2, 3, 4]
    for m, name in zip(msgs, bad_batch[1:5]):
        assert m.name == name and name in str(m)
    text = " ".join(str(m) for m in msgs)
    assert "empty" in text and ("No such file" in text or "not found" in text.lower())


def test_bad_files_in_a_pack_are_zero(bad_batch):
    with pytest.warns(ImageReadWarning):
        x = vl_imreadjpeg(bad_batch, resize=(10, 10), pack=True, subtract_average=[1, 2, 3],
                          num_threads=2)
    assert x.shape == (6, 3, 10, 10)
    assert all(float(x[i].abs().max()) == 0 for i in (1, 2, 3, 4))
    assert float(x[0].abs().max()) > 0 and float(x[5].abs().max()) > 0


def test_corrupt_jpeg_body_is_reported(tmp_path, photo):
    data = bytearray(open(photo, "rb").read())
    data[400:1400] = b"\xff" * 1000           # garbage inside the entropy-coded data
    p = tmp_path / "garbage.jpg"
    p.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ims = vl_imreadjpeg([str(p), photo])
    assert ims[1] is not None
    if ims[0] is None:
        assert any(str(p) in str(w.message) for w in caught)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_reader_works_in_a_forked_child(photo):
    vl_imreadjpeg([photo], num_threads=2)            # the parent has a pool
    pid = os.fork()
    if pid == 0:                                     # pragma: no cover - child
        try:
            x = vl_imreadjpeg([photo], resize=(8, 8), pack=True)
            os._exit(0 if tuple(x.shape) == (1, 3, 8, 8) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_fallbacks_without_simplejpeg_or_the_scipy_kernel(monkeypatch, files, photo, bad_batch):
    """Pillow decodes everything when simplejpeg is missing; the public SciPy interface
    resamples when its CSR kernel is missing: same results."""
    from matconvnet.data import imread
    opts = dict(resize=(21, 17), pack=True, interpolation="bicubic", crop_size=0.8)
    paths = [photo, files["grey"], files["cmyk"], files["png"]]
    ref = vl_imreadjpeg(paths, **opts)
    monkeypatch.setattr(imread, "_simplejpeg", None)
    monkeypatch.setattr(imread, "_csr_matvecs", None)
    assert torch.allclose(vl_imreadjpeg(paths, **opts), ref, atol=1e-4)
    assert np.array_equal(read1(files["rgb420"]), pil_rgb(files["rgb420"]))
    with pytest.warns(ImageReadWarning):
        ims = vl_imreadjpeg(bad_batch)
    assert [im is None for im in ims] == [False, True, True, True, True, False]
