r"""``to_torch(net)``: a SimpleNN or DagNN network as a ``torch.nn.Module``.

The network is lowered (:mod:`matconvnet.io._lower`) and rebuilt as a
:class:`torch.fx.GraphModule`: one submodule per layer, named after the layer, called in the
network's execution order; ``forward`` takes the network's inputs (positionally, in
``module.input_names`` order) and returns its outputs (one tensor, or a tuple in
``module.output_names`` order).  Parameters are ``nn.Parameter`` copies of the network's
(a DagNN parameter shared by several layers stays one parameter); batch-norm moments are
buffers.  ``module.param_names`` maps each MatConvNet parameter name to its ``state_dict``
key.

MatConvNet's semantics are kept by modules of ours where PyTorch has none:

* pooling: windows clipped to the image; max ignores the padding (``-inf``), average
  divides by the clipped window's area; asymmetric pads ``[top bottom left right]``;
* convolution: asymmetric pads (explicit zero padding), groups, dilation; convolution
  transpose: ``upsample`` is the stride, ``crop`` (asymmetric too) crops the output;
* LRN ``[N kappa alpha beta]``: ``y = x (kappa + alpha sum_{t in Q(k)} x_t^2)^(-beta)``,
  alpha not divided by N, window ``[k - floor((N-1)/2), k + ceil((N-1)/2)]`` (PyTorch's own
  differs for even N);
* batch normalisation: moments ``[mu sigma]`` with epsilon inside sigma;
* spatial normalisation, norm offset, FCN's Crop, Scale, Concat, Sum, softmax over channels;
* the layers of imported networks: PReLU, BinaryOp, Reshape, Permute, Pad, Clip,
  HardSigmoid.

Modes: ``module.train()`` is MatConvNet's 'normal' mode (batch norm uses the batch moments,
``sigma = sqrt(var + epsilon)``, and moves the stored moments towards them by ``momentum``,
0.1 by default, as MatConvNet's trainer averages them; dropout is inverted dropout with the
layer's rate); ``module.eval()`` is its 'test' mode (stored moments, no dropout).  As every
``nn.Module`` the result starts in training mode.

Loss layers are left out by default (``losses=False``), with everything that depends on
them: the outputs are then the predictions.  With ``losses=True`` they are kept, and their
label inputs become inputs of ``forward``.  Loss layers, and DagNN layers with no native
form here (``BilinearSampler``, ``ROIPooling``, the grid generators, registered user
layers), run through the layer's own forward and backward methods inside an
``autograd.Function``: trainable, but such a module cannot be scripted.  Without them the
module can be scripted (``torch.jit.script``) and exported (``torch.export``).
"""

import functools
import keyword
import operator
import re
import types
from typing import Any, Dict, List, Mapping, Optional

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn

from ._lower import Graph, Op, lower

__all__ = ["to_torch", "MatConvNetModule"]


# ----------------------------------------------------------------------------- modules

def _torch_pad(pad) -> List[int]:
    """``(top, bottom, left, right)`` as F.pad's ``[left, right, top, bottom]``."""
    t, b, l, r = pad
    return [int(l), int(r), int(t), int(b)]


