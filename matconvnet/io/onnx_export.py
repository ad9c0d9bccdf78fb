r"""``save_onnx(net, path, opset=17)``: a SimpleNN or DagNN network as an ONNX model.

The network is lowered (:mod:`matconvnet.io._lower`) and written with the ``onnx`` package's
helpers, one node per layer where ONNX has the operator (node names are the layer names,
tensor names the variable names, initializers the parameter names):

==================  ===========================================================================
conv                ``Conv`` (``group``; pads ``[t l b r]`` asymmetric as MatConvNet's; a
                    fully-connected layer is a convolution as in MatConvNet)
convt               ``ConvTranspose``: strides = ``upsample``, pads = ``crop``, ``group``
pool                ``MaxPool`` / ``AveragePool`` with ``count_include_pad = 0`` (windows clipped
                    to the image: padding never contributes), floor rounding
bnorm               ``BatchNormalization`` (inference): MatConvNet's sigma includes epsilon,
                    ``var = sigma^2 - epsilon``; a negative sigma's sign moves into ``scale``
relu                ``Relu``, or ``LeakyRelu`` (``alpha = leak``)
sigmoid, softmax    ``Sigmoid``, ``Softmax(axis = 1)``
lrn                 ``LRN`` with ``alpha = N alpha_MatConvNet`` (ONNX divides by ``size``),
                    ``bias = kappa``; the windows agree.  For an even N (which ONNX Runtime
                    rejects) the same sum is built from ``AveragePool`` over the channels
concat, sum         ``Concat``; ``Add`` (two inputs) or ``Sum``
dropout             ``Identity`` (inference)
crop                ``Slice`` with starts ``min(crop, H - H_ref)`` computed from ``Shape``
scale               ``Mul`` (and ``Add``)
spnorm, noffset     built from ``Mul``, ``AveragePool``, ``ReduceSum``, ``Max``, ``Pow``, ``Sub``
imported layers     PReLU ``PRelu``, BinaryOp ``Add``/``Sub``/``Mul``/``Div``, Reshape
                    ``Reshape`` (batch kept), Permute ``Transpose``, Pad ``Pad``, Clip
                    ``Clip``, HardSigmoid ``HardSigmoid``
==================  ===========================================================================

Loss layers are omitted, with their label inputs and everything that depends on them: the
graph's outputs are the network's predictions.  Other layers without an ONNX form raise an
error listing them all.  Inputs are ``N x C x H x W`` with symbolic N, H and W (C fixed where
known), so any batch and image size runs.  The model passes ``onnx.checker``; its IR version
is the lowest the opset allows.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

from ._lower import Graph, Op, lower
from .._files import atomic_write

__all__ = ["save_onnx", "to_onnx", "MIN_OPSET"]

#: the lowest opset written (Softmax over one axis, Slice/Pad/ReduceSum/Unsqueeze inputs)
MIN_OPSET = 13

_MAX_PROTO = 2 ** 31 - 1


def _onnx():
    """The ``onnx`` package, imported on first use (the rest of the package runs without)."""
    try:
        import onnx
    except ImportError as e:   # pragma: no cover - onnx is installed where tests run
        raise ImportError("save_onnx / to_onnx need the onnx package (pip install onnx)") from e
    return onnx


class _Writer:
    """Nodes and initializers of the graph under construction, with unique tensor names."""

    def __init__(self, g: Graph, dtype: np.dtype):
        self.dtype = dtype
        self.nodes: list = []
        self.arrays: Dict[str, np.ndarray] = {}
        self.taken = set(g.inputs) | {v for op in g.ops for v in op.inputs + op.outputs}
        self.param_names: Dict[str, str] = {}

    def fresh(self, hint: str) -> str:
        name, k = hint, 1
        while name in self.taken:
            name, k = f"{hint}_{k}", k + 1
        self.taken.add(name)
        return name

    def init(self, hint: str, value: Any, dtype: Optional[np.dtype] = None) -> str:
        array = np.asarray(value.detach().cpu().numpy() if torch.is_tensor(value) else value,
                           dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(hint)
        self.arrays[name] = array
        return name

    def param(self, g: Graph, pname: str) -> str:
        """The initializer of a parameter (once, however many layers share it)."""
        if pname not in self.param_names:
            self.param_names[pname] = self.init(pname, g.params[pname])
        return self.param_names[pname]

    def ints(self, hint: str, values) -> str:
        return self.init(hint, np.asarray(values, dtype=np.int64), np.int64)

    def node(self, op_type: str, inputs: List[str], outputs: List[str], name: str,
             **attrs) -> None:
        self.nodes.append(_onnx().helper.make_node(op_type, inputs, outputs, name=name, **attrs))

    def temp(self, op: Op, what: str) -> str:
        return self.fresh(f"{op.name}_{what}")


def _onnx_pads(pad) -> List[int]:
    """``(top, bottom, left, right)`` as ONNX's ``[y_begin, x_begin, y_end, x_end]``."""
    t, b, l, r = (int(v) for v in pad)
    return [t, l, b, r]


