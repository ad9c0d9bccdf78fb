"""cnn_train / cnn_train_dag: prefetching, console output, plots, checkpoint fallback and
exp_dir checks."""
import importlib
import io
import os
import re
import sys
import threading

import numpy as np
import pytest
import torch

from matconvnet.dagnn import DagNN
from matconvnet.train import cnn_train, cnn_train_dag, plot_diagnostics, plot_statistics
from matconvnet.train.progress import Progress, summary
from tests.train import kill_train_script as KS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data(n=48, seed=0):
    return KS.data(n, seed, val=8)


def _net(seed=0):
    return KS.simplenn(seed, channels=4, rate=0.2)


_gb, _gb_dag = KS.get_batch, KS.get_batch_dag


def _params(net):
    if isinstance(net, DagNN):
        return {p.name: p.value for p in net.params}
    return {f"{i}_{j}": w for i, l in enumerate(net["layers"])
            for j, w in enumerate(l.get("weights") or [])}


QUIET = dict(verbose=0, plot_statistics=False)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


# ------------------------------------------------------------------ prefetch

@pytest.mark.parametrize("kind", ["simplenn", "dagnn"])
def test_prefetch_gives_the_same_results(tmp_path, kind):
    imdb = _data()
    calls = {True: [], False: []}

    def recorder(prefetch, base):
        def get_batch(d, b):
            calls[prefetch].append((tuple(b.tolist()), threading.current_thread().name))
            return base(d, b)
        return get_batch

    out = {}
    for prefetch in (False, True):
        kw = dict(batch_size=10, num_sub_batches=2, num_epochs=2, learning_rate=0.05,
                  prefetch=prefetch, exp_dir=tmp_path / str(prefetch), **QUIET)
        if kind == "simplenn":
            out[prefetch] = cnn_train(_net(), imdb, recorder(prefetch, _gb), **kw)
        else:
            dag = DagNN.from_simplenn(_net(), canonical_names=True)
            out[prefetch] = cnn_train_dag(dag, imdb, recorder(prefetch, _gb_dag), **kw)
    (a, sa), (b, sb) = out[False], out[True]
    for name, v in _params(a).items():
        assert torch.equal(v, _params(b)[name]), name
    assert sa["train"][1]["objective"] == sb["train"][1]["objective"]
    # the same calls in the same order; with prefetch all but each phase's first in a thread
    assert [c for c, _ in calls[True]] == [c for c, _ in calls[False]]
    assert all(t == threading.main_thread().name for _, t in calls[False])
    assert sum(t.startswith("mcn-prefetch") for _, t in calls[True]) > len(calls[True]) // 2


def test_prefetch_reports_a_failing_batch(tmp_path):
    imdb = _data()

    def get_batch(d, b):
        if 7 in b.tolist():
            raise IndexError("no image 7")
        return _gb(d, b)

    with pytest.raises(IndexError, match=r"train epoch 1, batch \d/4.*no image 7"):
        cnn_train(_net(), imdb, get_batch, batch_size=10, num_epochs=1, prefetch=True,
                  exp_dir=tmp_path, **QUIET)
    assert not [t for t in threading.enumerate() if t.name.startswith("mcn-prefetch")]


# ------------------------------------------------------------------ console

