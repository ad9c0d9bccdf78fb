"""Resume after a crash (issue acceptance 3): a training run SIGKILLed right after its epoch-1
checkpoint, continued to 3 epochs, ends with the parameters of an uninterrupted 3-epoch run,
bit for bit, on the CPU; no checkpoint file is ever partial."""
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import matconvnet.io as mio

SCRIPT = Path(__file__).with_name("kill_train_script.py")
TIMEOUT_S = 120


def _script():
    spec = importlib.util.spec_from_file_location("kill_train_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("kind", ["simplenn", "dagnn"])
def test_killed_run_resumes_bit_identical(tmp_path, kind):
    mod = _script()
    killed = tmp_path / "killed"
    # the same number of threads as this process: CPU reductions then round identically
    proc = subprocess.run([sys.executable, str(SCRIPT), str(killed), kind,
                           str(torch.get_num_threads())],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sorted(os.listdir(killed)) == ["net-epoch-1.mat"]     # complete, and nothing else
    assert len(mio.load(killed / "net-epoch-1.mat")["stats"]["train"]) == 1

    resumed, stats_r = mod.train(kind, killed)                    # continue_=True (default)
    full, stats_f = mod.train(kind, tmp_path / "full")
    pr, pf = mod.parameters(resumed), mod.parameters(full)
    assert pr.keys() == pf.keys()
    for name in pf:
        assert torch.equal(pr[name], pf[name]), name
    assert len(stats_r["train"]) == mod.EPOCHS
    for e in range(mod.EPOCHS):
        for key in ("objective", "num"):
            assert stats_r["train"][e][key] == stats_f["train"][e][key], (e, key)
            assert stats_r["val"][e][key] == stats_f["val"][e][key], (e, key)
    assert sorted(os.listdir(killed)) == [f"net-epoch-{e}.mat" for e in (1, 2, 3)]
