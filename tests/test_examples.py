"""The runnable examples: ``examples/mnist_blocks.py`` (blocks only) and the modules of
``matconvnet.examples`` (``python -m matconvnet.examples.mnist`` / ``.toy``), short runs."""
import importlib.util
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist_blocks.py"


def _load():
    spec = importlib.util.spec_from_file_location("mnist_blocks", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mnist_blocks_short_run(capsys):
    demo = _load()
    # Two epochs over the 5k digits (the first mostly escapes the near-uniform start),
    # tested on 1,000 test digits: a few seconds on 2 CPU cores.
    out = demo.main(["--epochs", "2", "--test-limit", "1000"])
    history = out["history"]
    assert len(history) == 2
    assert history[0]["objective"] == pytest.approx(2.30, abs=0.1)   # log(10) at the start
    assert history[1]["objective"] < 0.8 * history[0]["objective"]
    assert history[1]["error"] < history[0]["error"]
    assert out["test_error"] < 0.5                                    # chance is 0.9
    printed = capsys.readouterr().out
    assert "epoch  2: train objective" in printed
    assert "test error: " in printed and "(1000 images)" in printed


def test_mnist_blocks_rejects_bad_flags():
    demo = _load()
    with pytest.raises(SystemExit):
        demo.main(["--limit", "0"])


# ---------------------------------------------------------------- matconvnet.examples

def test_mnist_module_short_run(tmp_path, capsys):
    """LeNet + batch norm for 2 epochs on 1,000 digits, with both wrappers: the two train
    the same network the same way; checkpoints and net-train.png land in --exp-dir."""
    from matconvnet.examples import mnist
    out = {}
    for name, flags in (("simplenn", []), ("dagnn", ["--dagnn"])):
        out[name] = mnist.main(["--epochs", "2", "--batch-norm", "--limit", "1000",
                                "--test-limit", "500", "--verbose", "0",
                                "--exp-dir", str(tmp_path / name)] + flags)
        stats = out[name]["stats"]
        assert len(stats["train"]) == 2 and stats["train"][0]["num"] == 1000
        assert stats["train"][1]["objective"] < stats["train"][0]["objective"]
        assert out[name]["test_error"] < 0.3                      # chance is 0.9
        assert (tmp_path / name / "net-epoch-2.mat").exists()
    assert set(out["dagnn"]["stats"]["train"][0]) == {"num", "time", "objective", "error",
                                                       "top5err"}
    assert out["dagnn"]["test_error"] == pytest.approx(out["simplenn"]["test_error"], abs=0.02)
    assert out["dagnn"]["stats"]["train"][1]["error"] == pytest.approx(
        out["simplenn"]["stats"]["train"][1]["top1err"], abs=0.02)
    printed = capsys.readouterr().out
    assert printed.count("test accuracy: ") == 2 and "500 test digits)" in printed
    pytest.importorskip("matplotlib")
    assert (tmp_path / "simplenn" / "net-train.png").exists()


def test_mnist_module_options():
    from matconvnet.examples import mnist
    assert mnist.learning_rates(0.1, 5) == [0.1, 0.1, 0.01, 0.01, 0.01]
    assert mnist.learning_rates(0.1, 2) == [0.1, 0.1]
    args = mnist.parse_args([])
    assert (args.epochs, args.batch_norm, args.dagnn, args.exp_dir) == (mnist.EPOCHS, False,
                                                                       False, None)
    for bad in (["--epochs", "0"], ["--limit", "-3"], ["--lr", "-1"], ["--nope"]):
        with pytest.raises(SystemExit):
            mnist.parse_args(bad)


def test_toy_module_short_run(tmp_path, capsys):
    """The custom-imdb example: generated PNG shapes read by get_batch (prefetched)."""
    from matconvnet.examples import toy
    data_dir = tmp_path / "data"
    out = toy.main(["--per-class", "40", "--val-per-class", "10", "--epochs", "2",
                    "--batch-size", "40", "--lr", "0.05", "--data-dir", str(data_dir),
                    "--exp-dir", str(tmp_path / "exp"), "--verbose", "0"])
    assert sorted(os.listdir(data_dir / "train")) == sorted(toy.CLASSES)
    assert len(os.listdir(data_dir / "val" / "circle")) == 10
    stats = out["stats"]
    assert stats["train"][0]["num"] == 120 and stats["val"][0]["num"] == 30
    assert stats["train"][1]["objective"] < stats["train"][0]["objective"]
    assert (tmp_path / "exp" / "net-epoch-2.mat").exists()
    assert "validation accuracy: " in capsys.readouterr().out
    imdb = toy.get_imdb(data_dir)
    x, c = toy.get_batch(imdb, np.array([0, 85, 135]))
    assert x.shape == (3, 1, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= -0.5 and float(x.max()) <= 0.5
    assert c.tolist() == [1, 3, 2]            # train triangle, train circle, val square
    before = os.path.getmtime(data_dir / "train" / "square" / "0.png")
    toy.generate(data_dir, {"train": 40, "val": 10})    # complete: reused, not redrawn
    assert os.path.getmtime(data_dir / "train" / "square" / "0.png") == before


def test_toy_shapes():
    from matconvnet.examples import toy
    rng = np.random.default_rng(0)
    for kind in toy.CLASSES:
        im = toy.draw_shape(kind, rng, noise=0.0)
        assert im.shape == (32, 32) and im.dtype == np.uint8
        inside = im > 128
        assert 20 < inside.sum() < 32 * 32 * 0.7
        # the shape stays inside the image: the border is background
        assert not inside[[0, -1]].any() and not inside[:, [0, -1]].any()
    with pytest.raises(ValueError, match="kind: expected one of"):
        toy.draw_shape("hexagon", rng)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("target", ["matconvnet.examples.mnist", "matconvnet.examples.toy",
                                    "examples/train_mnist.py"])
def test_examples_run_as_scripts(target, monkeypatch, capsys):
    """``python -m matconvnet.examples.<name>`` (and the checkout wrapper) reach main()."""
    monkeypatch.setattr(sys, "argv", [target, "--help"])
    with pytest.raises(SystemExit) as exit_:
        if target.endswith(".py"):
            runpy.run_path(str(ROOT / target), run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--epochs" in out and "--exp-dir" in out
    if not target.endswith(".py"):
        assert f"python -m {target}" in out


# ---------------------------------------------------------------- cifar and imagenet

SHARED_CIFAR_ZIP = ROOT.parent / "shared" / "data" / "cifar10-test-jpeg" / "cifar10_test_jpeg.zip"


def _cifar_batches(folder, n_train=200, n_test=100, seed=0):
    """CIFAR-10 python batches of noisy flat-colour 32 x 32 images, one colour per class."""
    import pickle
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, (10, 3))

    def batch(n):
        labels = np.arange(n) % 10
        x = colours[labels][:, :, None] + rng.normal(0, 25, (n, 3, 1024))
        return {b"batch_label": b"synthetic", b"labels": labels.tolist(),
                b"data": np.clip(x, 0, 255).astype(np.uint8).reshape(n, 3072)}

    for name, n in (("data_batch_1", n_train), ("test_batch", n_test)):
        with open(folder / name, "wb") as f:
            pickle.dump(batch(n), f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{k}".encode() for k in range(10)]}, f, protocol=2)
    return folder


def _image_zip(path, layout, size=8, seed=0):
    """A zip of tiny JPEGs: ``layout`` maps a folder ('test/cat') to an image count."""
    import io
    import zipfile
    from PIL import Image
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as z:
        for folder, n in layout.items():
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                    buf, format="JPEG")
                z.writestr(f"{folder}/{i:04d}.jpg", buf.getvalue())
    return path


def test_cifar_module_python_batches(tmp_path, capsys):
    """LeNet on tiny python batches: SimpleNN (whitened, the default) and DagNN + batch norm."""
    from matconvnet.examples import cifar
    data = _cifar_batches(tmp_path / "cifar-10-batches-py", n_train=100, n_test=50)
    out = cifar.main(["--data", str(data), "--epochs", "1", "--batch-size", "20",
                      "--verbose", "0", "--exp-dir", str(tmp_path / "lenet")])
    stats = out["stats"]
    assert stats["train"][0]["num"] == 100
    assert stats["val"][0]["num"] == 50                         # the test batch validates
    assert set(stats["train"][0]) == {"num", "time", "objective", "top1err", "top5err"}
    assert (tmp_path / "lenet" / "net-epoch-1.mat").exists()
    assert out["net"]["meta"]["classes"]["name"][:2] == ["class0", "class1"]
    assert out["val_error"] == stats["val"][-1]["top1err"] and out["imdb_note"] == ""
    printed = capsys.readouterr().out
    assert "100 training / 50 validation images" in printed and "ZCA whitening" in printed
    assert "1 epochs, batch 20, lr 0.05, weight decay 0.0001" in printed
    assert "validation accuracy: " in printed

    out = cifar.main(["--data", str(data), "--epochs", "3", "--batch-size", "10", "--dagnn",
                      "--batch-norm", "--no-whiten", "--verbose", "0"])
    stats = out["stats"]
    assert set(stats["train"][0]) == {"num", "time", "objective", "error", "top5err"}
    assert stats["train"][2]["objective"] < stats["train"][0]["objective"]
    assert out["val_error"] < 0.7                                # chance is 0.9
    assert [l.block.type_name for l in out["net"].layers].count("dagnn.BatchNorm") == 4
    assert "contrast normalisation;" in capsys.readouterr().out


def test_cifar_networks():
    from matconvnet.examples import cifar
    from matconvnet.simplenn import vl_simplenn
    net = cifar.make_net("lenet", batch_norm=True, classes=["a", "b"])
    types = [l["type"] for l in net["layers"]]
    assert types[:3] == ["conv", "bnorm", "pool"] and types.count("bnorm") == 4
    convs = [l for l in net["layers"] if l["type"] == "conv"]
    assert [c["weights"][1].numel() for c in convs] == [0, 0, 0, 0, 10]
    assert net["meta"]["classes"] == {"name": ["a", "b"]}
    assert net["meta"]["trainOpts"]["batchSize"] == 100
    nin = cifar.make_net("nin")
    res = vl_simplenn({"layers": nin["layers"][:-1]}, torch.randn(2, 3, 32, 32), mode="test")
    assert res[-1]["x"].shape == (2, 10, 1, 1)
    with pytest.raises(ValueError, match="model: expected one of lenet, nin"):
        cifar.make_net("resnet")


def test_cifar_split_image_set(tmp_path):
    """The demo split: seeded, stratified, every class in both sets; existing splits kept."""
    from matconvnet.examples import cifar
    src = _image_zip(tmp_path / "test-only.zip", {"test/cat": 10, "test/dog": 5})
    counts = cifar.split_image_set(src, tmp_path / "a.zip", val_fraction=0.2, seed=3)
    assert counts == {"train": {"cat": 8, "dog": 4}, "test": {"cat": 2, "dog": 1}}
    cifar.split_image_set(src, tmp_path / "b.zip", val_fraction=0.2, seed=3)
    import zipfile
    names = [zipfile.ZipFile(tmp_path / n).namelist() for n in ("a.zip", "b.zip")]
    assert names[0] == names[1] and len(names[0]) == 15
    assert {n.split("/")[0] for n in names[0]} == {"train", "test"}
    counts = cifar.split_image_set(src, tmp_path / "c.zip", limit=6, seed=0)
    assert counts == {"train": {"cat": 3, "dog": 1}, "test": {"cat": 1, "dog": 1}}
    both = _image_zip(tmp_path / "both.zip", {"data/train/cat": 4, "data/test/cat": 2})
    assert cifar.split_image_set(both, tmp_path / "d.zip") == {"test": {"cat": 2},
                                                              "train": {"cat": 4}}
    assert cifar.list_images(tmp_path / "both.zip")[0] == ("data/test/cat/0000.jpg", "test",
                                                           "cat")
    with pytest.raises(FileNotFoundError, match="source: no images"):
        cifar.split_image_set(_cifar_batches(tmp_path / "py"), tmp_path / "e.zip")


def test_cifar_module_data_errors(tmp_path, monkeypatch, capsys):
    """Without --data and without the shared JPEG set: exit status 2 and what to pass."""
    from matconvnet.examples import cifar
    assert cifar.default_data([tmp_path]) is None
    monkeypatch.setattr(cifar, "default_data", lambda: None)
    with pytest.raises(SystemExit) as e:
        cifar.main(["--epochs", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no CIFAR-10 data: pass --data PATH" in err and "not shipped" in err
    data = _cifar_batches(tmp_path / "py", n_train=20, n_test=10)
    for argv, message in ((["--data", str(tmp_path / "nowhere")], "does not exist"),
                          (["--data", str(data), "--limit", "10"], "--limit: only for image")):
        with pytest.raises(SystemExit) as e:
            cifar.main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_CIFAR_ZIP.exists(), reason="../shared/data CIFAR-10 JPEGs absent")
def test_cifar_module_default_data(tmp_path, monkeypatch, capsys):
    """The JPEG test set found from the working folder, a stratified subset split 80/20."""
    from matconvnet.examples import cifar
    monkeypatch.chdir(ROOT)
    assert cifar.default_data() == SHARED_CIFAR_ZIP.resolve()
    out = cifar.main(["--limit", "300", "--epochs", "1", "--no-whiten", "--verbose", "0"])
    assert out["stats"]["train"][0]["num"] == 240 and out["stats"]["val"][0]["num"] == 60
    assert "(a stratified random subset of 300 images; no training images: split per class " \
           "into 240 training / 60 validation, 20% held out; seed 0)" in capsys.readouterr().out
    assert out["net"]["meta"]["classes"]["name"] == [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
        "truck"]


def _imagenet_folder(root, classes=3, per_class=6, val_per_class=2, size=64, seed=0):
    """train/<wnid>/*.JPEG of random-coloured shapes (one shape per class), a flat val/ and
    a '<file> <wnid>' labels file."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    wnids = [f"n{1000000 + k:08d}" for k in range(classes)]

    def draw(k):
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
        d, fill = ImageDraw.Draw(im), tuple(int(v) for v in rng.integers(0, 255, 3))
        r = int(rng.integers(size // 5, size // 3))
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        box = [cx - r, cy - r, cx + r, cy + r]
        if k % 3 == 0:
            d.ellipse(box, fill=fill)
        elif k % 3 == 1:
            d.rectangle(box, fill=fill)
        else:
            d.polygon([(box[0], box[3]), (box[2], box[3]), (cx, box[1])], fill=fill)
        return im

    for k, w in enumerate(wnids):
        (root / "train" / w).mkdir(parents=True)
        for i in range(per_class):
            draw(k).save(root / "train" / w / f"{w}_{i}.JPEG", quality=90)
    (root / "val").mkdir()
    lines, n = [], 0
    for k, w in enumerate(wnids):
        for _ in range(val_per_class):
            n += 1
            draw(k).save(root / "val" / f"ILSVRC2012_val_{n:08d}.JPEG", quality=90)
            lines.append(f"ILSVRC2012_val_{n:08d}.JPEG {w}")
    (root / "val_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def _tiny_imagenet_net(seed=0):
    """A small SimpleNN with the fields cnn_imagenet reads: meta.normalization (32 x 32,
    no averageImage: the RGB mean is filled in), augmentation and trainOpts."""
    from matconvnet.simplenn import vl_simplenn_tidy
    g = torch.Generator().manual_seed(seed)

    def conv(k, c, s, pad):
        return {"type": "conv", "weights": [torch.randn(k, c, s, s, generator=g) * 0.1,
                                            torch.zeros(k)], "pad": pad}

    layers = [conv(8, 3, 3, 1), {"type": "bnorm", "weights": [torch.ones(8), torch.zeros(8)]},
              {"type": "relu"}, {"type": "pool", "pool": [4, 4], "stride": 4},
              conv(3, 8, 8, 0), {"type": "softmaxloss"}]
    return vl_simplenn_tidy({"layers": layers, "meta": {
        "normalization": {"imageSize": [32, 32, 3], "cropSize": 0.875},
        "augmentation": {"jitterFlip": True, "jitterLocation": True,
                         "jitterAspect": [3 / 4, 4 / 3]},
        "trainOpts": {"learningRate": [0.05, 0.01], "batchSize": 6, "weightDecay": 1e-4}}})


def test_imagenet_module_tiny_network(tmp_path, capsys):
    """The whole cnn_imagenet pipeline (imdb with a val labels file, cached image statistics,
    jittered batches, training, deployment) on a 3 x 6-image folder with a small network;
    then the same network as a DagNN."""
    from matconvnet.examples import imagenet
    from matconvnet.models import load_model
    data = _imagenet_folder(tmp_path / "imagenet")
    common = ["--data", str(data), "--val-labels", str(data / "val_labels.txt"),
              "--stats-every", "1", "--num-threads", "2", "--verbose", "0"]
    exp = tmp_path / "exp"
    out = imagenet.main(common + ["--exp-dir", str(exp), "--jitter-scale", "0.8,1",
                                  "--jitter-brightness", "0.2"], network=_tiny_imagenet_net())
    stats = out["stats"]
    assert len(stats["train"]) == 2                     # numEpochs = len(learningRate)
    assert stats["train"][0]["num"] == 18 and stats["val"][0]["num"] == 6
    meta = out["net"]["meta"]
    rgb = out["image_stats"]["rgbMean"]
    assert rgb.shape == (3,) and 0 < rgb.min() and rgb.max() < 255
    assert np.allclose(np.asarray(meta["normalization"]["averageImage"]).reshape(-1), rgb)
    assert meta["classes"]["name"] == ["n01000000", "n01000001", "n01000002"]
    from matconvnet.data import rgb_pca_deviation
    assert np.allclose(meta["augmentation"]["jitterBrightness"],
                       0.2 * rgb_pca_deviation(out["image_stats"]["rgbCovariance"]))
    train_opts, test_opts = imagenet.batch_options(meta)
    assert train_opts["jitter_scale"] == (0.8, 1.0) and train_opts["jitter_flip"] is True
    assert "jitter_scale" not in test_opts and test_opts["image_size"] == (32, 32)
    assert (exp / "imageStats.mat").exists() and (exp / "net-epoch-2.mat").exists()
    deployed = load_model(out["deployed"])
    assert [l["type"] for l in deployed["layers"]] == ["conv", "relu", "pool", "conv",
                                                       "softmax"]    # bnorm folded
    printed = capsys.readouterr().out
    assert "3 classes, 18 training / 6 validation images at 32 x 32" in printed
    assert "validation accuracy: " in printed and "deployed network: " in printed
    # the statistics are read back from imageStats.mat, not recomputed
    before = os.path.getmtime(exp / "imageStats.mat")
    again = imagenet.image_stats({"images": {"set": np.zeros(0)}}, str(exp / "imageStats.mat"))
    assert np.allclose(again["rgbCovariance"], out["image_stats"]["rgbCovariance"])
    assert os.path.getmtime(exp / "imageStats.mat") == before

    import matconvnet.io as mio
    mio.save(tmp_path / "tiny.mat", _tiny_imagenet_net())       # --network FILE, as a DagNN
    out = imagenet.main(common + ["--exp-dir", str(tmp_path / "dag"), "--dagnn",
                                  "--network", str(tmp_path / "tiny.mat"), "--no-augmentation",
                                  "--lr", "0.01*2"])
    assert len(out["stats"]["train"]) == 2                      # numEpochs from the schedule
    assert set(out["stats"]["train"][0]) == {"num", "time", "objective", "top1err", "top5err"}
    assert out["deployed"] is None and out["val_error"] is not None
    assert "jitter: none" in capsys.readouterr().out


def test_imagenet_networks():
    """cnn_imagenet's networks with the image statistics in their meta, and the image-size
    check (AlexNet built on the meta device: shapes only)."""
    from matconvnet.examples import imagenet
    mean, dev = np.array([120.0, 110.0, 100.0]), np.diag([3.0, 2.0, 1.0])
    net = imagenet.make_net("alexnet", classes=["a", "b", "c"], rgb_mean=mean,
                            rgb_deviation=dev, device="meta")
    assert np.allclose(net["meta"]["normalization"]["averageImage"].reshape(-1), mean)
    assert np.allclose(net["meta"]["augmentation"]["jitterBrightness"], 0.1 * dev)
    assert [l["type"] for l in net["layers"]].count("bnorm") == 7     # batch norm by default
    assert imagenet.set_image_size(net) == 227
    with pytest.raises(ValueError, match=r"--image-size: 64 gives this network a 0 x 0 "
                                         r"prediction; .* sizes give: 227-258"):
        imagenet.set_image_size(net, 64)
    train_opts, test_opts = imagenet.batch_options(net["meta"])
    assert train_opts["jitter_aspect"] == pytest.approx((2 / 3, 3 / 2))
    assert train_opts["jitter_brightness"].shape == (3, 3) and test_opts["crop_size"] == 227 / 256
    with pytest.raises(ValueError, match="classes: vgg-f has 1000 outputs"):
        imagenet.make_net("vgg-f", classes=[str(i) for i in range(1001)], device="meta")
    res = imagenet.make_net("resnet-50", classes=["a", "b", "c"], rgb_mean=mean)
    assert res.params[res.get_param_index("prediction_f")].value.shape[0] == 3
    assert [imagenet.prediction_size(res, s) for s in (192, 193, 224, 225)] == [
        (0, 0), (1, 1), (1, 1), (2, 2)]
    assert res.meta["augmentation"]["jitterScale"] == [0.4, 1.1]


def test_imagenet_module_errors(tmp_path, monkeypatch, capsys):
    from matconvnet.examples import imagenet
    monkeypatch.chdir(tmp_path)
    for argv, message in (([], "no ImageNet data: pass --data DIR"),
                          (["--data", str(tmp_path)], "no classes"),
                          (["--jitter-aspect", "2,1"], "expected LO <= HI")):
        with pytest.raises(SystemExit) as e:
            imagenet.main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("model, size", [("alexnet", 227), ("resnet-50", 193)])
def test_imagenet_module_real_models(model, size, tmp_path):
    """One epoch of AlexNet (SimpleNN, batch norm) / ResNet-50 (DagNN) at the smallest input
    they take, on the 3 x 6-image folder: 20-30 s each on 2 CPU cores."""
    from matconvnet.examples import imagenet
    data = _imagenet_folder(tmp_path / "imagenet")
    out = imagenet.main(["--data", str(data), "--val-labels", str(data / "val_labels.txt"),
                         "--model", model, "--image-size", str(size), "--epochs", "1",
                         "--batch-size", "6", "--num-sub-batches", "1", "--lr", "0.001",
                         "--stats-every", "2", "--exp-dir", str(tmp_path / "exp"),
                         "--verbose", "0"])
    assert out["stats"]["train"][0]["num"] == 18 and out["stats"]["val"][0]["num"] == 6
    assert np.isfinite(out["stats"]["train"][0]["objective"])
    assert (tmp_path / "exp" / "net-epoch-1.mat").exists()
    assert (out["deployed"] is None) == (model == "resnet-50")


def test_cifar_and_imagenet_through_the_cli(tmp_path, capsys):
    """``matconvnet train cifar|imagenet``: help, and a 1-epoch CIFAR run."""
    from matconvnet import cli
    for name in ("cifar", "imagenet"):
        assert cli.main(["train", name, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"python -m matconvnet.examples.{name}" in out and "--exp-dir" in out
    data = _cifar_batches(tmp_path / "py", n_train=40, n_test=20)
    assert cli.main(["train", "cifar", "--data", str(data), "--epochs", "1", "--batch-size",
                     "20", "--no-whiten", "--verbose", "0"]) == 0
    assert "validation accuracy: " in capsys.readouterr().out
    assert cli.main(["train", "cifar", "--model", "vgg"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("target", ["matconvnet.examples.cifar", "matconvnet.examples.imagenet"])
def test_cifar_imagenet_run_as_modules(target, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [target, "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m {target}" in out and "--epochs" in out and "--dagnn" in out
