r"""DagNN layers: the ``dagnn.Layer`` base class and every layer class of MatConvNet's
``matlab/+dagnn`` (manual 2.2.2 and 3.1.2; FEATURES.md 3.4 and 3.5), plus ``LossSmoothL1``
of ``examples/fast_rcnn``.

A layer is a thin shell around one block of :mod:`matconvnet.blocks`: it keeps the block's
options as *properties* (MatConvNet's names and conventions, so that networks saved by
MatConvNet load and save unchanged) and calls the block in forward and backward mode.
The interface is docs/dagnn.md's::

    outputs = layer.forward(inputs, params)
    der_inputs, der_params = layer.backward(inputs, params, der_outputs, outputs=None)
    layer.get_output_sizes(input_sizes)      # sizes (N, C, H, W), NaN where unknown
    layer.get_receptive_fields()             # [input][output] -> (RF_y, RF_x) or None
    layer.init_params(); layer.attach(net, index); layer.reset(); layer.move(device)
    layer.save() -> dict;  Layer.load(dict) -> layer

Properties are declared per class in ``PROPERTIES`` (saved, MATLAB name -> default) and
``TRANSIENT`` (internal state, not saved); a class inherits its bases' and may override
defaults.  Some properties normalise the value assigned to them, as MatConvNet's setters
do: ``pad = 1`` becomes ``[1, 1, 1, 1]``, ``pad = [a, b]`` becomes ``[a, a, b, b]``,
``stride = 2`` becomes ``[2, 2]``, ``Conv.size = [3, 3]`` becomes ``[3, 3, 1, 1]``.

Layouts: data are N x C x H x W tensors.  ``Conv.size`` is ``[FH, FW, C, K]`` (MatConvNet's
order) while its filter tensor is ``K x C x FH x FW``; ``ConvTranspose.size`` is
``[FH, FW, K, D]`` and its filters ``D x K x FH x FW``; ``Scale.size`` is the H x W x C x N
size of its multiplier, a tensor of shape ``(N, C, H, W)``; ``Concat.dim`` is MatConvNet's
1-based ``dim`` of H x W x C x N (3 = channels).  ``pad``/``crop`` are ``[top, bottom, left,
right]``; ``stride``, ``dilate``, ``poolSize``, ``upsample``, ``subdivisions`` are ``[y, x]``.

Receptive fields (FEATURES.md D-L-8): ``get_receptive_fields()[i][j]`` is the field of
output ``j`` in input ``i`` as a ``(RF_y, RF_x)`` pair of :class:`matconvnet.geometry.RF`,
``None`` where the original gives NaN (not expressible as a sliding window), or
:data:`NO_DEPENDENCY` (the original's empty field: output ``j`` does not depend on the
values of input ``i``, e.g. Crop's reference input).

Departures from the original, each a fix of a documented quirk: ``ConvTranspose`` output
sizes count ``numGroups`` (Q-10); ``BilinearSampler`` output sizes take the batch size of
the grid (Q-11); ``SpatialNorm``'s receptive field is its window (the original inherits the
pointwise field); ``Scale`` initialises its bias shaped like its multiplier.
"""
from __future__ import annotations

import copy
import math
import numbers
from fractions import Fraction
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import _tensor as T
from ..blocks.options import block_options
from .. import blocks as B
from .. import geometry as G

__all__ = [
    "Layer", "Filter", "ElementWise", "register_layer", "LAYER_CLASSES", "layer_class",
    "NO_DEPENDENCY", "block_options",
    "Conv", "ConvTranspose", "Pooling", "BatchNorm", "BilinearSampler", "Concat", "Crop",
    "DropOut", "LRN", "Loss", "NormOffset", "PDist", "ROIPooling", "ReLU", "Scale",
    "Sigmoid", "SoftMax", "SpatialNorm", "Sum", "AffineGridGenerator",
    "UniformScalingGridGenerator", "LossSmoothL1",
    "PReLU", "BinaryOp", "Reshape", "Permute", "Pad", "Clip", "HardSigmoid",
]

NAN = float("nan")

#: A receptive field entry meaning "this output does not depend on this input's values"
#: (MatConvNet's empty ``size``): skip it when composing fields.
NO_DEPENDENCY: tuple = ()

#: type_name ('dagnn.Conv') -> class; filled by :func:`register_layer`.
LAYER_CLASSES: Dict[str, type] = {}


def register_layer(cls):
    """Class decorator: register a :class:`Layer` subclass under its ``type_name`` (the
    class name stored in .mat files).  A class that does not set ``type_name`` itself is
    registered under its Python class name.  Registering a name again replaces the class."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: expected a subclass of Layer, got {cls!r}")
    if "type_name" not in cls.__dict__:
        cls.type_name = cls.__name__
    if not isinstance(cls.type_name, str) or not cls.type_name:
        raise TypeError(f"register_layer: {cls.__name__}.type_name must be a non-empty string")
    LAYER_CLASSES[cls.type_name] = cls
    return cls


def layer_class(type_name: str) -> type:
    """The class registered as ``type_name`` ('dagnn.Conv'); ``ValueError`` if unknown."""
    try:
        return LAYER_CLASSES[type_name]
    except (KeyError, TypeError):
        raise ValueError(
            f"type: unknown layer class {type_name!r}; known classes: "
            f"{', '.join(sorted(LAYER_CLASSES))} (register new ones with register_layer)"
        ) from None


# ----------------------------------------------------------------------------- helpers


def _is_empty(v: Any) -> bool:
    """MATLAB's isempty for property values (None, [], empty arrays)."""
    if v is None:
        return True
    if isinstance(v, (list, tuple, str)):
        return len(v) == 0
    if isinstance(v, (np.ndarray, torch.Tensor)):
        return v.numel() == 0 if isinstance(v, torch.Tensor) else v.size == 0
    return False


def _numbers(value: Any, name: str) -> List[Any]:
    """A property value as a flat list of Python numbers (ints where integral)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().reshape(-1).tolist()
    elif isinstance(value, np.ndarray):
        value = value.ravel(order="F").tolist()
    elif isinstance(value, numbers.Number):
        value = [value]
    elif isinstance(value, (list, tuple)):
        flat = []
        for v in value:
            flat.extend(_numbers(v, name) if isinstance(v, (list, tuple, np.ndarray,
                                                            torch.Tensor)) else [v])
        value = flat
    else:
        raise TypeError(f"{name}: expected a number or a list of numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: expected numbers, got {value!r}")
        v = float(v) if not isinstance(v, numbers.Integral) else int(v)
        out.append(int(v) if isinstance(v, float) and v.is_integer() else v)
    return out


def _pair_setter(name: str, minimum: float = 1):
    """MatConvNet's set.stride / set.dilate / set.upsample: 1 value -> [v v]."""
    def setter(self, value):
        v = _numbers(value, name)
        if len(v) == 1:
            v = v * 2
        if len(v) != 2 or min(v) < minimum:
            raise ValueError(f"{name}: expected 1 or 2 numbers >= {minimum}, got {value!r}")
        return v
    return setter


def _quad_setter(name: str):
    """MatConvNet's set.pad / set.crop: 1 value -> all 4, 2 values [a b] -> [a a b b]."""
    def setter(self, value):
        v = _numbers(value, name)
        if len(v) == 1:
            v = v * 4
        elif len(v) == 2:
            v = [v[0], v[0], v[1], v[1]]
        if len(v) != 4 or min(v) < 0:
            raise ValueError(
                f"{name}: expected 1, 2 or 4 non-negative numbers [top bottom left right], "
                f"got {value!r}")
        return v
    return setter


def _size4_setter(name: str):
    """MatConvNet's set.size: pad with ones to 4 elements (``[ksize(:)' 1 1 1 1](1:4)``)."""
    def setter(self, value):
        if _is_empty(value):
            return value
        v = _numbers(value, name)
        return (v + [1, 1, 1, 1])[:4]
    return setter


def _num(v: Any) -> Any:
    """A size entry: an int where integral, NaN where unknown."""
    if v is None:
        return NAN
    if isinstance(v, torch.Tensor):
        v = v.item()
    v = float(v)
    if math.isnan(v):
        return NAN
    return int(v) if v.is_integer() else v


def _sizes(input_sizes: Sequence[Any]) -> List[Tuple[Any, Any, Any, Any]]:
    out = []
    for k, s in enumerate(input_sizes):
        s = tuple(_num(v) for v in (s if s is not None else (NAN,) * 4))
        if len(s) != 4:
            raise ValueError(f"input_sizes[{k}]: expected 4 numbers (N, C, H, W), got {s!r}")
        out.append(s)
    return out


