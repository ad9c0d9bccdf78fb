"""Checks that a network read from a file has MatConvNet's structure (docs/net-structure.md).

``io.load`` runs :func:`check_net` on every SimpleNN or DagNN net it reads, so that a damaged
or foreign file fails there, with a :class:`~._values.Malformed` error naming the layer and
the field (as ``net.layers{3} ('conv1')``), instead of deep inside ``vl_simplenn`` or
``DagNN.eval``.  Only what MatConvNet itself relies on is required:

* SimpleNN: every layer is a struct with a string ``type``; the fields a layer type cannot do
  without are present (``weights`` -- or the legacy ``filters`` -- for conv, convt and
  bnorm; ``pool`` for pool; ``param`` for spnorm and noffset; the others have defaults,
  see ``vl_simplenn_tidy``); weights are a cell of numeric arrays (conv/convt: filters
  and bias; bnorm: multipliers and biases of one length, and moments);
* DagNN: ``vars``, ``params`` and ``layers`` are struct arrays with string names, unique
  within each; a layer's ``type`` is a string, its ``inputs``/``outputs``/``params`` are
  names (each param it uses is in ``params``; MatConvNet's own classes get the inputs and
  params they read, ``DAG_ARITY``), its ``block`` a struct; parameter values are numeric,
  learning rates and weight decays numbers;
* both: ``meta`` is a struct; the sliding-window fields of convolution and pooling layers
  (``pad``, ``stride``, ``pool``, ``dilate``, ``upsample``, ``crop``, ``numGroups``,
  ``poolSize``) are whole numbers from 0 to 2^31 - 1, the range of MatConvNet's C ints.

Layer types and classes that are not known are accepted here (``vl_simplenn`` reports
them, ``load_dagnn`` lists them); other option values are checked by the blocks.
"""
from __future__ import annotations

import numbers
from typing import Any, List

import numpy as np
import torch

from ._values import Malformed, show_path

# SimpleNN fields a layer type cannot do without (alternatives in a tuple)
REQUIRED = {
    "conv": (("weights", "filters"),),
    "convt": (("weights", "filters"),),
    "bnorm": (("weights",),),
    "pool": (("pool",),),
    "spnorm": (("param",),),
    "noffset": (("param",),),
}
GEOMETRY = ("pad", "stride", "pool", "dilate", "upsample", "crop", "numGroups", "poolSize")
# layer types and DagNN classes whose GEOMETRY fields are sliding-window sizes
_WINDOWED = frozenset({"conv", "convt", "pool", "dagnn.Conv", "dagnn.ConvTranspose",
                       "dagnn.Pooling"})
_INT_LIMIT = 2 ** 31
# MatConvNet's DagNN classes (``dagnn.*``) take at least one input and give at least one
# output; these read more inputs or params unconditionally: class -> (inputs, params)
DAG_ARITY = {"dagnn.Loss": (2, 0), "dagnn.PDist": (2, 0), "dagnn.LossSmoothL1": (3, 0),
             "dagnn.BilinearSampler": (2, 0), "dagnn.ROIPooling": (2, 0),
             "dagnn.BatchNorm": (1, 3), "dagnn.PReLU": (1, 1)}


def check_net(net: dict, path: tuple) -> None:
    """Raise Malformed where ``net`` (as ``io.load`` returns it) breaks MatConvNet's
    structure; ``path`` is where the net sits in the file (``('net',)`` or ``()``)."""
    meta = net.get("meta", {})
    if not (isinstance(meta, dict) or _empty(meta)):
        raise Malformed(f"{show_path(path + ('meta',))}: expected a struct, found "
                        f"{_describe(meta)}")
    if all(k in net for k in ("vars", "params", "layers")):
        check_dagnn(net, path)
    else:
        check_simplenn(net, path)


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"a {tuple(v.shape)} tensor"
    if isinstance(v, np.ndarray):
        return f"a {' x '.join(map(str, v.shape))} {v.dtype} array"
    if isinstance(v, (list, dict)) and not v:
        return "an empty array" if isinstance(v, list) else "a struct without fields"
    if isinstance(v, dict):
        return "a struct"
    if isinstance(v, list):
        return f"a cell/vector of {len(v)} elements"
    if v is None:
        return "an unreadable value"
    return f"{type(v).__name__} {v!r}"[:80]