class Conv(nn.Module):
    """``vl_nnconv``: ``y = conv(x, f) + b`` with ``pad`` ``(t, b, l, r)``, ``stride``,
    ``dilate`` and ``groups``."""

    explicit_pad: List[int]

    def __init__(self, weight: nn.Parameter, bias: Optional[nn.Parameter], pad, stride,
                 dilate, groups: int):
        super().__init__()
        self.weight = weight
        self.bias = bias
        self.symmetric = pad[0] == pad[1] and pad[2] == pad[3]
        self.padding = (int(pad[0]), int(pad[2])) if self.symmetric else (0, 0)
        self.explicit_pad = [] if self.symmetric else _torch_pad(pad)
        self.stride = (int(stride[0]), int(stride[1]))
        self.dilation = (int(dilate[0]), int(dilate[1]))
        self.groups = int(groups)

    def forward(self, x: Tensor) -> Tensor:
        if not self.symmetric:
            x = F.pad(x, self.explicit_pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose(nn.Module):
    """``vl_nnconvt``: the transpose of a convolution with stride ``upsample``, its output
    cropped by ``crop`` ``(t, b, l, r)``; filters ``D x K x FH x FW``, ``groups`` groups."""

    extra: List[int]

    def __init__(self, weight: nn.Parameter, bias: Optional[nn.Parameter], crop, upsample,
                 groups: int):
        super().__init__()
        self.weight = weight
        self.bias = bias
        sym = (min(crop[0], crop[1]), min(crop[2], crop[3]))
        self.padding = (int(sym[0]), int(sym[1]))
        self.extra = [int(crop[0] - sym[0]), int(crop[1] - sym[0]), int(crop[2] - sym[1]),
                      int(crop[3] - sym[1])]
        self.cropped = any(self.extra)
        self.stride = (int(upsample[0]), int(upsample[1]))
        self.groups = int(groups)

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, 0,
                               self.groups)
        if self.cropped:
            e = self.extra
            y = y[:, :, e[0]:y.shape[2] - e[1], e[2]:y.shape[3] - e[3]]
        return y


class Pool(nn.Module):
    """``vl_nnpool``: max or average pooling over windows clipped to the image.  Native
    PyTorch pooling where it agrees (symmetric pads of at most half the window); otherwise
    explicit padding (``-inf`` for max) and, for average, the window sums divided by the
    clipped areas (the sums of the padded all-ones image)."""

    explicit_pad: List[int]

    def __init__(self, method: str, pool, pad, stride):
        super().__init__()
        self.is_max = method == "max"
        self.kernel = (int(pool[0]), int(pool[1]))
        self.stride = (int(stride[0]), int(stride[1]))
        self.native = pad[0] == pad[1] and pad[2] == pad[3] and 2 * pad[0] <= pool[0] \
            and 2 * pad[2] <= pool[1]
        self.padding = (int(pad[0]), int(pad[2])) if self.native else (0, 0)
        self.explicit_pad = [] if self.native else _torch_pad(pad)

    def forward(self, x: Tensor) -> Tensor:
        if self.is_max:
            if not self.native:
                x = F.pad(x, self.explicit_pad, value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride, self.padding)
        if self.native:
            return F.avg_pool2d(x, self.kernel, self.stride, self.padding, False, False)
        total = F.avg_pool2d(F.pad(x, self.explicit_pad), self.kernel, self.stride, 0, False,
                             True, 1)
        ones = F.pad(torch.ones_like(x[:1, :1]), self.explicit_pad)
        area = F.avg_pool2d(ones, self.kernel, self.stride, 0, False, True, 1)
        return total / area


class LRN(nn.Module):
    """``vl_nnnormalize`` with ``param = [N, kappa, alpha, beta]``:
    ``y_k = x_k (kappa + alpha sum_{t in Q(k)} x_t^2)^(-beta)``,
    ``Q(k) = [k - floor((N-1)/2), k + ceil((N-1)/2)]`` clipped to the channels."""

    def __init__(self, size: int, kappa: float, alpha: float, beta: float):
        super().__init__()
        self.size = int(size)
        self.before = (self.size - 1) // 2
        self.after = self.size - 1 - self.before
        self.kappa, self.alpha, self.beta = float(kappa), float(alpha), float(beta)

    def forward(self, x: Tensor) -> Tensor:
        sq = F.pad((x * x).unsqueeze(1), [0, 0, 0, 0, self.before, self.after])
        s = F.avg_pool3d(sq, (self.size, 1, 1), (1, 1, 1), 0, False, True, 1).squeeze(1)
        return x * (self.kappa + self.alpha * s).pow(-self.beta)


