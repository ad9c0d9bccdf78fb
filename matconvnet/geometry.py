r"""Geometry of the CNN input-output mapping (manual, chapter 5): output sizes and receptive fields.

Output sizes (manual 5.2 and 5.3), per spatial axis, for an input of height ``H``::

    conv / pool   H'' = floor((H + P_t + P_b - E) / S) + 1,   E = (F - 1) D + 1
    convt         H'' = U (H - 1) + F - C_t - C_b
    pointwise     H'' = H        (relu, sigmoid, bnorm, lrn, dropout, softmax, ...)

Receptive fields (manual 5.1), 1-based as in MatConvNet: output sample ``i''`` of a block
depends only on the input samples ``i`` with::

    i in alpha (i'' - 1) + beta + [-(delta - 1) / 2, (delta - 1) / 2]

with ``alpha`` the *stride*, ``beta`` the *offset* and ``delta`` the *size*; :class:`RF` holds
``(size, stride, offset)`` for one axis as exact fractions, and a block's receptive field is a
pair ``(RF_y, RF_x)``.  The rules::

    filter (conv, pool)      alpha = S,   beta = (E + 1) / 2 - P_t,   delta = E
    pointwise                alpha = beta = delta = 1
    transpose (5.4)          alpha^ = 1 / alpha,   beta^ = (1 + alpha - beta) / alpha,
                             delta^ = (delta + alpha - 1) / alpha
    convt (5.3)              the transpose of the conv with stride U and padding C_t:
                             alpha = 1 / U,  beta = (2 C_t - F + 1) / (2 U) + 1,
                             delta = (F - 1) / U + 1
    composition g o f (5.5)  alpha = alpha_f alpha_g,  beta = alpha_f (beta_g - 1) + beta_f,
                             delta = alpha_f (delta_g - 1) + delta_f
    overlay (5.6)            only for equal strides: the window enclosing both windows

A dilated filter's field is the window spanned by its taps (dependencies inside it are
sparse); convt's field is exact as a real interval (the integers inside it are exactly its
dependencies), so composed fields always *contain* the true dependencies and are tight for
chains of filters.  (The manual's 5.4 example drops a factor 2 in beta^, and its 5.6 swaps
the names i_min and i_max; the formulas here are the corrected ones.)

:func:`simplenn_geometry` is ``vl_simplenn_display``'s ``info`` computation, reproduced as the
original does it (FEATURES.md S-D-3), quirks included: it treats every layer other than conv
and pool (convt included) as a 1 x 1 filter with the layer's ``stride`` / ``pad`` fields,
when present.  :func:`chain_receptive_fields` gives the manual's fields for a layer list.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _tensor as T
from .blocks._common import (check_pool_pad, transposed_size,
                             window_output_size)

__all__ = [
    "RF", "IDENTITY", "POINTWISE_TYPES", "LOSS_TYPES",
    "conv_output_size", "convt_output_size", "pool_output_size", "output_size",
    "receptive_field", "compose", "transpose", "overlay",
    "caffe_pool_output_size", "caffe_pool_padding",
    "layer_filter_size", "layer_output_size", "layer_receptive_field",
    "chain_receptive_fields", "SimpleNNGeometry", "simplenn_geometry",
]

Pair = Tuple[int, int]
Quad = Tuple[int, int, int, int]
Number = Union[int, float, Fraction]

#: Blocks that map each spatial location to the same location (their field is the identity).
POINTWISE_TYPES = frozenset({
    "relu", "sigmoid", "softmax", "bnorm", "normalize", "lrn", "dropout", "noffset",
    "normalizelp",
})
#: Blocks that reduce their whole input to one number (no sliding-window field).
LOSS_TYPES = frozenset({"loss", "softmaxloss"})


# ---------------------------------------------------------------------------- output sizes


def _extent(size: int, dilate: int) -> int:
    return (size - 1) * dilate + 1


def conv_output_size(input_hw: Any, filter_size: Any, pad: Any = 0, stride: Any = 1,
                     dilate: Any = 1) -> Pair:
    """``vl_nnconv``'s output ``(H'', W'')`` for an ``FH x FW`` filter bank (manual 5.2, eq. 5.3,
    with the dilated extent ``(F - 1) D + 1``); raises ``ValueError`` where the block would."""
    h, w = T.pair(input_hw, "input_hw")
    fh, fw = T.pair(filter_size, "filter_size")
    p = T.quad(pad, "pad")
    s = T.pair(stride, "stride")
    d = T.pair(dilate, "dilate")
    extent = (_extent(fh, d[0]), _extent(fw, d[1]))
    return window_output_size((h, w), extent, p, s, "filter_size", "the dilated filter extent")


def pool_output_size(input_hw: Any, pool: Any, pad: Any = 0, stride: Any = 1) -> Pair:
    """``vl_nnpool``'s output ``(H'', W'')`` (manual 5.2, eq. 5.3); each pad must be smaller
    than the window, as the block requires."""
    h, w = T.pair(input_hw, "input_hw")
    ph, pw = T.pair(pool, "pool")
    p = T.quad(pad, "pad")
    s = T.pair(stride, "stride")
    check_pool_pad((ph, pw), p)
    return window_output_size((h, w), (ph, pw), p, s, "pool", "the window")


def convt_output_size(input_hw: Any, filter_size: Any, upsample: Any = 1, crop: Any = 0) -> Pair:
    """``vl_nnconvt``'s output ``U (H - 1) + F - C_t - C_b`` per axis (manual 5.3)."""
    h, w = T.pair(input_hw, "input_hw")
    fh, fw = T.pair(filter_size, "filter_size")
    u = T.pair(upsample, "upsample")
    c = T.quad(crop, "crop")
    yh = transposed_size(h, fh, u[0], c[0], c[1])
    yw = transposed_size(w, fw, u[1], c[2], c[3])
    if yh < 1 or yw < 1:
        raise ValueError(f"crop: {c} leaves an empty output ({yh} x {yw})")
    return (yh, yw)


