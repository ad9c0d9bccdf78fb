r"""Lowering of SimpleNN and DagNN networks to one flat list of operators, shared by the
exporters (:func:`matconvnet.io.to_torch`, :func:`matconvnet.io.save_onnx`).

``lower(net)`` returns a :class:`Graph`: operators ``Op(kind, name, inputs, outputs, params,
attrs, layer)`` in execution order, the parameter tensors by name, the data inputs and the
prediction outputs.  Options are normalised to Python ints and floats in the package's
conventions (data N x C x H x W; ``pad``/``crop`` ``(top, bottom, left, right)``;
``stride``/``dilate``/``upsample``/``pool`` ``(y, x)``):

======== ================================================== ==============================
kind     params                                             attrs
======== ================================================== ==============================
conv     f (K x C/g x FH x FW), b (K,) or none              pad, stride, dilate, groups
convt    f (D x K x FH x FW), b (K g,) or none              crop, upsample, groups
pool     -                                                  method, pool, pad, stride
lrn      -                                                  size, kappa, alpha, beta
bnorm    g (C,), b (C,), moments (C x 2 [mu, sigma])        epsilon
relu     -                                                  leak
sigmoid, softmax, sum                                       -
dropout  -                                                  rate
concat   -                                                  axis (of N x C x H x W)
crop     - (2 inputs: data, reference)                      crop (y, x)
scale    a (, b) where they are params, else inputs 2 (, 3) has_bias
spnorm   -                                                  pool, alpha, beta
noffset  -                                                  a, b
prelu    slope (viewed 4-D, ``slopeShape``)                  -
binary   constant (viewed 4-D, ``constShape``) or none       op, reverse
reshape, permute, pad, clip, hardsigmoid                    shape; perm; pad, value; min, max;
                                                            alpha, beta
layer    the layer's params                                 - (``Op.layer`` is a DagNN Layer)
======== ================================================== ==============================

(``prelu`` ... ``hardsigmoid`` are the layers added for imported networks, PReLU, BinaryOp,
Reshape, Permute, Pad, Clip, HardSigmoid.)

``layer`` is the fallback for DagNN layers with no native form (and for the loss layers):
the exporters run it through its own forward/backward (to_torch) or reject it (save_onnx).
Loss layers (``Op.loss``) are left out unless ``losses=True``; then every operator that
depends on a loss output goes too, and the outputs are the variables nothing else reads:
the network's predictions.  Inputs read only by the dropped operators (labels) go as well.

A SimpleNN chain is lowered as :meth:`DagNN.from_simplenn` converts it (variables ``x0``,
``x1``, ...; layer names ``layer<l>`` by default; parameters ``<name>f``, ``<name>b``,
``<name>m``/``<name>b``/``<name>x``), without building the DagNN, so that its ``spnorm``,
``noffset`` and ``loss``/``pdist`` layers are accepted too.

Channels: ``groups`` of a convolution is the input's channel count over the filters' depth,
so the channel count of every variable is propagated from the inputs' (``input_channels``,
else the network's ``meta``: SimpleNN ``inputSize``/``normalization.imageSize`` ``[H W C]``,
DagNN ``inputSize`` ``{name, [H W C N]}`` or ``inputs``); where an input's count is not
known, its first reader tells it (a convolution transpose's ``D``, a batch norm's ``C``, and a
convolution's filter depth, i.e. one group).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import _tensor as T
from ..dagnn import layers as L
from ..dagnn.dagnn import DagNN

__all__ = ["Op", "Graph", "lower", "NATIVE_KINDS"]

#: kinds with a native form in both exporters
NATIVE_KINDS = ("conv", "convt", "pool", "lrn", "bnorm", "relu", "sigmoid", "softmax",
                "dropout", "concat", "sum", "crop", "scale", "spnorm", "noffset", "prelu",
                "binary", "reshape", "permute", "pad", "clip", "hardsigmoid")
#: kinds whose output channels the layer's get_output_sizes tells
_BY_LAYER = ("layer", "binary", "reshape", "permute")


@dataclass(frozen=True)
class Op:
    kind: str
    name: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    params: Tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)
    layer: Any = None
    loss: bool = False


@dataclass
class Graph:
    ops: List[Op]
    params: Dict[str, torch.Tensor]
    inputs: List[str]
    outputs: List[str]
    channels: Dict[str, Optional[int]]
    meta: Dict[str, Any]

    def dtype(self) -> torch.dtype:
        """The floating-point type of the parameters (float32 when there are none)."""
        for t in self.params.values():
            if t.is_floating_point():
                return t.dtype
        return torch.float32


# ----------------------------------------------------------------------------- helpers

def _has(w: Any) -> bool:
    return torch.is_tensor(w) and w.numel() > 0


def _tensor(w: Any, what: str) -> torch.Tensor:
    if isinstance(w, np.ndarray):
        w = torch.from_numpy(np.array(w))
    if not torch.is_tensor(w):
        raise TypeError(f"{what}: expected a tensor, got {type(w).__name__}")
    return w.detach().cpu()


def _moments(m: torch.Tensor, c: int, what: str) -> torch.Tensor:
    """Moments as C x 2 ``[mu, sigma]`` (another shape with 2C elements is MATLAB's
    column-major ``[mu; sigma]``, as vl_nnbnorm reads it)."""
    if m.numel() != 2 * c:
        raise ValueError(f"{what}: expected C x 2 moments [mu, sigma] with C = {c}, got shape "
                         f"{tuple(m.shape)}")
    return m if tuple(m.shape) == (c, 2) else m.reshape(2, c).t().contiguous()


def _lrn_attrs(param: Any) -> dict:
    size, kappa, alpha, beta = T.reals(param, "param", 4, "[N, kappa, alpha, beta]")
    if size < 1 or size != int(size):
        raise ValueError(f"param: expected an integer window size N >= 1, got N = {size}")
    return dict(size=int(size), kappa=kappa, alpha=alpha, beta=beta)


def _spnorm_attrs(param: Any) -> dict:
    ph, pw, alpha, beta = T.reals(param, "param", 4, "[PH, PW, alpha, beta]")
    if min(ph, pw) < 1 or ph != int(ph) or pw != int(pw):
        raise ValueError(f"param: expected integer window sizes PH, PW >= 1, got {(ph, pw)}")
    return dict(pool=(int(ph), int(pw)), alpha=alpha, beta=beta)


def _pool_attrs(method: Any, pool: Any, pad: Any, stride: Any) -> dict:
    pool, pad = T.pair(pool, "pool"), T.quad(pad, "pad")
    if pad[0] >= pool[0] or pad[1] >= pool[0] or pad[2] >= pool[1] or pad[3] >= pool[1]:
        raise ValueError(f"pad: expected each pad smaller than the pool size {pool}, got {pad}")
    return dict(method=T.choice(method, "method", ("max", "avg")), pool=pool, pad=pad,
                stride=T.pair(stride, "stride"))


# ----------------------------------------------------------------------------- SimpleNN

def _simplenn_ops(net: Mapping[str, Any]):
    from ..simplenn import vl_simplenn_tidy
    simple = vl_simplenn_tidy(dict(net))
    ops, params = [], {}
    labels = 0
    for l, layer in enumerate(simple["layers"], start=1):
        t = layer["type"]
        name = layer.get("name") or f"layer{l}"
        where = f"net: layer {l} ({name!r}, {t})"
        ins, outs = (f"x{l - 1}",), (f"x{l}",)
        w = list(layer.get("weights") or [])
        try:
            if t in ("conv", "convt"):
                f = _tensor(w[0] if w else None, f"{where} filters")
                names = [name + "f"]
                params[name + "f"] = f
                if len(w) > 1 and _has(w[1]):
                    params[name + "b"] = _tensor(w[1], f"{where} biases").reshape(-1)
                    names.append(name + "b")
                if t == "conv":
                    attrs = dict(pad=T.quad(layer.get("pad", 0), "pad"),
                                 stride=T.pair(layer.get("stride", 1), "stride"),
                                 dilate=T.pair(layer.get("dilate", 1), "dilate"))
                else:
                    attrs = dict(crop=T.quad(layer.get("crop", 0), "crop"),
                                 upsample=T.pair(layer.get("upsample", 1), "upsample"),
                                 groups=T.positive_int(layer.get("numGroups", 1), "numGroups"))
                ops.append(Op(t, name, ins, outs, tuple(names), attrs))
            elif t == "pool":
                ops.append(Op("pool", name, ins, outs, (), _pool_attrs(
                    layer.get("method", "max"), layer["pool"], layer.get("pad", 0),
                    layer.get("stride", 1))))
            elif t in ("normalize", "lrn"):
                ops.append(Op("lrn", name, ins, outs, (), _lrn_attrs(layer["param"])))
            elif t == "spnorm":
                ops.append(Op("spnorm", name, ins, outs, (), _spnorm_attrs(layer["param"])))
            elif t == "noffset":
                a, b = T.reals(layer["param"], "param", 2, "[a, b]")
                ops.append(Op("noffset", name, ins, outs, (), dict(a=a, b=b)))
            elif t == "bnorm":
                if len(w) < 3:
                    raise ValueError("expected weights [g, b, moments]")
                g, b = (_tensor(v, f"{where} weights").reshape(-1) for v in w[:2])
                m = _moments(_tensor(w[2], f"{where} moments"), g.numel(), f"{where} moments")
                names = (name + "m", name + "b", name + "x")
                params.update(zip(names, (g, b, m)))
                ops.append(Op("bnorm", name, ins, outs, names,
                              dict(epsilon=T.real(layer.get("epsilon", 1e-5), "epsilon"))))
            elif t == "relu":
                ops.append(Op("relu", name, ins, outs, (),
                              dict(leak=T.real(layer.get("leak", 0), "leak"))))
            elif t in ("sigmoid", "softmax"):
                ops.append(Op(t, name, ins, outs))
            elif t == "dropout":
                ops.append(Op("dropout", name, ins, outs, (),
                              dict(rate=T.real(layer.get("rate", 0.5), "rate"))))
            elif t in ("softmaxloss", "loss", "pdist"):
                label = "label" if labels == 0 else f"label{labels}"
                labels += 1
                if t == "pdist":
                    block = L.PDist(p=layer.get("p", 2), noRoot=bool(layer.get("noRoot", False)),
                                    epsilon=layer.get("epsilon", 1e-3),
                                    aggregate=bool(layer.get("aggregate", False)))
                else:
                    block = L.Loss(loss="softmaxlog")
                ops.append(Op("layer", name, ins + (label,), outs, (), {}, block, loss=True))
            else:
                raise ValueError(
                    "this layer type cannot be exported (supported: conv, convt, pool, "
                    "normalize/lrn, spnorm, noffset, bnorm, relu, sigmoid, softmax, dropout, "
                    "and the loss layers softmaxloss, loss, pdist)")
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise type(e)(f"{where}: {e}") from e
    return ops, params, ["x0"], simple.get("meta") or {}


# ----------------------------------------------------------------------------- DagNN

def _dag_conv(b: L.Conv, p):
    return "conv", dict(pad=T.quad(b.pad, "pad"), stride=T.pair(b.stride, "stride"),
                        dilate=T.pair(b.dilate, "dilate"))


def _dag_convt(b: L.ConvTranspose, p):
    return "convt", dict(crop=T.quad(b.crop, "crop"), upsample=T.pair(b.upsample, "upsample"),
                         groups=T.positive_int(b.numGroups, "numGroups"))


def _dag_crop(b: L.Crop, p):
    c = T._ints(b.crop, "crop")
    if len(c) not in (1, 2) or min(c) < 0:
        raise ValueError(f"crop: expected 1 or 2 non-negative integers [y x], got {c}")
    return "crop", dict(crop=(c[0], c[0]) if len(c) == 1 else (c[0], c[1]))


_DAG: Dict[type, Any] = {
    L.Conv: _dag_conv,
    L.ConvTranspose: _dag_convt,
    L.Pooling: lambda b, p: ("pool", _pool_attrs(b.method, b.poolSize, b.pad, b.stride)),
    L.LRN: lambda b, p: ("lrn", _lrn_attrs(b.param)),
    L.SpatialNorm: lambda b, p: ("spnorm", _spnorm_attrs(b.param)),
    L.NormOffset: lambda b, p: ("noffset", dict(zip("ab", T.reals(b.param, "param", 2,
                                                                  "[a, b]")))),
    L.BatchNorm: lambda b, p: ("bnorm", dict(epsilon=T.real(b.epsilon, "epsilon"))),
    L.ReLU: lambda b, p: ("relu", dict(leak=T.real(b.leak, "leak"))),
    L.Sigmoid: lambda b, p: ("sigmoid", {}),
    L.SoftMax: lambda b, p: ("softmax", {}),
    L.DropOut: lambda b, p: ("dropout", dict(rate=T.real(b.rate, "rate"))),
    L.Concat: lambda b, p: ("concat", dict(axis=b.axis)),
    L.Sum: lambda b, p: ("sum", {}),
    L.Crop: _dag_crop,
    L.Scale: lambda b, p: ("scale", dict(has_bias=bool(b.hasBias))),
}


# Layers added for imported networks (matconvnet.io.load_onnx / from_torch); looked up by
# name so that this module does not depend on their presence.

def _shape4(value: Any, p: Optional[torch.Tensor]) -> Tuple[int, int, int, int]:
    """A parameter's saved N x C x H x W view (default: one value per channel)."""
    v = list(T._ints(value, "shape")) if value is not None and np.size(value) else []
    if not v:
        return (1, int(p.numel()) if p is not None else 1, 1, 1)
    return tuple(v + [1] * (4 - len(v)))  # type: ignore[return-value]