def test_console_plain_lines_when_not_a_terminal(tmp_path):
    stream = io.StringIO()
    cnn_train(_net(), _data(n=88), _gb, batch_size=10, num_epochs=2, learning_rate=0.05,
              exp_dir=tmp_path, plot_statistics=False, stream=stream)
    text = stream.getvalue()
    assert "\r" not in text
    assert " layer|" in text and "data size|" in text      # vl_simplenn_display's table
    lines = text.splitlines()
    batch = re.compile(r"^train: epoch 0[12]: +(\d+)/  8: [\d.]+ \([\d.]+\) Hz "
                       r"objective: [\d.]+ top1err: [\d.]+ top5err: [\d.]+$")
    ks = [int(m.group(1)) for l in lines if (m := batch.match(l))]
    assert ks == [2, 4, 6, 8] * 2                     # verbose=1: four lines per phase
    assert sum(l.startswith("val: epoch 01:   1/  1:") for l in lines) == 1
    summaries = [l for l in lines if l.startswith("cnn_train: epoch ")]
    assert len(summaries) == 2
    assert re.match(r"cnn_train: epoch 02: train objective [\d.]+ top1err [\d.]+ top5err "
                    r"[\d.]+ \(80 im, [\d.]+ s\); val objective", summaries[1])
    # verbose=2: every batch
    stream = io.StringIO()
    cnn_train(_net(), _data(n=88), _gb, batch_size=10, num_epochs=1, verbose=2,
              exp_dir=tmp_path / "v2", plot_statistics=False, stream=stream)
    assert [int(m.group(1)) for l in stream.getvalue().splitlines()
            if (m := batch.match(l))] == list(range(1, 9))


def test_console_progress_bar_on_a_terminal(tmp_path):
    stream = _Terminal()
    cnn_train_dag(DagNN.from_simplenn(_net(), canonical_names=True), _data(n=88), _gb_dag,
                  batch_size=10, num_epochs=2, learning_rate=0.05, exp_dir=tmp_path,
                  plot_statistics=False, stream=stream)
    text = stream.getvalue()
    assert "\r" in text
    rows = text.split("\n")
    bars = [r for r in rows if r.startswith("\r")]
    assert len(bars) == 4                               # one row per phase and epoch
    for r in bars:
        last = r.split("\r")[-1]
        assert re.match(r"(train: epoch 0[12]:   8/  8|val: epoch 0[12]:   1/  1) "
                        r"\[#{20}\] 100% [\d.]+ \([\d.]+\) Hz objective: [\d.]+", last), last
        assert all(p.startswith(("train:", "val:")) for p in r.split("\r")[1:])
    assert sum(r.startswith("cnn_train_dag: epoch ") for r in rows) == 2


def test_progress_bar_is_throttled_and_cut_to_width():
    stream = _Terminal()
    p = Progress(1, "t", stream, min_interval=3600)
    for k in range(1, 11):
        p.batch("train", 1, k, 10, 100.0, 100.0, {"objective": 0.5, "num": 3, "time": 1})
    parts = stream.getvalue().split("\r")[1:]
    assert len(parts) == 2 and "   1/ 10 [" in parts[0] and "  10/ 10 [" in parts[1]
    assert parts[1].endswith("\n")
    p.batch("val", 1, 1, 5, 1.0, 1.0, {"x" * 300: 1.0})
    p.say("done")      # an unfinished bar is ended first
    tail = stream.getvalue().split("\r")[-1]
    first, second = tail.split("\n")[:2]
    assert len(first) <= 119 and second == "t: done"
    assert summary(3, {"num": 0}, None) == "epoch 03: no images"


def test_quiet_prints_nothing(tmp_path, capsys):
    cnn_train(_net(), _data(), _gb, batch_size=10, num_epochs=1, exp_dir=tmp_path, **QUIET)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="stream: expected a text stream"):
        cnn_train(_net(), _data(), _gb, num_epochs=1, exp_dir=tmp_path, stream=3, **QUIET)


# ------------------------------------------------------------------ plots

def _assert_png(path):
    from PIL import Image
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 100