_CONV_OPTIONS = {"filter_size", "pad", "stride", "dilate"}
_POOL_OPTIONS = {"pool", "pad", "stride"}
_CONVT_OPTIONS = {"filter_size", "upsample", "crop", "num_groups"}


def _check_options(layer_type: str, options: Mapping[str, Any], allowed: set) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{layer_type}: unexpected options {unknown}; "
                        f"expected some of {sorted(allowed)}")


def _type(layer_type: Any) -> str:
    if not isinstance(layer_type, str):
        raise TypeError(f"layer_type: expected a string, got {layer_type!r}")
    return layer_type.lower()


def output_size(layer_type: str, input_hw: Any, **options: Any) -> Pair:
    """Spatial output size ``(H'', W'')`` of one block given its input size ``(H, W)``.

    ``conv``: ``filter_size`` (default 1, the identity bank), ``pad``, ``stride``, ``dilate``;
    ``pool``: ``pool``, ``pad``, ``stride``; ``convt``: ``filter_size``, ``upsample``, ``crop``
    (``num_groups`` ignored); pointwise blocks (:data:`POINTWISE_TYPES`) and ``spnorm``: the
    input size; ``loss`` / ``softmaxloss``: ``(1, 1)``.  Option names and conventions are the
    blocks' (``pad``/``crop`` are ``[top, bottom, left, right]``, the others ``[y, x]``).
    """
    kind = _type(layer_type)
    if kind == "conv":
        _check_options(kind, options, _CONV_OPTIONS)
        return conv_output_size(input_hw, options.get("filter_size", 1), options.get("pad", 0),
                                options.get("stride", 1), options.get("dilate", 1))
    if kind == "pool":
        _check_options(kind, options, _POOL_OPTIONS)
        if "pool" not in options:
            raise TypeError("pool: the option 'pool' (window size) is required")
        return pool_output_size(input_hw, options["pool"], options.get("pad", 0),
                                options.get("stride", 1))
    if kind == "convt":
        _check_options(kind, options, _CONVT_OPTIONS)
        if "filter_size" not in options:
            raise TypeError("convt: the option 'filter_size' is required")
        return convt_output_size(input_hw, options["filter_size"], options.get("upsample", 1),
                                 options.get("crop", 0))
    if kind in POINTWISE_TYPES or kind == "spnorm":
        return T.pair(input_hw, "input_hw")
    if kind in LOSS_TYPES:
        T.pair(input_hw, "input_hw")
        return (1, 1)
    raise ValueError(f"layer_type: no output size rule for {layer_type!r}")