def _isnan(*vs: Any) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for v in vs)


def _fix_slide(size: Any, pad_before: Any, pad_after: Any, extent: Any, stride: Any) -> Any:
    """``fix((size + pb + pa - extent) / stride) + 1`` (MATLAB's fix truncates toward 0)."""
    if _isnan(size):
        return NAN
    q = Fraction(size + pad_before + pad_after - extent) / Fraction(stride)
    return _num(math.trunc(q) + 1)


def _prod(vs: Sequence[Any]) -> Any:
    out = 1
    for v in vs:
        if _isnan(v):
            return NAN
        out *= v
    return out


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a DagNN record (attribute or mapping key)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _set_field(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[name] = value
    else:
        setattr(obj, name, value)


def _device(device: Any) -> torch.device:
    if isinstance(device, str) and device.lower() == "gpu":
        return torch.device("cuda")
    return torch.device(device)


def _to(t: Any, device: torch.device) -> Any:
    return t.to(device) if isinstance(t, torch.Tensor) else t


def _like(a: Any, x: torch.Tensor) -> Any:
    """An option array (NumPy, list or tensor, e.g. loaded from a file) as a tensor of x's
    dtype and device; numbers pass unchanged."""
    if a is None or isinstance(a, numbers.Number):
        return a
    if isinstance(x, torch.Tensor):
        if isinstance(a, torch.Tensor):
            return a.to(device=x.device, dtype=x.dtype)
        if isinstance(a, (np.ndarray, list, tuple)):
            return torch.as_tensor(np.asarray(a, dtype=float), dtype=x.dtype, device=x.device)
    return a


def _scalar_value(y: Any) -> Any:
    """MATLAB's gather: a loss value as a Python float (or a CPU tensor if not a scalar)."""
    if isinstance(y, torch.Tensor):
        y = y.detach()
        return float(y) if y.numel() == 1 else y.cpu().clone()
    if isinstance(y, np.ndarray):
        return float(y) if y.size == 1 else torch.from_numpy(np.array(y))
    return y


def _positive_size(size: Any, what: str) -> Tuple[int, int, int, int]:
    v = _numbers(size, "size") if not _is_empty(size) else []
    if len(v) != 4 or min(v) < 1 or any(not isinstance(a, int) for a in v):
        raise ValueError(f"size: expected positive integers {what} to initialise the "
                         f"parameters, got {size!r}")
    return tuple(v)  # type: ignore[return-value]


def _identity_rf() -> Tuple[G.RF, G.RF]:
    return (G.IDENTITY, G.IDENTITY)


# ----------------------------------------------------------------------------- block options

# ----------------------------------------------------------------------------- Layer


class Layer:
    """Base class of DagNN layers (MatConvNet's ``dagnn.Layer``; FEATURES.md 3.4).

    Subclass it for custom layers: declare ``PROPERTIES`` (saved, MATLAB name -> default)
    and ``TRANSIENT`` (internal state), implement :meth:`forward` and :meth:`backward` (and
    where meaningful :meth:`get_output_sizes`, :meth:`get_receptive_fields`,
    :meth:`init_params`), and decorate the class with :func:`register_layer` so that
    networks holding it can be loaded.  A method ``_set_<property>(self, value)`` normalises
    every value assigned to that property (MatConvNet's ``set.<property>``).
    """

    type_name = "dagnn.Layer"
    PROPERTIES: Dict[str, Any] = {}
    TRANSIENT: Dict[str, Any] = {}

    net = None
    layer_index = None

    def __init__(self, **props: Any):
        cls = type(self)
        known = cls.properties()
        unknown = [k for k in props if k not in known]
        if unknown:
            raise TypeError(
                f"{cls.type_name}: no propert{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(repr(k) for k in unknown)}; expected some of {sorted(known)}")
        object.__setattr__(self, "net", None)
        object.__setattr__(self, "layer_index", None)
        for k, v in cls.transient_properties().items():
            object.__setattr__(self, k, copy.deepcopy(v))
        for k, v in known.items():
            setattr(self, k, copy.deepcopy(v))
        for k, v in props.items():
            setattr(self, k, v)

    # -- properties

    @classmethod
    def _merged(cls, attr: str) -> Dict[str, Any]:
        """``attr`` dicts merged along the class hierarchy, the most derived class first
        (MATLAB's property order) and winning on defaults."""
        out: Dict[str, Any] = {}
        for c in cls.__mro__:
            for k, v in c.__dict__.get(attr, {}).items():
                out.setdefault(k, v)
        return out

    @classmethod
    def properties(cls) -> Dict[str, Any]:
        """The saved properties of the class (with its bases'), name -> default."""
        return cls._merged("PROPERTIES")

    @classmethod
    def transient_properties(cls) -> Dict[str, Any]:
        """The transient (unsaved) state of the class (with its bases'), name -> initial."""
        return cls._merged("TRANSIENT")

    def __setattr__(self, name: str, value: Any) -> None:
        setter = getattr(type(self), f"_set_{name}", None)
        if setter is not None and name in type(self).properties():
            value = setter(self, value)
        object.__setattr__(self, name, value)

    def save(self) -> dict:
        """The saved properties (MatConvNet's names) as a dict; the inverse of :meth:`load`."""
        return {k: copy.deepcopy(getattr(self, k)) for k in type(self).properties()}

    @classmethod
    def load(cls, struct: Any = None) -> "Layer":
        """A new layer from a saved dict (or MatConvNet's ``{'name', value, ...}`` list of
        pairs); an unknown property raises ``TypeError`` naming it."""
        if struct is None:
            struct = {}
        if isinstance(struct, (list, tuple)):
            if len(struct) % 2:
                raise ValueError(f"struct: expected name/value pairs, got {struct!r}")
            struct = dict(zip(struct[::2], struct[1::2]))
        if not isinstance(struct, Mapping):
            raise TypeError(f"struct: expected a dict of properties, got {struct!r}")
        return cls(**cls._loadable(dict(struct)))

    @classmethod
    def _loadable(cls, struct: dict) -> dict:
        """Hook: adapt an older file's properties (Concat drops ``numInputs``)."""
        return struct

    def __repr__(self) -> str:
        props = ", ".join(f"{k}={getattr(self, k)!r}" for k in type(self).properties())
        return f"{type(self).__name__}({props})"

    # -- the network

    def attach(self, net: Any, index: int) -> None:
        """Called by the network when the layer is added as layer ``index``."""
        object.__setattr__(self, "net", net)
        object.__setattr__(self, "layer_index", index)

    def _entry(self) -> Any:
        layers = _field(self.net, "layers") if self.net is not None else None
        if layers is None or self.layer_index is None:
            return None
        try:
            return layers[self.layer_index]
        except (IndexError, KeyError, TypeError):
            return None

    def _num_inputs(self, default: int = 1) -> int:
        entry = self._entry()
        names = _field(entry, "inputs") if entry is not None else None
        return len(names) if names is not None else default

    def _num_outputs(self, default: int = 1) -> int:
        entry = self._entry()
        names = _field(entry, "outputs") if entry is not None else None
        return len(names) if names is not None else default

    def _test_mode(self) -> bool:
        return self.net is not None and _field(self.net, "mode") == "test"

    # -- what the network may assume about the computation (for conserve_memory)

    def backward_needs_inputs(self) -> bool:
        """Whether :meth:`backward` reads the input values (else they may be freed after the
        forward pass).  Default True."""
        return True

    def backward_needs_outputs(self) -> bool:
        """Whether :meth:`backward` reads the output values given as ``outputs``.  Default
        False (layers that merely use them when present, to save work, say False)."""
        return False

    def fresh_outputs(self) -> bool:
        """Whether :meth:`forward` returns new tensors that the layer keeps no reference to
        (not an input, nor a view of one): the network may then let a later layer overwrite
        them.  Default False; the built-in layers that do so say True."""
        return False

    def fresh_input_ders(self) -> bool:
        """Whether :meth:`backward` returns new tensors as input derivatives, one per input
        (not the output derivatives given, nor views of them).  Default False."""
        return False

    def _input_disposable(self, k: int = 0) -> bool:
        """Whether the network lets this layer overwrite input ``k`` in the forward pass."""
        fn = getattr(self.net, "_input_disposable", None)
        return fn is not None and self.layer_index is not None \
            and bool(fn(self.layer_index, k))

    def _output_der_disposable(self, k: int = 0) -> bool:
        """Whether the network lets this layer overwrite the derivative of output ``k`` in
        the backward pass."""
        fn = getattr(self.net, "_output_der_disposable", None)
        return fn is not None and self.layer_index is not None \
            and bool(fn(self.layer_index, k))

    def _input_der_wanted(self, k: int = 0) -> bool:
        """Whether the network uses the derivative of input ``k`` (False: the backward pass
        may skip it; see the network's ``input_derivatives``)."""
        wanted = getattr(self.net, "_input_der_wanted", None)
        return True if wanted is None or self.layer_index is None \
            else bool(wanted(self.layer_index, k))

    # -- computation

    def forward(self, inputs: List[Any], params: List[Any]) -> List[Any]:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, inputs: List[Any], params: List[Any], der_outputs: List[Any],
                 outputs: Optional[List[Any]] = None) -> Tuple[List[Any], List[Any]]:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def get_output_sizes(self, input_sizes: Sequence[Any]) -> List[tuple]:
        """Sizes (N, C, H, W) of the outputs; the base class does not know them (NaN)."""
        return [(NAN,) * 4 for _ in range(self._num_outputs())]

    def get_receptive_fields(self) -> List[List[Any]]:
        """Fields ``[input][output]``; the base class cannot express them (None)."""
        n_out = self._num_outputs()
        return [[None] * n_out for _ in range(self._num_inputs())]

    def init_params(self) -> List[Any]:
        return []

    def reset(self) -> None:
        pass

    def move(self, device: Any) -> None:
        pass