class BatchNorm(nn.Module):
    """``vl_nnbnorm``: ``y = g (x - mu) / sigma + b``.  Training mode: the batch moments
    (``sigma = sqrt(var + epsilon)``, biased variance), and ``moments <- (1 - momentum)
    moments + momentum [mu sigma]``; eval mode: the stored ``moments`` (C x 2)."""

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter, moments: Tensor,
                 epsilon: float, momentum: float = 0.1):
        super().__init__()
        self.weight = weight
        self.bias = bias
        self.register_buffer("moments", moments)
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            var, mu = torch.var_mean(x, [0, 2, 3], unbiased=False)
            sigma = (var + self.epsilon).sqrt()
            with torch.no_grad():
                new = torch.stack((mu, sigma), 1).to(self.moments.dtype)
                self.moments.mul_(1 - self.momentum).add_(new, alpha=self.momentum)
        else:
            mu, sigma = self.moments[:, 0], self.moments[:, 1]
        scale = self.weight / sigma
        shift = self.bias - mu * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


class ReLU(nn.Module):
    """``vl_nnrelu``: ``max(x, 0)``, or ``leak x`` for ``x <= 0``."""

    def __init__(self, leak: float = 0.0):
        super().__init__()
        self.leak = float(leak)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.leak) if self.leak != 0 else F.relu(x)


class Sigmoid(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)


class SoftMax(nn.Module):
    """``vl_nnsoftmax``: softmax over the channels."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(x, 1)


class DropOut(nn.Module):
    """``vl_nndropout``: inverted dropout in training mode, the identity in eval mode."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.rate, self.training)


class Concat(nn.Module):
    def __init__(self, axis: int):
        super().__init__()
        self.axis = int(axis)

    def forward(self, xs: List[Tensor]) -> Tensor:
        return torch.cat(xs, self.axis)


class Sum(nn.Module):
    def forward(self, xs: List[Tensor]) -> Tensor:
        y = xs[0]
        for i in range(1, len(xs)):
            y = y + xs[i]
        return y


class Crop(nn.Module):
    """FCN's Crop: ``x`` cropped to the H x W of ``ref``, ``min(crop, excess)`` off the
    top/left and the rest off the bottom/right."""

    def __init__(self, crop):
        super().__init__()
        self.crop = (int(crop[0]), int(crop[1]))

    def forward(self, x: Tensor, ref: Tensor) -> Tensor:
        return _crop_to(x, ref, self.crop[0], self.crop[1])


@torch.fx.wrap
def _crop_to(x: Tensor, ref: Tensor, crop_y: int, crop_x: int) -> Tensor:
    # a leaf for torch.fx.symbolic_trace: the offsets depend on the sizes
    h, w = ref.shape[2], ref.shape[3]
    top = min(x.shape[2] - h, crop_y)
    left = min(x.shape[3] - w, crop_x)
    return x[:, :, top:top + h, left:left + w]


class Scale(nn.Module):
    """DagNN's Scale: ``y = x a (+ b)`` with broadcasting; ``a``, ``b`` are parameters or
    further inputs (``xs = [x] + inputs``)."""

    def __init__(self, a: Optional[nn.Parameter], b: Optional[nn.Parameter], has_bias: bool):
        super().__init__()
        self.a = a
        self.b = b
        self.has_bias = bool(has_bias)

    def forward(self, xs: List[Tensor]) -> Tensor:
        args = [t for t in xs]
        a = self.a
        if a is not None:
            args.append(a)
        b = self.b
        if b is not None:
            args.append(b)
        y = args[0] * args[1]
        if self.has_bias:
            y = y + args[2]
        return y


class SpatialNorm(nn.Module):
    """``vl_nnspnorm``: ``y = x (1 + alpha n^2)^(-beta)``, ``n^2`` the mean of ``x^2`` over a
    ``PH x PW`` window centred on each pixel and clipped to the image."""

    def __init__(self, pool, alpha: float, beta: float):
        super().__init__()
        ph, pw = int(pool[0]), int(pool[1])
        pad = ((ph - 1) // 2, ph - 1 - (ph - 1) // 2, (pw - 1) // 2, pw - 1 - (pw - 1) // 2)
        self.pool = Pool("avg", (ph, pw), pad, (1, 1))
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x: Tensor) -> Tensor:
        return x * (1 + self.alpha * self.pool(x * x)).pow(-self.beta)


