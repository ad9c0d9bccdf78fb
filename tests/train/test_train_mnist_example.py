"""examples/train_mnist.py runs with both wrappers (a short run)."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_mnist.py"


def _load():
    spec = importlib.util.spec_from_file_location("train_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_mnist_short_run(tmp_path, capsys):
    demo = _load()
    out = {}
    for network in ("simplenn", "dagnn"):
        out[network] = demo.main(["--epochs", "2", "--batch-norm", "--limit", "1000",
                                  "--test-limit", "500", "--network", network,
                                  "--verbose", "0", "--exp-dir", str(tmp_path / network)])
        stats = out[network]["stats"]
        assert len(stats["train"]) == 2 and stats["train"][0]["num"] == 1000
        assert stats["train"][1]["objective"] < stats["train"][0]["objective"]
        assert out[network]["test_error"] < 0.3                  # chance is 0.9
        assert (tmp_path / network / "net-epoch-2.mat").exists()
    # the two wrappers train the same network the same way
    assert out["dagnn"]["test_error"] == pytest.approx(out["simplenn"]["test_error"], abs=0.02)
    assert "test error" in capsys.readouterr().out


def test_train_mnist_rejects_bad_flags():
    demo = _load()
    with pytest.raises(SystemExit):
        demo.parse_args(["--epochs", "0"])