# ----------------------------------------------------------------------------- operators

def _conv(w: _Writer, g: Graph, op: Op) -> None:
    f = g.params[op.params[0]]
    a = op.attrs
    w.node("Conv", [op.inputs[0]] + [w.param(g, p) for p in op.params], [op.outputs[0]],
           op.name, kernel_shape=list(f.shape[2:]), pads=_onnx_pads(a["pad"]),
           strides=list(a["stride"]), dilations=list(a["dilate"]), group=int(a["groups"]))


def _convt(w: _Writer, g: Graph, op: Op) -> None:
    f = g.params[op.params[0]]
    a = op.attrs
    w.node("ConvTranspose", [op.inputs[0]] + [w.param(g, p) for p in op.params],
           [op.outputs[0]], op.name, kernel_shape=list(f.shape[2:]),
           pads=_onnx_pads(a["crop"]), strides=list(a["upsample"]), group=int(a["groups"]))


def _pool(w: _Writer, g: Graph, op: Op) -> None:
    a = op.attrs
    common = dict(kernel_shape=list(a["pool"]), pads=_onnx_pads(a["pad"]),
                  strides=list(a["stride"]))
    if a["method"] == "max":
        w.node("MaxPool", [op.inputs[0]], [op.outputs[0]], op.name, **common)
    else:
        w.node("AveragePool", [op.inputs[0]], [op.outputs[0]], op.name,
               count_include_pad=0, **common)


def _lrn(w: _Writer, g: Graph, op: Op) -> None:
    a = op.attrs
    n, x, y = a["size"], op.inputs[0], op.outputs[0]
    if n % 2 == 1:
        w.node("LRN", [x], [y], op.name, size=n, alpha=a["alpha"] * n, beta=a["beta"],
               bias=a["kappa"])
        return
    # the channel window [k - floor((N-1)/2), k + ceil((N-1)/2)] as a 3-D pooling of x^2
    before = (n - 1) // 2
    sq, sq5, mean5, mean, den, scale = (w.temp(op, s) for s in (
        "sq", "sq5", "mean5", "mean", "den", "scale"))
    axis = w.ints(f"{op.name}_axis", [1])
    w.node("Mul", [x, x], [sq], sq)
    w.node("Unsqueeze", [sq, axis], [sq5], sq5)
    w.node("AveragePool", [sq5], [mean5], mean5, kernel_shape=[n, 1, 1],
           pads=[before, 0, 0, n - 1 - before, 0, 0], count_include_pad=1)
    w.node("Squeeze", [mean5, axis], [mean], mean)
    den_a = w.temp(op, "alpha")
    w.node("Mul", [mean, w.init(f"{op.name}_alpha", a["alpha"] * n)], [den_a], den_a)
    w.node("Add", [den_a, w.init(f"{op.name}_kappa", a["kappa"])], [den], den)
    w.node("Pow", [den, w.init(f"{op.name}_beta", -a["beta"])], [scale], scale)
    w.node("Mul", [x, scale], [y], op.name)