class NormOffset(nn.Module):
    """``vl_nnnoffset``: ``y = x - a max(sum_k x_k^2, 1e-8)^b``."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = float(a), float(b)

    def forward(self, x: Tensor) -> Tensor:
        sq = (x * x).sum(1, keepdim=True).clamp(min=1e-8)
        return x - self.a * sq.pow(self.b)


class PReLU(nn.Module):
    """``y = x`` where ``x > 0``, ``a x`` elsewhere; ``a`` a 4-D slope broadcast over x."""

    def __init__(self, slope: nn.Parameter):
        super().__init__()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x > 0, x, self.slope * x)


class BinaryOp(nn.Module):
    """``y = a op b`` (``add``, ``sub``, ``mul``, ``div``) with broadcasting: the two inputs,
    or the input and a constant parameter (its left operand with ``reverse``)."""

    def __init__(self, op: str, const: Optional[nn.Parameter], reverse: bool):
        super().__init__()
        self.op = op
        self.const = const
        self.reverse = bool(reverse)

    def forward(self, xs: List[Tensor]) -> Tensor:
        a = xs[0]
        b = xs[-1]
        c = self.const
        if c is not None:
            if self.reverse:
                a, b = c, xs[0]
            else:
                b = c
        if self.op == "add":
            return a + b
        if self.op == "sub":
            return a - b
        if self.op == "mul":
            return a * b
        return a / b


class Reshape(nn.Module):
    """Each item of the batch reshaped to ``shape`` (C x H x W, row-major, one -1)."""

    shape: List[int]

    def __init__(self, shape):
        super().__init__()
        self.shape = [int(v) for v in shape]

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape([x.shape[0]] + self.shape)


class Permute(nn.Module):
    perm: List[int]

    def __init__(self, perm):
        super().__init__()
        self.perm = [int(v) for v in perm]

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(self.perm)


class Pad(nn.Module):
    """Constant padding ``(t, b, l, r)`` of the spatial borders."""

    pad: List[int]

    def __init__(self, pad, value: float):
        super().__init__()
        self.pad = _torch_pad(pad)
        self.value = float(value)

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.pad, value=self.value)


class Clip(nn.Module):
    def __init__(self, lo: float, hi: float):
        super().__init__()
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(self.lo, self.hi)


class HardSigmoid(nn.Module):
    """``max(0, min(1, alpha x + beta))``."""

    def __init__(self, alpha: float, beta: float):
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x: Tensor) -> Tensor:
        return (self.alpha * x + self.beta).clamp(0.0, 1.0)


class _LayerFunction(torch.autograd.Function):
    """A DagNN layer's forward and backward methods as one autograd operation."""

    @staticmethod
    def forward(ctx, module, n_inputs, *args):
        ins = [a.detach() for a in args[:n_inputs]]
        prm = [a.detach() for a in args[n_inputs:]]
        outs = module.run_forward(ins, prm)
        ctx.module, ctx.n_inputs, ctx.outs = module, n_inputs, outs
        ctx.save_for_backward(*args)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *douts):
        args = ctx.saved_tensors
        n = ctx.n_inputs
        der_in, der_prm = ctx.module.run_backward(list(args[:n]), list(args[n:]),
                                                  list(douts), list(ctx.outs))
        der_prm = list(der_prm or []) + [None] * (len(args) - n)
        grads = list(der_in) + der_prm[:len(args) - n]
        grads = [g if g is not None and args[i].requires_grad else None
                 for i, g in enumerate(grads)]
        return (None, None, *grads)


