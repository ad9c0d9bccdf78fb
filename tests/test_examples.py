"""The runnable demo ``examples/mnist_blocks.py`` trains and generalises (a short run)."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_blocks.py"


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
