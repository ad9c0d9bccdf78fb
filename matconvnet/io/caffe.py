r"""Caffe models (``.prototxt`` + ``.caffemodel``) as SimpleNN or DagNN networks.

``net = load_caffe(prototxt, caffemodel=None, wrapper='auto')`` reads the network structure
from the text ``prototxt`` (both the current ``layer { type: "Convolution" }`` format and the
deprecated V1 ``layers { type: CONVOLUTION }`` one) and its weights from the binary
``caffemodel`` (either format too), matched by layer name as Caffe does.  Without a
``caffemodel`` the weights are zero (Caffe's blobs before training).  A chain of layers
becomes a SimpleNN net ``{'layers': [...], 'meta': {...}}`` (``wrapper='auto'`` or
``'simplenn'``), anything else a :class:`matconvnet.dagnn.DagNN` (``'auto'`` or
``'dagnn'``).  The files are parsed with the ``protobuf`` package and the schema
``caffe.proto`` next to this module (only the messages and fields read here).

Layers (Caffe -> MatConvNet; data ``N x C x H x W`` in both, so no transposition)::

    Convolution      conv   filters K x C/g x FH x FW as stored; pad [P_h P_h P_w P_w],
                            stride, dilate; group g; bias_term
    Deconvolution    convt  filters C x K/g x FH x FW as stored; upsample = stride,
                            crop = pad; numGroups = group
    Pooling          pool   MAX -> max, AVE -> avg; Caffe's ceil rule becomes MatConvNet
                            padding (geometry.caffe_pool_padding, manual 5.2.1); AVE with
                            padding counts the padded zeros as Caffe does, through an explicit
                            zero-padding conv (identity filters) before the pooling;
                            global_pooling pools the whole input
    InnerProduct     conv   fully connected: the K x (C H W) matrix (Caffe flattens C x H x W
                            in C order) reshaped to K x C x H x W filters
    ReLU             relu   leak = negative_slope
    LRN              normalize  ACROSS_CHANNELS, param [n, k, alpha / n, beta]
    BatchNorm        bnorm  moments [mu, sigma] = [mean / s, sqrt(var / s + eps)] with s the
                            moving-average factor (third blob); a Scale layer reading only its
                            output is folded into its multipliers and biases
    Scale            Scale (DagNN) per-channel multiplier (and bias)
    Concat           Concat (DagNN) along Caffe's axis
    Eltwise          SUM -> Sum (coefficients through constant Scale layers),
                     PROD -> Scale with two inputs; MAX is not supported
    Dropout          dropout (identity at test time)
    Softmax          softmax over the channels
    Sigmoid          sigmoid
    Split            nothing: its tops are the bottom
    Input, Data      the network inputs (``input``/``input_shape``/``input_dim``, Input's
                     shapes, Data's crop_size)

Layers with ``include``/``exclude`` phase rules are kept as in Caffe's TEST phase.

Output sizes are checked against Caffe's rules where the input size is known; a pooling that
MatConvNet cannot express exactly, a weight blob whose shape does not fit its layer, a layer
type outside the list above (all of them are listed), a truncated or corrupt file: each
raises :class:`CaffeImportError` (a ``ValueError``) naming the file, the layer and what was
expected.

``meta``: ``inputs`` (DagNN) / ``inputSize`` (SimpleNN) ``[H, W, C, N]`` (NaN where the
prototxt does not say); ``normalization`` with ``imageSize [H, W, C]``, ``averageImage`` (the
input layer's ``transform_param.mean_value`` as a ``C x 1 x 1`` tensor, in the network's
channel order, when present), ``interpolation 'bilinear'``, ``keepAspect False`` (Caffe's
deploy code warps the image), ``border [0, 0]``, ``cropSize 1``; ``channelOrder`` (the
``channel_order`` argument, Caffe's 'BGR' by default; recorded for 3-channel inputs);
``caffe`` with the net's ``name`` and the input layer's ``scale`` and ``meanFile`` when
given.  The network is not converted to RGB input: see ``scripts/convert_squeezenet.py``
for a conversion that permutes the first filters.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import geometry as G

__all__ = ["load_caffe", "read_prototxt", "read_caffemodel", "CaffeImportError",
           "SUPPORTED_LAYERS"]

Source = Union[str, "os.PathLike[str]", bytes]
Shape = Tuple[Optional[int], Optional[int], Optional[int], Optional[int]]  # N, C, H, W

#: Largest size accepted for any dimension (a guard against corrupt files).
_MAX_DIM = 1 << 31


class CaffeImportError(ValueError):
    """A Caffe file that cannot be read, or a network that cannot be converted exactly."""


# ----------------------------------------------------------------------------- files


@lru_cache(maxsize=1)
def _schema() -> Dict[str, type]:
    from ._proto import message_classes
    text = resources.files(__package__).joinpath("caffe.proto").read_text(encoding="utf-8")
    return message_classes(text)


def _label(source: Source, what: str) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{what} bytes>"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{what}: expected a path or the file's bytes, got "
                        f"{type(source).__name__}")
    return os.fspath(source)


def _read(source: Source, what: str) -> Tuple[bytes, str]:
    label = _label(source, what)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), label
    with open(label, "rb") as f:
        return f.read(), label


def read_prototxt(source: Source) -> Any:
    """Parse a network description (text format) into a ``caffe.NetParameter`` message.
    ``source``: a path, or the file's bytes.  Fields outside this project's schema are
    skipped."""
    from google.protobuf import text_format
    data, label = _read(source, "prototxt")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaffeImportError(f"{label}: not a text prototxt (invalid UTF-8 at byte "
                               f"{e.start})") from None
    net = _schema()["NetParameter"]()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as e:
        raise CaffeImportError(f"{label}: invalid prototxt: {e}") from None
    return net


def read_caffemodel(source: Source) -> Any:
    """Parse trained weights (binary protobuf) into a ``caffe.NetParameter`` message.
    ``source``: a path, or the file's bytes."""
    from google.protobuf.message import DecodeError
    data, label = _read(source, "caffemodel")
    net = _schema()["NetParameter"]()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise CaffeImportError(f"{label}: not a valid caffemodel (truncated or corrupt "
                               f"protobuf, {len(data)} bytes): {e}") from None
    return net


# ----------------------------------------------------------------------------- layers