def _empty(v: Any) -> bool:
    """MATLAB's [] as io.load returns it."""
    return isinstance(v, list) and not v


def _where(path: tuple, i: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    label = show_path(path + (i,))
    return f"{label} ({name!r})" if isinstance(name, str) and name else label


# ----------------------------------------------------------------------------- SimpleNN


def check_simplenn(net: dict, path: tuple) -> None:
    layers = net.get("layers")
    if not isinstance(layers, list):
        raise Malformed(f"{show_path(path + ('layers',))}: expected a cell array of layers, "
                        f"found {_describe(layers)}")
    for i, layer in enumerate(layers):
        _check_layer(layer, path + ("layers",), i)


def _check_layer(layer: Any, path: tuple, i: int) -> None:
    where = _where(path, i, layer)
    if not isinstance(layer, dict):
        raise Malformed(f"{where}: expected a layer struct, found {_describe(layer)}")
    if "type" not in layer:
        raise Malformed(f"{where}: missing required field 'type'")
    ltype = layer["type"]
    if not isinstance(ltype, str) or not ltype:
        raise Malformed(f"{where}: field 'type' must be a layer type name, found "
                        f"{_describe(ltype)}")
    if "name" in layer and not (isinstance(layer["name"], str) or _empty(layer["name"])):
        raise Malformed(f"{where}: field 'name' must be a string, found "
                        f"{_describe(layer['name'])}")
    for options in REQUIRED.get(ltype, ()):
        if not any(k in layer for k in options):
            raise Malformed(f"{where}: missing required field {options[0]!r} of a "
                            f"{ltype} layer")
    _check_geometry(layer, ltype, where)
    if "weights" in layer:
        _check_weights(layer["weights"], ltype, where)


def _check_weights(weights: Any, ltype: str, where: str) -> None:
    if not isinstance(weights, list):
        raise Malformed(f"{where}: field 'weights' must be a cell array of arrays, found "
                        f"{_describe(weights)}")
    if ltype not in REQUIRED or ltype in ("pool", "spnorm", "noffset"):
        return  # custom and unknown layer types keep what they have
    for j, w in enumerate(weights):
        if not (isinstance(w, torch.Tensor) or _empty(w)):
            raise Malformed(f"{where}: weights{{{j + 1}}} must be a numeric array, found "
                            f"{_describe(w)}")
    if ltype in ("conv", "convt"):
        if not 1 <= len(weights) <= 2:
            raise Malformed(f"{where}: a {ltype} layer has filters and biases as weights, "
                            f"found {len(weights)} weights")
    elif ltype == "bnorm":
        if len(weights) not in (2, 3) or not all(isinstance(w, torch.Tensor)
                                                 for w in weights):
            raise Malformed(f"{where}: a bnorm layer has 2 or 3 numeric weights (multipliers, "
                            f"biases, moments), found {len(weights)}")
        g, b = weights[0], weights[1]
        if g.numel() != b.numel():
            raise Malformed(f"{where}: bnorm multipliers and biases differ in length "
                            f"({g.numel()} and {b.numel()})")


def _check_geometry(item: dict, ltype: str, where: str) -> None:
    if ltype not in _WINDOWED:
        return
    for k in GEOMETRY:
        if k in item and not _whole_numbers(item[k]):
            raise Malformed(f"{where}: field {k!r} must be whole numbers from 0 to "
                            f"{_INT_LIMIT - 1}, found {_describe(item[k])}")


def _whole_numbers(v: Any) -> bool:
    values = v if isinstance(v, list) else [v]
    return all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
               and 0 <= x < _INT_LIMIT for x in values)