def test_net_train_png(tmp_path):
    pytest.importorskip("matplotlib")
    imdb = _data()
    cnn_train(_net(), imdb, _gb, batch_size=10, num_epochs=2, learning_rate=0.05,
              exp_dir=tmp_path / "on", verbose=0)
    _assert_png(tmp_path / "on" / "net-train.png")
    assert not [f for f in os.listdir(tmp_path / "on") if f.endswith(".tmp")]
    cnn_train(_net(), imdb, _gb, batch_size=10, num_epochs=1, exp_dir=tmp_path / "off",
              **QUIET)
    assert sorted(os.listdir(tmp_path / "off")) == ["net-epoch-1.mat"]
    # plot_statistics on its own, with an epoch without validation images
    stats = {"train": [{"num": 5, "time": 1.0, "objective": 2.0, "top1err": 0.5},
                       {"num": 5, "time": 1.0, "objective": 1.0, "top1err": 0.25}],
             "val": [{"num": 0, "time": 0.0, "objective": float("nan"), "top1err": 1.0},
                     {"num": 3, "time": 1.0, "objective": 1.5, "top1err": 0.3}]}
    assert plot_statistics(stats, tmp_path / "s.png") is True
    _assert_png(tmp_path / "s.png")
    assert plot_statistics({"train": [], "val": []}, tmp_path / "none.png") is False
    with pytest.raises(TypeError, match="stats: expected a dict"):
        plot_statistics([1, 2], tmp_path / "bad.png")


def test_plot_diagnostics(tmp_path):
    pytest.importorskip("matplotlib")
    cnn_train(_net(), _data(), _gb, batch_size=10, num_epochs=1, learning_rate=0.05,
              plot_diagnostics=True, exp_dir=tmp_path, **QUIET)
    _assert_png(tmp_path / "net-diagnostics.png")
    with pytest.raises(TypeError, match="unknown option 'plot_diagnostics'"):
        cnn_train_dag(DagNN.from_simplenn(_net()), _data(), _gb_dag, plot_diagnostics=True,
                      exp_dir=tmp_path, **QUIET)
    diag = {"variation": [("conv1:filters", 1e-3), ("conv1:biases", 0.0)],
            "power": [("conv1", 2.0), ("relu", float("nan"))], "scores": np.ones((3, 4))}
    assert plot_diagnostics(diag, tmp_path / "d.png") is True
    _assert_png(tmp_path / "d.png")


def test_diagnostics_values(tmp_path, monkeypatch):
    """variation = mean |w_new - w_old| of the last update (with SGD, lr * mean |momentum|);
    power = sqrt(mean(x^2)) of each layer's output; scores = the predictions, C x N."""
    ct = importlib.import_module("matconvnet.train.cnn_train")   # the module, not the function
    seen = {}
    monkeypatch.setattr(ct, "plot_diagnostics", lambda d, path: seen.update(d, path=path))

    def post(net, params, state):
        seen["m"] = [m.clone() for m in state["solverState"][0]]

    cnn_train(_net(), _data(), _gb, batch_size=40, num_epochs=1, learning_rate=0.1,
              plot_diagnostics=True, post_epoch_fn=post, exp_dir=tmp_path, **QUIET)
    assert seen["path"] == os.path.join(tmp_path, "net-diagnostics.png")
    labels = [k for k, _ in seen["variation"]]
    assert labels == ["layer1:filters", "layer1:biases", "layer2:multipliers",
                      "layer2:biases", "layer2:moments", "layer5:filters", "layer5:biases"]
    var = dict(seen["variation"])
    for j, name in enumerate(("filters", "biases")):
        expect = 0.1 * float(seen["m"][j].abs().mean())
        assert var[f"layer1:{name}"] == pytest.approx(expect, rel=1e-4)
    power = dict(seen["power"])
    assert list(power) == [f"layer{i}" for i in range(1, 7)]
    assert all(np.isfinite(v) and v >= 0 for v in power.values())
    assert seen["scores"].shape == (3, 40)