def _bnorm(w: _Writer, g: Graph, op: Op) -> None:
    gname, bname, mname = op.params
    eps = float(np.float32(op.attrs["epsilon"]))
    m = g.params[mname].double()
    mu, sigma = m[:, 0], m[:, 1]
    scale = g.params[gname].double() * torch.where(sigma < 0, -1.0, 1.0).to(torch.float64)
    scale_name = w.param(g, gname) if bool((sigma >= 0).all()) \
        else w.init(f"{gname}_signed", scale)
    w.node("BatchNormalization",
           [op.inputs[0], scale_name, w.param(g, bname), w.init(f"{mname}_mean", mu),
            w.init(f"{mname}_var", sigma * sigma - eps)],
           [op.outputs[0]], op.name, epsilon=eps)


def _relu(w: _Writer, g: Graph, op: Op) -> None:
    leak = op.attrs["leak"]
    if leak == 0:
        w.node("Relu", [op.inputs[0]], [op.outputs[0]], op.name)
    else:
        w.node("LeakyRelu", [op.inputs[0]], [op.outputs[0]], op.name, alpha=float(leak))


def _simple(op_type: str, **attrs):
    def emit(w: _Writer, g: Graph, op: Op) -> None:
        w.node(op_type, list(op.inputs), [op.outputs[0]], op.name, **attrs)
    return emit


def _concat(w: _Writer, g: Graph, op: Op) -> None:
    w.node("Concat", list(op.inputs), [op.outputs[0]], op.name, axis=int(op.attrs["axis"]))


def _sum(w: _Writer, g: Graph, op: Op) -> None:
    op_type = {1: "Identity", 2: "Add"}.get(len(op.inputs), "Sum")
    w.node(op_type, list(op.inputs), [op.outputs[0]], op.name)


def _crop(w: _Writer, g: Graph, op: Op) -> None:
    x, ref = op.inputs[:2]
    two, four = w.ints(f"{op.name}_from", [2]), w.ints(f"{op.name}_to", [4])
    hw = []
    for v, what in ((x, "hw"), (ref, "ref_hw")):
        shape, t = w.temp(op, what + "_shape"), w.temp(op, what)
        w.node("Shape", [v], [shape], shape)
        w.node("Slice", [shape, two, four], [t], t)
        hw.append(t)
    excess, start, end = w.temp(op, "excess"), w.temp(op, "start"), w.temp(op, "end")
    w.node("Sub", hw, [excess], excess)
    w.node("Min", [excess, w.ints(f"{op.name}_crop", list(op.attrs["crop"]))], [start], start)
    w.node("Add", [start, hw[1]], [end], end)
    w.node("Slice", [x, start, end, w.ints(f"{op.name}_axes", [2, 3])], [op.outputs[0]],
           op.name)


def _scale(w: _Writer, g: Graph, op: Op) -> None:
    args = list(op.inputs) + [w.param(g, p) for p in op.params]
    if not op.attrs["has_bias"]:
        w.node("Mul", args[:2], [op.outputs[0]], op.name)
        return
    t = w.temp(op, "mul")
    w.node("Mul", args[:2], [t], t)
    w.node("Add", [t, args[2]], [op.outputs[0]], op.name)


