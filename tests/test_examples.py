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
