"""The ``matconvnet`` command: every subcommand through ``main(argv)`` in-process, and
``python -m matconvnet --help`` once in a subprocess.

Exit statuses: 0 success, 2 usage mistakes (one line on stderr, no traceback), 1 other
failures.  ``display`` and ``convert`` (mat -> mat v7.3 round trip, mat -> onnx -> ONNX
Runtime) run on the real MatConvNet models in ../shared/data/matconvnet when present.
"""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import matconvnet as mcn
import matconvnet.io as mio
from matconvnet import cli
from matconvnet.dagnn import DagNN
from matconvnet.models import preprocess

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "matconvnet"
REAL_MODELS = ["dcfnet/DCFNet-net-7-125-2.mat", "plate-chars/net-epoch-50.mat",
               "player-detection/net_stage_1.mat", "player-detection/net_stage_2.mat"]
PACKAGE_MODELS = ROOT / "matconvnet" / "models" / "shipped"


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


# ----------------------------------------------------------------------------- fixtures

CLASSES = ["apple", "banana", "cherry", "date"]


def _classifier(softmax: bool = True) -> dict:
    g = torch.Generator().manual_seed(0)
    layers = [{"type": "conv", "name": "fc", "weights": [
        torch.randn(4, 3, 8, 8, generator=g) * 0.01, torch.zeros(4)], "pad": 0, "stride": 1}]
    if softmax:
        layers.append({"type": "softmax", "name": "prob"})
    return mcn.vl_simplenn_tidy({"layers": layers, "meta": {
        "normalization": {"imageSize": [8, 8, 3], "averageImage": [100.0, 110.0, 120.0],
                          "interpolation": "bilinear", "keepAspect": True},
        "classes": {"name": ["n1", "n2", "n3", "n4"], "description": CLASSES}}})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    net = _classifier()
    mio.save(d / "net.mat", net)
    mio.save(d / "scores.mat", _classifier(softmax=False))
    mio.save_dagnn(d / "dag.mat", DagNN.from_simplenn(net))
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).save(d / f"im{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def _expected_top(image_path: Path, net: dict, k: int, softmax: bool = False):
    x = preprocess(Image.open(image_path), net)
    s = mcn.vl_simplenn(net, x, mode="test")[-1]["x"].reshape(-1).double()
    if softmax:
        s = torch.softmax(s, 0)
    top = torch.topk(s, k)
    return top.values.tolist(), top.indices.tolist()


# ----------------------------------------------------------------------------- general

def test_python_m_matconvnet_help():
    r = subprocess.run([sys.executable, "-m", "matconvnet", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    for command in ["classify", "train", "display", "convert", "bench", "download", "models"]:
        assert command in r.stdout


def test_help_usage_and_unknown_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "classify" in out
    for command in ["classify", "train", "display", "convert", "bench", "download", "models"]:
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0 and "usage: matconvnet " + command in out
    assert run([], capsys)[0] == 2
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2 and "invalid choice" in err
    code, _, err = run(["classify"], capsys)
    assert code == 2 and "IMAGE" in err


# ----------------------------------------------------------------------------- classify

@pytest.mark.parametrize("model", ["net.mat", "dag.mat"])
def test_classify_prints_the_top_classes(files, model, capsys):
    code, out, err = run(["classify", files / "im0.png", files / "im1.png", "--model",
                          files / model, "--top", "3"], capsys)
    assert code == 0, err
    blocks = out.strip().split("\n\n") if "\n\n" in out else None
    lines = out.strip().splitlines()
    assert lines[0] == str(files / "im0.png") and lines[5] == str(files / "im1.png")
    assert blocks is None and len(lines) == 10
    net = _classifier()
    for first, image in [(0, "im0.png"), (5, "im1.png")]:
        values, indices = _expected_top(files / image, net, 3)
        for r, (v, c) in enumerate(zip(values, indices), 1):
            fields = lines[first + 1 + r].split()
            assert fields[:3] == [str(r), f"{v:.4f}", str(c + 1)]
            assert lines[first + 1 + r].endswith(f"{CLASSES[c]} (n{c + 1})")


def test_classify_applies_softmax_to_raw_scores(files, capsys):
    code, out, _ = run(["classify", files / "im0.png", "--model", files / "scores.mat",
                        "--top", "2"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert "softmax of the network's scores" in lines[0]
    values, indices = _expected_top(files / "im0.png", _classifier(softmax=False), 2,
                                    softmax=True)
    assert lines[2].split()[1:3] == [f"{values[0]:.4f}", str(indices[0] + 1)]


def test_classify_evaluation_crop(files, capsys):
    code, out, _ = run(["classify", files / "im0.png", "--model", files / "net.mat",
                        "--top", "1", "--crop", "--interpolation", "bicubic"], capsys)
    assert code == 0
    net = _classifier()
    x = preprocess(Image.open(files / "im0.png"), net, mode="evaluate",
                   interpolation="bicubic")
    s = mcn.vl_simplenn(net, x, mode="test")[-1]["x"].reshape(-1)
    assert out.splitlines()[2].split()[1] == f"{float(s.max()):.4f}"


def test_classify_user_mistakes(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MATCONVNET_HOME", str(tmp_path))
    model = files / "net.mat"
    code, _, err = run(["classify", files / "missing.jpg", "--model", model], capsys)
    assert_usage_error(code, err, "missing.jpg", "no such file")
    code, _, err = run(["classify", files / "notes.txt", "--model", model], capsys)
    assert_usage_error(code, err, "notes.txt", "not an image")
    code, _, err = run(["classify", files / "im0.png", "--model", "imagenet-vgg-g"], capsys)
    assert_usage_error(code, err, "unknown model", "imagenet-vgg-f")
    code, _, err = run(["classify", files / "im0.png", "--model", "imagenet-vgg-f"], capsys)
    assert_usage_error(code, err, "http://www.vlfeat.org/matconvnet/models/imagenet-vgg-f.mat",
                       "matconvnet download imagenet-vgg-f")
    code, _, err = run(["classify", files / "im0.png", "--model", files / "nope.mat"], capsys)
    assert_usage_error(code, err, "nope.mat")
    code, _, err = run(["classify", files / "im0.png", "--model", model, "--top", "0"], capsys)
    assert_usage_error(code, err, "--top")


def test_classify_failure_is_exit_1_without_traceback(files, capsys, tmp_path):
    bad = _classifier()
    bad["layers"][0]["weights"][0] = torch.zeros(4, 5, 8, 8)  # 5 channels for a 3-channel input
    mio.save(tmp_path / "bad.mat", bad)
    code, _, err = run(["classify", files / "im0.png", "--model", tmp_path / "bad.mat"], capsys)
    assert code == 1 and "Traceback" not in err and "--traceback" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(["--traceback", "classify", files / "im0.png", "--model",
                        tmp_path / "bad.mat"], capsys)
    assert code == 1 and "Traceback" in err


def _shipped_photos():
    model = PACKAGE_MODELS / "squeezenet1_0.mat"
    photos = sorted((PACKAGE_MODELS / "photos").glob("*")) if model.is_file() else []
    if not photos:
        pytest.skip("the shipped SqueezeNet and its photos are not in the package yet")
    return photos


@pytest.mark.parametrize("photo,description,probability", [
    ("chelsea", "Egyptian cat", 0.815), ("coffee", "espresso", 0.984)])
def test_classify_shipped_photos_with_the_default_model(photo, description, probability,
                                                        capsys):
    matches = [p for p in _shipped_photos() if p.stem.startswith(photo)]
    if not matches:
        pytest.skip(f"no shipped photo called {photo}*")
    code, out, err = run(["classify", matches[0]], capsys)
    assert code == 0, err
    top = out.splitlines()[2]
    assert description in top
    assert float(top.split()[1]) == pytest.approx(probability, abs=0.01)


# ----------------------------------------------------------------------------- display

def _real(name):
    p = REAL / name
    if not p.is_file():
        pytest.skip(f"{p} not present")
    return p


@pytest.mark.parametrize("name", REAL_MODELS)
def test_display_real_models(name, capsys):
    path = _real(name)
    code, out, err = run(["display", path], capsys)
    assert code == 0, err
    net = mio.load(path)
    net = net.get("net", net)
    for label in ["layer", "type", "rf size", "data size", "parameter memory"]:
        assert label in out
    for layer in net["layers"]:
        if "name" in layer:
            assert layer["name"] in out
    assert "NaN" not in out.split("parameter memory")[0]  # the input size was found


def test_display_options_and_dagnn(files, capsys):
    code, out, _ = run(["display", files / "net.mat", "--format", "csv", "--batch-size", "5"],
                       capsys)
    assert code == 0 and out.startswith("layer,0,1,2") and "data num,5,5,5" in out
    code, out, _ = run(["display", files / "net.mat", "--input-size", "16,12"], capsys)
    assert code == 0 and "9x5" in out and "NaN" not in out
    code, out, _ = run(["display", files / "dag.mat"], capsys)
    assert code == 0
    assert "1x3x8x8" in out and "1x4x1x1" in out   # sizes from meta.normalization.imageSize
    code, out, _ = run(["display", files / "dag.mat", "--format", "dot"], capsys)
    assert code == 0 and out.startswith("digraph")
    code, _, err = run(["display", files / "dag.mat", "--format", "latex"], capsys)
    assert_usage_error(code, err, "latex")
    code, _, err = run(["display", files / "net.mat", "--input-size", "a,b"], capsys)
    assert_usage_error(code, err, "--input-size")
    code, _, err = run(["display", files / "missing.mat"], capsys)
    assert_usage_error(code, err, "missing.mat")


# ----------------------------------------------------------------------------- convert

def _same(a, b, where="net"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", REAL_MODELS)
def test_convert_mat_to_v73_round_trip(name, tmp_path, capsys):
    path = _real(name)
    out = tmp_path / "model-v73.mat"
    code, text, err = run(["convert", path, out, "--format", "v7.3"], capsys)
    assert code == 0 and text.strip() == f"wrote {out}", err
    assert out.read_bytes()[:512].startswith(b"MATLAB 7.3 MAT-file")
    original, converted = mio.load(path), mio.load(out)
    net = original.get("net", original)
    _same(net["layers"], converted.get("net", converted)["layers"])
    back = tmp_path / "back.mat"
    assert run(["convert", out, back], capsys)[0] == 0
    _same(mio.load(back).get("net", mio.load(back))["layers"], net["layers"])
    assert run(["display", out], capsys)[0] == 0


def _predictions(net: dict) -> dict:
    layers = list(net["layers"])
    while layers and layers[-1]["type"] in ("softmaxloss", "loss"):
        layers.pop()
    return {"layers": layers, "meta": net["meta"]}


@pytest.mark.parametrize("name", REAL_MODELS)
def test_convert_mat_to_onnx_runs_the_same(name, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    if not hasattr(mio, "save_onnx"):
        pytest.skip("matconvnet.io.save_onnx is not available yet")
    path = _real(name)
    out = tmp_path / "model.onnx"
    code, _, err = run(["convert", path, out], capsys)
    assert code == 0, err
    from matconvnet.models import load_model
    net = _predictions(load_model(path))
    size = cli._declared_input_size(net["meta"])
    h, w = int(size[0]), int(size[1] if len(size) > 1 else size[0])
    c = int(net["layers"][0]["weights"][0].shape[1])
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0)) * 50
    expected = mcn.vl_simplenn(net, x, mode="test")[-1]["x"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4 * float(
        expected.abs().max()))


def _shared(relative):
    p = ROOT.parent / "shared" / "data" / relative
    if not p.is_file():
        pytest.skip(f"{p} not present")
    return p


def test_convert_onnx_to_mat_and_back(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    if not hasattr(mio, "load_onnx"):
        pytest.skip("matconvnet.io.load_onnx is not available yet")
    source = _shared("onnx/mnist-8/mnist-8.onnx")
    mat, onnx_again = tmp_path / "mnist.mat", tmp_path / "mnist.onnx"
    code, _, err = run(["convert", source, mat, "--format", "v7.3"], capsys)
    assert code == 0, err
    code, out, _ = run(["display", mat], capsys)
    assert code == 0 and "1x1x28x28" in out               # sizes from meta.inputs
    assert run(["convert", mat, onnx_again], capsys)[0] == 0
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    outputs = []
    for f in (source, onnx_again):
        session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1))
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-4)


def test_convert_caffe_to_mat(tmp_path, capsys, monkeypatch):
    if not hasattr(mio, "load_caffe"):  # until matconvnet.io exports it
        monkeypatch.setattr(mio, "load_caffe",
                            pytest.importorskip("matconvnet.io.caffe").load_caffe, raising=False)
    prototxt = _shared("caffe/lenet-mnist/lenet_deploy.prototxt")
    weights = prototxt.with_name("lenet_iter_10000.caffemodel")
    out = tmp_path / "lenet.mat"
    code, _, err = run(["convert", prototxt, out], capsys)     # no weights found
    assert code == 0, err
    code, _, err = run(["convert", prototxt, out, "--caffemodel", weights], capsys)
    assert code == 0, err
    from matconvnet.models import load_model
    net, direct = load_model(out), mio.load_caffe(str(prototxt), str(weights))
    _same(net["layers"], mcn.vl_simplenn_tidy(direct)["layers"])
    code, _, err = run(["convert", prototxt, out, "--caffemodel", tmp_path / "no.caffemodel"],
                       capsys)
    assert_usage_error(code, err, "no.caffemodel")


def test_convert_user_mistakes(files, tmp_path, capsys):
    code, _, err = run(["convert", files / "net.mat", tmp_path / "x.xyz"], capsys)
    assert_usage_error(code, err, ".xyz")
    code, _, err = run(["convert", files / "im0.png", tmp_path / "x.mat"], capsys)
    assert_usage_error(code, err, ".png")
    code, _, err = run(["convert", files / "none.mat", tmp_path / "x.mat"], capsys)
    assert_usage_error(code, err, "none.mat")
    code, _, err = run(["convert", files / "net.mat", tmp_path / "x.onnx", "--format", "v6"],
                       capsys)
    assert_usage_error(code, err, "--format")
    code, _, err = run(["convert", files / "net.mat", tmp_path / "no" / "x.mat"], capsys)
    assert_usage_error(code, err, "no such folder")
    code, _, err = run(["convert", files / "net.mat", tmp_path / "x.mat", "--format", "v8"],
                       capsys)
    assert code == 2 and "invalid choice" in err


def test_convert_dagnn_mat_to_v6(files, tmp_path, capsys):
    out = tmp_path / "dag6.mat"
    assert run(["convert", files / "dag.mat", out, "--format", "v6"], capsys)[0] == 0
    net = mio.load_dagnn(out)
    assert [l.name for l in net.layers] == [l.name for l in mio.load_dagnn(files / "dag.mat")
                                            .layers]


# ----------------------------------------------------------------------------- bench

def test_bench(capsys):
    code, out, _ = run(["bench", "--repeat", "1", "--blocks", "relu,softmaxloss"], capsys)
    assert code == 0
    rows = [l for l in out.splitlines() if l.startswith("| ") and "ms" not in l]
    assert [r.split("|")[1].strip() for r in rows] == ["relu", "softmaxloss"]
    for r in rows:
        assert all(float(v) >= 0 for v in r.split("|")[3:5])
    code, _, err = run(["bench", "--blocks", "warp"], capsys)
    assert_usage_error(code, err, "warp")
    code, _, err = run(["bench", "--repeat", "0"], capsys)
    assert_usage_error(code, err, "--repeat")


# ----------------------------------------------------------------------------- download, models

def test_download_and_models(tmp_path, monkeypatch, capsys):
    import http.server
    import threading
    payload = b"model bytes " * 1000
    md5 = hashlib.md5(payload).hexdigest()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/m.mat"
        code, out, err = run(["download", url, "--dest", tmp_path, "--md5", md5], capsys)
        assert code == 0, err
        assert out.strip() == str(tmp_path / "m.mat")
        assert (tmp_path / "m.mat").read_bytes() == payload
        code, _, err = run(["download", url, "--dest", tmp_path / "n.mat", "--md5", "0" * 32],
                           capsys)
        assert code == 1 and "ChecksumError" in err and "rejected" in err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "n.mat").exists()
    finally:
        httpd.shutdown()
        httpd.server_close()
    code, _, err = run(["download", "imagenet-vgg-q"], capsys)
    assert_usage_error(code, err, "unknown model")

    monkeypatch.setenv("MATCONVNET_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / "imagenet-vgg-m.mat").write_bytes(b"x")
    code, out, _ = run(["models"], capsys)
    assert code == 0
    rows = {l.split()[0]: l for l in out.splitlines()[2:30]}
    assert len(rows) == 28
    assert rows["imagenet-vgg-m"].endswith("cached") and rows["squeezenet1_0"].endswith(
        "shipped") and rows["imagenet-vgg-f"].endswith("-")
    assert "top-1 41.1% / top-5 18.8% error" in rows["imagenet-vgg-f"]
    code, out, _ = run(["models", "--verbose"], capsys)
    assert "3513562d28089bd965cc050cbf8597a6" in out and "not published" in out


# ----------------------------------------------------------------------------- train

def test_train_delegates_to_the_example(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("matconvnet.examples.mnist")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "matconvnet.examples.mnist", fake)
    assert run(["train", "mnist", "--epochs", "1", "--help"], capsys)[0] == 0
    assert calls == [["--epochs", "1", "--help"]]

    def failing(argv):
        raise SystemExit(2)
    fake.main = failing
    assert run(["train", "mnist", "--bogus"], capsys)[0] == 2

    monkeypatch.setitem(cli.EXAMPLES, "cifar", "matconvnet.examples._no_such_example")
    code, _, err = run(["train", "cifar"], capsys)
    assert code == 1 and "not available" in err and "Traceback" not in err
    code, _, err = run(["train", "svhn"], capsys)
    assert code == 2 and "invalid choice" in err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
def test_classify_and_bench_on_cuda(capsys):
    photos = [p for p in _shipped_photos() if p.stem.startswith("chelsea")]
    code, out, err = run(["classify", photos[0], "--device", "cuda"], capsys)
    assert code == 0, err
    top = out.splitlines()[2]
    assert "Egyptian cat" in top and float(top.split()[1]) == pytest.approx(0.815, abs=0.01)
    code, out, err = run(["bench", "--repeat", "1", "--device", "cuda", "--blocks",
                          "conv,pool,softmaxloss"], capsys)
    assert code == 0, err
    assert "cuda" in out