class DagNNLayer(nn.Module):
    """Any DagNN layer (losses, layers with no native form) run by its own forward and
    backward methods.  Not scriptable."""

    def __init__(self, layer: Any, op: Op, params: List[nn.Parameter]):
        super().__init__()
        self.layer = type(layer).load(layer.save())   # a detached copy
        self.stub = types.SimpleNamespace(mode="normal", layers=[types.SimpleNamespace(
            name=op.name, inputs=list(op.inputs), outputs=list(op.outputs),
            params=list(op.params))])
        self.layer.attach(self.stub, 0)
        self.params = nn.ParameterList(params)
        self.n_outputs = len(op.outputs)

    def run_forward(self, ins, prm):
        self.stub.mode = "normal" if self.training else "test"
        return self.layer.forward(ins, prm)

    def run_backward(self, ins, prm, douts, outs):
        return self.layer.backward(ins, prm, douts, outputs=outs)

    def forward(self, *xs):
        outs = _LayerFunction.apply(self, len(xs), *xs, *self.params)
        return outs[0] if self.n_outputs == 1 else outs


# ----------------------------------------------------------------------------- building

class _Params:
    """One ``nn.Parameter`` per MatConvNet parameter name (shared parameters stay shared)."""

    def __init__(self, values: Mapping[str, Tensor]):
        self.values = values
        self.made: Dict[str, Any] = {}

    def param(self, name: str) -> nn.Parameter:
        if name not in self.made:
            self.made[name] = nn.Parameter(self.values[name].clone())
        return self.made[name]

    def buffer(self, name: str) -> Tensor:
        if name not in self.made:
            self.made[name] = self.values[name].clone()
        return self.made[name]


def _conv(op: Op, p: _Params) -> nn.Module:
    bias = p.param(op.params[1]) if len(op.params) > 1 else None
    a = op.attrs
    return Conv(p.param(op.params[0]), bias, a["pad"], a["stride"], a["dilate"], a["groups"])


def _convt(op: Op, p: _Params) -> nn.Module:
    bias = p.param(op.params[1]) if len(op.params) > 1 else None
    a = op.attrs
    return ConvTranspose(p.param(op.params[0]), bias, a["crop"], a["upsample"], a["groups"])


def _scale(op: Op, p: _Params) -> nn.Module:
    ps = [p.param(n) for n in op.params] + [None, None]
    return Scale(ps[0], ps[1], op.attrs["has_bias"])


_BUILDERS = {
    "conv": _conv,
    "convt": _convt,
    "pool": lambda op, p: Pool(**op.attrs),
    "lrn": lambda op, p: LRN(**op.attrs),
    "bnorm": lambda op, p: BatchNorm(p.param(op.params[0]), p.param(op.params[1]),
                                     p.buffer(op.params[2]), op.attrs["epsilon"]),
    "relu": lambda op, p: ReLU(op.attrs["leak"]),
    "sigmoid": lambda op, p: Sigmoid(),
    "softmax": lambda op, p: SoftMax(),
    "dropout": lambda op, p: DropOut(op.attrs["rate"]),
    "concat": lambda op, p: Concat(op.attrs["axis"]),
    "sum": lambda op, p: Sum(),
    "crop": lambda op, p: Crop(op.attrs["crop"]),
    "scale": _scale,
    "spnorm": lambda op, p: SpatialNorm(**op.attrs),
    "noffset": lambda op, p: NormOffset(op.attrs["a"], op.attrs["b"]),
    "prelu": lambda op, p: PReLU(p.param(op.params[0])),
    "binary": lambda op, p: BinaryOp(op.attrs["op"],
                                     p.param(op.params[0]) if op.params else None,
                                     op.attrs["reverse"]),
    "reshape": lambda op, p: Reshape(op.attrs["shape"]),
    "permute": lambda op, p: Permute(op.attrs["perm"]),
    "pad": lambda op, p: Pad(op.attrs["pad"], op.attrs["value"]),
    "clip": lambda op, p: Clip(op.attrs["min"], op.attrs["max"]),
    "hardsigmoid": lambda op, p: HardSigmoid(op.attrs["alpha"], op.attrs["beta"]),
    "layer": lambda op, p: DagNNLayer(op.layer, op, [p.param(n) for n in op.params]),
}

