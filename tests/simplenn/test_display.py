"""vl_simplenn_display reproduces the original's table and info exactly (oracle models)."""
import re

import pytest

from matconvnet.models import cnn_cifar_init, cnn_cifar_init_nin, cnn_mnist_init
from matconvnet.simplenn import vl_simplenn_display
from tests import oracle

BUILDERS = {
    "mnist_lenet": lambda: cnn_mnist_init(batch_normalization=False),
    "mnist_lenet_bnorm": lambda: cnn_mnist_init(batch_normalization=True),
    "cifar_lenet": cnn_cifar_init,
    "cifar_nin": cnn_cifar_init_nin,
}


def _models():
    if not oracle.available():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/oracle is absent"))]
    return [pytest.param(m, id=m["name"]) for m in oracle.manifest()["models"]["models"]]


@pytest.mark.parametrize("model", _models())
def test_display_matches_the_original(model):
    net = BUILDERS[model["name"]]()
    size = [int(v) for v in re.search(r"\[([0-9 ]+)\]", model["display"]["call"]).group(1).split()]
    d = vl_simplenn_display(net, input_size=size)
    assert d.info == model["display"]["info"]
    assert d.text == (oracle.ORACLE / model["display"]["text"]).read_text()
    assert str(d) == d.text


def test_display_options():
    net = cnn_mnist_init(batch_normalization=False)
    d = vl_simplenn_display(net, input_size=[28, 28, 1], batch_size=5)
    assert d.info["dataSize"][3][0] == 5
    assert "for batch size 5" in d.text
    narrow = vl_simplenn_display(net, input_size=[28, 28, 1, 1], max_num_columns=4)
    assert narrow.text.count("     layer|") == 3
    csv = vl_simplenn_display(net, input_size=[28, 28, 1, 1], format="csv")
    assert csv.text.splitlines()[0].startswith("layer,0,1,2")
    default = vl_simplenn_display(net)   # meta.inputSize
    assert default.info["dataSize"][0][0] == 28
    with pytest.raises(ValueError, match="format"):
        vl_simplenn_display(net, format="html")


@pytest.mark.parametrize("model", _models())
def test_display_of_the_loaded_file_matches_too(model):
    import matconvnet.io as mio
    net = mio.load(oracle.ORACLE / model["model_file"])["net"]
    size = [int(v) for v in re.search(r"\[([0-9 ]+)\]", model["display"]["call"]).group(1).split()]
    d = vl_simplenn_display(net, input_size=size)
    assert d.info == model["display"]["info"]
    assert d.text == (oracle.ORACLE / model["display"]["text"]).read_text()


def test_scalar_input_size_sets_the_height_only():
    # some published models (DCFNet) store meta.inputSize as one number
    net = cnn_mnist_init()
    net["meta"]["inputSize"] = 28
    info = vl_simplenn_display(net).info
    assert info["dataSize"][0][0] == 28
    assert all(v != v for v in info["dataSize"][1][:1])   # the width is unknown (NaN)
