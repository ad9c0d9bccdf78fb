"""get_batch functions: in-memory imdbs, the ImageNet example's image batches (FEATURES.md
5.1), their use by cnn_train / cnn_train_dag."""
import functools
import os

import numpy as np
import pytest
import torch

from matconvnet.data import (as_dag_batch, get_image_batch, get_image_stats, get_memory_batch,
                             image_folder_imdb, make_image_get_batch, rgb_pca_deviation,
                             vl_imreadjpeg)
from matconvnet.dagnn import DagNN
from matconvnet.train import cnn_train, cnn_train_dag
from tests.data.images import pil_rgb, save, smooth_rgb


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """train/ and val/ class folders of 20 x 24 JPEGs: a tiny on-disk imdb."""
    root = tmp_path_factory.mktemp("tree")
    k = 0
    for split, per in (("train", 4), ("val", 2)):
        for c in ("a", "b"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per):
                save(d / f"{i}.jpg", smooth_rgb(20, 24, seed=k), quality=92)
                k += 1
    imdb = image_folder_imdb(str(root), load=False)
    return imdb


def _memory_imdb(n=10):
    return {"images": {"data": np.random.default_rng(0).normal(size=(n, 2, 4, 5))
                       .astype(np.float32),
                       "labels": np.arange(n) % 3 + 1, "set": np.array([1] * 8 + [2] * 2)}}


def test_get_memory_batch_and_flip():
    imdb = _memory_imdb()
    x, y = get_memory_batch(imdb, np.array([3, 0, 7]))
    assert x.dtype == torch.float32 and x.shape == (3, 2, 4, 5)
    assert torch.equal(x, torch.from_numpy(imdb["images"]["data"][[3, 0, 7]]))
    assert y.tolist() == [1, 1, 2] and y.dtype == torch.int64
    flips = {bool(torch.equal(get_memory_batch(imdb, [1, 2], flip=True,
                                               generator=torch.Generator().manual_seed(s))[0],
                              x[:0].new_tensor(imdb["images"]["data"][[1, 2]]).flip(3)))
             for s in range(8)}
    assert flips == {True, False}             # the whole batch, half of the time
    with pytest.raises(TypeError, match="integer"):
        get_memory_batch(imdb, np.array([0.5]))


def test_as_dag_batch():
    d = as_dag_batch(get_memory_batch)(_memory_imdb(), [0, 1])
    assert set(d) == {"input", "label"} and d["input"].shape[0] == 2


def test_rgb_pca_deviation():
    a = np.random.default_rng(1).normal(size=(3, 3))
    cov = a @ a.T
    b = rgb_pca_deviation(cov)
    np.testing.assert_allclose(b @ b.T, cov, atol=1e-10)      # shift B w has covariance C
    d, v = np.linalg.eigh(cov)
    np.testing.assert_allclose(np.abs(b.T @ v), np.diag(np.sqrt(d)), atol=1e-10)
    with pytest.raises(ValueError, match="3 x 3"):
        rgb_pca_deviation(np.eye(2))


def test_get_image_batch_maps_to_vl_imreadjpeg(tree):
    paths = [os.path.join(tree["imageDir"], n) for n in tree["images"]["name"][:6]]
    cov = np.array([[400.0, 100, 50], [100, 300, 80], [50, 80, 200]])
    x = get_image_batch(paths, image_size=(16, 16), crop_size=0.9, jitter_flip=True,
                        jitter_location=True, jitter_aspect=(3 / 4, 4 / 3),
                        jitter_scale=(0.8, 1.0), jitter_brightness=0.1, rgb_covariance=cov,
                        jitter_contrast=0.2, jitter_saturation=0.3, subtract_average=[1, 2, 3],
                        seed=5)
    y = vl_imreadjpeg(paths, pack=True, resize=(16, 16), interpolation="bicubic",
                      crop_size=(0.72, 0.9), crop_anisotropy=(3 / 4, 4 / 3),
                      crop_location="random", flip=True, brightness=0.1 * rgb_pca_deviation(cov),
                      contrast=0.2, saturation=0.3, subtract_average=[1, 2, 3], seed=5)
    assert x.shape == (6, 3, 16, 16) and torch.equal(x, y)
    # keep_aspect=False squashes the whole image; an average image is resized to image_size
    avg = np.full((3, 8, 8), 10.0, np.float32)
    z = get_image_batch(paths[:1], image_size=(12, 12), keep_aspect=False, subtract_average=avg,
                        interpolation="bilinear")
    w = vl_imreadjpeg(paths[:1], pack=True, resize=(12, 12), crop_anisotropy=0,
                      crop_size=227 / 256)
    np.testing.assert_allclose(z.numpy(), w.numpy() - 10.0, atol=1e-4)


