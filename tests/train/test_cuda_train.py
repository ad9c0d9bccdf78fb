"""Training on a GPU (``gpus=[1]``) follows the CPU run: the same updates in float64, the
statistics and checkpoints land on the CPU, and the trained net comes back on the CPU.

Skipped, with a message, when no CUDA device is available."""
import numpy as np
import pytest
import torch

from matconvnet.dagnn import DagNN
from matconvnet.train import cnn_train, cnn_train_dag

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available"),
]

QUIET = dict(verbose=0, plot_statistics=False)


def _data(n=40):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3 + 1
    x = torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64) + y.view(n, 1, 1, 1)
    return {"x": x, "y": y, "images": {"set": np.array([1] * (n - 8) + [2] * 8)}}


def _net():
    """conv - bnorm - relu - max pool - dropout-free conv - softmaxloss, in float64: every
    block with GPU-specific state (switches, moments) is on the path."""
    g = torch.Generator().manual_seed(1)
    r = lambda *s: 0.1 * torch.randn(*s, generator=g, dtype=torch.float64)
    z = lambda *s: torch.zeros(*s, dtype=torch.float64)
    return {"layers": [
        {"type": "conv", "weights": [r(4, 1, 3, 3), z(4)]},
        {"type": "bnorm", "weights": [z(4) + 1, z(4), z(4, 2)], "learningRate": [1, 1, 0.05]},
        {"type": "relu"},
        {"type": "pool", "method": "max", "pool": [2, 2], "stride": 2},
        {"type": "conv", "weights": [r(3, 4, 3, 3), z(3)]},
        {"type": "softmaxloss"}], "meta": {"inputSize": [8, 8, 1]}}


def _gb(imdb, b):
    return imdb["x"][b], imdb["y"][b]


def _gb_dag(imdb, b):
    return {"input": imdb["x"][b], "label": imdb["y"][b]}


def _weights_simplenn(net):
    return [w for l in net["layers"] for w in l.get("weights", [])]


def _weights_dag(net):
    return [p.value for p in net.params]


@pytest.mark.parametrize("kind", ["simplenn", "dagnn"])
def test_gpu_training_follows_cpu(tmp_path, kind):
    imdb = _data()
    opts = dict(batch_size=8, num_epochs=2, learning_rate=0.05, momentum=0.9, **QUIET)
    runs = {}
    for dev, gpus in (("cpu", []), ("cuda", [1])):
        if kind == "simplenn":
            net, stats = cnn_train(_net(), imdb, _gb, gpus=gpus, exp_dir=tmp_path / dev, **opts)
            runs[dev] = (_weights_simplenn(net), stats)
        else:
            dag = DagNN.from_simplenn(_net(), canonical_names=True)
            net, stats = cnn_train_dag(dag, imdb, _gb_dag, gpus=gpus, exp_dir=tmp_path / dev,
                                       **opts)
            runs[dev] = (_weights_dag(net), stats)
    (w_cpu, s_cpu), (w_gpu, s_gpu) = runs["cpu"], runs["cuda"]
    assert len(w_cpu) == len(w_gpu) > 0
    for a, b in zip(w_cpu, w_gpu):
        assert b.device.type == "cpu", "the trained net comes back on the CPU"
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)
    for phase in ("train", "val"):
        for e_cpu, e_gpu in zip(s_cpu[phase], s_gpu[phase]):
            assert e_gpu["objective"] == pytest.approx(e_cpu["objective"], rel=1e-9)
    assert (tmp_path / "cuda" / "net-epoch-2.mat").exists()
