"""Data-parallel cnn_train / cnn_train_dag (FEATURES.md 4.6): two gloo processes started with
torchrun train to the same parameters as one process with the same global batch."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from matconvnet.train.cnn_train import _batches

SCRIPT = Path(__file__).with_name("dist_train_script.py")
TIMEOUT_S = 120


def _gloo():
    try:
        import torch.distributed as d
        return d.is_available() and d.is_gloo_available()
    except Exception:
        return False


needs_gloo = pytest.mark.skipif(not _gloo(), reason="torch.distributed with the gloo backend "
                                                    "is not available in this PyTorch build")


def _script():
    spec = importlib.util.spec_from_file_location("dist_train_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = ("simplenn", "dag_bnorm", "simplenn_bnorm_b3")


@pytest.fixture(scope="module")
def dist_runs(tmp_path_factory):
    """One torchrun (2 gloo processes) trains every case: {case: (params, stats)}."""
    if not _gloo():
        pytest.skip("torch.distributed with the gloo backend is not available")
    out_dir = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, OMP_NUM_THREADS="1", MATCONVNET_DIST_BACKEND="gloo",
               CUDA_VISIBLE_DEVICES="")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT), str(out_dir), *CASES]
    # start_new_session: a timeout kills the launcher and its workers together
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        log, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s:\n{log[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed (rc {proc.returncode}):\n{log[-4000:]}")
    runs = {}
    for case in CASES:
        out = out_dir / (case + ".npz")
        with open(str(out) + ".json") as f:
            runs[case] = (dict(np.load(out)), json.load(f))
    runs["dir"] = out_dir
    return runs


def _compare(dist_params, single_params, dist_stats, single_stats, tol=1e-5):
    assert sorted(dist_params) == sorted(single_params)
    worst = max(float(np.max(np.abs(dist_params[k] - single_params[k]))) for k in dist_params)
    assert worst <= tol, f"max |difference| {worst:.3g}"
    moved = max(float(np.max(np.abs(v))) for v in single_params.values())
    assert moved > 0
    for mode in ("train", "val"):
        assert len(dist_stats[mode]) == len(single_stats[mode]) == 2
        for a, b in zip(dist_stats[mode], single_stats[mode]):
            assert a["num"] == b["num"]
            for k in a:
                if k not in ("num", "time"):
                    assert abs(a[k] - b[k]) <= 1e-8, (mode, k, a[k], b[k])
    return worst


def test_batches_interleave_like_more_sub_batches():
    subset = np.arange(23)
    one = list(_batches(subset, 8, 4))
    for lab in range(2):
        mine = list(_batches(subset, 8, 2, lab, 2))
        for a, b in zip(mine, one):
            # lab l, sub-batch s = sub-batch l + 2 s of one process with 4 sub-batches
            for s in range(2):
                assert np.array_equal(a[s], b[lab + 2 * s])


@needs_gloo
def test_simplenn_two_processes_match_one(dist_runs, tmp_path):
    """No batch norm: 2 processes x 4 images = one process with batches of 8.  The run is
    1 epoch, then a resumed second epoch; rank 1 starts from other parameters (broadcast)."""
    dist_params, dist_stats = dist_runs["simplenn"]
    mod = _script()
    single_params, single_stats = mod.train("simplenn", str(tmp_path / "single"))
    _compare(dist_params, single_params, dist_stats, single_stats)
    assert sorted(os.listdir(dist_runs["dir"] / "simplenn")) == ["net-epoch-1.mat", "net-epoch-2.mat"]


@needs_gloo
def test_dagnn_bnorm_two_processes_match_two_sub_batches(dist_runs, tmp_path):
    """With batch norm the moments are per worker: 2 processes = one process with 2
    sub-batches (MatConvNet's numWorkers = numGpus * numSubBatches); moments averaged."""
    dist_params, dist_stats = dist_runs["dag_bnorm"]
    mod = _script()
    single_params, single_stats = mod.train("dag_bnorm", str(tmp_path / "single"),
                                            num_sub_batches=2)
    _compare(dist_params, single_params, dist_stats, single_stats)
    moments = [k for k in single_params if single_params[k].shape == (4, 2)]
    assert moments and np.abs(single_params[moments[0]]).max() > 0


@needs_gloo
def test_simplenn_bnorm_uneven_batches(dist_runs, tmp_path):
    """SimpleNN batch norm, batches of 3 (40 training images: 2 + 1 images per process, and a
    last batch of 1 where rank 1 has nothing) = one process with 2 sub-batches."""
    dist_params, dist_stats = dist_runs["simplenn_bnorm_b3"]
    mod = _script()
    single_params, single_stats = mod.train("simplenn_bnorm_b3", str(tmp_path / "single"),
                                            num_sub_batches=2)
    _compare(dist_params, single_params, dist_stats, single_stats)