def test_make_image_get_batch_train_and_test_options(tree):
    opts = dict(image_size=(16, 16), crop_size=0.875, jitter_location=True, jitter_flip=True,
                jitter_brightness=20.0)
    gb = make_image_get_batch(opts, num_threads=2)
    idx = np.flatnonzero(tree["images"]["set"] == 2)
    x, y = gb(tree, idx)                         # validation: centre crop, no jitter
    paths = [os.path.join(tree["imageDir"], tree["images"]["name"][i]) for i in idx]
    ref = vl_imreadjpeg(paths, pack=True, resize=(16, 16), crop_size=0.875,
                        interpolation="bicubic")
    assert torch.equal(x, ref) and y.tolist() == tree["images"]["labels"][idx].tolist()
    tr = np.array([0, 5, 2])
    torch.manual_seed(0)
    a, _ = gb(tree, tr)
    torch.manual_seed(0)
    b, _ = gb(tree, tr)
    assert torch.equal(a, b) and not torch.equal(a, gb(tree, tr)[0])   # jittered, seeded
    # prefetch then fetch: the same images as a direct read with the same draws
    torch.manual_seed(3)
    assert gb(tree, tr, prefetch=True) is None
    torch.manual_seed(42)
    c, _ = gb(tree, tr)
    torch.manual_seed(3)
    assert torch.equal(c, gb(tree, tr)[0])
    d = make_image_get_batch(opts, dag=True)(tree, idx)
    assert torch.equal(d["input"], x) and torch.equal(d["label"], y)
    with pytest.raises(ValueError, match="give 'prefetch' to make_image_get_batch"):
        make_image_get_batch(dict(opts, prefetch=True))


def test_get_image_stats(tree):
    paths = [os.path.join(tree["imageDir"], n) for n in tree["images"]["name"]]
    st = get_image_stats(paths, batch_size=5, image_size=(20, 24))
    batches = [np.stack([pil_rgb(p) for p in paths[i:i + 5]]).astype(np.float64)
               for i in range(0, len(paths), 5)]
    avg = np.mean([b.mean(0) for b in batches], axis=0)
    m1 = np.mean([b.transpose(1, 0, 2, 3).reshape(3, -1).mean(1) for b in batches], axis=0)
    m2 = np.mean([(lambda z: z @ z.T / z.shape[1])(b.transpose(1, 0, 2, 3).reshape(3, -1))
                  for b in batches], axis=0)
    np.testing.assert_allclose(st["average_image"], avg, atol=1e-3)
    np.testing.assert_allclose(st["rgb_mean"], m1, atol=1e-6)
    np.testing.assert_allclose(st["rgb_covariance"], m2 - np.outer(m1, m1), atol=1e-6)


def _tiny_net(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"layers": [{"type": "conv", "weights": [0.01 * torch.randn(2, 3, 16, 16, generator=g),
                                                    torch.zeros(2)]},
                       {"type": "softmaxloss"}],
            "meta": {"inputSize": [16, 16, 3]}}


def test_cnn_train_with_image_and_memory_batches(tree, tmp_path):
    gb = make_image_get_batch(dict(image_size=(16, 16), crop_size=0.875, jitter_flip=True,
                                   subtract_average=[120, 120, 120]))
    quiet = dict(num_epochs=1, batch_size=4, verbose=0, plot_statistics=False,
                 learning_rate=1e-4)
    net, stats = cnn_train(_tiny_net(), tree, gb, exp_dir=str(tmp_path / "sn"), **quiet)
    assert stats["train"][0]["num"] == 8 and stats["val"][0]["num"] == 4
    dag = DagNN.from_simplenn(_tiny_net(), canonical_names=True)
    gbd = make_image_get_batch(dict(image_size=(16, 16), crop_size=0.875), dag=True)
    _, dstats = cnn_train_dag(dag, tree, gbd, exp_dir=str(tmp_path / "dag"), **quiet)
    assert dstats["train"][0]["num"] == 8
    mem = {"images": {"data": np.random.default_rng(0).normal(size=(12, 3, 16, 16))
                      .astype(np.float32), "labels": np.arange(12) % 2 + 1,
                      "set": np.array([1] * 8 + [2] * 4)}}
    _, mstats = cnn_train(_tiny_net(), mem, functools.partial(get_memory_batch, flip=True),
                          exp_dir=str(tmp_path / "mem"), **quiet)
    assert mstats["val"][0]["num"] == 4
