"""matconvnet.io.from_torch against PyTorch.

The MTCNN P-, R- and O-Nets (architecture per ../shared/data/SOURCES.md, section C2; the
real state_dicts of facenet-pytorch) and small modules exercising every supported layer,
function and method, converted with torch.fx and compared with the module's own output
(eval mode); unsupported nodes listed in one error; untraceable modules and bad
arguments.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import matconvnet.io as mio
from matconvnet.io import from_torch

MTCNN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pytorch" / \
    "facenet-mtcnn"


@pytest.fixture(autouse=True)
def _seed_and_single_thread():
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def outputs(net, x):
    name = net.meta["inputs"][0]["name"]
    net.eval({name: x if x.dim() == 4 else x.reshape(x.shape + (1,) * (4 - x.dim()))})
    return [net.vars[net.get_var_index(o["name"])].value for o in net.meta["outputs"]]


def agree(got, expected, rtol=1e-4, what=""):
    expected = expected.detach().double()
    got = got.detach().double().reshape(expected.shape)
    err = float((got - expected).abs().max())
    tol = rtol * max(float(expected.abs().max()), 1e-3)
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


def check(module, x, rtol=1e-4, batch=None):
    """Convert with example ``x`` and compare on ``x`` (and on a batch of another size)."""
    module.eval()
    net = from_torch(module, x)
    for inp in [x] + ([batch] if batch is not None else []):
        with torch.no_grad():
            ref = module(inp)
        ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
        ref = [r for r in ref if isinstance(r, torch.Tensor)]   # sizes are not outputs
        got = outputs(net, inp)
        assert len(got) == len(ref)
        for k, (g, r) in enumerate(zip(got, ref)):
            assert g.numel() == r.numel(), (k, g.shape, r.shape)
            agree(g, r, rtol, f"output {k}")
    return net


def randomise_batchnorm(module):
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            if m.weight is not None:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
    return module


# ----------------------------------------------------------------------------- MTCNN


class PNet(nn.Module):
    """MTCNN's proposal net (fully convolutional)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """MTCNN's refinement net (24 x 24 input)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()            # Caffe's W/H order
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """MTCNN's output net (48 x 48 input)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _mtcnn(cls, name):
    path = MTCNN / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/data)")
    module = cls()
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()


def _faces(n, size, seed=0):
    """Inputs as MTCNN takes them: (pixels - 127.5) / 128."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, size, size), generator=g).float() - 127.5) * 0.0078125


@pytest.mark.parametrize("cls,name,size", [(PNet, "pnet", 37), (RNet, "rnet", 24),
                                           (ONet, "onet", 48)])
def test_mtcnn_agrees_with_pytorch(cls, name, size):
    module = _mtcnn(cls, name)
    net = check(module, _faces(4, size), batch=_faces(7, size, seed=1))
    types = [l.block.type_name for l in net.layers]
    # the permute + view + Linear of R/O-Net is one convolution: no Permute or Reshape
    assert "dagnn.Permute" not in types and "dagnn.Reshape" not in types
    assert types.count("dagnn.PReLU") == {"pnet": 3, "rnet": 4, "onet": 5}[name]
    if name == "pnet":                                   # fully convolutional: any size
        net2 = from_torch(module, _faces(1, 60))
        with torch.no_grad():
            ref = module(_faces(2, 60, seed=2))
        for g, r in zip(outputs(net2, _faces(2, 60, seed=2)), ref):
            agree(g, r)