def _interop(name: str, kind: str, attrs, shape_prop: Optional[str] = None):
    cls = getattr(L, name, None)
    if cls is not None:
        _DAG[cls] = lambda b, p: (kind, attrs(b))
        if shape_prop:
            _VIEWS[cls] = shape_prop


_VIEWS: Dict[type, str] = {}   # class -> property giving its parameter's 4-D view
_interop("PReLU", "prelu", lambda b: {}, "slopeShape")
_interop("BinaryOp", "binary", lambda b: dict(op=str(b.op).lower(), reverse=bool(b.reverse)),
         "constShape")
_interop("Reshape", "reshape", lambda b: dict(shape=tuple(T._ints(b.shape, "shape"))))
_interop("Permute", "permute", lambda b: dict(perm=tuple(T._ints(b.perm, "perm"))))
_interop("Pad", "pad", lambda b: dict(pad=T.quad(b.pad, "pad"), value=T.real(b.value, "value")))
_interop("Clip", "clip", lambda b: dict(min=T.real(b.min, "min"), max=T.real(b.max, "max")))
_interop("HardSigmoid", "hardsigmoid",
         lambda b: dict(alpha=T.real(b.alpha, "alpha"), beta=T.real(b.beta, "beta")))


def _dagnn_ops(net: DagNN):
    ops, params = [], {}
    for li in net.execution_order:
        entry = net.layers[li]
        block = entry.block
        where = f"net: layer {entry.name!r} ({block.type_name})"
        for pname in entry.params:
            if pname in params:
                continue
            value = net.params[net.get_param_index(pname)].value
            if value is None:
                raise ValueError(f"{where}: parameter {pname!r} has no value (initialise the "
                                 f"parameters first)")
            params[pname] = _tensor(value, f"{where} parameter {pname!r}")
        lowering = _DAG.get(type(block))
        try:
            if lowering is None:
                ops.append(Op("layer", entry.name, tuple(entry.inputs), tuple(entry.outputs),
                              tuple(entry.params), {}, block, loss=isinstance(block, L.Loss)))
                continue
            kind, attrs = lowering(block, entry.params)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{where}: {e}") from e
        names = tuple(entry.params)
        if kind in ("conv", "convt"):
            names = names[:2] if block.hasBias else names[:1]
            if len(names) > 1 and params[names[1]].numel() == 0:
                names = names[:1]
            if len(names) > 1:
                params[names[1]] = params[names[1]].reshape(-1)
        elif kind == "bnorm":
            if len(names) < 3:
                raise ValueError(f"{where}: expected 3 parameters [g, b, moments], got "
                                 f"{list(names)}")
            g = params[names[0]].reshape(-1)
            params[names[0]], params[names[1]] = g, params[names[1]].reshape(-1)
            params[names[2]] = _moments(params[names[2]], g.numel(), f"{where} moments")
            names = names[:3]
        elif type(block) in _VIEWS and names:
            shape = _shape4(getattr(block, _VIEWS[type(block)]), params[names[0]])
            params[names[0]] = params[names[0]].reshape(shape)
        if kind in ("conv", "convt") and not names:
            raise ValueError(f"{where}: expected a filter parameter")
        ops.append(Op(kind, entry.name, tuple(entry.inputs), tuple(entry.outputs), names,
                      attrs, block if kind in _BY_LAYER else None))
    return ops, params, net.get_inputs(), dict(net.meta or {})


