"""Tiny training problems for tests/train/test_distributed.py.

Run under torchrun (``python -m torch.distributed.run --standalone --nproc_per_node=2
dist_train_script.py OUT_DIR CASE...``): trains each case data-parallel in OUT_DIR/CASE; rank 0
writes the final parameters and statistics to OUT_DIR/CASE.npz (and .npz.json).  Imported by the test, :func:`train` runs the same
training in one process.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # the repository root

from matconvnet.dagnn import DagNN  # noqa: E402
from matconvnet.train import cnn_train, cnn_train_dag  # noqa: E402
from matconvnet.train import distributed as dist  # noqa: E402

DT = torch.float64


def data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3 + 1
    x = torch.randn(n, 1, 8, 8, generator=g, dtype=DT) + y.view(n, 1, 1, 1).to(DT)
    return {"x": x, "y": y, "images": {"set": np.array([1] * (n - 8) + [2] * 8)}}


def net(bnorm, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers = [{"type": "conv", "weights": [0.1 * torch.randn(4, 1, 3, 3, generator=g, dtype=DT),
                                           torch.zeros(4, dtype=DT)]}]
    if bnorm:
        layers.append({"type": "bnorm", "weights": [torch.ones(4, dtype=DT),
                                                    torch.zeros(4, dtype=DT),
                                                    torch.zeros(4, 2, dtype=DT)],
                       "learningRate": [1.0, 1.0, 0.05], "weightDecay": [0.0, 0.0]})
    layers += [{"type": "relu"},
               {"type": "conv", "weights": [0.1 * torch.randn(3, 4, 6, 6, generator=g,
                                                              dtype=DT),
                                            torch.zeros(3, dtype=DT)]},
               {"type": "softmaxloss"}]
    return {"layers": layers, "meta": {"inputSize": [8, 8, 1]}}


def gb(imdb, b):
    return imdb["x"][b], imdb["y"][b]


def gb_dag(imdb, b):
    return {"input": imdb["x"][b], "label": imdb["y"][b]}


COMMON = dict(verbose=0, plot_statistics=False, batch_size=8, learning_rate=0.05,
              weight_decay=1e-3)


def train(case, exp_dir, num_sub_batches=1):
    """Returns (dict of parameter arrays, stats)."""
    seed = dist.rank()    # ranks > 0 start elsewhere: rank 0's parameters are broadcast
    if case in ("simplenn", "simplenn_bnorm_b3"):
        # two calls: 1 epoch, then resume from the checkpoint for the second
        bnorm = case == "simplenn_bnorm_b3"
        opts = dict(COMMON, batch_size=3) if bnorm else COMMON
        n = net(bnorm=bnorm, seed=seed)
        cnn_train(n, data(), gb, exp_dir=exp_dir, num_epochs=1,
                  num_sub_batches=num_sub_batches, **opts)
        n, stats = cnn_train(net(bnorm=bnorm, seed=seed + 7), data(), gb, exp_dir=exp_dir,
                             num_epochs=2, num_sub_batches=num_sub_batches, **opts)
        params = {f"l{i}w{j}": w.numpy() for i, l in enumerate(n["layers"])
                  for j, w in enumerate(l.get("weights") or [])}
    elif case == "dag_bnorm":
        d = DagNN.from_simplenn(net(bnorm=True, seed=seed), canonical_names=True)
        d, stats = cnn_train_dag(d, data(), gb_dag, exp_dir=exp_dir, num_epochs=2,
                                 num_sub_batches=num_sub_batches, **COMMON)
        params = {p.name: p.value.numpy() for p in d.params}
    else:
        raise ValueError(case)
    return params, stats


def main():
    out_dir, cases = sys.argv[1], sys.argv[2:]
    dist.init_from_env()
    assert dist.world_size() == 2, dist.world_size()
    for case in cases:
        params, stats = train(case, os.path.join(out_dir, case))
        if dist.rank() == 0:
            out = os.path.join(out_dir, case + ".npz")
            np.savez(out, **params)
            with open(out + ".json", "w") as f:
                json.dump(stats, f)
    dist.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