# ----------------------------------------------------------------------------- bases


class Filter(Layer):
    """Sliding-window layers (``dagnn.Filter``): ``pad``, ``stride``, ``dilate`` and the
    kernel size of :meth:`get_kernel_size` give the output size
    ``fix((H + P_t + P_b - E) / S) + 1`` (``E = (F - 1) D + 1``) and the receptive field
    (size ``E``, stride ``S``, offset ``1 - P_t + (E - 1) / 2``; FEATURES.md D-L-9)."""

    type_name = "dagnn.Filter"
    PROPERTIES = {"pad": [0, 0, 0, 0], "stride": [1, 1], "dilate": [1, 1]}

    _set_pad = _quad_setter("pad")
    _set_stride = _pair_setter("stride")
    _set_dilate = _pair_setter("dilate")

    def get_kernel_size(self) -> List[Any]:
        return [1, 1]

    def _kernel_pair(self) -> Tuple[Any, Any]:
        ks = _numbers(self.get_kernel_size(), "kernel size")
        return (ks[0], ks[0]) if len(ks) == 1 else (ks[0], ks[1])

    def _output_hw(self, size: tuple) -> Tuple[Any, Any]:
        (kh, kw), p, s, d = self._kernel_pair(), self.pad, self.stride, self.dilate
        eh, ew = (kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1
        return (_fix_slide(size[2], p[0], p[1], eh, s[0]),
                _fix_slide(size[3], p[2], p[3], ew, s[1]))

    def get_output_sizes(self, input_sizes):
        x = _sizes(input_sizes)[0]
        h, w = self._output_hw(x)
        return [(x[0], 1, h, w)]

    def get_receptive_fields(self):
        rf = G.receptive_field("conv", filter_size=list(self._kernel_pair()), pad=self.pad,
                               stride=self.stride, dilate=self.dilate)
        return [[rf]]


class ElementWise(Layer):
    """Layers acting at each spatial location (``dagnn.ElementWise``): the output has the
    size of the (first) input and the identity receptive field."""

    type_name = "dagnn.ElementWise"

    def get_output_sizes(self, input_sizes):
        return [_sizes(input_sizes)[0]]

    def get_receptive_fields(self):
        return [[_identity_rf()] for _ in range(self._num_inputs())]


# ----------------------------------------------------------------------------- filters


@register_layer
class Conv(Filter):
    """Convolution (``vl_nnconv``).  Params ``[F, B]`` (``B`` only with ``hasBias``): ``F``
    is ``K x C x FH x FW`` for ``size = [FH, FW, C, K]``."""

    type_name = "dagnn.Conv"

    PROPERTIES = {"size": [0, 0, 0, 0], "hasBias": True, "opts": ["cuDNN"]}

    _set_size = _size4_setter("size")

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def _weights(self, params):
        f = params[0] if params else None
        b = params[1] if self.hasBias and len(params) > 1 else None
        return f, b

    def _kwargs(self):
        return dict(dict(pad=self.pad, stride=self.stride, dilate=self.dilate),
                    **block_options(self.opts, "conv"))

    def forward(self, inputs, params):
        f, b = self._weights(params)
        return [B.vl_nnconv(inputs[0], f, b, **self._kwargs())]

    def backward(self, inputs, params, der_outputs, outputs=None):
        f, b = self._weights(params)
        kwargs = self._kwargs()
        if not self._input_der_wanted(0):
            kwargs["no_der_data"] = True
        dx, df, db = B.vl_nnconv(inputs[0], f, b, der_outputs[0], **kwargs)
        return [dx], [df, db][:len(params)]

    def get_kernel_size(self):
        return list(self.size[:2])

    def get_output_sizes(self, input_sizes):
        (n, _, h, w), = super().get_output_sizes(input_sizes)
        return [(n, _num(self.size[3]), h, w)]

    def init_params(self):
        fh, fw, c, k = _positive_size(self.size, "[FH, FW, C, K]")
        sc = math.sqrt(2.0 / (fh * fw * c))
        params = [torch.randn(k, c, fh, fw, dtype=torch.float32) * sc]
        if self.hasBias:
            params.append(torch.zeros(k, dtype=torch.float32))
        return params


@register_layer
class Pooling(Filter):
    """Max or average pooling (``vl_nnpool``) over ``poolSize`` windows."""

    type_name = "dagnn.Pooling"

    PROPERTIES = {"method": "max", "poolSize": [1, 1], "opts": ["cuDNN"]}
    TRANSIENT = {"switches": None}   # (input, switches) of the last forward pass

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def _kwargs(self):
        return dict(dict(pad=self.pad, stride=self.stride, method=self.method),
                    **block_options(self.opts, "pool"))

    def forward(self, inputs, params):
        self.switches = None
        if self.net is not None and _field(self.net, "computing_derivatives", False):
            # keep the maxima (and what the backward call reads of x: its shape) for the
            # backward pass of this evaluation, so that the network may free x meanwhile
            y, switches = B.vl_nnpool(inputs[0], self.poolSize, return_switches=True,
                                      **self._kwargs())
            x = inputs[0]
            self.switches = (T.TensorSpec(x) if torch.is_tensor(x) else x, switches)
            return [y]
        return [B.vl_nnpool(inputs[0], self.poolSize, **self._kwargs())]

    def backward(self, inputs, params, der_outputs, outputs=None):
        kept, self.switches = self.switches, None
        x, switches = inputs[0], None
        if kept is not None:
            spec, switches = kept
            if isinstance(spec, T.TensorSpec):
                if not spec.describes(x):
                    switches = None   # another x than the forward pass's
                elif x is None:
                    x = spec.stand_in()
            elif spec is not x:
                switches = None
        return [B.vl_nnpool(x, self.poolSize, der_outputs[0], switches=switches,
                            **self._kwargs())], []

    def backward_needs_inputs(self):
        # given the switches kept by the forward pass (average pooling: none needed), the
        # backward call reads only the input's shape, which the layer keeps
        return False

    def reset(self):
        self.switches = None

    def move(self, device):
        self.switches = None

    def get_kernel_size(self):
        return self.poolSize

    def get_output_sizes(self, input_sizes):
        x = _sizes(input_sizes)[0]
        h, w = self._output_hw(x)
        return [(x[0], x[1], h, w)]


@register_layer
class ConvTranspose(Layer):
    """Convolution transpose (``vl_nnconvt``).  Params ``[F, B]``: ``F`` is
    ``D x K x FH x FW`` for ``size = [FH, FW, K, D]``; the output has ``K numGroups``
    channels."""

    type_name = "dagnn.ConvTranspose"

    PROPERTIES = {"size": [0, 0, 0, 0], "hasBias": True, "upsample": [1, 1],
                  "crop": [0, 0, 0, 0], "numGroups": 1, "opts": ["cuDNN"]}

    _set_size = _size4_setter("size")
    _set_crop = _quad_setter("crop")
    _set_upsample = _pair_setter("upsample")

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def _weights(self, params):
        f = params[0] if params else None
        b = params[1] if self.hasBias and len(params) > 1 else None
        return f, b

    def _kwargs(self):
        return dict(dict(upsample=self.upsample, crop=self.crop, num_groups=self.numGroups),
                    **block_options(self.opts, "convt"))

    def forward(self, inputs, params):
        f, b = self._weights(params)
        return [B.vl_nnconvt(inputs[0], f, b, **self._kwargs())]

    def backward(self, inputs, params, der_outputs, outputs=None):
        f, b = self._weights(params)
        kwargs = self._kwargs()
        if not self._input_der_wanted(0):
            kwargs["no_der_data"] = True
        dx, df, db = B.vl_nnconvt(inputs[0], f, b, der_outputs[0], **kwargs)
        return [dx], [df, db][:len(params)]

    def get_output_sizes(self, input_sizes):
        n, _, h, w = _sizes(input_sizes)[0]
        u, c, sz = self.upsample, self.crop, self.size

        def up(v, k, f, c0, c1):
            return NAN if _isnan(v) else _num(u[k] * (v - 1) + f - c0 - c1)
        # the original reports size(3) channels, ignoring numGroups (FEATURES.md Q-10)
        channels = _num(sz[2] * _numbers(self.numGroups, "numGroups")[0])
        return [(n, channels, up(h, 0, sz[0], c[0], c[1]), up(w, 1, sz[1], c[2], c[3]))]

    def get_receptive_fields(self):
        rf = G.receptive_field("convt", filter_size=list(self.size[:2]),
                               upsample=self.upsample, crop=self.crop)
        return [[rf]]

    def init_params(self):
        fh, fw, k, d = _positive_size(self.size, "[FH, FW, K, D]")
        sc = math.sqrt(2.0 / (fh * fw * d))
        params = [torch.randn(d, k, fh, fw, dtype=torch.float32) * sc]
        if self.hasBias:
            params.append(torch.zeros(k, dtype=torch.float32))
        return params


# ----------------------------------------------------------------------------- pointwise


@register_layer
class BatchNorm(ElementWise):
    """Batch normalisation (``vl_nnbnorm``).  Params ``[G, B, M]``, ``M`` the ``C x 2``
    moments ``[mu, sigma]``.

    In 'normal' mode the forward pass normalises with the batch moments and keeps them;
    the backward pass uses them and returns them as the "derivative" of ``M`` (the trainer
    averages them in: :meth:`attach` marks ``M`` ``trainMethod='average'``,
    ``learningRate=0.1``).  In 'test' mode the forward pass uses ``M``.
    """

    type_name = "dagnn.BatchNorm"

    PROPERTIES = {"numChannels": None, "epsilon": 1e-5, "opts": ["NoCuDNN"]}
    TRANSIENT = {"moments": None}

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def _kwargs(self):
        return dict(dict(epsilon=self.epsilon), **block_options(self.opts, "bnorm"))

    def forward(self, inputs, params):
        x, g, b = inputs[0], params[0], params[1]
        if self._test_mode():
            return [B.vl_nnbnorm(x, g, b, **dict(self._kwargs(), moments=params[2]))]
        y, self.moments = B.vl_nnbnorm(x, g, b, return_moments=True, **self._kwargs())
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        x, g, b = inputs[0], params[0], params[1]
        kwargs = self._kwargs()
        if self.moments is not None:
            kwargs["moments"] = self.moments
        dx, dg, db, moments = B.vl_nnbnorm(x, g, b, der_outputs[0], **kwargs)
        self.moments = None
        # the plain batch moments: the oracle shows beta25's DagNN and SimpleNN agree on it
        return [dx], [dg, db, moments][:len(params)]

    def attach(self, net, index):
        super().attach(net, index)
        entry = self._entry()
        names = _field(entry, "params") if entry is not None else None
        if not names or len(names) < 3:
            return
        params = _field(net, "params")
        index_of = getattr(net, "get_param_index", None)
        p = index_of(names[2]) if callable(index_of) else next(
            (i for i, q in enumerate(params or []) if _field(q, "name") == names[2]), None)
        if p is None or (isinstance(p, float) and math.isnan(p)):
            return
        _set_field(params[p], "train_method", "average")
        _set_field(params[p], "learning_rate", 0.1)

    def init_params(self):
        if _is_empty(self.numChannels):
            raise ValueError("numChannels: set the number of channels to initialise the "
                             "parameters")
        c = int(_numbers(self.numChannels, "numChannels")[0])
        return [torch.ones(c, dtype=torch.float32), torch.zeros(c, dtype=torch.float32),
                torch.zeros(c, 2, dtype=torch.float32)]

    def reset(self):
        self.moments = None

    def move(self, device):
        self.moments = _to(self.moments, _device(device))


@register_layer
class ReLU(ElementWise):
    """Rectified linear unit (``vl_nnrelu``), leaky with ``leak > 0``.  The backward pass
    uses the output when the input is gone (the network's ``useShortCircuit``)."""

    type_name = "dagnn.ReLU"
    PROPERTIES = {"useShortCircuit": True, "leak": 0, "opts": []}

    def _kwargs(self):
        return dict(dict(leak=self.leak), **block_options(self.opts, "relu"))

    def forward(self, inputs, params):
        return [B.vl_nnrelu(inputs[0], inplace=self._input_disposable(0), **self._kwargs())]

    def backward(self, inputs, params, der_outputs, outputs=None):
        x = inputs[0] if inputs and inputs[0] is not None else (outputs or [None])[0]
        return [B.vl_nnrelu(x, der_outputs[0], inplace=self._output_der_disposable(0),
                            **self._kwargs())], []

    def backward_needs_inputs(self):
        return not self.useShortCircuit

    def backward_needs_outputs(self):
        return bool(self.useShortCircuit)

    def fresh_input_ders(self):
        return True


class _FromOutput(ElementWise):
    """An element-wise layer whose derivative is computed from its output y when there."""

    def backward_needs_outputs(self):
        return True

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True


@register_layer
class Sigmoid(_FromOutput):
    """Logistic sigmoid (``vl_nnsigmoid``)."""

    type_name = "dagnn.Sigmoid"

    def forward(self, inputs, params):
        return [B.vl_nnsigmoid(inputs[0])]

    def backward(self, inputs, params, der_outputs, outputs=None):
        y = outputs[0] if outputs else None
        return [B.vl_nnsigmoid(inputs[0], der_outputs[0], y=y)], []


@register_layer
class SoftMax(_FromOutput):
    """Softmax over the channels (``vl_nnsoftmax``)."""

    type_name = "dagnn.SoftMax"

    def forward(self, inputs, params):
        return [B.vl_nnsoftmax(inputs[0])]

    def backward(self, inputs, params, der_outputs, outputs=None):
        y = outputs[0] if outputs else None
        return [B.vl_nnsoftmax(inputs[0], der_outputs[0], y=y)], []


@register_layer
class LRN(ElementWise):
    """Local response normalisation across channels (``vl_nnnormalize``),
    ``param = [N, kappa, alpha, beta]``."""

    type_name = "dagnn.LRN"

    PROPERTIES = {"param": [5, 1, 0.0001 / 5, 0.75]}

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def forward(self, inputs, params):
        return [B.vl_nnnormalize(inputs[0], self.param)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [B.vl_nnnormalize(inputs[0], self.param, der_outputs[0])], []


@register_layer
class SpatialNorm(ElementWise):
    """Spatial normalisation (``vl_nnspnorm``), ``param = [PH, PW, alpha, beta]``."""

    type_name = "dagnn.SpatialNorm"
    PROPERTIES = {"param": [2, 2, 10, 2]}

    def forward(self, inputs, params):
        return [B.vl_nnspnorm(inputs[0], self.param)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [B.vl_nnspnorm(inputs[0], self.param, der_outputs[0])], []

    def get_receptive_fields(self):
        # the original inherits the pointwise field; the block reads a PH x PW window
        return [[G.receptive_field("spnorm", param=_numbers(self.param, "param"))]]


@register_layer
class NormOffset(ElementWise):
    """Norm-dependent offset (``vl_nnnoffset``), ``param = [a, b]``."""

    type_name = "dagnn.NormOffset"
    PROPERTIES = {"param": [1, 0.5]}

    def forward(self, inputs, params):
        return [B.vl_nnnoffset(inputs[0], self.param)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [B.vl_nnnoffset(inputs[0], self.param, der_outputs[0])], []


@register_layer
class DropOut(ElementWise):
    """Inverted dropout (``vl_nndropout``).  The mask of the last forward pass is kept
    (``mask``); with ``frozen`` the forward pass reuses it.  'test' mode is the identity."""

    type_name = "dagnn.DropOut"

    PROPERTIES = {"rate": 0.5, "frozen": False}
    TRANSIENT = {"mask": None}

    def fresh_outputs(self):
        return not self._test_mode()     # 'test' mode passes its input through

    def fresh_input_ders(self):
        return not self._test_mode()

    def forward(self, inputs, params):
        if self._test_mode():
            return [inputs[0]]
        if self.frozen and self.mask is not None:
            return [B.vl_nndropout(inputs[0], mask=self.mask)]
        y, self.mask = B.vl_nndropout(inputs[0], rate=self.rate)
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        if self._test_mode():
            return [der_outputs[0]], []
        return [B.vl_nndropout(inputs[0], der_outputs[0], mask=self.mask)], []

    def reset(self):
        self.mask = None
        self.frozen = False

    def move(self, device):
        self.mask = _to(self.mask, _device(device))


@register_layer
class Scale(ElementWise):
    """``y = x .* a (+ b)`` with broadcasting; ``a`` and ``b`` are params, or the 2nd and 3rd
    inputs.  Their derivatives are summed over the dimensions along which they were
    broadcast.  ``size`` is ``a``'s MatConvNet size (H x W x C x N), e.g. ``[1, 1, C]``;
    ``a`` is then a ``(1, C, 1, 1)`` tensor."""

    type_name = "dagnn.Scale"
    PROPERTIES = {"size": None, "hasBias": True}

    _set_size = _size4_setter("size")

    def forward(self, inputs, params):
        args = list(inputs) + list(params)
        y = args[0] * args[1]
        if self.hasBias:
            y = y + args[2]
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        args = list(inputs) + list(params)
        dy = der_outputs[0]
        dargs = [(dy * args[1]).sum_to_size(args[0].shape),
                 (dy * args[0]).sum_to_size(args[1].shape)]
        if self.hasBias:
            dargs.append(dy.sum_to_size(args[2].shape))
        n = len(inputs)
        dargs += [None] * (len(args) - len(dargs))
        return dargs[:n], dargs[n:n + len(params)]

    def init_params(self):
        if _is_empty(self.size):
            return []
        h, w, c, n = _positive_size(self.size, "[H, W, C, N]")
        sc = math.sqrt(2.0 / (h * w * c))
        params = [torch.randn(n, c, h, w, dtype=torch.float32) * sc]
        if self.hasBias:
            params.append(torch.zeros(n, c, h, w, dtype=torch.float32))
        return params


@register_layer
class Sum(ElementWise):
    """The sum of its inputs; each input receives the output derivative."""

    type_name = "dagnn.Sum"

    TRANSIENT = {"numInputs": None}

    def fresh_outputs(self):
        return self._num_inputs() > 1    # one input is passed through

    def forward(self, inputs, params):
        self.numInputs = len(inputs)
        y = inputs[0]
        for x in inputs[1:]:
            y = y + x
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [der_outputs[0]] * len(inputs), []

    def get_receptive_fields(self):
        n = self._num_inputs(self.numInputs or 1)
        return [[_identity_rf()] for _ in range(n)]


_CONCAT_AXIS = {1: 2, 2: 3, 3: 1, 4: 0}


@register_layer
class Concat(ElementWise):
    """Concatenation (``vl_nnconcat``) along MatConvNet's ``dim`` of H x W x C x N
    (1 = H, 2 = W, 3 = C, 4 = N; default 3, the channels)."""

    type_name = "dagnn.Concat"
    PROPERTIES = {"dim": 3}
    TRANSIENT = {"inputSizes": None}

    def _set_dim(self, value):
        v = _numbers(value, "dim")
        if len(v) != 1 or v[0] not in _CONCAT_AXIS:
            raise ValueError(f"dim: expected 1, 2, 3 or 4 (H, W, C, N), got {value!r}")
        return v[0]

    @property
    def axis(self) -> int:
        """The concatenation axis of N x C x H x W."""
        return _CONCAT_AXIS[self.dim]

    @classmethod
    def _loadable(cls, struct):
        struct.pop("numInputs", None)  # backward file compatibility, as the original
        return struct

    def forward(self, inputs, params):
        self.inputSizes = [tuple(x.shape) for x in inputs]
        return [B.vl_nnconcat(inputs, self.axis)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        sizes = [tuple(x.shape) for x in inputs] if all(x is not None for x in inputs) \
            else self.inputSizes
        return list(B.vl_nnconcat([], self.axis, der_outputs[0], input_sizes=sizes)), []

    def get_output_sizes(self, input_sizes):
        sizes = _sizes(input_sizes)
        out = list(sizes[0])
        for s in sizes[1:]:
            a = self.axis
            out[a] = NAN if _isnan(out[a], s[a]) else out[a] + s[a]
        return [tuple(out)]

    def get_receptive_fields(self):
        n = self._num_inputs(len(self.inputSizes) if self.inputSizes else 1)
        if self.dim in (3, 4):
            return [[_identity_rf()] for _ in range(n)]
        return [[None] for _ in range(n)]

    def reset(self):
        self.inputSizes = None


@register_layer
class Crop(ElementWise):
    """FCN's crop: crops input 1 to the H x W of input 2, removing ``min(crop, excess)``
    from the top/left (``crop = [y, x]``) and the rest from the bottom/right."""

    type_name = "dagnn.Crop"
    PROPERTIES = {"crop": [0, 0]}
    TRANSIENT = {"inputSizes": None}

    def _adapted_crops(self, sizes) -> List[Any]:
        cropv = sizes[0][2] - sizes[1][2]
        cropu = sizes[0][3] - sizes[1][3]
        crop = _numbers(self.crop, "crop")
        crop = crop * 2 if len(crop) == 1 else crop
        if _isnan(cropv, cropu):
            return [NAN] * 4
        cropv1 = max(0, cropv - crop[0])
        cropu1 = max(0, cropu - crop[1])
        return [cropv - cropv1, cropv1, cropu - cropu1, cropu1]

    def forward(self, inputs, params):
        self.inputSizes = [tuple(x.shape) for x in inputs]
        return [B.vl_nncrop(inputs[0], self._adapted_crops(self.inputSizes))]

    def backward(self, inputs, params, der_outputs, outputs=None):
        sizes = [tuple(x.shape) for x in inputs] if all(x is not None for x in inputs) \
            else self.inputSizes
        dx = B.vl_nncrop(None, self._adapted_crops(sizes), der_outputs[0],
                         input_size=sizes[0])
        return [dx, None], []

    def get_output_sizes(self, input_sizes):
        sizes = _sizes(input_sizes)
        c = self._adapted_crops(sizes)
        n, ch, h, w = sizes[0]
        return [(n, ch, NAN if _isnan(h, c[0]) else _num(h - c[0] - c[1]),
                 NAN if _isnan(w, c[2]) else _num(w - c[2] - c[3]))]

    def get_receptive_fields(self):
        crop = _numbers(self.crop, "crop")
        crop = crop * 2 if len(crop) == 1 else crop
        rf = (G.RF(1, 1, 1 + crop[0]), G.RF(1, 1, 1 + crop[1]))
        return [[rf], [NO_DEPENDENCY]]

    def reset(self):
        self.inputSizes = None


# ----------------------------------------------------------------------------- losses


@register_layer
class Loss(ElementWise):
    """A loss (``vl_nnloss``) of a prediction (input 1) against labels (input 2; an optional
    input 3 gives instance weights).  ``opts`` holds further ``vl_nnloss`` options
    (``['topK', 5]``, ``{'instanceWeights': w}``, ...).

    The layer keeps a running ``average`` of the loss per location over ``numAveraged``
    locations (``reset`` clears it): with ``m = n + H W N``,
    ``average = (n average + N y) / m`` if ``normalise`` (``y`` being normalised by N),
    else ``(n average + y) / m``; ``normalise`` affects only this average (FEATURES.md
    Q-12).  Its output size is ``(N, 1, 1, 1)``, MatConvNet's ``[1 1 1 N]``."""

    type_name = "dagnn.Loss"

    PROPERTIES = {"loss": "softmaxlog", "ignoreAverage": False, "normalise": True, "opts": []}
    TRANSIENT = {"average": 0, "numAveraged": 0}

    def fresh_outputs(self):
        return True

    def fresh_input_ders(self):
        return True

    def _kwargs(self, inputs):
        kwargs = dict(loss=self.loss)
        if len(inputs) >= 3:
            kwargs["instance_weights"] = inputs[2]
        kwargs.update(block_options(self.opts, "loss"))
        if "instance_weights" in kwargs:
            kwargs["instance_weights"] = _like(kwargs["instance_weights"], inputs[0])
        return kwargs

    def forward(self, inputs, params):
        y = B.vl_nnloss(inputs[0], inputs[1], **self._kwargs(inputs))
        self._accumulate_average(inputs, y)
        return [y]

    def _accumulate_average(self, inputs, y) -> None:
        if self.ignoreAverage:
            return
        x = inputs[0]
        n = self.numAveraged
        big_n = x.shape[0]
        m = n + x.shape[2] * x.shape[3] * big_n
        y = _scalar_value(y)
        self.average = (n * self.average + (big_n * y if self.normalise else y)) / m
        self.numAveraged = m

    def backward(self, inputs, params, der_outputs, outputs=None):
        dx = B.vl_nnloss(inputs[0], inputs[1], der_outputs[0], **self._kwargs(inputs))
        return [dx] + [None] * (len(inputs) - 1), []

    def get_output_sizes(self, input_sizes):
        return [(_sizes(input_sizes)[0][0], 1, 1, 1)]

    def get_receptive_fields(self):
        # depends on the sizes of the variables, unknown until the network runs
        return [[None] for _ in range(self._num_inputs(2))]

    def reset(self):
        self.average = 0
        self.numAveraged = 0


@register_layer
class PDist(Loss):
    """p-distance (``vl_nnpdist``) between inputs 1 and 2, optionally weighted by input 3;
    summed over all locations with ``aggregate`` (the default)."""

    type_name = "dagnn.PDist"
    PROPERTIES = {"p": 2, "aggregate": True, "noRoot": False, "epsilon": 1e-6}

    def __init__(self, **props):
        super().__init__(**props)
        self.loss = "pdist"

    def _pdist_kwargs(self, inputs):
        kwargs = dict(aggregate=bool(self.aggregate), no_root=bool(self.noRoot),
                      epsilon=self.epsilon)
        if len(inputs) >= 3:
            kwargs["instance_weights"] = inputs[2]
        kwargs.update(block_options(self.opts, "pdist"))
        if "instance_weights" in kwargs:
            kwargs["instance_weights"] = _like(kwargs["instance_weights"], inputs[0])
        return kwargs

    def forward(self, inputs, params):
        y = B.vl_nnpdist(inputs[0], inputs[1], self.p, **self._pdist_kwargs(inputs))
        self._accumulate_average(inputs, y)
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        dx, dx0 = B.vl_nnpdist(inputs[0], inputs[1], self.p, der_outputs[0],
                               **self._pdist_kwargs(inputs))
        return [dx, dx0] + [None] * (len(inputs) - 2), []


@register_layer
class LossSmoothL1(Loss):
    """Fast R-CNN's smooth L1 loss (``examples/fast_rcnn``) of ``x`` (input 1) against
    ``x0`` (input 2), weighted elementwise by ``w`` (input 3)::

        f(d) = 0.5 sigma^2 d^2  if |d| <= 1 / sigma^2,  |d| - 0.5 / sigma^2  otherwise
        y = sum(w .* f(x - x0)) / N

    The running ``average`` is normalised by the total weight seen."""

    type_name = "dagnn.LossSmoothL1"
    PROPERTIES = {"sigma": 1.0}

    def __init__(self, **props):
        super().__init__(**props)
        self.loss = "smoothl1"

    @staticmethod
    def _batch(x) -> int:
        return x.shape[0] if x.dim() == 4 else 1  # MATLAB's size(x, 4)

    def forward(self, inputs, params):
        x, x0, w = inputs[0], inputs[1], inputs[2]
        sigma2 = float(self.sigma) ** 2
        a = (x - x0).abs()
        f = torch.where(a > 1.0 / sigma2, a - 0.5 / sigma2, (0.5 * sigma2) * a * a)
        w = _like(w, x)
        y = torch.dot(w.reshape(-1), f.reshape(-1)) / self._batch(x)
        if not self.ignoreAverage:
            n = self.numAveraged
            m = n + float(w.sum()) + 1e-9
            self.average = (n * self.average + self._batch(x) * float(y)) / m
            self.numAveraged = m
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        x, x0, w = inputs[0], inputs[1], _like(inputs[2], inputs[0])
        sigma2 = float(self.sigma) ** 2
        d = x - x0
        d = torch.where(d.abs() > 1.0 / sigma2, d.sign(), sigma2 * d)
        if w.numel() == x.numel():
            w = w.reshape(x.shape)
        dzdy = der_outputs[0]
        return [w * d * dzdy / self._batch(x), None, None], []


# ----------------------------------------------------------------------------- sampling


@register_layer
class BilinearSampler(Layer):
    """Bilinear sampling of input 1 at the grid of input 2 (``vl_nnbilinearsampler``); the
    output is ``N' x C x Ho x Wo`` for an ``N' x 2 x Ho x Wo`` grid."""

    type_name = "dagnn.BilinearSampler"

    def forward(self, inputs, params):
        return [B.vl_nnbilinearsampler(inputs[0], inputs[1])]

    def backward(self, inputs, params, der_outputs, outputs=None):
        dx, dgrid = B.vl_nnbilinearsampler(inputs[0], inputs[1], der_outputs[0])
        return [dx, dgrid], []

    def get_output_sizes(self, input_sizes):
        x, g = _sizes(input_sizes)[:2]
        # the original takes the batch size of x (FEATURES.md Q-11); the output has the grid's
        return [(g[0], x[1], g[2], g[3])]


@register_layer
class ROIPooling(Layer):
    """Region-of-interest pooling (``vl_nnroipool``) of input 1 over the ROIs of input 2
    (``5 x K``).  With ``flatten`` the ``K x C x SH x SW`` output becomes
    ``K x (SH SW C) x 1 x 1``, in MatConvNet's order (SH fastest, then SW, then C)."""

    type_name = "dagnn.ROIPooling"
    PROPERTIES = {"method": "max", "subdivisions": [6, 6], "transform": 1, "flatten": False}

    def _kwargs(self):
        return dict(method=self.method, subdivisions=self.subdivisions,
                    transform=self.transform)

    def forward(self, inputs, params):
        y = B.vl_nnroipool(inputs[0], inputs[1], **self._kwargs())
        if self.flatten:
            y = y.permute(0, 1, 3, 2).reshape(y.shape[0], -1, 1, 1)
        return [y]

    def backward(self, inputs, params, der_outputs, outputs=None):
        dy = der_outputs[0]
        if self.flatten:
            sh, sw = T.pair(self.subdivisions, "subdivisions")
            k = dy.shape[0]
            dy = dy.reshape(k, -1, sw, sh).permute(0, 1, 3, 2)
        return [B.vl_nnroipool(inputs[0], inputs[1], dy, **self._kwargs()), None], []

    def get_output_sizes(self, input_sizes):
        x, r = _sizes(input_sizes)[:2]
        sh, sw = T.pair(self.subdivisions, "subdivisions")
        k = _prod(r)
        k = NAN if _isnan(k) else _num(k / 5)
        if self.flatten:
            return [(k, _num(_prod([sh, sw, x[1]])), 1, 1)]
        return [(k, x[1], sh, sw)]


def _linspace(n: int, dtype, device) -> torch.Tensor:
    """MATLAB's linspace(-1, 1, n) (which is [1] for n = 1)."""
    if n == 1:
        return torch.ones(1, dtype=dtype, device=device)
    return torch.linspace(-1, 1, n, dtype=dtype, device=device)


class _GridGenerator(Layer):
    """Shared by the grid generators: output size ``(N, 2, Ho, Wo)`` and the cached
    normalised coordinates (``xxyy``)."""

    PROPERTIES = {"Ho": 0, "Wo": 0}
    TRANSIENT = {"xxyy": None}

    def _grid(self, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(ys, xs): linspace(-1, 1) over the Ho rows and the Wo columns."""
        ho, wo = int(self.Ho), int(self.Wo)
        key = (ho, wo, like.dtype, like.device)
        if self.xxyy is None or self.xxyy[0] != key:
            self.xxyy = (key, _linspace(ho, like.dtype, like.device),
                         _linspace(wo, like.dtype, like.device))
        return self.xxyy[1], self.xxyy[2]

    def _params(self, a: torch.Tensor, count: int) -> torch.Tensor:
        n = a.shape[0] if a.dim() > 0 else 0
        if a.dim() < 2 or a.numel() != count * n:
            raise ValueError(f"{self.type_name}: expected an N x {count} x 1 x 1 array of "
                             f"transforms, got shape {tuple(a.shape)}")
        return a.reshape(n, count)

    def get_output_sizes(self, input_sizes):
        return [(_sizes(input_sizes)[0][0], 2, _num(self.Ho), _num(self.Wo))]

    def reset(self):
        self.xxyy = None

    def move(self, device):
        self.xxyy = None


@register_layer
class AffineGridGenerator(_GridGenerator):
    """Affine sampling grids for :class:`BilinearSampler`: input ``A`` is ``N x 6 x 1 x 1``
    (MatConvNet's ``1 x 1 x 6 x N``), ``[c1 .. c6]``; over the normalised output
    coordinates ``y = linspace(-1, 1, Ho)``, ``x = linspace(-1, 1, Wo)``::

        grid[:, 0] = c1 y + c2 x + c5        (vertical)
        grid[:, 1] = c3 y + c4 x + c6        (horizontal)

    (``[1 0 0 1 0 0]`` is the identity).  The output is ``N x 2 x Ho x Wo``."""

    type_name = "dagnn.AffineGridGenerator"

    def forward(self, inputs, params):
        a = inputs[0]
        c = self._params(a, 6)
        ys, xs = self._grid(a)
        y, x = ys.view(1, -1, 1), xs.view(1, 1, -1)

        def col(k):
            return c[:, k].view(-1, 1, 1)
        g0 = col(0) * y + col(1) * x + col(4)
        g1 = col(2) * y + col(3) * x + col(5)
        return [torch.stack((g0, g1), dim=1)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        a = inputs[0]
        ys, xs = self._grid(a)
        dy = der_outputs[0]
        d0, d1 = dy[:, 0], dy[:, 1]
        y, x = ys.view(1, -1, 1), xs.view(1, 1, -1)
        da = torch.stack(((d0 * y).sum((1, 2)), (d0 * x).sum((1, 2)),
                          (d1 * y).sum((1, 2)), (d1 * x).sum((1, 2)),
                          d0.sum((1, 2)), d1.sum((1, 2))), dim=1)
        return [da.reshape(a.shape)], []


@register_layer
class UniformScalingGridGenerator(_GridGenerator):
    """Scaling-and-translation sampling grids for :class:`BilinearSampler`: input ``T`` is
    ``N x 3 x 1 x 1`` = ``[s, ty, tx]`` (MatConvNet's ``1 x 1 x 3 x N``)::

        grid[:, 0] = s y + ty,   grid[:, 1] = s x + tx

    over ``y = linspace(-1, 1, Ho)``, ``x = linspace(-1, 1, Wo)``; output ``N x 2 x Ho x Wo``."""

    type_name = "dagnn.UniformScalingGridGenerator"

    def forward(self, inputs, params):
        t = inputs[0]
        p = self._params(t, 3)
        ys, xs = self._grid(t)
        s, ty, tx = (p[:, k].view(-1, 1, 1) for k in range(3))
        ho, wo = ys.numel(), xs.numel()
        g0 = (s * ys.view(1, -1, 1) + ty).expand(-1, ho, wo)
        g1 = (s * xs.view(1, 1, -1) + tx).expand(-1, ho, wo)
        return [torch.stack((g0, g1), dim=1)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        t = inputs[0]
        ys, xs = self._grid(t)
        dy = der_outputs[0]
        d0, d1 = dy[:, 0], dy[:, 1]
        ds = (d0 * ys.view(1, -1, 1)).sum((1, 2)) + (d1 * xs.view(1, 1, -1)).sum((1, 2))
        dt = torch.stack((ds, d0.sum((1, 2)), d1.sum((1, 2))), dim=1)
        return [dt.reshape(t.shape)], []


# ----------------------------------------------------------------------------- interoperability
#
# Layers that MatConvNet lacks but imported networks (ONNX, PyTorch: matconvnet.io.load_onnx,
# matconvnet.io.from_torch) need.  Each computes its forward and backward passes by hand, as
# the other layers do.  Parameters whose shape matters (a PReLU slope, a BinaryOp constant)
# are reshaped to a 4-D N x C x H x W shape kept in a property, so that they survive MAT
# files, which drop trailing singleton dimensions.


def _shape4(value: Any, name: str) -> Optional[Tuple[int, int, int, int]]:
    """A saved N x C x H x W shape (MATLAB may hand back fewer entries: pad with ones)."""
    if _is_empty(value):
        return None
    v = _numbers(value, name)
    if len(v) > 4 or any(not isinstance(a, int) or a < 1 for a in v):
        raise ValueError(f"{name}: expected up to 4 positive integers (N, C, H, W), "
                         f"got {value!r}")
    return tuple(v + [1] * (4 - len(v)))  # type: ignore[return-value]


def _param4(p: torch.Tensor, shape: Optional[Tuple[int, ...]], name: str) -> torch.Tensor:
    """A parameter viewed with its 4-D shape (default: one value per channel, (1, n, 1, 1))."""
    if shape is None:
        shape = (1, p.numel(), 1, 1)
    if p.numel() != int(np.prod(shape)):
        raise ValueError(f"{name}: expected a parameter with {int(np.prod(shape))} elements "
                         f"(shape {tuple(shape)}), got shape {tuple(p.shape)}")
    return p.reshape(shape)


def _broadcast_sizes(a: tuple, b: tuple) -> tuple:
    """NumPy broadcasting of two (N, C, H, W) sizes (NaN where unknown)."""
    out = []
    for x, y in zip(a, b):
        if _isnan(x) or _isnan(y):
            out.append(y if x == 1 else x if y == 1 else NAN)
        elif x != y and 1 not in (x, y):
            raise ValueError(f"sizes {a} and {b} do not broadcast")
        else:
            out.append(max(x, y))
    return tuple(out)


@register_layer
class PReLU(ElementWise):
    r"""Parametric ReLU: ``y = x`` where ``x > 0``, ``y = a .* x`` elsewhere, with the slope
    ``a`` a parameter broadcast over ``x``.  ``slopeShape`` is the N x C x H x W shape the
    slope is viewed with (empty: one slope per channel, ``(1, C, 1, 1)``, or one for all
    channels when ``a`` has a single element).  Derivatives::

        dzdx = dzdy       where x > 0,   a .* dzdy elsewhere
        dzda = sum over the broadcast dimensions of dzdy .* min(x, 0)
    """

    type_name = "dagnn.PReLU"
    PROPERTIES = {"slopeShape": [], "numChannels": None}

    def _slope(self, params, x):
        a = _param4(params[0], _shape4(self.slopeShape, "slopeShape"), "slope")
        T.expect_broadcastable(a, "slope", x.shape, "the input")
        return a

    def forward(self, inputs, params):
        x = inputs[0]
        a = _like(self._slope(params, x), x)
        return [torch.where(x > 0, x, a * x)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        x, dy = inputs[0], der_outputs[0]
        a4 = self._slope(params, x)
        a = _like(a4, x)
        dx = torch.where(x > 0, dy, a * dy)
        da = (dy * x.clamp(max=0)).sum_to_size(a4.shape).reshape(params[0].shape)
        return [dx], [da]

    def init_params(self):
        shape = _shape4(self.slopeShape, "slopeShape")
        if shape is None:
            if _is_empty(self.numChannels):
                raise ValueError("numChannels: set the number of channels (or slopeShape) to "
                                 "initialise the parameters")
            shape = (int(_numbers(self.numChannels, "numChannels")[0]),)
        return [torch.full(shape, 0.25, dtype=torch.float32)]


_BINARY_OPS = ("add", "sub", "mul", "div")


@register_layer
class BinaryOp(ElementWise):
    r"""Elementwise ``y = a op b`` with NumPy broadcasting, ``op`` one of ``add``, ``sub``,
    ``mul``, ``div``.  The operands are the two inputs, or the input and a parameter
    (a constant such as a bias or a scale) viewed with the N x C x H x W shape
    ``constShape``; with ``reverse`` the parameter is the left operand (``c - x``, ``c / x``).
    Derivatives, each summed over the dimensions along which its operand was broadcast::

        add: dzda = dzdy,       dzdb = dzdy
        sub: dzda = dzdy,       dzdb = -dzdy
        mul: dzda = dzdy .* b,  dzdb = dzdy .* a
        div: dzda = dzdy ./ b,  dzdb = -dzdy .* a ./ b.^2
    """

    type_name = "dagnn.BinaryOp"
    PROPERTIES = {"op": "add", "constShape": [], "reverse": False}

    def _set_op(self, value):
        if not isinstance(value, str) or value.lower() not in _BINARY_OPS:
            raise ValueError(f"op: expected one of {', '.join(_BINARY_OPS)}; got {value!r}")
        return value.lower()

    def _operands(self, inputs, params):
        if params:
            c = _like(_param4(params[0], _shape4(self.constShape, "constShape"), "constant"),
                      inputs[0])
            a, b = (c, inputs[0]) if self.reverse else (inputs[0], c)
        elif len(inputs) != 2:
            raise ValueError(f"inputs: expected 2 operands (or 1 and a parameter), got "
                             f"{len(inputs)}")
        else:
            a, b = inputs[0], inputs[1]
        try:
            torch.broadcast_shapes(a.shape, b.shape)
        except RuntimeError:
            raise ValueError(f"operands: shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                             f"broadcast") from None
        return a, b

    def forward(self, inputs, params):
        a, b = self._operands(inputs, params)
        if self.op == "add":
            return [a + b]
        if self.op == "sub":
            return [a - b]
        if self.op == "mul":
            return [a * b]
        return [a / b]

    def backward(self, inputs, params, der_outputs, outputs=None):
        a, b = self._operands(inputs, params)
        dy = der_outputs[0]
        if self.op == "add":
            da, db = dy, dy
        elif self.op == "sub":
            da, db = dy, -dy
        elif self.op == "mul":
            da, db = dy * b, dy * a
        else:
            da = dy / b
            db = -dy * a / (b * b)
        da, db = da.sum_to_size(a.shape), db.sum_to_size(b.shape)
        if not params:
            return [da, db], []
        dx, dc = (db, da) if self.reverse else (da, db)
        return [dx], [dc.reshape(params[0].shape)]

    def get_output_sizes(self, input_sizes):
        sizes = _sizes(input_sizes)
        if len(sizes) >= 2:
            return [_broadcast_sizes(sizes[0], sizes[1])]
        shape = _shape4(self.constShape, "constShape")
        return [_broadcast_sizes(sizes[0], shape) if shape is not None else sizes[0]]

    def get_receptive_fields(self):
        return [[_identity_rf()] for _ in range(self._num_inputs(1))]


@register_layer
class Reshape(Layer):
    """Reshape each item of the batch: the ``N x C x H x W`` input becomes
    ``N x shape(1) x shape(2) x shape(3)`` in row-major (C) order, as ``torch.reshape`` and
    ONNX's ``Reshape`` do.  One entry of ``shape`` may be -1 (inferred): ``[-1, 1, 1]``
    flattens to ``N x CHW x 1 x 1``.  The derivative is reshaped back."""

    type_name = "dagnn.Reshape"
    PROPERTIES = {"shape": [-1, 1, 1]}

    def _set_shape(self, value):
        v = _numbers(value, "shape")
        if len(v) != 3 or any(not isinstance(a, int) or (a < 1 and a != -1) for a in v) \
                or v.count(-1) > 1:
            raise ValueError(f"shape: expected 3 positive integers [C, H, W] (one may be -1), "
                             f"got {value!r}")
        return v

    def _target(self, size) -> List[Any]:
        shape = list(self.shape)
        total = _prod(size[1:])
        if -1 in shape:
            known = _prod([a for a in shape if a != -1])
            shape[shape.index(-1)] = NAN if _isnan(total) else _num(total / known)
        elif not _isnan(total) and _prod(shape) != total:
            raise ValueError(f"shape: cannot reshape {tuple(size[1:])} ({total} values per "
                             f"item) to {tuple(shape)}")
        return shape

    def forward(self, inputs, params):
        x = inputs[0]
        shape = self._target(tuple(x.shape))
        if any(isinstance(a, float) for a in shape):
            raise ValueError(f"shape: cannot reshape {tuple(x.shape[1:])} to {self.shape}")
        return [x.reshape(x.shape[0], *shape)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [der_outputs[0].reshape(inputs[0].shape)], []

    def get_output_sizes(self, input_sizes):
        x = _sizes(input_sizes)[0]
        return [(x[0], *self._target(x))]


@register_layer
class Permute(Layer):
    """Permute the dimensions of the ``N x C x H x W`` input: ``y = x.permute(perm)``, with
    ``perm`` 0-based axes of N x C x H x W (``[0, 2, 3, 1]`` gives N x H x W x C).  The
    derivative is permuted back."""

    type_name = "dagnn.Permute"
    PROPERTIES = {"perm": [0, 1, 2, 3]}

    def _set_perm(self, value):
        v = _numbers(value, "perm")
        if sorted(v) != [0, 1, 2, 3]:
            raise ValueError(f"perm: expected a permutation of [0, 1, 2, 3], got {value!r}")
        return v

    def forward(self, inputs, params):
        return [inputs[0].permute(*self.perm).contiguous()]

    def backward(self, inputs, params, der_outputs, outputs=None):
        inverse = [self.perm.index(k) for k in range(4)]
        return [der_outputs[0].permute(*inverse).contiguous()], []

    def get_output_sizes(self, input_sizes):
        x = _sizes(input_sizes)[0]
        return [tuple(x[k] for k in self.perm)]


@register_layer
class Pad(Layer):
    """Constant padding of the spatial borders: ``pad = [top, bottom, left, right]`` rows
    and columns of ``value`` are added; a negative entry removes rows or columns instead
    (a crop, as ONNX's ``Pad`` and ``Slice`` express it).  The derivative crops the added
    borders away and puts zeros where rows or columns were removed."""

    type_name = "dagnn.Pad"
    PROPERTIES = {"pad": [0, 0, 0, 0], "value": 0.0}

    def _set_pad(self, value):
        v = _numbers(value, "pad")
        if len(v) == 1:
            v = v * 4
        elif len(v) == 2:
            v = [v[0], v[0], v[1], v[1]]
        if len(v) != 4 or any(not isinstance(a, int) for a in v):
            raise ValueError(f"pad: expected 1, 2 or 4 integers [top bottom left right], "
                             f"got {value!r}")
        return v

    def _torch_pad(self, sign: int = 1) -> Tuple[int, int, int, int]:
        t, b, l, r = (sign * int(p) for p in self.pad)
        return (l, r, t, b)

    def forward(self, inputs, params):
        x = inputs[0]
        t, b, l, r = self.pad
        if x.shape[2] + t + b < 1 or x.shape[3] + l + r < 1:
            raise ValueError(f"pad: {self.pad} leaves nothing of an input of shape "
                             f"{tuple(x.shape)}")
        return [torch.nn.functional.pad(x, self._torch_pad(), value=float(self.value))]

    def backward(self, inputs, params, der_outputs, outputs=None):
        return [torch.nn.functional.pad(der_outputs[0], self._torch_pad(-1))], []

    def get_output_sizes(self, input_sizes):
        n, c, h, w = _sizes(input_sizes)[0]
        t, b, l, r = self.pad
        return [(n, c, NAN if _isnan(h) else h + t + b, NAN if _isnan(w) else w + l + r)]

    def get_receptive_fields(self):
        t, b, l, r = self.pad
        return [[(G.RF(1, 1, 1 - t), G.RF(1, 1, 1 - l))]]


@register_layer
class Clip(ElementWise):
    """``y = min(max(x, min), max)`` (ReLU6 is ``min = 0, max = 6``).  The derivative is
    ``dzdy`` where ``min <= x <= max`` and 0 elsewhere (PyTorch's ``clamp`` convention)."""

    type_name = "dagnn.Clip"
    PROPERTIES = {"min": -math.inf, "max": math.inf}

    def _bounds(self):
        lo, hi = (float(_numbers(v, k)[0]) for k, v in (("min", self.min), ("max", self.max)))
        return lo, hi

    def forward(self, inputs, params):
        lo, hi = self._bounds()
        return [inputs[0].clamp(min=lo, max=hi)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        lo, hi = self._bounds()
        x = inputs[0]
        inside = (x >= lo) & (x <= hi)
        return [der_outputs[0] * inside.to(x.dtype)], []


@register_layer
class HardSigmoid(ElementWise):
    """``y = max(0, min(1, alpha x + beta))``; the derivative is ``alpha dzdy`` where
    ``0 < alpha x + beta < 1`` and 0 elsewhere."""

    type_name = "dagnn.HardSigmoid"
    PROPERTIES = {"alpha": 0.2, "beta": 0.5}

    def forward(self, inputs, params):
        return [(inputs[0] * float(self.alpha) + float(self.beta)).clamp(0, 1)]

    def backward(self, inputs, params, der_outputs, outputs=None):
        z = inputs[0] * float(self.alpha) + float(self.beta)
        inside = ((z > 0) & (z < 1)).to(z.dtype)
        return [der_outputs[0] * inside * float(self.alpha)], []
