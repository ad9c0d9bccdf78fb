"""Networks and reference outputs shared by the exporter tests (to_torch, save_onnx) and
the ONNX round trip.

``CASES`` name the example networks of ``matconvnet.models`` with an input size small
enough for a quick test where the architecture permits; ``make(name)`` builds one with
random weights: batch-norm moments, gains and biases non-trivial, zero-initialised layers
(FCN's score layers, ``fc8``) randomised so that every path contributes.  ``reference``
evaluates a network in MatConvNet's 'test' mode with ``vl_simplenn`` / ``DagNN.eval``
and returns its predictions (the outputs once the loss layers are left out).
"""
from __future__ import annotations

from typing import Dict, List

import torch

from matconvnet import models
from matconvnet.dagnn import DagNN
from matconvnet.dagnn import layers as L
from matconvnet.simplenn import vl_simplenn

#: name -> (builder, input C x H x W, batch size)
CASES = {
    "lenet": (lambda: models.cnn_mnist_init(), (1, 28, 28), 2),
    "cifar-nin": (lambda: models.cnn_cifar_init_nin(), (3, 32, 32), 2),
    "alexnet": (lambda: models.cnn_imagenet_init("alexnet"), (3, 227, 227), 1),
    "vgg-f": (lambda: models.cnn_imagenet_init("vgg-f"), (3, 224, 224), 1),
    "resnet-50": (lambda: models.resnet50(), (3, 224, 224), 1),
    "googlenet": (lambda: models.googlenet(), (3, 224, 224), 1),
    "fcn-8s": (lambda: models.fcn8s(), (3, 64, 64), 1),
}
#: the cases whose weights take hundreds of MB
BIG = ("alexnet", "vgg-f", "fcn-8s")
LOSSES = ("softmaxloss", "loss", "pdist")


def _bnorm(c: int, g: torch.Generator):
    return [torch.rand(c, generator=g) + 0.5, 0.1 * torch.randn(c, generator=g),
            torch.stack((0.1 * torch.randn(c, generator=g), torch.rand(c, generator=g) + 0.5),
                        dim=1)]