_V1_TYPES = {
    "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "POOLING": "Pooling",
    "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU", "LRN": "LRN", "CONCAT": "Concat",
    "ELTWISE": "Eltwise", "DROPOUT": "Dropout", "SOFTMAX": "Softmax", "SIGMOID": "Sigmoid",
    "SPLIT": "Split", "DATA": "Data", "IMAGE_DATA": "ImageData",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "ACCURACY": "Accuracy",
}


@dataclass
class _Layer:
    """One prototxt layer, format-independent."""
    index: int
    name: str
    type: str
    bottoms: List[str]
    tops: List[str]
    msg: Any

    @property
    def label(self) -> str:
        return f"layer {self.name!r} ({self.type})"

    def param(self, name: str) -> Any:
        return getattr(self.msg, name)


def _phase_ok(msg: Any) -> bool:
    """Caffe's include/exclude rules for its default TEST state (level 0, no stages)."""
    def meets(rule):
        return ((not rule.HasField("phase") or rule.phase == 1)
                and (not rule.HasField("min_level") or rule.min_level <= 0)
                and (not rule.HasField("max_level") or rule.max_level >= 0)
                and not len(rule.stage))
    if len(msg.include):
        return any(meets(r) for r in msg.include)
    return not any(meets(r) for r in msg.exclude)


def _layers(net: Any, label: str) -> List[_Layer]:
    if len(net.layer) and len(net.layers):
        raise CaffeImportError(f"{label}: both 'layer' and the deprecated 'layers' are used; "
                               f"expected one of them")
    out = []
    if len(net.layers):
        enum = net.layers[0].DESCRIPTOR.fields_by_name["type"].enum_type
        for i, l in enumerate(net.layers):
            kind = enum.values_by_number[l.type].name if l.type in enum.values_by_number \
                else str(l.type)
            if kind == "NONE":
                kind = ""
            out.append(_Layer(i, l.name, _V1_TYPES.get(kind, kind), list(l.bottom),
                              list(l.top), l))
    else:
        for i, l in enumerate(net.layer):
            out.append(_Layer(i, l.name, l.type, list(l.bottom), list(l.top), l))
    kept = [l for l in out if _phase_ok(l.msg)]
    for l in kept:
        if not l.name:
            l.name = f"layer{l.index + 1}"
        if not l.type:
            raise CaffeImportError(f"{label}: layer {l.name!r} has no type")
    return kept