def test_mtcnn_rnet_derivatives_agree_with_autograd():
    # backpropagation through the converted layers (hand-written backward modes)
    module = _mtcnn(RNet, "rnet")
    net = from_torch(module, _faces(1, 24))
    net.mode = "normal"
    x = _faces(3, 24, seed=4).requires_grad_(True)
    box, prob = module(x)
    wb, wp = torch.randn_like(box), torch.randn_like(prob)
    ((box * wb).sum() + (prob * wp).sum()).backward()
    net.eval({"x": x.detach()}, {"dense5_2": wb.reshape(3, 4, 1, 1),
                                 "softmax5_1": wp.reshape(3, 2, 1, 1)})
    agree(net.vars[net.get_var_index("x")].der, x.grad, what="dx")
    for layer, param, grad in (("prelu4", 0, module.prelu4.weight.grad),
                               ("dense4", 1, module.dense4.bias.grad),
                               ("conv1", 0, module.conv1.weight.grad)):
        entry = net.layers[net.get_layer_index(layer)]
        der = net.params[net.get_param_index(entry.params[param])].der
        agree(der, grad, what=f"{layer} parameter {param}")
    entry = net.layers[net.get_layer_index("dense4")]   # the permuted fully-connected filter
    f = net.params[net.get_param_index(entry.params[0])].der       # 128 x 64 x 3 x 3
    agree(f.permute(0, 3, 2, 1).reshape(128, -1), module.dense4.weight.grad, what="dense4 f")


def test_mtcnn_onet_after_a_mat_file(tmp_path):
    module = _mtcnn(ONet, "onet")
    net = from_torch(module, _faces(1, 48))
    mio.save_dagnn(tmp_path / "onet.mat", net)
    again = mio.load_dagnn(tmp_path / "onet.mat")
    again.mode = "test"
    x = _faces(3, 48, seed=3)
    with torch.no_grad():
        ref = module(x)
    for g, r in zip(outputs(again, x), ref):
        agree(g, r)


# ----------------------------------------------------------------------------- layers


class Convs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 6, 3, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
        self.b = nn.Conv2d(6, 6, (3, 4), padding="same", bias=False)
        self.c = nn.Conv2d(6, 3, 2, padding="valid")
        self.t = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
        self.u = nn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 3), groups=2, dilation=(2, 1),
                                    output_padding=(1, 0))
        self.v = nn.ConvTranspose2d(6, 2, 3, stride=2, output_padding=1, bias=True)

    def forward(self, x):
        return self.v(self.u(self.t(self.c(self.b(self.a(x))))))


class Pools(nn.Module):
    def __init__(self):
        super().__init__()
        self.m1 = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.m2 = nn.MaxPool2d((2, 3), (2, 2))
        self.a1 = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)            # includes pads
        self.a2 = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)
        self.a3 = nn.AvgPool2d(2, ceil_mode=True)
        self.g = nn.AdaptiveAvgPool2d(1)
        self.gm = nn.AdaptiveMaxPool2d((1, 1))

    def forward(self, x):
        a = torch.cat([self.a1(x), self.m1(x)], 1)
        b = self.a3(F.max_pool2d(x, 2, ceil_mode=True))
        c = F.avg_pool2d(x, 3, 1, 1)
        return a, self.a2(x), b, self.m2(x), c, self.g(x) + self.gm(x)


class Pointwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(4)
        self.p1, self.p2 = nn.PReLU(), nn.PReLU(4)
        self.leaky = nn.LeakyReLU(0.2)
        self.lrn = nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=1.5)
        self.sm = nn.Softmax(dim=2)
        self.relu6, self.hs = nn.ReLU6(), nn.Hardsigmoid()

    def forward(self, x):
        y = self.leaky(self.bn(x))
        z = self.p2(self.p1(x)) * 2.0 - 1.0
        w = F.relu(torch.sigmoid(x)) + 0.5
        return (self.lrn(y), torch.softmax(z, dim=1), self.sm(x), F.leaky_relu(x, 0.3),
                self.relu6(x * 4), self.hs(x * 3), w / (x * x + 1.0),
                1.0 - x.relu().sigmoid())


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.flatten = nn.Flatten()
        self.fc1, self.bn1 = nn.Linear(4 * 5 * 6, 8), nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 5)
        self.fc3 = nn.Linear(4 * 5 * 6, 5)
        self.sm = nn.Softmax(dim=-1)

    def forward(self, x):
        h = F.relu(self.conv(x))
        a = self.sm(self.fc2(self.drop(torch.relu(self.bn1(self.fc1(self.flatten(h)))))))
        b = self.fc3(torch.flatten(h.transpose(2, 3), 1))
        c = self.fc3(h.permute(0, 2, 3, 1).reshape(h.size(0), -1))
        d = h.flatten(1).unsqueeze(2).unsqueeze(3).squeeze(3).squeeze(2)
        return a, b + c, F.softmax(d, dim=1), F.dropout(a, 0.5, training=False)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, affine=False)
        self.c2 = nn.Conv2d(4, 4, 1)
        self.bias = nn.Parameter(torch.randn(1, 4, 1, 1))

    def forward(self, x):
        y = torch.relu(self.bn(self.c1(x)) + x)
        z = self.c2(y) + self.bias           # a parameter read with get_attr
        return torch.add(z, y).mul(0.5), x.dim(), x.size()