# ----------------------------------------------------------------------------- pruning

def _prune_losses(ops: List[Op]) -> List[Op]:
    dropped, kept = set(), []
    for op in ops:
        if op.loss or any(v in dropped for v in op.inputs):
            dropped.update(op.outputs)
        else:
            kept.append(op)
    return kept


def _endpoints(ops: List[Op], inputs: Sequence[str]):
    read = list(dict.fromkeys(v for op in ops for v in op.inputs))
    written = list(dict.fromkeys(v for op in ops for v in op.outputs))
    ins = [v for v in dict.fromkeys(list(inputs) + read) if v in read and v not in written]
    outs = [v for v in written if v not in read]
    return ins, outs


# ----------------------------------------------------------------------------- channels

def _meta_channels(meta: Mapping[str, Any], inputs: Sequence[str]) -> Dict[str, int]:
    """Input channel counts recorded in ``meta`` (see the module docstring)."""
    def third(size):
        try:
            v = list(np.asarray(size.tolist() if torch.is_tensor(size) else size,
                                dtype=float).ravel())
        except (TypeError, ValueError):
            return None
        return int(v[2]) if len(v) >= 3 and v[2] == int(v[2]) and v[2] >= 1 else None

    out: Dict[str, int] = {}
    size = meta.get("inputSize")
    if isinstance(size, (list, tuple)) and len(size) >= 2 and isinstance(size[0], str):
        for name, s in zip(size[0::2], size[1::2]):   # DagNN: {'input', [H W C N], ...}
            if isinstance(name, str) and third(s):
                out[name] = third(s)
    elif size is not None and third(size) and len(inputs) == 1:
        out[inputs[0]] = third(size)
    entries = meta.get("inputs")
    if isinstance(entries, Mapping):
        entries = [entries]
    for e in entries if isinstance(entries, (list, tuple)) else []:
        if isinstance(e, Mapping) and isinstance(e.get("name"), str) and third(e.get("size")):
            out.setdefault(e["name"], third(e["size"]))
    norm = meta.get("normalization")
    if isinstance(norm, Mapping) and len(inputs) == 1 and third(norm.get("imageSize")):
        out.setdefault(inputs[0], third(norm.get("imageSize")))
    return out