def _blobs_by_name(model: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for l in list(model.layers) + list(model.layer):
        if len(l.blobs):
            out[l.name] = l.blobs
    return out


def _blob_array(blob: Any, what: str) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = (int(blob.num), int(blob.channels), int(blob.height), int(blob.width))
    if any(d < 0 or d > _MAX_DIM for d in shape):
        raise CaffeImportError(f"{what}: invalid blob shape {shape}")
    count = math.prod(shape)
    data = blob.data if len(blob.data) else blob.double_data
    if len(data) != count:
        raise CaffeImportError(f"{what}: the blob holds {len(data)} values but its shape "
                               f"{shape} needs {count}")
    return np.array(data, dtype=np.float32).reshape(shape)


def _fit(a: np.ndarray, expected: Sequence[Optional[int]], what: str) -> np.ndarray:
    """``a`` reshaped to ``expected`` (None: any size), dropping or adding leading singleton
    dimensions (V1 files store every blob as num x channels x height x width)."""
    shape = list(a.shape)
    while len(shape) > len(expected) and shape[0] == 1:
        shape.pop(0)
    while len(shape) < len(expected):
        shape.insert(0, 1)
    if len(shape) != len(expected) or any(e is not None and e != s
                                          for e, s in zip(expected, shape)):
        want = " x ".join("?" if e is None else str(e) for e in expected)
        raise CaffeImportError(f"{what}: has shape {tuple(a.shape)}, expected {want}")
    return a.reshape(shape)


# ----------------------------------------------------------------------------- graph


@dataclass
class _Op:
    """A MatConvNet operation: kind, variables, options and weights (NumPy, our layout)."""
    name: str
    kind: str
    inputs: List[str]
    outputs: List[str]
    attrs: Dict[str, Any] = field(default_factory=dict)
    weights: List[Optional[np.ndarray]] = field(default_factory=list)


class _Graph:
    def __init__(self, weights: Optional[Dict[str, Any]], model_label: str):
        self.weights = weights
        self.model_label = model_label
        self.ops: List[_Op] = []
        self.inputs: List[str] = []
        self.shapes: Dict[str, Shape] = {}
        self.blob_var: Dict[str, str] = {}
        self.input_layer: Optional[_Layer] = None
        self._names: set = set()

    # -- variables
    def bottom(self, layer: _Layer, i: int = 0) -> str:
        if i >= len(layer.bottoms):
            raise CaffeImportError(f"{layer.label}: expected at least {i + 1} bottom blob(s), "
                                   f"got {len(layer.bottoms)}")
        name = layer.bottoms[i]
        if name not in self.blob_var:
            raise CaffeImportError(f"{layer.label}: bottom blob {name!r} is not produced by "
                                   f"any earlier layer or input")
        return self.blob_var[name]

    def top(self, layer: _Layer, i: int, shape: Shape) -> str:
        """A new variable for top ``i`` (in-place tops get a fresh name)."""
        if i >= len(layer.tops):
            raise CaffeImportError(f"{layer.label}: expected at least {i + 1} top blob(s), "
                                   f"got {len(layer.tops)}")
        blob = layer.tops[i]
        if not blob:
            raise CaffeImportError(f"{layer.label}: top blob {i + 1} has an empty name")
        _check_count(shape, f"{layer.label}: top blob {blob!r}")
        var = self.unique(blob if blob not in self.shapes else layer.name)
        self.blob_var[blob] = var
        self.shapes[var] = shape
        return var

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.shapes or name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def shape(self, var: str) -> Shape:
        return self.shapes[var]

    # -- weights
    def blobs(self, layer: _Layer, count: int) -> Optional[list]:
        """The layer's ``count`` weight arrays from the caffemodel (None without one)."""
        if self.weights is None:
            return None
        blobs = self.weights.get(layer.name)
        if blobs is None:
            raise CaffeImportError(f"{layer.label}: {self.model_label} has no weights for "
                                   f"this layer")
        if len(blobs) != count:
            raise CaffeImportError(f"{layer.label}: {self.model_label} has {len(blobs)} "
                                   f"weight blob(s) for this layer, expected {count}")
        return [_blob_array(b, f"{layer.label}: weight blob {k + 1}")
                for k, b in enumerate(blobs)]

    def add(self, op: _Op) -> _Op:
        self.ops.append(op)
        return op


# ----------------------------------------------------------------------------- options


def _values(msg: Any, name: str) -> List[int]:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
    if repeated:
        return [int(v) for v in getattr(msg, name)]
    return [int(getattr(msg, name))] if msg.HasField(name) else []


def _spatial(layer: _Layer, msg: Any, base: str, h: Optional[str], w: Optional[str],
             default: Optional[int], minimum: int) -> Tuple[int, int]:
    """Caffe's 2-D option: ``base`` (1 or 2 values) or the ``h``/``w`` pair."""
    if h is not None and (msg.HasField(h) or msg.HasField(w)):
        if not (msg.HasField(h) and msg.HasField(w)):
            raise CaffeImportError(f"{layer.label}: {h} and {w} must be given together")
        if _values(msg, base):
            raise CaffeImportError(f"{layer.label}: give either {base} or {h}/{w}, not both")
        v = [int(getattr(msg, h)), int(getattr(msg, w))]
    else:
        v = _values(msg, base)
        if not v:
            if default is None:
                raise CaffeImportError(f"{layer.label}: {base} is required")
            v = [default]
        if len(v) > 2:
            raise CaffeImportError(f"{layer.label}: {base} has {len(v)} values; only 2-D "
                                   f"(1 or 2 values) is supported")
    v = v * 2 if len(v) == 1 else v
    if min(v) < minimum or max(v) > _MAX_DIM:
        raise CaffeImportError(f"{layer.label}: {base} {tuple(v)} out of range (expected "
                               f"integers >= {minimum})")
    return (v[0], v[1])


def _check_axis(layer: _Layer, axis: int, what: str = "axis") -> None:
    if axis not in (1, -3):
        raise CaffeImportError(f"{layer.label}: {what} {axis} is not supported (only 1, the "
                               f"channels)")


def _positive(layer: _Layer, value: int, what: str) -> int:
    if not 1 <= value <= _MAX_DIM:
        raise CaffeImportError(f"{layer.label}: {what} must be a positive integer, got {value}")
    return int(value)


#: Most elements of one weight array created here (a guard against corrupt sizes).
_MAX_WEIGHTS = 1 << 28


def _filled(shape: Tuple[int, ...], value: float, layer: _Layer) -> np.ndarray:
    if math.prod(shape) > _MAX_WEIGHTS:
        raise CaffeImportError(f"{layer.label}: a weight array of shape {shape} is too large")
    return np.full(shape, value, np.float32)


def _check_count(shape: Shape, what: str) -> None:
    """Caffe's limit: a blob holds at most INT_MAX values."""
    known = [d for d in shape if d is not None]
    if math.prod(known) > 2 ** 31 - 1:
        raise CaffeImportError(f"{what}: {' x '.join('?' if d is None else str(d) for d in shape)} "
                               f"exceeds Caffe's blob size limit (2^31 - 1 values)")


def _known(*vs: Optional[int]) -> bool:
    return all(v is not None for v in vs)


# ----------------------------------------------------------------------------- converters


def _input_shape(dims: Sequence[int], what: str) -> Shape:
    dims = [int(d) for d in dims]
    if not 1 <= len(dims) <= 4:
        raise CaffeImportError(f"{what}: expected 1 to 4 dimensions (N, C, H, W), got {dims}")
    if any(not 1 <= d <= _MAX_DIM for d in dims):
        raise CaffeImportError(f"{what}: dimensions must be positive, got {dims}")
    dims = dims + [1] * (4 - len(dims))
    shape = (dims[0], dims[1], dims[2], dims[3])
    _check_count(shape, what)
    return shape


def _add_input(g: _Graph, blob: str, shape: Shape, layer: Optional[_Layer], what: str) -> None:
    if not blob:
        raise CaffeImportError(f"{what}: an input has an empty name")
    if blob in g.blob_var:
        raise CaffeImportError(f"{what}: input {blob!r} is defined twice")
    var = g.unique(blob)
    g.blob_var[blob] = var
    g.shapes[var] = shape
    g.inputs.append(var)
    if g.input_layer is None and layer is not None:
        g.input_layer = layer


def _net_inputs(g: _Graph, net: Any, label: str) -> None:
    names = list(net.input)
    if not names:
        if len(net.input_shape) or len(net.input_dim):
            raise CaffeImportError(f"{label}: input_shape/input_dim given without input names")
        return
    if len(net.input_shape):
        if len(net.input_shape) != len(names):
            raise CaffeImportError(f"{label}: {len(names)} inputs but {len(net.input_shape)} "
                                   f"input_shape entries")
        shapes = [_input_shape(s.dim, f"{label}: input {n!r}")
                  for n, s in zip(names, net.input_shape)]
    elif len(net.input_dim):
        if len(net.input_dim) != 4 * len(names):
            raise CaffeImportError(f"{label}: {len(names)} inputs need {4 * len(names)} "
                                   f"input_dim values, got {len(net.input_dim)}")
        dims = list(net.input_dim)
        shapes = [_input_shape(dims[4 * k:4 * k + 4], f"{label}: input {n!r}")
                  for k, n in enumerate(names)]
    else:
        shapes = [(None, None, None, None)] * len(names)
    for n, s in zip(names, shapes):
        _add_input(g, n, s, None, label)


def _input_layer(g: _Graph, layer: _Layer) -> None:
    shapes = list(layer.msg.input_param.shape)
    if shapes and len(shapes) not in (1, len(layer.tops)):
        raise CaffeImportError(f"{layer.label}: {len(shapes)} shapes for {len(layer.tops)} "
                               f"tops")
    for k, top in enumerate(layer.tops):
        s = shapes[0 if len(shapes) == 1 else k].dim if shapes else None
        shape = _input_shape(s, layer.label) if s is not None else (None,) * 4
        _add_input(g, top, shape, layer, layer.label)


def _data_layer(g: _Graph, layer: _Layer) -> None:
    crop = int(layer.msg.transform_param.crop_size)
    for k, top in enumerate(layer.tops):
        shape = (None, None, crop, crop) if k == 0 and crop else (None,) * 4
        _add_input(g, top, shape, layer if k == 0 else None, layer.label)


def _filter_layer(g: _Graph, layer: _Layer):
    """What Convolution and Deconvolution layers share: convolution_param's window, output
    and group checks, the bottom and its shape, and the blobs."""
    p = layer.param("convolution_param")
    _check_axis(layer, int(p.axis))
    kernel = _spatial(layer, p, "kernel_size", "kernel_h", "kernel_w", None, 1)
    pad = _spatial(layer, p, "pad", "pad_h", "pad_w", 0, 0)
    stride = _spatial(layer, p, "stride", "stride_h", "stride_w", 1, 1)
    dilation = _spatial(layer, p, "dilation", None, None, 1, 1)
    k = _positive(layer, int(p.num_output), "num_output")
    groups = _positive(layer, int(p.group), "group")
    if k % groups:
        raise CaffeImportError(f"{layer.label}: num_output {k} is not divisible by group "
                               f"{groups}")
    x = g.bottom(layer)
    shape = g.shape(x)
    if shape[1] is not None and shape[1] % groups:
        raise CaffeImportError(f"{layer.label}: the input's {shape[1]} channels are not "
                               f"divisible by group {groups}")
    blobs = g.blobs(layer, 2 if p.bias_term else 1)
    return p, kernel, pad, stride, dilation, k, groups, x, shape, blobs


def _conv(g: _Graph, layer: _Layer) -> None:
    p, (kh, kw), (ph, pw), (sh, sw), (dh, dw), k, groups, x, (n, c, h, w), blobs = \
        _filter_layer(g, layer)
    cg = c // groups if c is not None else None
    if blobs is None:
        if cg is None:
            raise CaffeImportError(f"{layer.label}: the input's channels are unknown (give "
                                   f"the input shape or a caffemodel)")
        f = _filled((k, cg, kh, kw), 0.0, layer)
        b = _filled((k,), 0.0, layer) if p.bias_term else None
    else:
        f = _fit(blobs[0], (k, cg, kh, kw), f"{layer.label}: filters")
        b = _fit(blobs[1], (k,), f"{layer.label}: biases") if p.bias_term else None
        c = f.shape[1] * groups
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    oh = _slide(layer, h, 2 * ph, eh, sh)
    ow = _slide(layer, w, 2 * pw, ew, sw)
    g.add(_Op(layer.name, "conv", [x], [g.top(layer, 0, (n, k, oh, ow))],
              dict(pad=[ph, ph, pw, pw], stride=[sh, sw], dilate=[dh, dw]), [f, b]))


def _slide(layer: _Layer, size: Optional[int], pads: int, extent: int, stride: int
           ) -> Optional[int]:
    if size is None:
        return None
    if size + pads < extent:
        raise CaffeImportError(f"{layer.label}: the window ({extent}) is larger than the "
                               f"padded input ({size + pads})")
    return (size + pads - extent) // stride + 1


def _deconv(g: _Graph, layer: _Layer) -> None:
    p, (kh, kw), (ph, pw), (sh, sw), dilation, k, groups, x, (n, c, h, w), blobs = \
        _filter_layer(g, layer)
    if dilation != (1, 1):
        raise CaffeImportError(f"{layer.label}: dilated deconvolution is not supported "
                               f"(vl_nnconvt has no dilation)")
    if blobs is None:
        if c is None:
            raise CaffeImportError(f"{layer.label}: the input's channels are unknown (give "
                                   f"the input shape or a caffemodel)")
        f = _filled((c, k // groups, kh, kw), 0.0, layer)
        b = _filled((k,), 0.0, layer) if p.bias_term else None
    else:
        f = _fit(blobs[0], (c, k // groups, kh, kw), f"{layer.label}: filters")
        b = _fit(blobs[1], (k,), f"{layer.label}: biases") if p.bias_term else None
        if f.shape[0] % groups:
            raise CaffeImportError(f"{layer.label}: {f.shape[0]} input channels are not "
                                   f"divisible by group {groups}")

    def up(v, kk, pp, ss):
        if v is None:
            return None
        out = ss * (v - 1) + kk - 2 * pp
        if out < 1:
            raise CaffeImportError(f"{layer.label}: the output would be empty ({out})")
        return out
    g.add(_Op(layer.name, "convt", [x],
              [g.top(layer, 0, (n, k, up(h, kh, ph, sh), up(w, kw, pw, sw)))],
              dict(upsample=[sh, sw], crop=[ph, ph, pw, pw], numGroups=groups), [f, b]))


def _pool(g: _Graph, layer: _Layer) -> None:
    p = layer.param("pooling_param")
    methods = {0: "max", 1: "avg"}
    if int(p.pool) not in methods:
        raise CaffeImportError(f"{layer.label}: only MAX and AVE pooling are supported (got "
                               f"method {int(p.pool)}, STOCHASTIC)")
    method = methods[int(p.pool)]
    x = g.bottom(layer)
    n, c, h, w = g.shape(x)
    pad = _spatial(layer, p, "pad", "pad_h", "pad_w", 0, 0)
    stride = _spatial(layer, p, "stride", "stride_h", "stride_w", 1, 1)
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise CaffeImportError(f"{layer.label}: global_pooling takes no kernel size")
        if pad != (0, 0) or stride != (1, 1):
            raise CaffeImportError(f"{layer.label}: global_pooling needs pad 0 and stride 1")
        if not _known(h, w):
            raise CaffeImportError(f"{layer.label}: global pooling needs the input size (give "
                                   f"the input shape in the prototxt)")
        kernel = (h, w)
    else:
        kernel = _spatial(layer, p, "kernel_size", "kernel_h", "kernel_w", None, 1)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise CaffeImportError(f"{layer.label}: pad {pad} must be smaller than the kernel "
                               f"{kernel}")
    ceil = int(p.round_mode) == 0
    mcn_pad = list(G.caffe_pool_padding(kernel, stride, list(pad)) if ceil
                   else (pad[0], pad[0], pad[1], pad[1]))
    x_pool, hw = x, (h, w)
    if method == "avg" and (pad[0] or pad[1]):
        # Caffe averages over the window clipped to the padded input, zeros included:
        # pad explicitly (identity filters), then pool with the remaining (ceil) padding.
        if c is None:
            raise CaffeImportError(f"{layer.label}: average pooling with padding needs the "
                                   f"number of channels (give the input shape)")
        ones = _filled((c, 1, 1, 1), 1.0, layer)
        name = g.unique(f"{layer.name}_pad")
        hw = (h + 2 * pad[0] if h is not None else None, w + 2 * pad[1] if w is not None else None)
        x_pool = name
        g.shapes[name] = (n, c) + hw
        g.add(_Op(name, "conv", [x], [name],
                  dict(pad=[pad[0], pad[0], pad[1], pad[1]], stride=[1, 1], dilate=[1, 1]),
                  [ones, None]))
        mcn_pad = [0, mcn_pad[1] - pad[0], 0, mcn_pad[3] - pad[1]]
    out_hw: List[Optional[int]] = [None, None]
    if _known(h, w):
        if h + 2 * pad[0] < kernel[0] or w + 2 * pad[1] < kernel[1]:
            raise CaffeImportError(f"{layer.label}: the kernel {kernel} is larger than the "
                                   f"padded input {(h + 2 * pad[0], w + 2 * pad[1])}")
        caffe = G.caffe_pool_output_size((h, w), kernel, stride, list(pad)) if ceil else \
            ((h + 2 * pad[0] - kernel[0]) // stride[0] + 1,
             (w + 2 * pad[1] - kernel[1]) // stride[1] + 1)
        ours = G.pool_output_size(hw, kernel, mcn_pad, stride)
        if tuple(caffe) != tuple(ours):
            raise CaffeImportError(
                f"{layer.label}: MatConvNet cannot reproduce Caffe's output size {caffe} for "
                f"input {(h, w)}, kernel {kernel}, stride {stride}, pad {pad} (it gives {ours})")
        out_hw = list(caffe)
    g.add(_Op(layer.name, "pool", [x_pool], [g.top(layer, 0, (n, c, out_hw[0], out_hw[1]))],
              dict(pool=list(kernel), method=method, pad=mcn_pad, stride=list(stride))))


def _inner_product(g: _Graph, layer: _Layer) -> None:
    p = layer.param("inner_product_param")
    _check_axis(layer, int(p.axis))
    k = _positive(layer, int(p.num_output), "num_output")
    x = g.bottom(layer)
    n, c, h, w = g.shape(x)
    blobs = g.blobs(layer, 2 if p.bias_term else 1)
    if not _known(c, h, w):
        raise CaffeImportError(f"{layer.label}: the input size is unknown, so the weight "
                               f"matrix cannot be reshaped into filters (give the input shape)")
    d = c * h * w
    if blobs is None:
        m = _filled((k, d), 0.0, layer)
        b = _filled((k,), 0.0, layer) if p.bias_term else None
    else:
        if p.transpose:
            m = np.ascontiguousarray(_fit(blobs[0], (d, k), f"{layer.label}: weights").T)
        else:
            m = _fit(blobs[0], (k, d), f"{layer.label}: weights")
        b = _fit(blobs[1], (k,), f"{layer.label}: biases") if p.bias_term else None
    f = m.reshape(k, c, h, w)  # Caffe flattens C x H x W in C order
    g.add(_Op(layer.name, "conv", [x], [g.top(layer, 0, (n, k, 1, 1))],
              dict(pad=[0, 0, 0, 0], stride=[1, 1], dilate=[1, 1]), [f, b]))


def _relu(g: _Graph, layer: _Layer) -> None:
    slope = float(layer.param("relu_param").negative_slope)
    if not math.isfinite(slope):
        raise CaffeImportError(f"{layer.label}: negative_slope must be finite, got {slope}")
    x = g.bottom(layer)
    g.add(_Op(layer.name, "relu", [x], [g.top(layer, 0, g.shape(x))], dict(leak=slope)))


def _lrn(g: _Graph, layer: _Layer) -> None:
    p = layer.param("lrn_param")
    if int(p.norm_region) != 0:
        raise CaffeImportError(f"{layer.label}: only ACROSS_CHANNELS normalisation is "
                               f"supported (WITHIN_CHANNEL has no MatConvNet block)")
    size = _positive(layer, int(p.local_size), "local_size")
    if size % 2 == 0:
        raise CaffeImportError(f"{layer.label}: local_size must be odd (as in Caffe), got "
                               f"{size}")
    param = [size, float(p.k), float(p.alpha) / size, float(p.beta)]
    if not all(math.isfinite(v) for v in param):
        raise CaffeImportError(f"{layer.label}: alpha, beta and k must be finite")
    x = g.bottom(layer)
    c = g.shape(x)[1]
    if c is not None and size > 2 * c - 1:
        param[0] = 2 * c - 1  # the same windows: each already spans all the channels
    g.add(_Op(layer.name, "lrn", [x], [g.top(layer, 0, g.shape(x))], dict(param=param)))


def _channels(layer: _Layer, blobs: Optional[list], c: Optional[int]) -> int:
    if c is None and blobs is not None:
        c = int(blobs[0].size)
    if c is None:
        raise CaffeImportError(f"{layer.label}: the number of channels is unknown (give the "
                               f"input shape or a caffemodel)")
    return c


def _batch_norm(g: _Graph, layer: _Layer) -> None:
    p = layer.param("batch_norm_param")
    eps = float(p.eps)
    if not (math.isfinite(eps) and eps >= 0):
        raise CaffeImportError(f"{layer.label}: eps must be a non-negative number, got {eps}")
    x = g.bottom(layer)
    n, c, h, w = g.shape(x)
    blobs = g.blobs(layer, 3)
    c = _channels(layer, blobs, c)
    if blobs is None:
        mean = var = _filled((c,), 0.0, layer).astype(np.float64)
        factor = 0.0
    else:
        mean = _fit(blobs[0], (c,), f"{layer.label}: mean").astype(np.float64)
        var = _fit(blobs[1], (c,), f"{layer.label}: variance").astype(np.float64)
        factor = float(_fit(blobs[2], (1,), f"{layer.label}: moving-average factor")[0])
    scale = 0.0 if factor == 0 else 1.0 / factor
    with np.errstate(invalid="ignore", over="ignore"):
        moments = np.stack([mean * scale, np.sqrt(var * scale + eps)], axis=1)
    g.add(_Op(layer.name, "bnorm", [x], [g.top(layer, 0, (n, c, h, w))], dict(epsilon=eps),
              [_filled((c,), 1.0, layer), _filled((c,), 0.0, layer), moments.astype(np.float32)]))


def _scale(g: _Graph, layer: _Layer) -> None:
    p = layer.param("scale_param")
    if len(layer.bottoms) != 1:
        raise CaffeImportError(f"{layer.label}: only a learned scale (one bottom) is supported")
    _check_axis(layer, int(p.axis))
    if int(p.num_axes) not in (0, 1):
        raise CaffeImportError(f"{layer.label}: num_axes {p.num_axes} is not supported (0: "
                               f"scalar, 1: per channel)")
    x = g.bottom(layer)
    n, c, h, w = g.shape(x)
    blobs = g.blobs(layer, 2 if p.bias_term else 1)
    if int(p.num_axes) == 1:
        c = _channels(layer, blobs, c)
    elif c is None:
        raise CaffeImportError(f"{layer.label}: the number of channels is unknown (give the "
                               f"input shape)")
    size = c if int(p.num_axes) == 1 else 1
    if blobs is None:
        a = _filled((size,), 1.0, layer)
        b = _filled((size,), 0.0, layer) if p.bias_term else None
    else:
        a = _fit(blobs[0], (size,), f"{layer.label}: multipliers")
        b = _fit(blobs[1], (size,), f"{layer.label}: biases") if p.bias_term else None
    a = np.broadcast_to(a, (c,)).copy()
    b = np.broadcast_to(b, (c,)).copy() if b is not None else None
    g.add(_Op(layer.name, "scale", [x], [g.top(layer, 0, (n, c, h, w))], {}, [a, b]))


# Caffe axis of N x C x H x W -> MatConvNet's dim of H x W x C x N
_CONCAT_DIM = {0: 4, 1: 3, 2: 1, 3: 2}


def _concat(g: _Graph, layer: _Layer) -> None:
    p = layer.param("concat_param")
    axis = int(p.axis) if p.HasField("axis") or not p.HasField("concat_dim") \
        else int(p.concat_dim)
    axis = axis + 4 if -4 <= axis < 0 else axis
    if axis not in _CONCAT_DIM:
        raise CaffeImportError(f"{layer.label}: axis {axis} is out of range for 4-D blobs")
    if not layer.bottoms:
        raise CaffeImportError(f"{layer.label}: no bottom blobs")
    xs = [g.bottom(layer, i) for i in range(len(layer.bottoms))]
    shapes = [g.shape(v) for v in xs]
    out = list(shapes[0])
    for s in shapes[1:]:
        for d in range(4):
            if d == axis:
                out[d] = out[d] + s[d] if _known(out[d], s[d]) else None
            elif _known(out[d], s[d]) and out[d] != s[d] and d != 0:
                raise CaffeImportError(f"{layer.label}: the inputs' shapes "
                                       f"{[tuple(q[1:]) for q in shapes]} differ outside "
                                       f"axis {axis}")
            elif out[d] is None:
                out[d] = s[d]
    g.add(_Op(layer.name, "concat", xs, [g.top(layer, 0, tuple(out))],
              dict(dim=_CONCAT_DIM[axis])))


def _eltwise(g: _Graph, layer: _Layer) -> None:
    p = layer.param("eltwise_param")
    op = int(p.operation)
    if len(layer.bottoms) < 2:
        raise CaffeImportError(f"{layer.label}: expected at least 2 bottom blobs")
    xs = [g.bottom(layer, i) for i in range(len(layer.bottoms))]
    shapes = [g.shape(v) for v in xs]
    out = list(shapes[0])
    for s in shapes[1:]:
        for d in range(1, 4):
            if _known(out[d], s[d]) and out[d] != s[d]:
                raise CaffeImportError(f"{layer.label}: the inputs' shapes "
                                       f"{[tuple(q[1:]) for q in shapes]} differ")
            out[d] = s[d] if out[d] is None else out[d]
    coeffs = [float(v) for v in p.coeff]
    if op == 1:
        if coeffs and len(coeffs) != len(xs):
            raise CaffeImportError(f"{layer.label}: {len(coeffs)} coefficients for "
                                   f"{len(xs)} inputs")
        if not all(math.isfinite(v) for v in coeffs):
            raise CaffeImportError(f"{layer.label}: coefficients must be finite")
        kind, attrs = "sum", dict(coeffs=coeffs or [1.0] * len(xs))
    elif op == 0:
        if coeffs:
            raise CaffeImportError(f"{layer.label}: coefficients apply to SUM only")
        kind, attrs = "prod", {}
    else:
        raise CaffeImportError(f"{layer.label}: Eltwise MAX is not supported: no MatConvNet "
                               f"block computes an elementwise maximum exactly")
    g.add(_Op(layer.name, kind, xs, [g.top(layer, 0, tuple(out))], attrs))


def _dropout(g: _Graph, layer: _Layer) -> None:
    rate = float(layer.param("dropout_param").dropout_ratio)
    if not 0 <= rate < 1:
        raise CaffeImportError(f"{layer.label}: dropout_ratio must be in [0, 1), got {rate}")
    x = g.bottom(layer)
    g.add(_Op(layer.name, "dropout", [x], [g.top(layer, 0, g.shape(x))], dict(rate=rate)))


def _softmax(g: _Graph, layer: _Layer) -> None:
    _check_axis(layer, int(layer.param("softmax_param").axis))
    x = g.bottom(layer)
    g.add(_Op(layer.name, "softmax", [x], [g.top(layer, 0, g.shape(x))]))


def _sigmoid(g: _Graph, layer: _Layer) -> None:
    x = g.bottom(layer)
    g.add(_Op(layer.name, "sigmoid", [x], [g.top(layer, 0, g.shape(x))]))


def _split(g: _Graph, layer: _Layer) -> None:
    x = g.bottom(layer)
    for top in layer.tops:
        if not top:
            raise CaffeImportError(f"{layer.label}: a top blob has an empty name")
        g.blob_var[top] = x


_CONVERTERS: Dict[str, Callable[[_Graph, _Layer], None]] = {
    "Input": _input_layer, "Data": _data_layer, "ImageData": _data_layer,
    "Convolution": _conv, "Deconvolution": _deconv, "Pooling": _pool,
    "InnerProduct": _inner_product, "ReLU": _relu, "LRN": _lrn, "BatchNorm": _batch_norm,
    "Scale": _scale, "Concat": _concat, "Eltwise": _eltwise, "Dropout": _dropout,
    "Softmax": _softmax, "Sigmoid": _sigmoid, "Split": _split,
}
#: The Caffe layer types :func:`load_caffe` converts.
SUPPORTED_LAYERS = tuple(sorted(_CONVERTERS))


def _fold_scales(g: _Graph) -> None:
    """Fold each Scale whose input is a BatchNorm output read by nothing else into it."""
    readers: Dict[str, int] = {}
    for op in g.ops:
        for v in op.inputs:
            readers[v] = readers.get(v, 0) + 1
    producer = {v: op for op in g.ops for v in op.outputs}
    kept = []
    for op in g.ops:
        bn = producer.get(op.inputs[0]) if op.kind == "scale" else None
        if bn is not None and bn.kind == "bnorm" and readers[op.inputs[0]] == 1:
            a, b = op.weights
            gain, bias = bn.weights[0], bn.weights[1]
            bn.weights[0] = (a * gain).astype(np.float32)
            bn.weights[1] = (a * bias + (b if b is not None else 0)).astype(np.float32)
            bn.outputs = op.outputs
            continue
        kept.append(op)
    g.ops = kept


# ----------------------------------------------------------------------------- build


def _build(net: Any, weights: Optional[Dict[str, Any]], label: str, model_label: str) -> _Graph:
    layers = _layers(net, label)
    unknown = [l for l in layers if l.type not in _CONVERTERS]
    if unknown:
        listed = ", ".join(f"{l.type!r} (layer {l.name!r})" for l in unknown)
        raise CaffeImportError(f"{label}: unsupported layer type(s): {listed}; supported: "
                               f"{', '.join(SUPPORTED_LAYERS)}")
    g = _Graph(weights, model_label)
    _net_inputs(g, net, label)
    for layer in layers:
        try:
            _CONVERTERS[layer.type](g, layer)
        except CaffeImportError as e:
            raise CaffeImportError(f"{label}: {e}") from None
        except (ValueError, TypeError) as e:  # from the geometry helpers
            raise CaffeImportError(f"{label}: {layer.label}: {e}") from None
    if not g.ops:
        raise CaffeImportError(f"{label}: the network has no layers to convert")
    if not g.inputs:
        raise CaffeImportError(f"{label}: the network has no input (expected 'input' "
                               f"fields, an Input layer or a Data layer)")
    _fold_scales(g)
    read = {v for op in g.ops for v in op.inputs}
    g.inputs = [v for v in g.inputs if v in read]  # e.g. a Data layer's unused labels
    if not g.inputs:
        raise CaffeImportError(f"{label}: no layer reads the network's input")
    return g


_SIMPLENN_KINDS = {"conv", "convt", "pool", "relu", "lrn", "bnorm", "dropout", "softmax",
                   "sigmoid"}


def _chain_problem(g: _Graph) -> Optional[str]:
    """Why the graph is not a SimpleNN chain (None if it is)."""
    prev = None
    for op in g.ops:
        if op.kind not in _SIMPLENN_KINDS:
            return f"layer {op.name!r} ({op.kind}) has no SimpleNN counterpart"
        if len(op.inputs) != 1 or len(op.outputs) != 1:
            return f"layer {op.name!r} has several inputs or outputs"
        expected = prev.outputs[0] if prev is not None else g.inputs[0]
        if op.inputs[0] != expected:
            return f"layer {op.name!r} does not read the previous layer's output"
        prev = op
    return None


def _tensor(a: Optional[np.ndarray]) -> torch.Tensor:
    if a is None:
        return torch.zeros(0, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _simplenn(g: _Graph, meta: dict) -> dict:
    from ..simplenn import vl_simplenn_tidy
    layers = []
    for op in g.ops:
        a = op.attrs
        if op.kind == "conv":
            l = dict(type="conv", weights=[_tensor(w) for w in op.weights], pad=a["pad"],
                     stride=a["stride"], dilate=a["dilate"])
        elif op.kind == "convt":
            l = dict(type="convt", weights=[_tensor(w) for w in op.weights],
                     upsample=a["upsample"], crop=a["crop"], numGroups=a["numGroups"])
        elif op.kind == "pool":
            l = dict(type="pool", pool=a["pool"], method=a["method"], pad=a["pad"],
                     stride=a["stride"])
        elif op.kind == "relu":
            l = dict(type="relu", leak=a["leak"])
        elif op.kind == "lrn":
            l = dict(type="normalize", param=a["param"])
        elif op.kind == "bnorm":
            l = dict(type="bnorm", weights=[_tensor(w) for w in op.weights],
                     epsilon=a["epsilon"])
        elif op.kind == "dropout":
            l = dict(type="dropout", rate=a["rate"])
        else:
            l = dict(type=op.kind)
        layers.append(dict(l, name=op.name))
    return vl_simplenn_tidy({"layers": layers, "meta": meta})


def _dagnn(g: _Graph, meta: dict) -> Any:
    from ..dagnn import DagNN
    from ..dagnn import layers as L
    net = DagNN()
    values: Dict[str, torch.Tensor] = {}
    constants: set = set()
    no_decay: set = set()

    def add(name, block, inputs, outputs, params=()):
        net.add_layer(name, block, inputs, outputs, list(params), skip_rebuild=True)

    for op in g.ops:
        a, w = op.attrs, op.weights
        if op.kind in ("conv", "convt"):
            f, b = w
            if op.kind == "conv":
                k, cg, fh, fw = f.shape
                block = L.Conv(size=[fh, fw, cg, k], hasBias=b is not None, pad=a["pad"],
                               stride=a["stride"], dilate=a["dilate"])
            else:
                d, k, fh, fw = f.shape
                block = L.ConvTranspose(size=[fh, fw, k, d], hasBias=b is not None,
                                        upsample=a["upsample"], crop=a["crop"],
                                        numGroups=a["numGroups"])
            params = [op.name + "f"] + ([op.name + "b"] if b is not None else [])
            values.update(zip(params, [_tensor(f), _tensor(b)]))
            add(op.name, block, op.inputs, op.outputs, params)
        elif op.kind == "pool":
            add(op.name, L.Pooling(method=a["method"], poolSize=a["pool"], pad=a["pad"],
                                   stride=a["stride"]), op.inputs, op.outputs)
        elif op.kind == "relu":
            add(op.name, L.ReLU(leak=a["leak"]), op.inputs, op.outputs)
        elif op.kind == "lrn":
            add(op.name, L.LRN(param=a["param"]), op.inputs, op.outputs)
        elif op.kind == "bnorm":
            params = [op.name + "m", op.name + "b", op.name + "x"]
            values.update(zip(params, [_tensor(v) for v in w]))
            no_decay.add(params[2])
            add(op.name, L.BatchNorm(numChannels=int(w[0].shape[0]), epsilon=a["epsilon"]),
                op.inputs, op.outputs, params)
        elif op.kind == "scale":
            c = int(w[0].shape[0])
            params = [op.name + "m"] + ([op.name + "b"] if w[1] is not None else [])
            values.update(zip(params, [_tensor(v).reshape(1, c, 1, 1) for v in w if v is not None]))
            add(op.name, L.Scale(size=[1, 1, c], hasBias=w[1] is not None), op.inputs,
                op.outputs, params)
        elif op.kind == "concat":
            add(op.name, L.Concat(dim=a["dim"]), op.inputs, op.outputs)
        elif op.kind == "sum":
            inputs = []
            for i, (v, coeff) in enumerate(zip(op.inputs, a["coeffs"])):
                if coeff == 1.0:
                    inputs.append(v)
                    continue
                name = g.unique(f"{op.name}_coeff{i + 1}")
                values[name] = torch.full((1, 1, 1, 1), coeff, dtype=torch.float32)
                constants.add(name)
                no_decay.add(name)
                add(name, L.Scale(size=[1, 1, 1, 1], hasBias=False), [v], [name], [name])
                inputs.append(name)
            add(op.name, L.Sum(), inputs, op.outputs)
        elif op.kind == "prod":
            acc = op.inputs[0]
            for i, v in enumerate(op.inputs[1:], start=1):
                last = i == len(op.inputs) - 1
                out = op.outputs[0] if last else g.unique(f"{op.name}_{i}")
                name = op.name if last else out
                add(name, L.Scale(hasBias=False), [acc, v], [out])
                acc = out
        elif op.kind == "dropout":
            add(op.name, L.DropOut(rate=a["rate"]), op.inputs, op.outputs)
        elif op.kind == "softmax":
            add(op.name, L.SoftMax(), op.inputs, op.outputs)
        elif op.kind == "sigmoid":
            add(op.name, L.Sigmoid(), op.inputs, op.outputs)
        else:  # pragma: no cover - every _Op kind is handled above
            raise AssertionError(op.kind)
    net.rebuild()
    for name, value in values.items():
        p = net.params[net.get_param_index(name)]
        p.value = value
        if name in constants:  # Eltwise coefficients
            p.learning_rate = 0.0
        if name in no_decay:
            p.weight_decay = 0.0
    net.meta = meta
    return net


def _unique_op_names(g: _Graph) -> None:
    """Distinct layer names (Caffe does not require them), kept out of ``g.unique``'s way."""
    seen: set = set()
    for op in g.ops:
        name, k = op.name, 1
        while name in seen:
            k += 1
            name = f"{op.name}_{k}"
        op.name = name
        seen.add(name)
    g._names |= seen


# ----------------------------------------------------------------------------- meta


def _size(v: Optional[int]) -> float:
    return float("nan") if v is None else v


def _meta(g: _Graph, net: Any, channel_order: str, dagnn: bool, label: str) -> dict:
    n, c, h, w = g.shapes[g.inputs[0]]
    norm: Dict[str, Any] = {
        "imageSize": [_size(h), _size(w), _size(c)],
        "interpolation": "bilinear", "keepAspect": False, "border": [0, 0], "cropSize": 1.0,
    }
    caffe: Dict[str, Any] = {"name": net.name}
    layer = g.input_layer
    if layer is not None and layer.msg.HasField("transform_param"):
        t = layer.msg.transform_param
        means = [float(v) for v in t.mean_value]
        if means:
            if c is not None and len(means) not in (1, c):
                raise CaffeImportError(f"{label}: {layer.label}: {len(means)} mean values for "
                                       f"{c} channels")
            if len(means) == 1 and c is not None and c <= 4096:
                means = means * c
            norm["averageImage"] = torch.tensor(means, dtype=torch.float32).reshape(-1, 1, 1)
        caffe["scale"] = float(t.scale)
        if t.mean_file:
            caffe["meanFile"] = t.mean_file
    meta: Dict[str, Any] = {"normalization": norm, "caffe": caffe}
    if c in (3, None):
        meta["channelOrder"] = channel_order
    if dagnn:
        meta["inputs"] = [{"name": v, "size": [_size(s[2]), _size(s[3]), _size(s[1]),
                                               _size(s[0])]}
                          for v, s in ((v, g.shapes[v]) for v in g.inputs)]
    else:
        meta["inputSize"] = [_size(h), _size(w), _size(c), _size(n)]
    return meta


# ----------------------------------------------------------------------------- API


def load_caffe(prototxt: Source, caffemodel: Optional[Source] = None, wrapper: str = "auto",
               *, channel_order: str = "BGR") -> Any:
    """Import a Caffe network (module help for the layers and conventions).

    ``prototxt``: path of the network description, or its bytes; ``caffemodel``: path of
    the trained weights, or their bytes, or None (zero weights); ``wrapper``: 'auto' (a
    SimpleNN net when the layers form a chain, else a DagNN), 'simplenn' (an error if they
    do not) or 'dagnn'; ``channel_order``: the colour order the network was trained with,
    recorded in ``meta['channelOrder']`` (Caffe's image tools give 'BGR').
    Returns a SimpleNN dict or a :class:`matconvnet.dagnn.DagNN` in test-ready form (run
    SimpleNN with ``mode='test'``, DagNN with ``net.mode = 'test'``).
    """
    if wrapper not in ("auto", "simplenn", "dagnn"):
        raise ValueError(f"wrapper: expected 'auto', 'simplenn' or 'dagnn', got {wrapper!r}")
    if channel_order not in ("BGR", "RGB"):
        raise ValueError(f"channel_order: expected 'BGR' or 'RGB', got {channel_order!r}")
    net = read_prototxt(prototxt)
    label = _label(prototxt, "prototxt")
    weights = model_label = None
    if caffemodel is not None:
        weights = _blobs_by_name(read_caffemodel(caffemodel))
        model_label = _label(caffemodel, "caffemodel")
    g = _build(net, weights, label, model_label or "")
    _unique_op_names(g)
    problem = _chain_problem(g)
    if wrapper == "simplenn" and problem is not None:
        raise CaffeImportError(f"{label}: cannot be a SimpleNN chain: {problem}; use "
                               f"wrapper='dagnn'")
    as_dagnn = wrapper == "dagnn" or problem is not None
    meta = _meta(g, net, channel_order, as_dagnn, label)
    try:
        return _dagnn(g, meta) if as_dagnn else _simplenn(g, meta)
    except (ValueError, TypeError) as e:
        raise CaffeImportError(f"{label}: {e}") from None

