"""cnn_train / cnn_train_dag: updates, statistics, checkpoints and resume, errors."""
import math
import os

import numpy as np
import pytest
import torch

import matconvnet.io as mio
from matconvnet.blocks import vl_nnbnorm
from matconvnet.dagnn import DagNN
from matconvnet.simplenn import vl_simplenn
from matconvnet.train import cnn_train, cnn_train_dag, find_last_checkpoint


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3 + 1
    x = torch.randn(n, 1, 8, 8, generator=g) + y.view(n, 1, 1, 1).float()
    return {"x": x, "y": y, "images": {"set": np.array([1] * (n - 8) + [2] * 8)}}


def _net(bnorm=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers = [{"type": "conv", "weights": [0.1 * torch.randn(4, 1, 3, 3, generator=g),
                                           torch.zeros(4)]}]
    if bnorm:
        layers.append({"type": "bnorm", "weights": [torch.ones(4), torch.zeros(4),
                                                    torch.zeros(4, 2)],
                       "learningRate": [1.0, 1.0, 0.05], "weightDecay": [0.0, 0.0]})
    layers += [{"type": "relu"},
               {"type": "conv", "weights": [0.1 * torch.randn(3, 4, 6, 6, generator=g),
                                            torch.zeros(3)]},
               {"type": "softmaxloss"}]
    return {"layers": layers, "meta": {"inputSize": [8, 8, 1]}}


def _gb(imdb, b):
    return imdb["x"][b], imdb["y"][b]


def _gb_dag(imdb, b):
    return {"input": imdb["x"][b], "label": imdb["y"][b]}


def _dag(bnorm=True):
    return DagNN.from_simplenn(_net(bnorm), canonical_names=True)


QUIET = dict(verbose=0, plot_statistics=False)


def test_one_sgd_step_matches_hand_computation(tmp_path):
    imdb = _data()
    net0 = _net(bnorm=False)
    lr, wd = 0.1, 0.01
    batch = np.arange(8)
    # one batch, one epoch; epoch 1 shuffles with seed 1: find that permutation
    torch.manual_seed(1)
    perm = torch.randperm(8).numpy()
    net, stats = cnn_train(net0, imdb, _gb, train=batch, val=float("nan"), batch_size=8,
                           num_epochs=1, learning_rate=lr, weight_decay=wd, momentum=0.9,
                           exp_dir=tmp_path, **QUIET)
    x, c = _gb(imdb, batch[perm])
    ref = {"layers": [dict(l) for l in net0["layers"]]}
    ref["layers"][-1]["class"] = c
    res = vl_simplenn(ref, x, 1.0)
    for i in (0, 2):
        for j in range(2):
            w = net0["layers"][i]["weights"][j]
            expect = w - lr * (res[i]["dzdw"][j] + wd * w)      # m = -g, w += lr m
            assert torch.allclose(net["layers"][i]["weights"][j], expect, atol=1e-6)
    # the caller's net is not modified (MATLAB value semantics)
    assert net0["layers"][0]["weights"][0] is not net["layers"][0]["weights"][0]
    assert "class" not in net["layers"][-1]
    assert stats["train"][0]["num"] == 8 and stats["val"][0]["num"] == 0


def test_bnorm_moments_rule(tmp_path):
    """SimpleNN moments: M <- (1 - lrM) M + lrM batch_moments, lrM = learningRate(3) = 0.05,
    independent of the global learning rate (which is 0 here: nothing else moves)."""
    imdb = _data()
    net0 = _net()
    batch = np.arange(6)
    torch.manual_seed(1)
    perm = torch.randperm(6).numpy()
    net, _ = cnn_train(net0, imdb, _gb, train=batch, val=[], batch_size=6, num_epochs=1,
                       learning_rate=0.0, weight_decay=0.0, exp_dir=tmp_path, **QUIET)
    x = _gb(imdb, batch[perm])[0]
    from matconvnet.blocks import vl_nnconv
    y = vl_nnconv(x, *net0["layers"][0]["weights"])
    _, moments = vl_nnbnorm(y, torch.ones(4), torch.zeros(4), return_moments=True, epsilon=1e-5)
    d = (net["layers"][1]["weights"][2] - 0.05 * moments).abs().max()
    assert d < 1e-6, d
    assert torch.equal(net["layers"][0]["weights"][0], net0["layers"][0]["weights"][0])


@pytest.mark.parametrize("kind", ["simplenn", "dagnn"])
def test_stats_and_checkpoints(tmp_path, kind):
    imdb = _data()
    if kind == "simplenn":
        net, stats = cnn_train(_net(), imdb, _gb, batch_size=10, num_epochs=2,
                               learning_rate=[0.1, 0.05], exp_dir=tmp_path, **QUIET)
        names = {"num", "time", "objective", "top1err", "top5err"}
    else:
        net, stats = cnn_train_dag(_dag(), imdb, _gb_dag, batch_size=10, num_epochs=2,
                                   learning_rate=[0.1, 0.05], exp_dir=tmp_path, **QUIET)
        names = {"num", "time", "objective"}
    assert len(stats["train"]) == 2 and len(stats["val"]) == 2
    for s in stats["train"] + stats["val"]:
        assert set(s) == names and math.isfinite(s["objective"])
    assert stats["train"][0]["num"] == 40 and stats["val"][0]["num"] == 8
    assert stats["train"][1]["objective"] < stats["train"][0]["objective"]
    assert find_last_checkpoint(tmp_path) == 2
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".mat")) == \
        ["net-epoch-1.mat", "net-epoch-2.mat"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    data = mio.load(tmp_path / "net-epoch-2.mat")
    assert set(data) == {"net", "state", "stats"}
    assert len(data["stats"]["train"]) == 2
    assert data["stats"]["train"][1]["num"] == 40
    assert data["state"]["stats"]["train"]["num"] == 40
    ss = data["state"]["solverState"]
    if kind == "simplenn":
        assert len(ss) == len(net["layers"])
        assert torch.is_tensor(ss[0][0]) and ss[0][0].shape == net["layers"][0]["weights"][0].shape
    else:
        assert len(ss) == len(net.params)
        assert any(torch.is_tensor(s) for s in ss)


def _params(net):
    if isinstance(net, DagNN):
        return {p.name: p.value for p in net.params}
    return {f"{i}_{j}": w for i, l in enumerate(net["layers"])
            for j, w in enumerate(l.get("weights") or [])}


@pytest.mark.parametrize("kind", ["simplenn", "dagnn"])
@pytest.mark.parametrize("solver", [None, "adam"])
def test_resume_gives_the_same_parameters(tmp_path, kind, solver):
    imdb = _data()
    train = cnn_train if kind == "simplenn" else cnn_train_dag
    make = _net if kind == "simplenn" else _dag
    gb = _gb if kind == "simplenn" else _gb_dag
    opts = dict(batch_size=10, learning_rate=0.05, solver=solver, **QUIET)
    full, sf = train(make(), imdb, gb, num_epochs=2, exp_dir=tmp_path / "a", **opts)
    train(make(), imdb, gb, num_epochs=1, exp_dir=tmp_path / "b", **opts)
    resumed, sr = train(make(), imdb, gb, num_epochs=2, exp_dir=tmp_path / "b", **opts)
    pf, pr = _params(full), _params(resumed)
    assert pf.keys() == pr.keys()
    for k in pf:
        assert torch.equal(pf[k], pr[k]), k
    assert sf["train"][1]["objective"] == sr["train"][1]["objective"]
    assert len(sr["train"]) == 2
    # continue_=False starts over
    _, s0 = train(make(), imdb, gb, num_epochs=1, exp_dir=tmp_path / "b", continue_=False,
                  **opts)
    assert s0["train"][0]["objective"] == sf["train"][0]["objective"]


def test_sub_batches_average_like_one_batch(tmp_path):
    imdb = _data()
    kw = dict(train=np.arange(40), val=[], num_epochs=1, learning_rate=0.1, **QUIET)
    a, _ = cnn_train(_net(bnorm=False), imdb, _gb, batch_size=10, exp_dir=tmp_path / "a", **kw)
    b, _ = cnn_train(_net(bnorm=False), imdb, _gb, batch_size=10, num_sub_batches=2,
                     exp_dir=tmp_path / "b", **kw)
    for k, v in _params(a).items():
        assert torch.allclose(v, _params(b)[k], atol=1e-5), k


def test_zero_multipliers_freeze_a_parameter_and_post_epoch_fn(tmp_path):
    imdb = _data()
    net0 = _net(bnorm=False)
    net0["layers"][0]["learningRate"] = [0.0, 0.0]
    net0["layers"][0]["weightDecay"] = [0.0, 0.0]
    calls = []

    def post(net, params, state):
        calls.append(params["epoch"])
        return 0 if params["epoch"] == 2 else None

    net, stats = cnn_train(net0, imdb, _gb, batch_size=10, num_epochs=5, learningRate=0.1,
                           postEpochFn=post, expDir=str(tmp_path), **QUIET)
    assert calls == [1, 2] and len(stats["train"]) == 2
    assert torch.equal(net["layers"][0]["weights"][0], net0["layers"][0]["weights"][0])
    assert not torch.equal(net["layers"][2]["weights"][0], net0["layers"][2]["weights"][0])


def test_evaluate_mode_writes_nothing(tmp_path):
    imdb = _data()
    _, stats = cnn_train(_net(), imdb, _gb, train=float("nan"), num_epochs=1,
                         exp_dir=tmp_path / "e", **QUIET)
    assert stats["val"][0]["num"] == 8 and stats["train"][0]["num"] == 0
    assert not (tmp_path / "e").exists()


def test_errors(tmp_path):
    imdb = _data()
    kw = dict(num_epochs=1, exp_dir=tmp_path, batch_size=10, **QUIET)
    with pytest.raises(TypeError, match="unknown option 'batchsize'"):
        cnn_train(_net(), imdb, _gb, batchsize=3, **kw)
    with pytest.raises(ValueError, match="get_batch: returned 9 images for 10 indices"):
        cnn_train(_net(), imdb, lambda d, b: (d["x"][b][1:], d["y"][b]), **kw)
    with pytest.raises(ValueError, match=r"train epoch 1, batch 1/4.*class indices up to 3"):
        cnn_train(_net(), imdb, lambda d, b: (d["x"][b], d["y"][b] + 3), **kw)
    with pytest.raises(ValueError, match="N x C x H x W"):
        cnn_train(_net(), imdb, lambda d, b: (d["x"][b][:, 0], d["y"][b]), **kw)
    with pytest.raises(TypeError, match=r"expected \(images, labels\)"):
        cnn_train(_net(), imdb, _gb_dag, **kw)
    with pytest.raises(ValueError, match="input 'data' is not a variable"):
        cnn_train_dag(_dag(), imdb, lambda d, b: {"data": d["x"][b], "label": d["y"][b]}, **kw)
    with pytest.raises(TypeError, match="expected a dict of inputs"):
        cnn_train_dag(_dag(), imdb, _gb, **kw)
    with pytest.raises(TypeError, match="cnn_train_dag"):
        cnn_train(_dag(), imdb, _gb, **kw)
    with pytest.raises(ValueError, match="learning_rate"):
        cnn_train(_net(), imdb, _gb, learning_rate=[], **kw)
    with pytest.raises(ValueError, match="imdb: no images.set"):
        cnn_train(_net(), {}, _gb, **kw)
    assert find_last_checkpoint(tmp_path) == 0    # nothing saved by the failed runs


def test_partial_checkpoint_falls_back_to_the_previous_one(tmp_path):
    imdb = _data()
    cnn_train(_net(), imdb, _gb, num_epochs=1, exp_dir=tmp_path, batch_size=10, **QUIET)
    data = mio.load(tmp_path / "net-epoch-1.mat")
    mio.save(tmp_path / "net-epoch-2.mat", {"net": data["net"], "state": data["state"]})
    with pytest.warns(RuntimeWarning, match=r"net-epoch-2\.mat.*only partially saved"):
        _, stats = cnn_train(_net(), imdb, _gb, num_epochs=3, exp_dir=tmp_path,
                             batch_size=10, **QUIET)
    assert len(stats["train"]) == 3
    assert len(mio.load(tmp_path / "net-epoch-2.mat")["stats"]["train"]) == 2  # redone