def _spnorm(w: _Writer, g: Graph, op: Op) -> None:
    a = op.attrs
    ph, pw = a["pool"]
    pad = ((ph - 1) // 2, ph - 1 - (ph - 1) // 2, (pw - 1) // 2, pw - 1 - (pw - 1) // 2)
    x = op.inputs[0]
    sq, mean, den_a, den, scale = (w.temp(op, s) for s in ("sq", "mean", "alpha", "den",
                                                           "scale"))
    w.node("Mul", [x, x], [sq], sq)
    w.node("AveragePool", [sq], [mean], mean, kernel_shape=[ph, pw], pads=_onnx_pads(pad),
           strides=[1, 1], count_include_pad=0)
    w.node("Mul", [mean, w.init(f"{op.name}_alpha", a["alpha"])], [den_a], den_a)
    w.node("Add", [den_a, w.init(f"{op.name}_one", 1.0)], [den], den)
    w.node("Pow", [den, w.init(f"{op.name}_beta", -a["beta"])], [scale], scale)
    w.node("Mul", [x, scale], [op.outputs[0]], op.name)


def _noffset(w: _Writer, g: Graph, op: Op) -> None:
    x = op.inputs[0]
    sq, total, norm, power, offset = (w.temp(op, s) for s in ("sq", "sum", "clamped",
                                                              "pow", "offset"))
    w.node("Mul", [x, x], [sq], sq)
    w.node("ReduceSum", [sq, w.ints(f"{op.name}_axes", [1])], [total], total, keepdims=1)
    w.node("Max", [total, w.init(f"{op.name}_floor", 1e-8)], [norm], norm)
    w.node("Pow", [norm, w.init(f"{op.name}_b", op.attrs["b"])], [power], power)
    w.node("Mul", [power, w.init(f"{op.name}_a", op.attrs["a"])], [offset], offset)
    w.node("Sub", [x, offset], [op.outputs[0]], op.name)


def _binary(w: _Writer, g: Graph, op: Op) -> None:
    args = list(op.inputs) + [w.param(g, p) for p in op.params]
    if op.params and op.attrs["reverse"]:
        args = args[::-1]
    op_type = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}[op.attrs["op"]]
    w.node(op_type, args[:2], [op.outputs[0]], op.name)


def _reshape(w: _Writer, g: Graph, op: Op) -> None:
    shape = w.ints(f"{op.name}_shape", [0] + list(op.attrs["shape"]))   # 0: keep N
    w.node("Reshape", [op.inputs[0], shape], [op.outputs[0]], op.name)


def _pad(w: _Writer, g: Graph, op: Op) -> None:
    t, b, l, r = op.attrs["pad"]
    pads = w.ints(f"{op.name}_pads", [0, 0, t, l, 0, 0, b, r])
    w.node("Pad", [op.inputs[0], pads, w.init(f"{op.name}_value", op.attrs["value"])],
           [op.outputs[0]], op.name, mode="constant")


def _clip(w: _Writer, g: Graph, op: Op) -> None:
    lo, hi = op.attrs["min"], op.attrs["max"]
    bounds = [w.init(f"{op.name}_{k}", v) if np.isfinite(v) else ""
              for k, v in (("min", lo), ("max", hi))]
    while bounds and not bounds[-1]:
        bounds.pop()
    w.node("Clip", [op.inputs[0]] + bounds, [op.outputs[0]], op.name)


_EMIT = {
    "conv": _conv, "convt": _convt, "pool": _pool, "lrn": _lrn, "bnorm": _bnorm,
    "relu": _relu, "sigmoid": _simple("Sigmoid"), "softmax": _simple("Softmax", axis=1),
    "dropout": _simple("Identity"), "concat": _concat, "sum": _sum, "crop": _crop,
    "scale": _scale, "spnorm": _spnorm, "noffset": _noffset,
    "prelu": lambda w, g, op: w.node("PRelu", [op.inputs[0], w.param(g, op.params[0])],
                                     [op.outputs[0]], op.name),
    "binary": _binary, "reshape": _reshape,
    "permute": lambda w, g, op: w.node("Transpose", [op.inputs[0]], [op.outputs[0]], op.name,
                                       perm=list(op.attrs["perm"])),
    "pad": _pad, "clip": _clip,
    "hardsigmoid": lambda w, g, op: w.node("HardSigmoid", [op.inputs[0]], [op.outputs[0]],
                                           op.name, alpha=op.attrs["alpha"],
                                           beta=op.attrs["beta"]),
}


