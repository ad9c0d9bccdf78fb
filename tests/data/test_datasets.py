"""imdb builders (MNIST IDX, CIFAR-10 batches and image folders/zips, ImageNet trees) and
preprocess_imagenet."""
import gzip
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from matconvnet.data import (cifar10_imdb, image_folder_imdb, imagenet_imdb, load_mnist,
                             mnist_imdb, parse_idx, preprocess_imagenet, read_idx)
from matconvnet.data.preprocess import main as preprocess_main, resized_shape
from tests.data.images import CIFAR_ZIP, SHARED, save, smooth_rgb

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


# --------------------------------------------------------------------- MNIST


def _idx_bytes(a: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">i4").tobytes()
    return header + a.astype({0x08: np.uint8, 0x0C: ">i4", 0x0D: ">f4"}[code]).tobytes()


def test_parse_idx_types_and_errors(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    assert np.array_equal(parse_idx(_idx_bytes(a, 0x0C)), a)
    f = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(parse_idx(gzip.compress(_idx_bytes(f, 0x0D))), f)
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"hello world")
    with pytest.raises(ValueError, match="expected 24 values"):
        parse_idx(_idx_bytes(a, 0x0C)[:-4])
    p = tmp_path / "x-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_idx_bytes(a.astype(np.uint8))))
    assert np.array_equal(read_idx(p), a.astype(np.uint8))


def test_mnist_imdb_bundled():
    imdb = mnist_imdb()
    im = imdb["images"]
    assert im["data"].shape == (15000, 1, 28, 28) and im["data"].dtype == np.float32
    assert np.bincount(im["set"]).tolist() == [0, 5000, 0, 10000]
    assert np.bincount(im["labels"][im["set"] == 1]).tolist() == [0] + [500] * 10
    assert imdb["meta"]["classes"] == [str(d) for d in range(10)]
    x, _ = load_mnist("train")
    np.testing.assert_allclose(im["data_mean"], x.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(im["data"][:5000] + im["data_mean"], x, atol=1e-3)


def test_mnist_imdb_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 20)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(x))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y)))
        if prefix == "train":
            tx, ty = x, y
    imdb = mnist_imdb(str(tmp_path))
    im = imdb["images"]
    assert im["data"].shape == (50, 1, 28, 28)
    assert im["set"].tolist() == [1] * 30 + [3] * 20
    assert np.array_equal(im["labels"][:30], ty.astype(np.int64) + 1)
    np.testing.assert_allclose(im["data"][:30, 0] + im["data_mean"][0], tx, atol=1e-3)
    raw = mnist_imdb(str(tmp_path), subtract_mean=False)["images"]["data"]
    assert np.array_equal(raw[:30, 0], tx.astype(np.float32))
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        mnist_imdb(str(_empty(tmp_path)))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir(exist_ok=True)
    return d


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data/mnist is absent")
def test_mnist_imdb_real_test_set_counts():
    im = mnist_imdb(str(SHARED / "mnist"))["images"]
    assert np.bincount(im["labels"]).tolist()[1:] == [980, 1135, 1032, 1010, 982, 892, 958,
                                                      1028, 974, 1009]
    assert set(im["set"].tolist()) == {3}


# --------------------------------------------------------------------- CIFAR-10 batches


def _cifar_batches(folder, n=6, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": y, b"data": x,
                         b"filenames": [b"x.png"] * n}, f, protocol=2)
        truth[name] = (x, y)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR_CLASSES],
                     b"num_cases_per_batch": n}, f, protocol=2)
    return truth