@pytest.mark.filterwarnings("ignore:Using padding='same'")   # PyTorch's, running Convs
@pytest.mark.parametrize("module,shape", [
    (Convs, (2, 4, 9, 10)), (Pools, (2, 3, 9, 8)), (Pointwise, (2, 4, 5, 6)),
    (Dense, (3, 3, 7, 8)), (Residual, (2, 4, 6, 5))], ids=lambda v: getattr(v, "__name__", ""))
def test_layers_agree_with_pytorch(module, shape):
    m = randomise_batchnorm(module())
    check(m, torch.randn(*shape), batch=torch.randn(5, *shape[1:]))


def test_vector_input():
    m = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.PReLU(), nn.Linear(5, 3),
                      nn.Softmax(dim=1))
    randomise_batchnorm(m)
    net = check(m, torch.randn(4, 6), batch=torch.randn(2, 6))
    assert net.meta["inputs"] == [{"name": "input", "size": [1, 1, 6, 4]}]


def test_output_names_and_meta():
    m = Residual()
    net = from_torch(m, torch.randn(1, 4, 6, 5), output_names=["out"])
    assert [o["name"] for o in net.meta["outputs"]] == ["out"]
    assert net.meta["torch"] == {"class": "Residual"} and net.mode == "test"
    with pytest.raises(ValueError, match="output_names: expected 1 names, got 2"):
        from_torch(m, torch.randn(1, 4, 6, 5), output_names=["a", "b"])


# ----------------------------------------------------------------------------- errors


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.gelu = nn.GELU()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.tanh(self.gelu(self.conv(x))).exp()


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_unsupported_nodes_are_listed_together():
    with pytest.raises(ValueError) as e:
        from_torch(Unsupported(), torch.randn(1, 3, 4, 4))
    msg = str(e.value)
    assert "unsupported operations" in msg
    assert "gelu (module GELU)" in msg and "tanh (function torch.tanh)" in msg \
        and "exp (call_method exp)" in msg


def test_untraceable_and_bad_arguments():
    with pytest.raises(ValueError, match="torch.fx cannot trace Branchy"):
        from_torch(Branchy(), torch.randn(1, 3, 4, 4))
    with pytest.raises(TypeError, match="module"):
        from_torch(lambda x: x, torch.randn(1, 3, 4, 4))
    with pytest.raises(TypeError, match="example_input"):
        from_torch(nn.ReLU(), np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="example_input\\[0\\]"):
        from_torch(nn.ReLU(), torch.zeros(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="padding_mode 'reflect'"):
        from_torch(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"), torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"node fc \(module Linear\): expected a 2-D"):
        from_torch(_conv_then_linear(), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="batch"):
        from_torch(_Reshaper(), torch.randn(2, 3, 4, 4))


def _conv_then_linear():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 3, 1), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.conv(x))
    return M()


class _Reshaper(nn.Module):
    def forward(self, x):
        return x.reshape(-1, 12)