# ---------------------------------------------------------------------------- receptive fields


def _fraction(value: Any, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    if isinstance(value, numbers.Rational):
        return Fraction(value.numerator, value.denominator)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return Fraction(repr(value))


def _show(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


@dataclass(frozen=True)
class RF:
    """Receptive field transform along one axis (manual 5.1): output sample ``i''`` (1-based)
    depends on the input samples in ``stride (i'' - 1) + offset +- (size - 1) / 2``.

    ``size`` is the manual's delta, ``stride`` alpha and ``offset`` beta; all three are stored
    as exact :class:`fractions.Fraction` (ints and floats are accepted).
    """

    size: Fraction
    stride: Fraction
    offset: Fraction

    def __post_init__(self) -> None:
        for name in ("size", "stride", "offset"):
            object.__setattr__(self, name, _fraction(getattr(self, name), name))
        if self.size <= 0:
            raise ValueError(
                f"size: expected a positive receptive field size, got {_show(self.size)}")
        if self.stride <= 0:
            raise ValueError(f"stride: expected a positive stride, got {_show(self.stride)}")

    def __repr__(self) -> str:
        return (f"RF(size={_show(self.size)}, stride={_show(self.stride)}, "
                f"offset={_show(self.offset)})")

    def window(self, i: int) -> Tuple[Fraction, Fraction]:
        """The real interval ``[first, last]`` of input coordinates output ``i`` (1-based) sees."""
        centre = self.stride * (i - 1) + self.offset
        half = (self.size - 1) / 2
        return (centre - half, centre + half)

    def input_range(self, i: int) -> Tuple[int, int]:
        """First and last integer input sample (1-based) inside :meth:`window` of output ``i``;
        ``first > last`` when the window holds no integer.  No clipping to the input."""
        lo, hi = self.window(i)
        return (math.ceil(lo), math.floor(hi))


#: The field of a pointwise block (a 1 x 1 filter).
IDENTITY = RF(1, 1, 1)

RFArg = Union[RF, Tuple[RF, RF]]


def _filter_rf(extent: int, stride: int, pad_before: int) -> RF:
    return RF(extent, stride, Fraction(extent + 1, 2) - pad_before)


def _per_axis(fn: Callable[..., RF], *args: RFArg) -> RFArg:
    if all(isinstance(a, RF) for a in args):
        return fn(*args)
    pairs = []
    for a in args:
        if isinstance(a, RF) or not (isinstance(a, (tuple, list)) and len(a) == 2
                                     and all(isinstance(r, RF) for r in a)):
            raise TypeError("expected RF values, or (RF_y, RF_x) pairs, all of the same kind; "
                            f"got {args!r}")
        pairs.append(a)
    return tuple(fn(*(p[k] for p in pairs)) for k in range(2))  # type: ignore[return-value]


def receptive_field(layer_type: str, **options: Any) -> Tuple[RF, RF]:
    """Receptive field ``(RF_y, RF_x)`` of one block (manual 5.2 and 5.3).

    ``conv``: ``filter_size`` (default 1), ``pad``, ``stride``, ``dilate`` (the field spans the
    dilated extent); ``pool``: ``pool``, ``pad``, ``stride``; ``convt``: ``filter_size``,
    ``upsample``, ``crop`` -- the transpose of a conv with stride ``upsample`` and top/left
    padding ``crop``; ``spnorm``: ``param = [PH, PW, alpha, beta]`` (a centred PH x PW
    window); pointwise blocks (:data:`POINTWISE_TYPES`, options ignored): identity.  Other
    types (losses, crop, roipool, bilinearsampler, ...) have no sliding-window field and raise
    ``ValueError``.
    """
    kind = _type(layer_type)
    if kind == "conv":
        _check_options(kind, options, _CONV_OPTIONS)
        fh, fw = T.pair(options.get("filter_size", 1), "filter_size")
        p = T.quad(options.get("pad", 0), "pad")
        s = T.pair(options.get("stride", 1), "stride")
        d = T.pair(options.get("dilate", 1), "dilate")
        return (_filter_rf(_extent(fh, d[0]), s[0], p[0]),
                _filter_rf(_extent(fw, d[1]), s[1], p[2]))
    if kind == "pool":
        _check_options(kind, options, _POOL_OPTIONS)
        if "pool" not in options:
            raise TypeError("pool: the option 'pool' (window size) is required")
        ph, pw = T.pair(options["pool"], "pool")
        p = T.quad(options.get("pad", 0), "pad")
        s = T.pair(options.get("stride", 1), "stride")
        return (_filter_rf(ph, s[0], p[0]), _filter_rf(pw, s[1], p[2]))
    if kind == "convt":
        _check_options(kind, options, _CONVT_OPTIONS)
        if "filter_size" not in options:
            raise TypeError("convt: the option 'filter_size' is required")
        fh, fw = T.pair(options["filter_size"], "filter_size")
        u = T.pair(options.get("upsample", 1), "upsample")
        c = T.quad(options.get("crop", 0), "crop")
        return (transpose(_filter_rf(fh, u[0], c[0])), transpose(_filter_rf(fw, u[1], c[2])))
    if kind == "spnorm":
        _check_options(kind, options, {"param"})
        if "param" not in options:
            raise TypeError("spnorm: the option 'param' ([PH, PW, alpha, beta]) is required")
        ph, pw = T.reals(options["param"], "param", 4, "[PH, PW, alpha, beta]")[:2]
        ph, pw = T.pair([ph, pw], "param (window size)")
        return (_filter_rf(ph, 1, (ph - 1) // 2), _filter_rf(pw, 1, (pw - 1) // 2))
    if kind in POINTWISE_TYPES:
        return (IDENTITY, IDENTITY)
    raise ValueError(f"layer_type: {layer_type!r} has no sliding-window receptive field")


def _compose1(*rfs: RF) -> RF:
    out = IDENTITY
    for g in rfs:
        f = out
        out = RF(f.stride * (g.size - 1) + f.size, f.stride * g.stride,
                 f.stride * (g.offset - 1) + f.offset)
    return out


def compose(*rfs: RFArg) -> RFArg:
    """Field of a chain of blocks, listed from the input on: ``compose(f, g)`` is the field of
    ``g o f`` (``g`` applied to ``f``'s output; manual 5.5).  Takes :class:`RF` values or
    ``(RF_y, RF_x)`` pairs (not mixed); ``compose()`` is :data:`IDENTITY`."""
    if not rfs:
        return IDENTITY
    return _per_axis(_compose1, *rfs)


def _transpose1(rf: RF) -> RF:
    a, b, d = rf.stride, rf.offset, rf.size
    return RF((d + a - 1) / a, 1 / a, (1 + a - b) / a)


def transpose(rf: RFArg) -> RFArg:
    """Field of the transposed block (manual 5.4): if ``y_i''`` depends on ``x_i`` through the
    block, ``x_i`` depends on ``y_i''`` through its transpose (conv -> convt)."""
    return _per_axis(_transpose1, rf)


def _overlay1(f: RF, g: RF) -> RF:
    if f.stride != g.stride:
        raise ValueError(
            f"overlay: the receptive fields are not compatible: strides {_show(f.stride)} and "
            f"{_show(g.stride)} differ (manual 5.6 needs equal strides)")
    a = min(f.offset - (f.size - 1) / 2, g.offset - (g.size - 1) / 2)
    b = max(f.offset + (f.size - 1) / 2, g.offset + (g.size - 1) / 2)
    return RF(b - a + 1, f.stride, (a + b) / 2)


def overlay(rf1: RFArg, rf2: RFArg) -> RFArg:
    """Field of ``h(f(x), g(x))`` from the fields through ``f`` and through ``g`` (manual 5.6):
    the smallest window enclosing both; ``ValueError`` unless the strides are equal."""
    return _per_axis(_overlay1, rf1, rf2)


# ---------------------------------------------------------------------------- Caffe pooling


def _caffe_pad(pad: Any) -> Quad:
    """Caffe pads: scalar, ``[pad_h, pad_w]`` or ``[top, bottom, left, right]``."""
    v = T._ints(pad, "pad")
    if len(v) == 2:
        v = (v[0], v[0], v[1], v[1])
    return T.quad(list(v), "pad")


def caffe_pool_output_size(input_hw: Any, pool: Any, stride: Any = 1, pad: Any = 0) -> Pair:
    """Caffe's pooling output size (manual 5.2.1): ``ceil((H + 2P - K) / S) + 1``, lowered by one
    when padding is used and the last window would start in the bottom/right padding.
    ``pad`` is Caffe's symmetric pad (scalar or ``[pad_h, pad_w]``)."""
    h, w = T.pair(input_hw, "input_hw")
    k = T.pair(pool, "pool")
    s = T.pair(stride, "stride")
    p = T.pair(pad, "pad", minimum=0)
    out = []
    for n, kk, ss, pp in ((h, k[0], s[0], p[0]), (w, k[1], s[1], p[1])):
        if kk > n + 2 * pp:
            raise ValueError(f"pool: the window {k} exceeds the padded input size")
        m = -((kk - n - 2 * pp) // ss) + 1          # ceil((n + 2p - k) / s) + 1
        if (p[0] or p[1]) and (m - 1) * ss >= n + pp:
            m -= 1
        out.append(m)
    return (out[0], out[1])


def caffe_pool_padding(pool: Any, stride: Any = 1, pad: Any = 0) -> Quad:
    """MatConvNet padding ``[top, bottom, left, right]`` for a Caffe pooling layer (manual 5.2.1,
    as MatConvNet's Caffe importer applies it): top/left keep Caffe's pad ``P^-``, and
    bottom/right become ``min(P^+ + S - 1, K - 1)``.

    ``pad`` is Caffe's (scalar, ``[pad_h, pad_w]`` or ``[top, bottom, left, right]``).  With
    ``S <= K`` the MatConvNet output then has Caffe's size (and max pooling Caffe's values: the
    windows coincide); with ``S > K`` and no padding Caffe may add a last window lying wholly
    outside the input, which MatConvNet cannot express.  (The manual's worked example, K = 3,
    S = 1, P = 0 giving P^+ = 1, contradicts its own formula; with S = 1 Caffe's ceil equals the
    floor and P^+ = 0 is right.)
    """
    k = T.pair(pool, "pool")
    s = T.pair(stride, "stride")
    p = _caffe_pad(pad)
    return (p[0], min(p[1] + s[0] - 1, k[0] - 1), p[2], min(p[3] + s[1] - 1, k[1] - 1))


# ---------------------------------------------------------------------------- SimpleNN layers


def _matlab_filter_dims(f: Any) -> Tuple[int, int, int, int]:
    """MatConvNet's ``size(F, 1:4)`` of a filter bank kept in the Python layout
    (``K x C x FH x FW`` for conv, ``D x K x FH x FW`` for convt); an empty bank is MATLAB's
    ``[]`` (0 x 0), a 2-D one ``FH x FW``."""
    if f is None:
        return (0, 0, 1, 1)
    shape = tuple(int(n) for n in getattr(f, "shape", ()))
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1], shape[0])
    if math.prod(shape) == 0:
        return (0, 0, 1, 1)
    if len(shape) == 2:
        return (shape[0], shape[1], 1, 1)
    raise ValueError(f"weights: expected a 4-D filter bank, got shape {shape}")


def _filters(layer: Mapping[str, Any]) -> Any:
    w = layer.get("weights")
    if isinstance(w, (list, tuple)) and len(w) > 0:
        return w[0]
    return layer.get("filters")


def layer_filter_size(layer: Mapping[str, Any]) -> Pair:
    """``(FH, FW)`` of a conv / convt layer's filters (1 x 1 for an empty bank)."""
    fh, fw, _, _ = _matlab_filter_dims(_filters(layer))
    return (max(fh, 1), max(fw, 1))


def _layer_options(layer: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    kind = _type(layer.get("type"))
    if kind == "conv":
        return kind, {"filter_size": layer_filter_size(layer), "pad": layer.get("pad", 0),
                      "stride": layer.get("stride", 1), "dilate": layer.get("dilate", 1)}
    if kind == "convt":
        return kind, {"filter_size": layer_filter_size(layer),
                      "upsample": layer.get("upsample", 1), "crop": layer.get("crop", 0)}
    if kind == "pool":
        return kind, {"pool": layer.get("pool"), "pad": layer.get("pad", 0),
                      "stride": layer.get("stride", 1)}
    if kind == "spnorm":
        return kind, {"param": layer.get("param")}
    return kind, {}


def layer_output_size(layer: Mapping[str, Any], input_hw: Any) -> Pair:
    """:func:`output_size` of a SimpleNN layer dict (docs/net-structure.md)."""
    kind, options = _layer_options(layer)
    return output_size(kind, input_hw, **options)


def layer_receptive_field(layer: Mapping[str, Any]) -> Tuple[RF, RF]:
    """:func:`receptive_field` of a SimpleNN layer dict (docs/net-structure.md)."""
    kind, options = _layer_options(layer)
    return receptive_field(kind, **options)  # type: ignore[return-value]


def chain_receptive_fields(layers: Sequence[Mapping[str, Any]]) -> List[Tuple[RF, RF]]:
    """Field of each layer's output on the network input, ``(RF_y, RF_x)`` per layer, by the
    manual's rules (convt transposed, dilation included).  For chains of conv and pool layers
    these agree with :func:`simplenn_geometry`'s ``receptive_field_*``."""
    out: List[Tuple[RF, RF]] = []
    acc: Tuple[RF, RF] = (IDENTITY, IDENTITY)
    for layer in layers:
        acc = compose(acc, layer_receptive_field(layer))  # type: ignore[assignment]
        out.append(acc)
    return out


# ---------------------------------------------------------------------------- vl_simplenn_display


@dataclass(frozen=True)
class SimpleNNGeometry:
    """``vl_simplenn_display``'s ``info``, one entry per layer (``data_size`` has one more: the
    input first).  ``support``, ``stride`` and the receptive-field entries are ``(y, x)``;
    ``pad`` is ``(top, bottom, left, right)``; ``data_size`` is ``(H, W, C, N)`` (NaN where
    unknown).  :meth:`info` gives MatConvNet's matrices (rows of per-layer values)."""

    support: Tuple[Pair, ...]
    stride: Tuple[Pair, ...]
    pad: Tuple[Quad, ...]
    receptive_field_size: Tuple[Pair, ...]
    receptive_field_offset: Tuple[Tuple[float, float], ...]
    receptive_field_stride: Tuple[Pair, ...]
    data_size: Tuple[Tuple[Number, Number, Number, Number], ...]

    def info(self) -> Dict[str, List[List[Number]]]:
        """MatConvNet's ``info`` struct: ``support`` 2 x L, ``stride`` 2 x L, ``pad`` 4 x L,
        ``receptiveFieldSize`` / ``Offset`` / ``Stride`` 2 x L, ``dataSize`` 4 x (L + 1), as
        lists of rows."""
        def rows(cols, n):
            return [[c[r] for c in cols] for r in range(n)]
        return {
            "support": rows(self.support, 2),
            "stride": rows(self.stride, 2),
            "pad": rows(self.pad, 4),
            "receptiveFieldSize": rows(self.receptive_field_size, 2),
            "receptiveFieldOffset": rows(self.receptive_field_offset, 2),
            "receptiveFieldStride": rows(self.receptive_field_stride, 2),
            "dataSize": rows(self.data_size, 4),
        }


def _number(v: Any) -> Number:
    v = float(v)
    return int(v) if math.isfinite(v) and v == int(v) else v


def _floor_size(size: Number, padsum: int, support: int, stride: int) -> Number:
    if isinstance(size, float) and not math.isfinite(size):
        return size
    return _number(math.floor((size + padsum - support) / stride) + 1)


def simplenn_geometry(layers: Any, input_size: Optional[Sequence[Any]] = None) -> SimpleNNGeometry:
    """``vl_simplenn_display``'s ``info`` for a SimpleNN layer list (or a net dict with
    ``layers``), computed as the original does (FEATURES.md S-D-3)::

        support   conv: (max(FH, 1) - 1) dilate + 1;  pool: pool;  any other type: 1
        stride    the layer's 'stride' field, else 1;  pad: its 'pad' field, else 0
        rfsize_l   = 1 + sum_{k<=l} cumstride_{k-1} (support_k - 1)
        rfoffset_l = 1 + sum_{k<=l} cumstride_{k-1} ((support_k - 1) / 2 - pad_{top/left,k})
        rfstride_l = prod_{k<=l} stride_k
        size_{l+1} = floor((size_l + padsum - support) / stride) + 1;  depth: conv size(F, 4)
                     (when size(F, 3) ~= 0), loss layers 1 (and num 1), custom NaN unless
                     the layer has getForwardSize(layer, size) -> [H, W, C, N]

    So convt (no 'stride'/'pad' fields) counts as a 1 x 1 filter: the original's display does
    not model its upsampling; :func:`chain_receptive_fields` does.  Dilation is taken per
    axis (the original multiplies by ``ly.dilate`` as given).  ``input_size`` is
    ``[H, W, C, N]`` in MatConvNet's order, missing trailing entries filled from
    ``[NaN, NaN, NaN, 1]``.
    """
    if isinstance(layers, Mapping):
        layers = layers.get("layers", [])
    layers = list(layers)
    support: List[Pair] = []
    stride: List[Pair] = []
    pad: List[Quad] = []
    rfsize: List[Pair] = []
    rfoffset: List[Tuple[float, float]] = []
    rfstride: List[Pair] = []
    cum = (1, 1)                 # cumstride_{k-1}
    size_acc = [0, 0]            # sum cumstride (support - 1)
    off_acc = [Fraction(0), Fraction(0)]
    for i, ly in enumerate(layers):
        if not isinstance(ly, Mapping) or not isinstance(ly.get("type"), str):
            raise TypeError(f"layers[{i}]: expected a layer dict with a string 'type'")
        kind = ly["type"]
        if kind == "conv":
            fh, fw, _, _ = _matlab_filter_dims(_filters(ly))
            d = T.pair(ly.get("dilate", 1), f"layers[{i}].dilate")
            sup = (_extent(max(fh, 1), d[0]), _extent(max(fw, 1), d[1]))
        elif kind == "pool":
            sup = T.pair(ly.get("pool"), f"layers[{i}].pool")
        else:
            sup = (1, 1)
        st = T.pair(ly["stride"], f"layers[{i}].stride") if "stride" in ly else (1, 1)
        pd = T.quad(ly["pad"], f"layers[{i}].pad") if "pad" in ly else (0, 0, 0, 0)
        for a in range(2):
            size_acc[a] += cum[a] * (sup[a] - 1)
            off_acc[a] += cum[a] * (Fraction(sup[a] - 1, 2) - pd[2 * a])
        cum = (cum[0] * st[0], cum[1] * st[1])
        support.append(sup)
        stride.append(st)
        pad.append(pd)
        rfsize.append((1 + size_acc[0], 1 + size_acc[1]))
        rfoffset.append((float(1 + off_acc[0]), float(1 + off_acc[1])))
        rfstride.append(cum)

    nan = float("nan")
    start: List[Number] = [nan, nan, nan, 1]
    if input_size is not None:
        given = list(input_size.tolist() if hasattr(input_size, "tolist") else input_size)
        if not 1 <= len(given) <= 4:
            raise ValueError(f"input_size: expected 1 to 4 numbers [H, W, C, N], got {given!r}")
        start[:len(given)] = [_number(v) for v in given]
    data: List[Tuple[Number, ...]] = [tuple(start)]
    for l, ly in enumerate(layers):
        prev = data[-1]
        forward_size = ly.get("getForwardSize")
        if ly["type"] == "custom" and callable(forward_size):
            sz = [_number(v) for v in forward_size(ly, list(prev))]
            if len(sz) != 4:
                raise ValueError(f"layers[{l}].getForwardSize: expected 4 numbers, got {sz!r}")
            data.append(tuple(sz))
            continue
        h = _floor_size(prev[0], pad[l][0] + pad[l][1], support[l][0], stride[l][0])
        w = _floor_size(prev[1], pad[l][2] + pad[l][3], support[l][1], stride[l][1])
        depth, num = prev[2], prev[3]
        if ly["type"] == "conv":
            _, _, c, k = _matlab_filter_dims(_filters(ly))
            if c != 0:
                depth = k
        elif ly["type"] in LOSS_TYPES:
            depth, num = 1, 1
        elif ly["type"] == "custom":
            depth = nan
        data.append((h, w, depth, num))

    return SimpleNNGeometry(tuple(support), tuple(stride), tuple(pad), tuple(rfsize),
                            tuple(rfoffset), tuple(rfstride), tuple(data))  # type: ignore[arg-type]