def test_cifar10_python_batches(tmp_path):
    truth = _cifar_batches(tmp_path / "cifar-10-batches-py")
    imdb = cifar10_imdb(str(tmp_path))                # the parent folder works too
    im = imdb["images"]
    assert im["data"].shape == (36, 3, 32, 32)
    assert im["set"].tolist() == [1] * 30 + [3] * 6
    x, y = truth["data_batch_2"]
    assert np.array_equal(im["labels"][6:12], np.asarray(y) + 1)
    # rows are R, G, B planes of 32 x 32, row-major: N x 3 x 32 x 32 directly
    np.testing.assert_allclose(im["data"][6:12] + im["data_mean"],
                               x.reshape(6, 3, 32, 32).astype(np.float32), atol=1e-3)
    train = np.concatenate([truth[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(im["data_mean"], train.reshape(-1, 3, 32, 32).mean(0), atol=1e-3)
    assert imdb["meta"]["classes"] == CIFAR_CLASSES


def test_cifar10_tar_gz_and_normalisations(tmp_path):
    _cifar_batches(tmp_path / "src" / "cifar-10-batches-py", n=8)
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    plain = cifar10_imdb(str(tgz))["images"]["data"]
    cn = cifar10_imdb(str(tgz), contrast_normalization=True)["images"]["data"]
    z = plain.reshape(48, -1).astype(np.float64)
    z -= z.mean(1, keepdims=True)
    n = z.std(1, ddof=1)
    np.testing.assert_allclose(cn.reshape(48, -1), z * (n.mean() / np.maximum(n, 40))[:, None],
                               rtol=1e-4, atol=1e-3)
    wh = cifar10_imdb(str(tgz), whiten=True)
    # ZCA: the training covariance (over all N) of an eigen-direction with sqrt(d) >= 10
    # becomes e^2 = mean(d) (the mean over all 3072 eigenvalues, i.e. trace / 3072).
    zt = wh["images"]["data"].reshape(48, -1)[:40].astype(np.float64)
    pt = plain.reshape(48, -1)[:40].astype(np.float64)
    top_after = np.linalg.svd(zt, compute_uv=False)[0] ** 2 / 48
    assert top_after == pytest.approx((pt ** 2).sum() / 48 / 3072, rel=1e-3)


def test_zca_small_and_large_training_sets_agree():
    from matconvnet.data.datasets import _zca
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, (30, 2, 3, 4)).astype(np.float32)   # 24 dimensions
    train = np.arange(30) < 20                                  # 20 < 24: the SVD path
    z = x.reshape(30, -1).astype(np.float64)
    d2, v = np.linalg.eigh(z[train].T @ z[train] / 30)
    d2 = np.maximum(d2, 0)
    ref = z @ ((v * (np.sqrt(d2.mean()) / np.maximum(np.sqrt(d2), 10))) @ v.T)
    np.testing.assert_allclose(_zca(x, train).reshape(30, -1), ref, rtol=1e-4, atol=1e-3)
    train = np.arange(30) < 28                                  # 28 >= 24: eigh
    d2, v = np.linalg.eigh(z[train].T @ z[train] / 30)
    d2 = np.maximum(d2, 0)
    ref = z @ ((v * (np.sqrt(d2.mean()) / np.maximum(np.sqrt(d2), 10))) @ v.T)
    np.testing.assert_allclose(_zca(x, train).reshape(30, -1), ref, rtol=1e-4, atol=1e-3)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({"data": os.getcwd}, f)       # a global that is not an array
    with pytest.raises(ValueError, match="refusing to unpickle"):
        cifar10_imdb(str(d))
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 python batches"):
        cifar10_imdb(str(_empty(tmp_path)))


# --------------------------------------------------------------------- image folders and zips


def _tree(root, splits=("train", "test"), classes=("cat", "dog", "emu"), per=3, size=(12, 10)):
    truth = []
    for s in splits:
        for ci, c in enumerate(classes):
            d = root / s / c if s else root / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per + ci):
                a = smooth_rgb(*size, seed=len(truth))
                p = save(d / f"{i:04d}.png", a)
                truth.append((p, s, c, a))
    return truth


def test_image_folder_imdb_folder_and_zip(tmp_path):
    truth = _tree(tmp_path / "tree")
    imdb = image_folder_imdb(str(tmp_path / "tree"))
    im = imdb["images"]
    assert imdb["meta"]["classes"] == ["cat", "dog", "emu"]
    assert im["data"].shape == (24, 3, 12, 10)
    assert im["set"].tolist() == [1] * 12 + [3] * 12
    assert np.bincount(im["labels"][im["set"] == 3]).tolist() == [0, 3, 4, 5]
    order = sorted(truth, key=lambda t: ({"train": 1, "test": 3}[t[1]], t[2], t[0]))
    raw = np.stack([t[3].transpose(2, 0, 1) for t in order]).astype(np.float32)
    np.testing.assert_allclose(im["data"] + im["data_mean"], raw, atol=1e-3)
    np.testing.assert_allclose(im["data_mean"], raw[:12].mean(0), atol=1e-3)
    zpath = tmp_path / "tree.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p, s, c, _ in truth:
            z.write(p, arcname=f"data/{s}/{c}/{os.path.basename(p)}")
    zimdb = image_folder_imdb(str(zpath))
    assert np.array_equal(zimdb["images"]["labels"], im["labels"])
    np.testing.assert_allclose(zimdb["images"]["data"], im["data"], atol=1e-4)


def test_image_folder_imdb_by_name_resize_and_bad_images(tmp_path):
    _tree(tmp_path / "t", splits=("",), per=2, size=(9, 7))
    Image.fromarray(smooth_rgb(20, 16)).save(tmp_path / "t" / "dog" / "big.png")
    (tmp_path / "t" / "emu" / "broken.png").write_bytes(b"not a png")
    listed = image_folder_imdb(str(tmp_path / "t"), load=False)
    assert listed["images"]["name"][0] == "cat/0000.png"
    assert os.path.isfile(os.path.join(listed["imageDir"], listed["images"]["name"][-1]))
    assert set(listed["images"]["set"].tolist()) == {1}
    with pytest.warns(UserWarning, match="broken.png"):
        with pytest.raises(ValueError, match="image_size"):
            image_folder_imdb(str(tmp_path / "t"))
    with pytest.warns(UserWarning, match="left out 'emu/broken.png'"):
        imdb = image_folder_imdb(str(tmp_path / "t"), image_size=(8, 8))
    assert imdb["images"]["data"].shape == (10, 3, 8, 8)
    assert len(imdb["images"]["labels"]) == 10


@pytest.mark.skipif(not CIFAR_ZIP.exists(), reason="../shared CIFAR-10 JPEG zip is absent")
def test_cifar10_jpeg_zip_counts_and_pixels():
    imdb = cifar10_imdb(str(CIFAR_ZIP), subtract_mean=False)
    im = imdb["images"]
    assert imdb["meta"]["classes"] == CIFAR_CLASSES
    assert im["data"].shape == (10000, 3, 32, 32)
    assert np.bincount(im["labels"]).tolist() == [0] + [1000] * 10
    assert set(im["set"].tolist()) == {3}
    with zipfile.ZipFile(CIFAR_ZIP) as z:          # spot-check: image 1500 is a bird
        names = sorted(n for n in z.namelist() if n.startswith("test/bird/") and
                       n.endswith(".jpg"))
        ref = np.asarray(Image.open(z.open(names[500])).convert("RGB")).transpose(2, 0, 1)
    assert im["labels"][2500] == 3 and np.array_equal(im["data"][2500], ref)


# --------------------------------------------------------------------- ImageNet trees


def _imagenet(root, wnids=("n02", "n01", "n03"), per=2, val=5, test=2):
    for k, w in enumerate(wnids):
        d = root / "train" / w
        d.mkdir(parents=True)
        for i in range(per):
            save(d / f"{w}_{i}.JPEG", smooth_rgb(8, 8, seed=k * 10 + i))
    (root / "val").mkdir()
    for i in range(val):
        save(root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", smooth_rgb(8, 8, seed=100 + i))
    (root / "test").mkdir()
    for i in range(test):
        save(root / "test" / f"ILSVRC2012_test_{i + 1:08d}.JPEG", smooth_rgb(8, 8, seed=200 + i))


def test_imagenet_imdb_with_labels_file(tmp_path):
    _imagenet(tmp_path)
    (tmp_path / "val_labels.txt").write_text(
        "".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {w}\n"
                for i, w in enumerate(["n03", "n01", "n02", "n01", "n03"])))
    imdb = imagenet_imdb(str(tmp_path), val_labels=str(tmp_path / "val_labels.txt"))
    im = imdb["images"]
    assert imdb["classes"]["name"] == ["n01", "n02", "n03"]          # sorted by WNID
    assert im["name"][:2] == ["train/n01/n01_0.JPEG", "train/n01/n01_1.JPEG"]
    assert im["set"].tolist() == [1] * 6 + [2] * 5 + [3] * 2
    assert im["label"].tolist() == [1, 1, 2, 2, 3, 3, 3, 1, 2, 1, 3, 0, 0]
    assert im["labels"] is im["label"]
    assert im["id"].tolist()[5:8] == [6, 10 ** 7, 10 ** 7 + 1]
    assert all(os.path.isfile(os.path.join(imdb["imageDir"], n)) for n in im["name"])
    assert imdb["meta"]["classes"] == imdb["classes"]["name"]


def test_imagenet_imdb_with_devkit_ground_truth_and_blacklist(tmp_path):
    _imagenet(tmp_path / "images")
    kit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    kit.mkdir(parents=True)
    syn = np.zeros((3, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")])
    for i, (w, d) in enumerate([("n02", "dog"), ("n03", "car"), ("n01", "cat")]):
        syn[i, 0] = (i + 1, w, d)
    scipy.io.savemat(kit / "meta.mat", {"synsets": syn})
    (kit / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n3\n1\n2\n")   # ids
    (kit / "ILSVRC2012_validation_blacklist.txt").write_text("2\n")
    imdb = imagenet_imdb(str(tmp_path))
    im = imdb["images"]
    assert imdb["classes"]["name"] == ["n01", "n02", "n03"]
    assert imdb["classes"]["description"] == ["cat", "dog", "car"]
    val = im["set"] == 2
    # ids 1, 3, 1, 2 (image 2 blacklisted) are n02, n01, n02, n03 -> sorted positions 2, 1, 2, 3
    assert im["label"][val].tolist() == [2, 1, 2, 3]
    assert [n.split("/")[-1] for n in np.asarray(im["name"])[val]][1] == \
        "ILSVRC2012_val_00000003.JPEG"
    assert imdb["imageDir"].endswith("images")


def test_imagenet_imdb_val_subfolders_and_lite(tmp_path):
    _imagenet(tmp_path, wnids=tuple(f"n{i:02d}" for i in range(12)), per=3, val=0)
    for w in ("n00", "n05"):
        (tmp_path / "val" / w).mkdir()
        save(tmp_path / "val" / w / "a.JPEG", smooth_rgb(8, 8))
    imdb = imagenet_imdb(str(tmp_path))
    im = imdb["images"]
    assert im["label"][im["set"] == 2].tolist() == [1, 6]
    lite = imagenet_imdb(str(tmp_path), lite=True)["images"]
    assert set(lite["label"][lite["set"] == 1].tolist()) == set(range(1, 11))
    assert (lite["set"] == 3).sum() == 2


def test_imagenet_imdb_flat_val_without_labels_warns(tmp_path):
    _imagenet(tmp_path)
    with pytest.warns(UserWarning, match="no labels for the 5 validation images"):
        im = imagenet_imdb(str(tmp_path))["images"]
    assert im["label"][im["set"] == 2].tolist() == [0] * 5
    with pytest.raises(FileNotFoundError, match="no classes"):
        imagenet_imdb(str(_empty(tmp_path)))


# --------------------------------------------------------------------- preprocess_imagenet


def test_resized_shape():
    assert resized_shape(500, 375, 256) == (341, 256)
    assert resized_shape(100, 200, 256) == (256, 512)       # small images are enlarged too
    assert resized_shape(256, 256, 256) == (256, 256)


def test_preprocess_imagenet_tree(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "train" / "n01").mkdir(parents=True)
    save(src / "train" / "n01" / "a.JPEG", smooth_rgb(300, 400, seed=1), quality=95)
    cmyk = Image.fromarray(smooth_rgb(40, 30, seed=2)).convert("CMYK")
    cmyk.save(src / "train" / "n01" / "b.jpg")
    save(src / "train" / "n01" / "c.png", smooth_rgb(600, 512, seed=3, channels=1))
    (src / "train" / "n01" / "bad.JPEG").write_bytes(b"broken")
    (src / "devkit").mkdir()
    (src / "devkit" / "readme.txt").write_text("devkit\n")
    os.symlink("devkit", src / "kit")
    r = preprocess_imagenet(str(src), str(tmp_path / "dst"), num_workers=2, verbose=False)
    dst = tmp_path / "dst"
    assert r["resized"] == 3 and r["copied"] == 2 and len(r["failed"]) == 1
    assert "bad.JPEG" in r["failed"][0][0]
    with Image.open(dst / "train" / "n01" / "a.JPEG") as im:
        assert im.size == (341, 256) and im.mode == "RGB" and im.format == "JPEG"
    with Image.open(dst / "train" / "n01" / "b.jpg") as im:
        assert im.size == (256, 341) and im.mode == "RGB"
    with Image.open(dst / "train" / "n01" / "c.png") as im:
        assert im.size == (256, 300) and im.format == "PNG"
    assert (dst / "devkit" / "readme.txt").read_text() == "devkit\n"
    assert os.readlink(dst / "kit") == "devkit"
    assert not [p for p in dst.rglob(".tmp-*")]
    # a rerun skips what is there; the command line works the same
    r2 = preprocess_imagenet(str(src), str(dst), verbose=False)
    assert r2["resized"] == 0 and r2["skipped"] == 5
    assert preprocess_main([str(src), str(tmp_path / "dst2"), "--size", "64", "--quiet"]) == 1
    with Image.open(tmp_path / "dst2" / "train" / "n01" / "a.JPEG") as im:
        assert im.size == (85, 64)
    with pytest.raises(ValueError, match="must not be inside src"):
        preprocess_imagenet(str(src), str(src / "out"))


def test_cifar10_whitening_needs_training_images(tmp_path):
    from PIL import Image
    for k, name in enumerate(CIFAR_CLASSES[:2]):
        (tmp_path / "test" / name).mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)).save(
            tmp_path / "test" / name / "0.png")
    assert (cifar10_imdb(str(tmp_path))["images"]["set"] == 3).all()
    with pytest.raises(ValueError, match="whiten.*training"):
        cifar10_imdb(str(tmp_path), whiten=True)