# ----------------------------------------------------------------------------- DagNN


def check_dagnn(net: dict, path: tuple) -> None:
    for key in ("vars", "params", "layers"):
        items = net[key]
        if not isinstance(items, list):
            raise Malformed(f"{show_path(path + (key,))}: expected a struct array, found "
                            f"{_describe(items)}")
        _check_named(items, path + (key,))
    for i, p in enumerate(net["params"]):
        _check_param(p, _where(path + ("params",), i, p))
    declared = {p["name"] for p in net["params"]}
    for i, layer in enumerate(net["layers"]):
        _check_dag_layer(layer, _where(path + ("layers",), i, layer), declared)


def _check_named(items: List[Any], path: tuple) -> None:
    seen = set()
    for i, item in enumerate(items):
        where = _where(path, i, item)
        if not isinstance(item, dict):
            raise Malformed(f"{where}: expected a struct, found {_describe(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise Malformed(f"{where}: field 'name' must be a non-empty string, found "
                            f"{_describe(name)}" if "name" in item
                            else f"{where}: missing required field 'name'")
        if name in seen:
            raise Malformed(f"{where}: the name {name!r} is used twice")
        seen.add(name)


def _check_param(p: dict, where: str) -> None:
    value = p.get("value", [])
    if not (isinstance(value, torch.Tensor) or _empty(value)):
        raise Malformed(f"{where}: field 'value' must be a numeric array, found "
                        f"{_describe(value)}")
    for k in ("learningRate", "weightDecay"):
        if k in p and not (isinstance(p[k], numbers.Real) and not isinstance(p[k], bool)):
            raise Malformed(f"{where}: field {k!r} must be a number, found {_describe(p[k])}")


def _names(v: Any) -> List[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise TypeError


def _check_dag_layer(layer: dict, where: str, declared: set) -> None:
    t = layer.get("type")
    if not isinstance(t, str) or not t:
        raise Malformed(f"{where}: field 'type' must be a layer class name, found "
                        f"{_describe(t)}" if "type" in layer
                        else f"{where}: missing required field 'type'")
    count = {}
    for k in ("inputs", "outputs", "params"):
        try:
            names = _names(layer.get(k, []))
        except TypeError:
            raise Malformed(f"{where}: field {k!r} must be a cell array of names, found "
                            f"{_describe(layer.get(k))}") from None
        count[k] = len(names)
        if k == "params":
            missing = [n for n in names if n not in declared]
            if missing:
                raise Malformed(f"{where}: uses params {missing}, which are not in params "
                                f"(a dangling reference)")
    block = layer.get("block", {})
    if not (isinstance(block, dict) or _empty(block)):
        raise Malformed(f"{where}: field 'block' must be a struct of properties, found "
                        f"{_describe(block)}")
    if t.startswith("dagnn."):
        _check_arity(t, count, block, where)
    if isinstance(block, dict):
        _check_geometry(block, t, f"{where}.block")


def _check_arity(t: str, count: dict, block: Any, where: str) -> None:
    inputs, params = DAG_ARITY.get(t, (1, 0))
    if t == "dagnn.Scale":  # x .* a (+ b): a and b are params or further inputs
        bias = block.get("hasBias", True) if isinstance(block, dict) else True
        need = 3 if bias is True or (isinstance(bias, numbers.Real) and bias) else 2
        if count["inputs"] + count["params"] < need:
            raise Malformed(f"{where}: a {t} layer takes {need} inputs and params together "
                            f"(x, a{', b' if need == 3 else ''}), found "
                            f"{count['inputs'] + count['params']}")
    for k, least in (("inputs", inputs), ("outputs", 1), ("params", params)):
        if count[k] < least:
            raise Malformed(f"{where}: a {t} layer takes at least {least} {k[:-1]}"
                            f"{'s' if least > 1 else ''}, found {count[k]}")