def randomise(net, seed: int = 0):
    """Non-trivial batch norms and biases, in place; returns ``net``."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(net, dict):
        for l in net["layers"]:
            w = l.get("weights") or []
            if l["type"] == "bnorm":
                l["weights"] = _bnorm(w[0].numel(), g)
            elif l["type"] in ("conv", "convt") and len(w) > 1 and w[1].numel():
                w[1] = 0.1 * torch.randn(w[1].shape, generator=g)
        return net
    for e in net.layers:
        ps = [net.params[net.get_param_index(p)] for p in e.params]
        if isinstance(e.block, L.BatchNorm):
            for p, v in zip(ps, _bnorm(ps[0].value.numel(), g)):
                p.value = v
        elif isinstance(e.block, (L.Conv, L.ConvTranspose)):
            if len(ps) > 1:
                ps[1].value = 0.1 * torch.randn(ps[1].value.shape, generator=g)
            f = ps[0].value
            if not f.abs().sum():  # zero-initialised score layers
                fan_in = f[0].numel()
                ps[0].value = torch.randn(f.shape, generator=g) / fan_in ** 0.5
    return net


def make(name: str):
    builder, shape, n = CASES[name]
    torch.manual_seed(0)
    net = randomise(builder())
    x = torch.randn((n,) + shape, generator=torch.Generator().manual_seed(1))
    return net, x


def reference(net, inputs: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
    """The predictions of ``net`` in 'test' mode (SimpleNN: the output of the last layer
    before the loss layers; DagNN: the outputs once the loss layers are dropped, in the
    order of its variables)."""
    if isinstance(net, dict):
        layers = [l for l in net["layers"] if l["type"] not in LOSSES]
        (x,) = inputs.values()
        return [vl_simplenn(dict(net, layers=layers), x, mode="test")[-1]["x"]]
    net.mode = "test"
    keep = _non_loss_outputs(net)
    for name in keep:
        net.vars[net.get_var_index(name)].precious = True
    net.eval(inputs)
    return [net.vars[net.get_var_index(v)].value for v in keep]


def _non_loss_outputs(net: DagNN) -> List[str]:
    dropped, read, written = set(), set(), []
    for i in net.execution_order:
        e = net.layers[i]
        if isinstance(e.block, L.Loss) or dropped & set(e.inputs):
            dropped.update(e.outputs)
            continue
        read.update(e.inputs)
        written += e.outputs
    return [v for v in written if v not in read]


# ----------------------------------------------------------------------------- a zoo


def zoo(dropout: float = 0.5, seed: int = 0) -> DagNN:
    """A small DagNN using every layer kind the exporters write natively, in awkward
    settings: asymmetric pads, groups, dilation, strides differing per axis, an even LRN
    window, a grouped convolution transpose with asymmetric crop, Crop, Concat, Sum,
    Scale, SpatialNorm, NormOffset, leaky ReLU, and a Loss on the predictions.
    Input ``input`` is 3 channels, any size from 8 x 8 (odd sizes exercise the crops)."""
    net = DagNN()
    add = net.add_layer
    add("conv1", L.Conv(size=[3, 3, 3, 8], pad=[1, 0, 2, 1], stride=[1, 2]), "input", "c1",
        ["c1f", "c1b"])
    add("bn1", L.BatchNorm(numChannels=8), "c1", "b1", ["bn1g", "bn1b", "bn1m"])
    add("relu1", L.ReLU(leak=0.1), "b1", "a")
    add("conv2", L.Conv(size=[3, 3, 4, 8], pad=2, dilate=2, hasBias=False), "a", "b",
        ["c2f"])
    add("poolmax", L.Pooling(method="max", poolSize=[3, 3], pad=[0, 2, 1, 1]), "a", "pm")
    add("poolavg", L.Pooling(method="avg", poolSize=[3, 2], pad=[2, 0, 1, 0]), "b", "pa")
    add("cat", L.Concat(dim=3), ["pm", "pa"], "cat")
    add("lrn", L.LRN(param=[4, 2, 0.1, 0.75]), "cat", "n")
    add("scale", L.Scale(size=[1, 1, 16], hasBias=True), "cat", "sc", ["sa", "sb"])
    add("sum", L.Sum(), ["n", "sc", "cat"], "s")
    add("spnorm", L.SpatialNorm(param=[3, 2, 0.5, 0.75]), "s", "sp")
    add("noffset", L.NormOffset(param=[0.1, 0.5]), "sp", "no")
    add("up", L.ConvTranspose(size=[4, 4, 4, 16], upsample=[2, 3], crop=[1, 2, 0, 1],
                              numGroups=2), "no", "u", ["uf", "ub"])
    add("crop", L.Crop(crop=[1, 2]), ["u", "s"], "cr")
    add("pool2", L.Pooling(method="avg", poolSize=[2, 2], stride=2, pad=[0, 1, 0, 1]), "cr",
        "p2")
    add("sig", L.Sigmoid(), "p2", "sg")
    add("drop", L.DropOut(rate=dropout), "sg", "d")
    add("fc", L.Conv(size=[1, 1, 8, 5]), "d", "prediction", ["fcf", "fcb"])
    add("prob", L.SoftMax(), "prediction", "prob")
    add("loss", L.Loss(loss="softmaxlog"), ["prediction", "label"], "objective")
    torch.manual_seed(seed)
    net.init_params()
    # dagnn.ConvTranspose initialises K biases, as the original; the block wants K groups
    net.params[net.get_param_index("ub")].value = torch.zeros(8)
    randomise(net, seed)
    g = torch.Generator().manual_seed(seed + 1)
    for name in ("sa", "sb"):
        p = net.params[net.get_param_index(name)]
        p.value = torch.randn(1, 16, 1, 1, generator=g)
    return net


def simple_zoo() -> dict:
    """A SimpleNN chain with the layer types only SimpleNN lowers (spnorm, noffset, convt,
    the 'lrn' alias, sigmoid, softmax) and a final softmaxloss."""
    torch.manual_seed(3)
    r = torch.randn

    def conv(k, c, fh, fw, **kw):
        return dict(type="conv", weights=[r(k, c, fh, fw) / (c * fh * fw) ** 0.5, 0.1 * r(k)],
                    **kw)
    layers = [
        conv(6, 2, 3, 2, pad=[0, 1, 1, 0], stride=[2, 1]),
        dict(type="bnorm", weights=[torch.rand(6) + 0.5, 0.1 * r(6),
                                    torch.stack((0.1 * r(6), torch.rand(6) + 0.5), 1)]),
        dict(type="relu", leak=0.05),
        dict(type="lrn", param=[3, 1.5, 0.2, 0.6]),
        dict(type="spnorm", param=[2, 3, 0.3, 0.5]),
        dict(type="noffset", param=[0.2, 0.4]),
        dict(type="pool", method="avg", pool=[2, 3], pad=[1, 1, 2, 0], stride=[1, 2]),
        dict(type="convt", weights=[r(6, 2, 3, 3) / 3, 0.1 * r(6)], upsample=2,
             crop=[0, 1, 1, 1], numGroups=3),
        dict(type="sigmoid"),
        dict(type="dropout", rate=0.3),
        dict(type="pool", method="max", pool=3, pad=[2, 0, 1, 2], stride=2),
        conv(4, 6, 1, 1),
        dict(type="softmax"),
        dict(type="softmaxloss"),
    ]
    return {"layers": layers, "meta": {"inputSize": [9, 10, 2]}}


def interop_zoo(seed: int = 0) -> DagNN:
    """A DagNN with the layers added for imported networks (PReLU, BinaryOp with a constant
    and with two inputs, Pad, Clip, HardSigmoid, Permute, Reshape).  Input ``input``:
    3 x 6 x 5."""
    net = DagNN()
    add = net.add_layer
    add("conv", L.Conv(size=[3, 3, 3, 4], pad=1), "input", "c", ["cf", "cb"])
    add("prelu", L.PReLU(numChannels=4), "c", "p", ["slope"])
    add("addc", L.BinaryOp(op="add", constShape=[1, 4, 1, 1]), "p", "a", ["bias"])
    add("rdiv", L.BinaryOp(op="div", constShape=[1, 1, 1, 5], reverse=True), "a", "d",
        ["num"])
    add("mul", L.BinaryOp(op="mul"), ["a", "p"], "m")
    add("sub", L.BinaryOp(op="sub"), ["m", "d"], "s")
    add("pad", L.Pad(pad=[1, 0, 2, 1], value=0.5), "s", "pd")
    add("clip", L.Clip(min=-1.0, max=2.0), "pd", "cl")
    add("hsig", L.HardSigmoid(alpha=0.3, beta=0.4), "cl", "hs")
    add("perm", L.Permute(perm=[0, 1, 3, 2]), "hs", "pm")
    add("flat", L.Reshape(shape=[-1, 1, 1]), "pm", "fl")
    add("fc", L.Conv(size=[1, 1, 4 * 7 * 8, 3]), "fl", "prediction", ["ff", "fb"])
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net.init_params()
    for name, shape in (("slope", (4,)), ("bias", (4,)), ("cb", (4,)), ("fb", (3,))):
        net.params[net.get_param_index(name)].value = torch.randn(shape, generator=g)
    net.params[net.get_param_index("num")].value = torch.rand(5, generator=g) + 2
    return net


def pool_geometries(trials: int, seed: int = 0, dtype=torch.float32):
    """Random MatConvNet pooling geometries: ``(pool, pad, stride, x)`` with asymmetric pads
    up to the window size minus one, and windows that fit the padded input."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(trials):
        ph, pw = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
        pad = [int(torch.randint(0, p, (1,), generator=g)) for p in (ph, ph, pw, pw)]
        stride = [int(v) for v in torch.randint(1, 4, (2,), generator=g)]
        h, w = (int(v) for v in torch.randint(4, 10, (2,), generator=g))
        if h + pad[0] + pad[1] < ph or w + pad[2] + pad[3] < pw:
            continue
        yield [ph, pw], pad, stride, torch.randn(2, 3, h, w, generator=g, dtype=dtype)
