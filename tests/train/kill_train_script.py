"""A training run that is killed after its first epoch (tests/train/test_resume_kill.py).

``python kill_train_script.py EXP_DIR KIND THREADS``: trains :func:`problem` (KIND
'simplenn' or 'dagnn') for 3 epochs in EXP_DIR with THREADS torch threads, and SIGKILLs
itself from ``post_epoch_fn`` once the epoch-1 checkpoint is complete, as a crash or an
out-of-memory kill would, leaving no chance to clean up.  Imported by the test, the same
problem is trained in one process.
"""
import os
import signal
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # the repository root

from matconvnet.dagnn import DagNN  # noqa: E402
from matconvnet.train import cnn_train, cnn_train_dag  # noqa: E402

EPOCHS = 3


def data(n=60, seed=0, val=12):
    """n 8 x 8 images of 3 classes (a shifted mean per class); the last ``val`` are set 2."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3 + 1
    x = torch.randn(n, 1, 8, 8, generator=g) + y.view(n, 1, 1, 1).float()
    return {"x": x, "y": y, "images": {"set": np.array([1] * (n - val) + [2] * val)}}


def simplenn(seed=0, channels=6, rate=0.3):
    """conv - bnorm - relu - dropout - conv - softmaxloss: batch-norm moments and dropout's
    random masks both have to resume exactly."""
    g = torch.Generator().manual_seed(seed)
    c = channels
    return {"layers": [
        {"type": "conv", "weights": [0.1 * torch.randn(c, 1, 3, 3, generator=g), torch.zeros(c)]},
        {"type": "bnorm", "weights": [torch.ones(c), torch.zeros(c), torch.zeros(c, 2)],
         "learningRate": [1.0, 1.0, 0.05], "weightDecay": [0.0, 0.0]},
        {"type": "relu"},
        {"type": "dropout", "rate": rate},
        {"type": "conv", "weights": [0.1 * torch.randn(3, c, 6, 6, generator=g), torch.zeros(3)]},
        {"type": "softmaxloss"}], "meta": {"inputSize": [8, 8, 1]}}


def get_batch(imdb, b):
    return imdb["x"][b], imdb["y"][b]


def get_batch_dag(imdb, b):
    return {"input": imdb["x"][b], "label": imdb["y"][b]}


def train(kind, exp_dir, num_epochs=EPOCHS, post_epoch_fn=None, **opts):
    imdb = data()
    kw = dict(batch_size=8, num_epochs=num_epochs, learning_rate=[0.05, 0.05, 0.02],
              momentum=0.9, weight_decay=1e-3, exp_dir=exp_dir, verbose=0,
              plot_statistics=False, post_epoch_fn=post_epoch_fn, **opts)
    if kind == "simplenn":
        return cnn_train(simplenn(), imdb, get_batch, **kw)
    dag = DagNN.from_simplenn(simplenn(), canonical_names=True)
    return cnn_train_dag(dag, imdb, get_batch_dag, **kw)


def parameters(net):
    """name -> tensor of every parameter of a trained net."""
    if isinstance(net, DagNN):
        return {p.name: p.value for p in net.params}
    return {f"{i}_{j}": w for i, l in enumerate(net["layers"])
            for j, w in enumerate(l.get("weights") or [])}


def _kill_after_first_epoch(net, params, state):
    if params["epoch"] == 1:
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    exp_dir, kind, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    train(kind, exp_dir, post_epoch_fn=_kill_after_first_epoch)
    sys.exit("not killed")   # never reached
