"""Real MatConvNet networks from ../shared/data/matconvnet load and run through vl_simplenn."""
from pathlib import Path

import numpy as np
import pytest
import torch

import matconvnet.io as mio
from matconvnet.simplenn import vl_simplenn, vl_simplenn_display

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "matconvnet"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/matconvnet is absent")


def _render_digits(size=20, shift=(0, 0)):
    """Digits 0-9 drawn white on black in 20 x 20 images, like the plate characters."""
    Image = pytest.importorskip("PIL.Image")
    ImageDraw = pytest.importorskip("PIL.ImageDraw")
    ImageFont = pytest.importorskip("PIL.ImageFont")
    if not FONT.is_file():
        pytest.skip(f"font {FONT} is absent")
    font = ImageFont.truetype(str(FONT), size)
    out = []
    for ch in "0123456789":
        im = Image.new("L", (20, 20), 0)
        draw = ImageDraw.Draw(im)
        box = draw.textbbox((0, 0), ch, font=font)
        w, h = box[2] - box[0], box[3] - box[1]
        draw.text(((20 - w) / 2 - box[0] + shift[1], (20 - h) / 2 - box[1] + shift[0]), ch,
                  fill=255, font=font)
        out.append(np.asarray(im, np.float32))
    return torch.from_numpy(np.stack(out)[:, None])


@needs_data
def test_plate_chars_checkpoint_reads_digits_and_its_stats():
    ckpt = mio.load(DATA / "plate-chars" / "net-epoch-50.mat")
    net, stats = ckpt["net"], ckpt["stats"]
    assert len(stats["train"]) == len(stats["val"]) == 50
    assert stats["val"][-1]["top1err"] == pytest.approx(0.00389, abs=1e-5)
    assert net["meta"]["inputSize"] == [20, 20, 1]
    avg = net["meta"]["normalization"]["averageImage"].float()
    assert avg.shape == (1, 20, 20)
    classifier = {"layers": net["layers"][:-1], "meta": net["meta"]}   # drop softmaxloss
    correct = 0
    for shift in [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)]:
        x = _render_digits(shift=shift) - avg
        scores = vl_simplenn(classifier, x)[-1]["x"].flatten(1)
        assert scores.shape == (10, 65)
        correct += int((scores.argmax(1) == torch.arange(10)).sum())
    # classes 1..10 are the digits 0..9; rendered DejaVu digits are read almost always
    assert correct >= 45, f"{correct} of 50 rendered digits read correctly"
    info = vl_simplenn_display(net).info
    # conv3, pool2, conv3, pool2, conv3: a 20 x 20 input becomes 1 x 1, seeing 18 x 18
    assert info["dataSize"][0][-1] == 1 and info["receptiveFieldSize"][0][-2] == 18


@needs_data
def test_player_detector_stages_run_on_patches():
    mean = mio.load(DATA / "player-detection" / "im_mean.mat")["m"]
    for stage in ("net_stage_1.mat", "net_stage_2.mat"):
        net = mio.load(DATA / "player-detection" / stage)["net"]
        net["layers"][-1]["class"] = torch.tensor([1, 2, 1])
        x = torch.rand(3, 3, 32, 14) * 255 - torch.tensor(np.asarray(mean, np.float32)).view(1, 3, 1, 1)
        res = vl_simplenn(net, x, 1.0, mode="test")
        assert res[-2]["x"].shape[:2] == (3, 2) and res[-1]["x"].dim() == 0
        assert torch.isfinite(res[0]["dzdx"]).all()


@needs_data
def test_dcfnet_feature_extractor_runs():
    net = mio.load(DATA / "dcfnet" / "DCFNet-net-7-125-2.mat")["net"]
    assert [l["type"] for l in net["layers"]] == ["conv", "relu", "conv", "lrn"]
    x = torch.randn(1, 3, 125, 125)
    y = vl_simplenn(net, x)[-1]["x"]
    assert y.shape == (1, 32, 125, 125)
    # the last layer is AlexNet-style LRN [5 1 2e-5 0.75] of the ReLU-conv features
    lrn_in = vl_simplenn({"layers": net["layers"][:3]}, x)[-1]["x"]
    ref = lrn_in * (1 + 2e-5 * torch.nn.functional.avg_pool3d(
        torch.nn.functional.pad(lrn_in.pow(2)[:, None], (0, 0, 0, 0, 2, 2)), (5, 1, 1),
        stride=1, divisor_override=1)[:, 0]).pow(-0.75)
    torch.testing.assert_close(y, ref)