def _reader_channels(op: Op, params: Mapping[str, torch.Tensor]) -> Optional[int]:
    """The input channels an operator implies when they are not known otherwise."""
    if op.kind == "conv":
        return int(params[op.params[0]].shape[1])        # one group
    if op.kind == "convt":
        return int(params[op.params[0]].shape[0])
    if op.kind == "bnorm":
        return int(params[op.params[0]].numel())
    return None


def _propagate(ops: List[Op], params, channels: Dict[str, Optional[int]]) -> List[Op]:
    """Channel counts of every variable; fills in ``groups`` of the convolutions."""
    out = []
    for op in ops:
        c_in = [channels.get(v) for v in op.inputs]
        if c_in and c_in[0] is None:
            c_in[0] = channels[op.inputs[0]] = _reader_channels(op, params)
        c0 = c_in[0] if c_in else None
        attrs = dict(op.attrs)
        if op.kind == "conv":
            f = params[op.params[0]]
            depth, k = int(f.shape[1]), int(f.shape[0])
            if c0 % depth or k % (c0 // depth):
                raise ValueError(
                    f"net: layer {op.name!r}: filters of shape {tuple(f.shape)} (depth "
                    f"{depth}, {k} filters) do not fit an input with {c0} channels in "
                    f"equal groups")
            attrs["groups"] = c0 // depth
            c_out: Optional[int] = k
        elif op.kind == "convt":
            f = params[op.params[0]]
            if f.shape[0] % attrs["groups"]:
                raise ValueError(f"net: layer {op.name!r}: numGroups {attrs['groups']} does "
                                 f"not divide the {f.shape[0]} filters")
            c_out = int(f.shape[1]) * attrs["groups"]
        elif op.kind == "concat" and attrs["axis"] == 1:
            c_out = None if any(c is None for c in c_in) else sum(c_in)
        elif op.kind in _BY_LAYER:
            c_out = _layer_channels(op, c_in)
        else:
            c_out = c0
        for v in op.outputs:
            channels[v] = c_out
        out.append(Op(op.kind, op.name, op.inputs, op.outputs, op.params, attrs, op.layer,
                      op.loss))
    return out


def _layer_channels(op: Op, c_in: List[Optional[int]]) -> Optional[int]:
    sizes = [(math.nan, math.nan if c is None else c, math.nan, math.nan) for c in c_in]
    try:
        c = op.layer.get_output_sizes(sizes)[0][1]
    except Exception:   # a layer that cannot tell from partial sizes
        return None
    return int(c) if isinstance(c, numbers.Real) and not math.isnan(c) else None


# ----------------------------------------------------------------------------- lower

def lower(net: Any, *, losses: bool = False,
          input_channels: Optional[Mapping[str, int]] = None) -> Graph:
    """``net`` (a SimpleNN dict or a DagNN) as a :class:`Graph` (see the module docstring).
    ``losses=False`` leaves the loss layers (and what depends on them) out."""
    if isinstance(net, DagNN):
        ops, params, inputs, meta = _dagnn_ops(net)
    elif isinstance(net, Mapping) and isinstance(net.get("layers"), (list, tuple)):
        ops, params, inputs, meta = _simplenn_ops(net)
    else:
        raise TypeError(f"net: expected a SimpleNN dict {{'layers': [...], 'meta': {{...}}}} "
                        f"or a matconvnet.dagnn.DagNN, got {type(net).__name__}")
    if not losses:
        ops = _prune_losses(ops)
    if not ops:
        raise ValueError("net: nothing to export (no layers besides the loss layers)")
    inputs, outputs = _endpoints(ops, inputs)
    channels: Dict[str, Optional[int]] = {v: None for v in inputs}
    channels.update({k: v for k, v in _meta_channels(meta, inputs).items() if k in channels})
    for k, v in dict(input_channels or {}).items():
        if k not in channels:
            raise ValueError(f"input_channels: {k!r} is not an input of the network "
                             f"(inputs: {inputs})")
        channels[k] = T.positive_int(v, f"input_channels[{k!r}]")
    ops = _propagate(ops, params, channels)
    used = {p for op in ops for p in op.params}
    params = {k: v for k, v in params.items() if k in used}
    # one floating-point type throughout, as MatConvNet requires of a network's arrays
    floats = [v.dtype for v in params.values() if v.is_floating_point()]
    if floats:
        params = {k: v.to(floats[0]) if v.is_floating_point() else v
                  for k, v in params.items()}
    return Graph(ops, params, inputs, outputs, channels, meta)