_VARIADIC = ("concat", "sum", "scale", "binary")


@functools.lru_cache(maxsize=1)
def _reserved() -> frozenset:
    """Attribute names of a GraphModule instance (and ours), which layers may not take."""
    gm = torch.fx.GraphModule(nn.Module(), torch.fx.Graph())
    return frozenset(dir(gm)) | set(dir(MatConvNetModule))


def _identifier(name: str, taken: set) -> str:
    """``name`` as a Python identifier not in ``taken`` nor an attribute of GraphModule."""
    base = re.sub(r"\W", "_", name) or "layer"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = "_" + base
    ident, k = base, 1
    while ident in taken or ident in _reserved():
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


def _state_names(root: nn.Module, p: _Params) -> Dict[str, str]:
    """MatConvNet parameter name -> ``state_dict`` key (its first holder)."""
    by_id = {}
    for key, t in list(root.named_parameters(remove_duplicate=False)) + \
            list(root.named_buffers(remove_duplicate=False)):
        by_id.setdefault(id(t), key)
    return {name: by_id[id(t)] for name, t in p.made.items() if id(t) in by_id}


class MatConvNetModule(torch.fx.GraphModule):
    """The module ``to_torch`` returns: a GraphModule that knows the MatConvNet names of its
    inputs, outputs and parameters (kept in ``meta['matconvnet']``, which ``copy.deepcopy``
    preserves; pickling a whole GraphModule keeps its computation but not these names)."""

    __jit_unused_properties__ = list(torch.fx.GraphModule.__jit_unused_properties__) + [
        "input_names", "output_names", "param_names"]

    def _names(self, key: str):
        return self.meta["matconvnet"][key]

    @property
    def input_names(self) -> List[str]:
        """The network's input variables, in ``forward``'s argument order."""
        return list(self._names("input_names"))

    @property
    def output_names(self) -> List[str]:
        """The network's output variables, in the order ``forward`` returns them."""
        return list(self._names("output_names"))

    @property
    def param_names(self) -> Dict[str, str]:
        """MatConvNet parameter name -> ``state_dict`` key."""
        return dict(self._names("param_names"))


def _build(g: Graph) -> MatConvNetModule:
    p = _Params(g.params)
    root = nn.Module()
    graph = torch.fx.Graph()
    env: Dict[str, torch.fx.Node] = {}
    taken: set = set()
    for v in g.inputs:
        env[v] = graph.placeholder(_identifier(v, set(taken)))
    for op in g.ops:
        target = _identifier(op.name, taken)
        root.add_module(target, _BUILDERS[op.kind](op, p))
        args = [env[v] for v in op.inputs]
        node = graph.call_module(target, (args,) if op.kind in _VARIADIC else tuple(args))
        if len(op.outputs) == 1:
            env[op.outputs[0]] = node
        else:
            for i, v in enumerate(op.outputs):
                env[v] = graph.call_function(operator.getitem, (node, i))
    outs = [env[v] for v in g.outputs]
    graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    gm = MatConvNetModule(root, graph, class_name="MatConvNet")
    gm.meta["matconvnet"] = {"input_names": list(g.inputs), "output_names": list(g.outputs),
                             "param_names": _state_names(gm, p)}
    return gm


def to_torch(net: Any, *, losses: bool = False,
             input_channels: Optional[Mapping[str, int]] = None) -> MatConvNetModule:
    """A SimpleNN dict or DagNN ``net`` as a ``torch.nn.Module`` (a ``torch.fx.GraphModule``,
    :class:`MatConvNetModule`) computing the same outputs (see the module docstring).

    ``losses``: keep the loss layers (their labels become inputs).  ``input_channels``:
    ``{input name: C}`` where the network's ``meta`` does not record it (it decides the
    groups of a grouped first convolution).  The parameters are copies: training the module
    leaves ``net`` unchanged."""
    return _build(lower(net, losses=bool(losses), input_channels=input_channels))