def test_training_works_without_matplotlib(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    cnn_train(_net(), _data(), _gb, batch_size=10, num_epochs=1, exp_dir=tmp_path,
              plot_diagnostics=True, verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["net-epoch-1.mat"]
    assert plot_statistics({"train": [{"num": 1, "objective": 1.0}]}, tmp_path / "x.png") \
        is False


# ------------------------------------------------------------------ checkpoints, exp_dir

@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_last_checkpoint_falls_back(tmp_path, damage):
    imdb = _data()
    kw = dict(batch_size=10, learning_rate=0.05, **QUIET)
    full, _ = cnn_train(_net(), imdb, _gb, num_epochs=3, exp_dir=tmp_path / "full", **kw)
    cnn_train(_net(), imdb, _gb, num_epochs=2, exp_dir=tmp_path / "cut", **kw)
    last = tmp_path / "cut" / "net-epoch-2.mat"
    good = last.read_bytes()
    last.write_bytes({"garbage": b"not a MAT file" * 10, "truncated": good[:len(good) // 2],
                      "empty": b""}[damage])
    with pytest.warns(RuntimeWarning, match=r"net-epoch-2\.mat: cannot resume from this "
                                            r"checkpoint.*trying the previous one"):
        resumed, stats = cnn_train(_net(), imdb, _gb, num_epochs=3,
                                   exp_dir=tmp_path / "cut", **kw)
    for name, v in _params(full).items():
        assert torch.equal(v, _params(resumed)[name]), name
    assert len(stats["train"]) == 3


def test_all_checkpoints_corrupt_starts_over(tmp_path):
    imdb = _data()
    (tmp_path / "net-epoch-1.mat").write_bytes(b"\0" * 10)
    with pytest.warns(RuntimeWarning, match=r"net-epoch-1\.mat.*starting from the initial"):
        _, stats = cnn_train(_net(), imdb, _gb, num_epochs=1, batch_size=10,
                             exp_dir=tmp_path, **QUIET)
    assert len(stats["train"]) == 1


def test_exp_dir_not_writable_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calls = []

    def get_batch(d, b):
        calls.append(b)
        return _gb(d, b)

    with pytest.raises(PermissionError, match=r"exp_dir: cannot write checkpoints to .*file"):
        cnn_train(_net(), _data(), get_batch, num_epochs=1, exp_dir=blocker / "sub", **QUIET)
    if os.geteuid() != 0:       # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(PermissionError, match="exp_dir: cannot write checkpoints"):
                cnn_train(_net(), _data(), get_batch, num_epochs=1, exp_dir=ro, **QUIET)
        finally:
            ro.chmod(0o700)
    assert calls == []


# ------------------------------------------------------------------ in-place updates

@pytest.mark.parametrize("nesterov", [False, True])
def test_inplace_sgd_is_bit_identical(nesterov):
    from matconvnet.train.cnn_train import _update
    from matconvnet.train.solvers import average_update, sgd_update
    g = torch.Generator().manual_seed(0)
    w, der = torch.randn(300, generator=g), torch.randn(300, generator=g)
    opts = {"solver_fn": None, "momentum": 0.9, "nesterov_update": nesterov}
    a, ma, b, mb = w.clone(), 0, w.clone(), 0
    for nw, wd in ((1, 5e-4), (1, 0.0), (3, 5e-4), (2, 0.0)):
        ga = der / nw
        ga = ga + wd * a if wd else ga
        a, ma = sgd_update(a, ma, ga, 0.05, 0.9, nesterov)
        b2, mb = _update(b, mb, der, 0.05, wd, opts, nw)
        assert b2 is b                                  # updated in place
        assert torch.equal(a, b) and torch.equal(ma, mb)
    v, d = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    expect = average_update(v, d, 0.05, 3)
    assert torch.equal(average_update(v, d, 0.05, 3, inplace=True), expect)
    assert torch.equal(v, expect)


def test_training_leaves_the_callers_tensors_alone(tmp_path):
    net0 = _net()
    for l in net0["layers"]:       # NumPy weights: cnn_train must not write into them
        if l.get("weights"):
            l["weights"] = [w.numpy().copy() for w in l["weights"]]
    before = [w.copy() for l in net0["layers"] for w in l.get("weights") or []]
    cnn_train(net0, _data(), _gb, batch_size=10, num_epochs=1, learning_rate=0.1,
              exp_dir=tmp_path / "s", **QUIET)
    after = [w for l in net0["layers"] for w in l.get("weights") or []]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    simple = _net()
    before = [w.clone() for l in simple["layers"] for w in l.get("weights") or []]
    dag = DagNN.from_simplenn(simple, canonical_names=True)
    cnn_train_dag(dag, _data(), _gb_dag, batch_size=10, num_epochs=1, learning_rate=0.1,
                  exp_dir=tmp_path / "d", **QUIET)
    after = [w for l in simple["layers"] for w in l.get("weights") or []]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not torch.equal(dag.params[0].value, before[0])     # the DagNN itself trained


@pytest.mark.parametrize("fmt", ["v6", "v7", "v7.3"])
def test_checkpoint_format(tmp_path, fmt):
    import matconvnet.io as mio
    imdb = _data()
    kw = dict(batch_size=10, learning_rate=0.05, **QUIET)
    a, _ = cnn_train(_net(), imdb, _gb, num_epochs=2, exp_dir=tmp_path / "a", **kw)
    cnn_train(_net(), imdb, _gb, num_epochs=1, exp_dir=tmp_path / "b", checkpoint_format=fmt,
              **kw)
    with open(tmp_path / "b" / "net-epoch-1.mat", "rb") as f:
        head = f.read(128)
    assert (head[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head) if fmt == "v7.3" \
        else head.startswith(b"MATLAB 5.0 MAT-file")
    b, _ = cnn_train(_net(), imdb, _gb, num_epochs=2, exp_dir=tmp_path / "b", **kw)
    for name, v in _params(a).items():          # resumed from any format: the same run
        assert torch.equal(v, _params(b)[name]), name
    assert mio.load(tmp_path / "b" / "net-epoch-2.mat")["stats"]["train"][0]["num"] == 40
    with pytest.raises(ValueError, match="checkpoint_format: expected one of"):
        cnn_train(_net(), imdb, _gb, num_epochs=1, exp_dir=tmp_path, checkpoint_format="v5",
                  **kw)


def test_checkpoint_too_large_for_mat5_is_written_as_v73(tmp_path, monkeypatch):
    import matconvnet.io as mio
    real_save, formats = mio.save, []

    def save(path, variables, format="v7"):
        formats.append(format)
        if format != "v7.3":
            raise ValueError("a variable is too large for the MAT v5/v7 format (test)")
        return real_save(path, variables, format=format)

    monkeypatch.setattr(mio, "save", save)
    with pytest.warns(RuntimeWarning, match=r"net-epoch-1\.mat: .*too large.*v7\.3"):
        cnn_train(_net(), _data(), _gb, batch_size=10, num_epochs=1, exp_dir=tmp_path, **QUIET)
    assert formats == ["v6", "v7.3"]
    monkeypatch.undo()
    assert mio.load(tmp_path / "net-epoch-1.mat")["stats"]["train"][0]["num"] == 40


def test_a_failing_plot_does_not_stop_training(tmp_path, monkeypatch):
    ct = importlib.import_module("matconvnet.train.cnn_train")

    def broken(stats, path):
        raise RuntimeError("no display")

    monkeypatch.setattr(ct, "plot_statistics", broken)
    with pytest.warns(RuntimeWarning, match=r"net-train\.png: not drawn \(RuntimeError: no "):
        _, stats = cnn_train(_net(), _data(), _gb, batch_size=10, num_epochs=2,
                             exp_dir=tmp_path, verbose=0)
    assert len(stats["train"]) == 2 and (tmp_path / "net-epoch-2.mat").exists()
    # values that are not numbers are left out of the figure
    pytest.importorskip("matplotlib")
    assert plot_statistics({"train": [{"num": 2, "objective": 1.0, "odd": [1, 2]},
                                      {"num": 2, "objective": torch.tensor(0.5), "odd": "x"}]},
                           tmp_path / "odd.png")
