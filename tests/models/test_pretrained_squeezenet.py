"""The SqueezeNet v1.0 ImageNet model shipped in matconvnet/models/pretrained classifies the
shipped photos as SOURCES.md records (chelsea: Egyptian cat 0.815, coffee: espresso 0.984),
using only files of the package.  When ../shared is present, the conversion script
(scripts/convert_squeezenet.py) is checked to rebuild exactly the shipped weights."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from matconvnet.dagnn import DagNN
from matconvnet.io import load_dagnn

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED = ROOT / "matconvnet" / "models" / "shipped"
MODEL = PRETRAINED / "squeezenet1_0.mat"
PHOTOS = PRETRAINED / "photos"
SOURCE = ROOT.parent / "shared" / "data" / "caffe" / "squeezenet-v1.0-deepcompression"


@pytest.fixture(scope="module")
def net() -> DagNN:
    net = load_dagnn(MODEL)
    net.mode = "test"
    return net


def classify(net: DagNN, path: Path):
    """Probabilities for one photo, preprocessed from meta.normalization: the whole image
    resized (PIL bilinear) to imageSize, minus averageImage."""
    from PIL import Image
    norm = net.meta["normalization"]
    h, w = (int(v) for v in norm["imageSize"][:2])
    im = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, np.float32).transpose(2, 0, 1).copy())[None]
    net.eval({"data": x - norm["averageImage"]})
    return net.vars[net.get_var_index("prob")].value.reshape(-1)


def top(net, p, k):
    order = torch.argsort(p, descending=True)[:k]
    return [(net.meta["classes"]["description"][i], float(p[i])) for i in order]


def test_model_file_and_meta():
    assert MODEL.stat().st_size < 2_000_000
    net = load_dagnn(MODEL)
    meta = net.meta
    assert meta["normalization"]["imageSize"] == [227, 227, 3]
    assert meta["normalization"]["averageImage"].reshape(-1).tolist() == [123, 117, 104]
    assert meta["normalization"]["interpolation"] == "bilinear"
    assert meta["normalization"]["keepAspect"] is False
    assert meta["channelOrder"] == "RGB"
    assert len(meta["classes"]["name"]) == len(meta["classes"]["description"]) == 1000
    assert meta["classes"]["name"][0] == "n01440764"
    assert meta["classes"]["description"][0] == "tench, Tinca tinca"
    assert sum(p.value.numel() for p in net.params) == 1_248_424
    assert all(p.value.dtype == torch.float32 for p in net.params)
    assert net.get_inputs() == ["data"] and net.get_outputs() == ["prob"]


@pytest.mark.parametrize("photo, expected", [
    ("chelsea.png", [("Egyptian cat", 0.815), ("tiger cat", 0.092),
                     ("tabby, tabby cat", 0.076)]),
    ("coffee.png", [("espresso", 0.984)]),
])
def test_photos_are_classified_as_recorded(net, photo, expected):
    p = classify(net, PHOTOS / photo)
    assert float(p.sum()) == pytest.approx(1, abs=1e-5)
    got = top(net, p, len(expected))
    assert [d for d, _ in got] == [d for d, _ in expected]
    for (_, prob), (_, want) in zip(got, expected):
        assert prob == pytest.approx(want, abs=0.001)


@pytest.mark.skipif(not SOURCE.is_dir(), reason="../shared/data/caffe/squeezenet is absent")
def test_conversion_script_decodes_every_byte_and_rebuilds_the_shipped_weights(net):
    spec = importlib.util.spec_from_file_location("convert_squeezenet",
                                                  ROOT / "scripts" / "convert_squeezenet.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rebuilt = script.convert(SOURCE)
    assert sum(p.value.numel() for p in rebuilt.params) == 1_248_424
    for p in rebuilt.params:
        torch.testing.assert_close(net.params[net.get_param_index(p.name)].value, p.value,
                                   rtol=0, atol=0)
    raw = (SOURCE / "compressed_SqueezeNet.net").read_bytes()
    assert len(raw) == 675_763
    shapes = [(l.name, tuple(rebuilt.params[rebuilt.get_param_index(l.params[0])].value.shape))
              for l in rebuilt.layers if l.params]
    with pytest.raises(ValueError, match="1 bytes left over"):
        script.decode_deep_compression(raw + b"\0", shapes)
    with pytest.raises(ValueError, match="needs .* bytes at offset"):
        script.decode_deep_compression(raw[:-1], shapes)