def _emit(w: _Writer, g: Graph, op: Op) -> None:
    _EMIT[op.kind](w, g, op)


# ----------------------------------------------------------------------------- model

def _value_info(name: str, elem: int, channels: Optional[int], prefix: str):
    dims = [f"{prefix}N", channels if channels else f"{prefix}C", f"{prefix}H", f"{prefix}W"]
    return _onnx().helper.make_tensor_value_info(name, elem, dims)


def _check_opset(opset: Any) -> int:
    latest = _onnx().defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset: expected an integer from {MIN_OPSET} to {latest} (the "
                         f"installed onnx package's latest), got {opset!r}")
    return int(opset)


def _add_initializers(graph: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """The arrays as initializers, built in place (one copy of the weights, not three)."""
    for name, a in arrays.items():
        t = graph.initializer.add()
        t.name = name
        t.data_type = _onnx().helper.np_dtype_to_tensor_dtype(a.dtype)
        t.dims.extend(a.shape)
        t.raw_data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def _model(net: Any, opset: int, input_channels: Optional[Mapping[str, int]]):
    """The ONNX model, not yet checked."""
    onnx = _onnx()
    helper = onnx.helper
    opset = _check_opset(opset)
    g = lower(net, losses=False, input_channels=input_channels)
    unsupported = [op for op in g.ops if op.kind not in _EMIT]
    if unsupported:
        raise ValueError("net: no ONNX form for the layer" + ("s " if len(unsupported) > 1
                                                               else " ")
                         + ", ".join(f"{op.name!r} ({op.layer.type_name})" for op in unsupported))
    dtype = np.dtype(str(g.dtype()).replace("torch.", ""))
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    w = _Writer(g, dtype)
    for op in g.ops:
        _emit(w, g, op)
    size = sum(a.nbytes for a in w.arrays.values())
    if size > _MAX_PROTO - (1 << 24):
        raise ValueError(f"net: the parameters take {size} bytes; a single ONNX protobuf "
                         f"file holds less than 2 GiB")
    several = len(g.inputs) > 1
    inputs = [_value_info(v, elem, g.channels.get(v), f"{v}_" if several else "")
              for v in g.inputs]
    outputs = [_value_info(v, elem, g.channels.get(v), f"{v}_") for v in g.outputs]
    graph = helper.make_graph(w.nodes, _graph_name(g), inputs, outputs)
    _add_initializers(graph, w.arrays)
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="matconvnet",
                             ir_version=helper.find_min_ir_version_for(opsets))


def to_onnx(net: Any, opset: int = 17, *,
            input_channels: Optional[Mapping[str, int]] = None) -> "onnx.ModelProto":
    """The ONNX model of a SimpleNN dict or DagNN ``net`` (see the module docstring), checked
    with ``onnx.checker``.  ``input_channels``: ``{input name: C}`` where the network's
    ``meta`` does not record it."""
    model = _model(net, opset, input_channels)
    _onnx().checker.check_model(model)
    return model


def _graph_name(g: Graph) -> str:
    name = g.meta.get("name") if isinstance(g.meta, Mapping) else None
    return name if isinstance(name, str) and name else "matconvnet"


def save_onnx(net: Any, path: str | os.PathLike, opset: int = 17, *,
              input_channels: Optional[Mapping[str, int]] = None) -> None:
    """Write ``net`` (a SimpleNN dict or a DagNN) to ``path`` as an ONNX model of the given
    ``opset`` (>= 13); see :func:`to_onnx`.  The file is written atomically."""
    data = _model(net, opset, input_channels).SerializeToString()
    _onnx().checker.check_model(data)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(os.fspath(path), write)
