"""MatConvNet's H x W x C x N layout <-> ours (N x C x H x W), per layer type.

The one place where weights change layout (DESIGN.md: only ``io`` knows H x W x C x N).  A
weight's *kind* says how it converts:

=========== ============================== ============================= ==================
kind        MatConvNet (MATLAB dims)       Python (torch tensor)          used by
=========== ============================== ============================= ==================
``filters`` ``FH x FW x C x K``            ``K x C x FH x FW``            conv, convt,
                                           (``permute(3, 2, 0, 1)``)      dagnn.Conv, ...
``bias``    ``1 x K`` (any shape)          ``(K,)``; saved ``1 x K``      conv, convt
``vector``  ``C x 1`` (any shape)          ``(C,)``; saved ``C x 1``      bnorm g, b
``moments`` ``C x 2`` ``[mu sigma]``       ``(C, 2)`` unchanged           bnorm moments
``data``    ``H x W x C x N``              ``N x C x H x W``              dagnn.Scale
``raw``     any                            unchanged                      unknown layers
=========== ============================== ============================= ==================

``meta.normalization.averageImage`` (``H x W x C``) becomes a ``C x H x W`` tensor.  MATLAB
drops trailing singleton dimensions (a one-filter, depth-one bank is ``FH x FW``): arrays
are read as 4-D (3-D for images) first, and written with trailing singletons dropped.
An empty weight (``[]`` in MATLAB, a layer without bias) is an empty tensor of shape
``(0,)`` with the class of the layer's other weights, and is written back as ``0 x 0``.

Below the tables, the walkers that apply them to whole networks (SimpleNN layers, DagNN
params, training checkpoints' solver states), in both directions.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ._values import (Cell, Context, Malformed, Struct, check_name, flat_items, from_python,
                      is_vector_shape, matlab_array, native, new_cell, show_path,
                      struct_array, tensor_to_numpy, to_python)

__all__ = [
    "FILTERS", "BIAS", "VECTOR", "MOMENTS", "DATA", "RAW",
    "SIMPLENN_WEIGHTS", "DAGNN_PARAMS", "simplenn_weight_kind", "dagnn_param_kinds",
    "weight_from_mat", "weight_to_mat", "image_from_mat", "image_to_mat",
]

FILTERS, BIAS, VECTOR, MOMENTS, DATA, RAW = (
    "filters", "bias", "vector", "moments", "data", "raw")

# SimpleNN layer type -> kind of weights{1}, weights{2}, ...
SIMPLENN_WEIGHTS: Dict[str, tuple] = {
    "conv": (FILTERS, BIAS),
    "convt": (FILTERS, BIAS),
    "bnorm": (VECTOR, VECTOR, MOMENTS),
}
# Legacy (<= beta16) SimpleNN fields holding weights.
SIMPLENN_LEGACY: Dict[str, str] = {"filters": FILTERS, "biases": BIAS}
# DagNN layer class -> kind of its params{1}, params{2}, ...
DAGNN_PARAMS: Dict[str, tuple] = {
    "dagnn.Conv": (FILTERS, BIAS),
    "dagnn.ConvTranspose": (FILTERS, BIAS),
    "dagnn.BatchNorm": (VECTOR, VECTOR, MOMENTS),
    "dagnn.Scale": (DATA, DATA),
}


def simplenn_weight_kind(layer_type: Any, j: int) -> str:
    kinds = SIMPLENN_WEIGHTS.get(layer_type, ()) if isinstance(layer_type, str) else ()
    return kinds[j] if j < len(kinds) else RAW


def dagnn_param_kinds(layers: Sequence[dict]) -> Dict[str, str]:
    """Param name -> kind, from the first DagNN layer that uses it."""
    kinds: Dict[str, str] = {}
    for layer in layers if isinstance(layers, (list, tuple)) else []:
        if not isinstance(layer, dict):
            continue
        names = layer.get("params")
        names = [names] if isinstance(names, str) else \
            names if isinstance(names, (list, tuple)) else []
        table = DAGNN_PARAMS.get(layer.get("type"), ()) \
            if isinstance(layer.get("type"), str) else ()
        for j, name in enumerate(names):
            if isinstance(name, str):
                kinds.setdefault(name, table[j] if j < len(table) else RAW)
    return kinds


# ----------------------------------------------------------------------------- one array


def _as_nd(a: np.ndarray, n: int, what: str) -> np.ndarray:
    if a.ndim > n:
        raise ValueError(f"{what}: expected at most {n} dimensions, got shape {a.shape}")
    return a.reshape(a.shape + (1,) * (n - a.ndim))


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(native(a), order="C", copy=True))


def weight_from_mat(kind: str, a: np.ndarray) -> torch.Tensor:
    """A MATLAB array (MATLAB dims) -> a tensor in our layout."""
    a = native(np.asarray(a))
    if a.size == 0:
        return _tensor(np.zeros((0,), a.dtype))
    if kind == FILTERS:
        return _tensor(_as_nd(a, 4, "filters").transpose(3, 2, 0, 1))
    if kind in (BIAS, VECTOR):
        return _tensor(a.reshape(-1, order="F"))
    if kind == DATA:
        return _tensor(_as_nd(a, 4, "data").transpose(3, 2, 0, 1))
    return _tensor(a)  # MOMENTS (C x 2, unchanged) and RAW


def _weight_at(path: tuple, kind: str, a: np.ndarray) -> torch.Tensor:
    """:func:`weight_from_mat` for a value read from a file at ``path``."""
    try:
        return weight_from_mat(kind, a)
    except ValueError as e:
        raise Malformed(f"{show_path(path)}: {e}") from None


def weight_to_mat(kind: str, w: Any) -> np.ndarray:
    """A tensor (or array) in our layout -> a MATLAB array (MATLAB dims)."""
    a = tensor_to_numpy(w)
    if a.size == 0:
        return np.zeros((0, 0), a.dtype)
    if kind == FILTERS:
        if a.ndim != 4:
            raise ValueError(f"filters: expected a 4-D K x C x FH x FW tensor, got shape "
                             f"{tuple(a.shape)}")
        return matlab_array(a.transpose(2, 3, 1, 0))
    if kind == BIAS:
        return a.reshape(1, -1)
    if kind == VECTOR:
        return a.reshape(-1, 1)
    if kind == DATA:
        if a.ndim > 4:
            raise ValueError(f"data: expected at most 4 dimensions (N x C x H x W), got shape "
                             f"{tuple(a.shape)}")
        a = a.reshape((1,) * (4 - a.ndim) + a.shape)
        return matlab_array(a.transpose(2, 3, 1, 0))
    return matlab_array(a)  # MOMENTS and RAW


def image_from_mat(a: np.ndarray) -> Optional[torch.Tensor]:
    """``H x W x C`` (or ``H x W``) -> ``C x H x W``; None when ``a`` is not an image."""
    a = native(np.asarray(a))
    if a.size == 0 or a.ndim > 3 or a.dtype.kind not in "fiub":
        return None
    return _tensor(_as_nd(a, 3, "averageImage").transpose(2, 0, 1))


def image_to_mat(t: Any) -> np.ndarray:
    """``C x H x W`` (or a per-channel ``(C,)``) -> ``H x W x C``."""
    a = tensor_to_numpy(t)
    if a.size == 0:
        return np.zeros((0, 0), a.dtype)
    if a.ndim == 1:
        a = a.reshape(-1, 1, 1)
    if a.ndim != 3:
        raise ValueError(f"averageImage: expected a C x H x W tensor, got shape {a.shape}")
    return matlab_array(a.transpose(1, 2, 0))


def _is_array(v: Any) -> bool:
    return isinstance(v, torch.Tensor) or (
        isinstance(v, np.ndarray) and v.dtype.kind in "biufc")


def _is_numeric_mat(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind in "biufc"


# ----------------------------------------------------------------------------- networks: read


def is_dagnn_mat(fields: Dict[str, Any]) -> bool:
    return all(k in fields for k in ("vars", "params", "layers")) \
        and isinstance(fields["layers"], Struct)


def is_simplenn_mat(fields: Dict[str, Any]) -> bool:
    layers = fields.get("layers")
    if is_dagnn_mat(fields) or not isinstance(layers, Cell):
        return False
    return all(isinstance(l, Struct) and "type" in l.fields for l in flat_items(layers.items))


def net_to_python(fields: Dict[str, Any], path: tuple, ctx: Context) -> dict:
    """The fields of a SimpleNN or DagNN struct (or a model file's variables) -> a net."""
    if is_dagnn_mat(fields):
        return _dagnn_to_python(fields, path, ctx)
    out = {}
    for k, v in fields.items():
        p = path + (k,)
        if k == "layers" and isinstance(v, Cell):
            out[k] = [_layer_to_python(l, p + (i,), ctx)
                      for i, l in enumerate(flat_items(v.items))]
        elif k == "meta":
            out[k] = _meta_to_python(v, p, ctx)
        elif k == "normalization":  # legacy top-level field
            out[k] = _normalization_to_python(v, p, ctx)
        else:
            out[k] = to_python(v, p, ctx)
    return out


def _weights_to_python(items: list, kinds: List[str], path: tuple, ctx: Context) -> list:
    out: List[Any] = []
    dtype = None
    for j, (w, kind) in enumerate(zip(items, kinds)):
        if _is_numeric_mat(w):
            t = _weight_at(path + (j,), kind, w)
            if t.numel() and dtype is None:
                dtype = t.dtype
            out.append(t)
        else:
            out.append(to_python(w, path + (j,), ctx))
    if dtype is not None:  # empty weights take the class of the others
        out = [t.to(dtype) if isinstance(t, torch.Tensor) and t.numel() == 0
               and t.is_floating_point() else t for t in out]
    return out


def _layer_to_python(s: Any, path: tuple, ctx: Context) -> Any:
    if not (isinstance(s, Struct) and s.is_scalar()):
        return to_python(s, path, ctx)
    d = s.items.flat[0]
    ltype = d.get("type")
    out = {}
    for k in s.fields:
        v, p = d[k], path + (k,)
        if k == "weights" and isinstance(v, Cell) and is_vector_shape(v.items.shape):
            items = flat_items(v.items)
            kinds = [simplenn_weight_kind(ltype, j) for j in range(len(items))]
            out[k] = _weights_to_python(items, kinds, p, ctx)
        elif k in SIMPLENN_LEGACY and _is_numeric_mat(v) and ltype in SIMPLENN_WEIGHTS:
            out[k] = _weight_at(p, SIMPLENN_LEGACY[k], v)
        else:
            out[k] = to_python(v, p, ctx)
    return out


def _normalization_to_python(v: Any, path: tuple, ctx: Context) -> Any:
    if not (isinstance(v, Struct) and v.is_scalar()):
        return to_python(v, path, ctx)
    d = v.items.flat[0]
    out = {}
    for k in v.fields:
        img = image_from_mat(d[k]) if k == "averageImage" and _is_numeric_mat(d[k]) else None
        out[k] = img if img is not None else to_python(d[k], path + (k,), ctx)
    return out


def _meta_to_python(v: Any, path: tuple, ctx: Context) -> Any:
    if not (isinstance(v, Struct) and v.is_scalar()):
        return to_python(v, path, ctx)
    d = v.items.flat[0]
    return {k: (_normalization_to_python(d[k], path + (k,), ctx) if k == "normalization"
                else to_python(d[k], path + (k,), ctx)) for k in v.fields}


def _dagnn_to_python(fields: Dict[str, Any], path: tuple, ctx: Context) -> dict:
    layers = to_python(fields["layers"], path + ("layers",), ctx, as_list=True)
    kinds = dagnn_param_kinds(layers)
    out = {}
    for k, v in fields.items():
        p = path + (k,)
        if k == "layers":
            out[k] = layers
        elif k == "vars":
            out[k] = to_python(v, p, ctx, as_list=True)
        elif k == "params" and isinstance(v, Struct):
            out[k] = []
            for i, d in enumerate(flat_items(v.items)):
                param = {}
                for f in v.fields:
                    x = d[f]
                    if f == "value" and _is_numeric_mat(x):
                        name = d.get("name")
                        param[f] = _weight_at(p + (i, f), kinds.get(name, RAW)
                                              if isinstance(name, str) else RAW, x)
                    else:
                        param[f] = to_python(x, p + (i, f), ctx)
                out[k].append(param)
        elif k == "meta":
            out[k] = _meta_to_python(v, p, ctx)
        else:
            out[k] = to_python(v, p, ctx)
    return out


def solver_slots(net: dict) -> list:
    """The (kind, numel) of every parameter, in ``state.solverState``'s arrangement: one list
    per layer for SimpleNN, one entry per param for DagNN."""
    def numel(w):
        return int(w.numel()) if isinstance(w, torch.Tensor) else int(np.size(w))

    if is_dagnn(net):
        kinds = dagnn_param_kinds(net.get("layers"))
        return [(kinds.get(p.get("name"), RAW), numel(p.get("value")))
                if isinstance(p, dict) else (RAW, -1) for p in net.get("params") or []]
    slots = []
    for l in net.get("layers") or []:
        ws = l.get("weights") if isinstance(l, dict) else None
        ws = ws if isinstance(ws, list) else []
        slots.append([(simplenn_weight_kind(l.get("type"), j), numel(w))
                      for j, w in enumerate(ws)])
    return slots


def state_to_python(v: Any, net: dict, path: tuple, ctx: Context) -> Any:
    """A checkpoint's ``state``: solver states shaped like the weights get our layout."""
    if not (isinstance(v, Struct) and v.is_scalar()) or "solverState" not in v.fields:
        return to_python(v, path, ctx)
    d = v.items.flat[0]
    out = {}
    for k in v.fields:
        p = path + (k,)
        out[k] = _solver_to_python(d[k], solver_slots(net), p, ctx) if k == "solverState" \
            else to_python(d[k], p, ctx)
    return out


def _solver_to_python(v: Any, slots: list, path: tuple, ctx: Context) -> Any:
    if not (isinstance(v, Cell) and is_vector_shape(v.items.shape)):
        return to_python(v, path, ctx)
    out = []
    for i, x in enumerate(flat_items(v.items)):
        slot = slots[i] if i < len(slots) else None
        p = path + (i,)
        if isinstance(slot, list):  # SimpleNN: a cell per layer
            if isinstance(x, Cell) and is_vector_shape(x.items.shape):
                out.append([_solver_entry(e, slot[j] if j < len(slot) else None, p + (j,), ctx)
                            for j, e in enumerate(flat_items(x.items))])
            else:
                out.append(to_python(x, p, ctx))
        else:
            out.append(_solver_entry(x, slot, p, ctx))
    return out


def _solver_entry(x: Any, slot: Optional[tuple], path: tuple, ctx: Context) -> Any:
    if slot is None:
        return to_python(x, path, ctx)
    kind, numel = slot
    if _is_numeric_mat(x) and x.size and x.size == numel:
        return _weight_at(path, kind, x)
    if isinstance(x, Struct) and x.is_scalar():  # e.g. Adam's {m, v, t}
        d = x.items.flat[0]
        return {k: _weight_at(path + (k,), kind, d[k]) if _is_numeric_mat(d[k]) and d[k].size
                and d[k].size == numel else to_python(d[k], path + (k,), ctx)
                for k in x.fields}
    return to_python(x, path, ctx)


# ----------------------------------------------------------------------------- networks: write


def is_dagnn(d: Any) -> bool:
    return isinstance(d, dict) and all(k in d for k in ("vars", "params", "layers")) \
        and isinstance(d["layers"], (list, tuple))


def is_simplenn(d: Any) -> bool:
    return isinstance(d, dict) and not is_dagnn(d) and isinstance(d.get("layers"), (list, tuple)) \
        and all(isinstance(l, dict) for l in d["layers"])


def _wrap(path: tuple, fn, *args):
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{show_path(path)}: {e}") from None


def net_from_python(net: dict, path: tuple) -> Dict[str, Any]:
    """A SimpleNN or DagNN net -> the fields of its MATLAB struct (MATLAB values)."""
    if is_dagnn(net):
        return _dagnn_from_python(net, path)
    fields = {}
    for k, v in net.items():
        p = path + (check_name(k, path),)
        if k == "layers" and isinstance(v, (list, tuple)):
            items = [_layer_from_python(l, p + (i,)) for i, l in enumerate(v)]
            fields[k] = new_cell(items) if items else Cell(np.empty((0, 0), dtype=object))
        elif k == "meta":
            fields[k] = _meta_from_python(v, p)
        elif k == "normalization":
            fields[k] = _normalization_from_python(v, p)
        else:
            fields[k] = from_python(v, p)
    return fields


def _layer_from_python(layer: Any, path: tuple) -> Any:
    if not isinstance(layer, dict):
        raise TypeError(f"{show_path(path)}: expected a layer dict, got {type(layer).__name__}")
    ltype = layer.get("type")
    if ltype == "custom":
        hooks = [k for k, v in layer.items() if callable(v)]
        if hooks:
            raise ValueError(
                f"{show_path(path)}: layer {layer.get('name', '')!r} is of type 'custom' with "
                f"Python callables ({', '.join(hooks)}), which cannot be saved to a MAT file; "
                f"remove or replace the layer before saving")
    fields = {}
    for k, v in layer.items():
        p = path + (check_name(k, path),)
        if k == "weights" and isinstance(v, (list, tuple)):
            items = [_wrap(p + (j,), weight_to_mat, simplenn_weight_kind(ltype, j), w)
                     if _is_array(w) else from_python(w, p + (j,)) for j, w in enumerate(v)]
            fields[k] = new_cell(items) if items else Cell(np.empty((0, 0), dtype=object))
        elif k in SIMPLENN_LEGACY and _is_array(v) and ltype in SIMPLENN_WEIGHTS:
            fields[k] = _wrap(p, weight_to_mat, SIMPLENN_LEGACY[k], v)
        else:
            fields[k] = from_python(v, p)
    return Struct.scalar(fields)


def _normalization_from_python(v: Any, path: tuple) -> Any:
    if not isinstance(v, dict):
        return from_python(v, path)
    return Struct.scalar({
        check_name(k, path): _wrap(path + (k,), image_to_mat, x)
        if k == "averageImage" and _is_array(x) else from_python(x, path + (k,))
        for k, x in v.items()})


def _meta_from_python(v: Any, path: tuple) -> Any:
    if not isinstance(v, dict):
        return from_python(v, path)
    return Struct.scalar({
        check_name(k, path): _normalization_from_python(x, path + (k,)) if k == "normalization"
        else from_python(x, path + (k,)) for k, x in v.items()})


def _dagnn_from_python(net: dict, path: tuple) -> Dict[str, Any]:
    kinds = dagnn_param_kinds(net["layers"])
    fields = {}
    for k, v in net.items():
        p = path + (check_name(k, path),)
        if k in ("layers", "vars") and isinstance(v, (list, tuple)):
            fields[k] = struct_array(list(v), p)
        elif k == "params" and isinstance(v, (list, tuple)):
            def convert(f, x, q, names=[d.get("name") if isinstance(d, dict) else None
                                        for d in v]):
                if f == "value" and _is_array(x):
                    name = names[q[-2]]
                    kind = kinds.get(name, RAW) if isinstance(name, str) else RAW
                    return _wrap(q, weight_to_mat, kind, x)
                return from_python(x, q)
            fields[k] = struct_array(list(v), p, convert)
        elif k == "meta":
            fields[k] = _meta_from_python(v, p)
        else:
            fields[k] = from_python(v, p)
    return fields


def state_from_python(state: Any, net: dict, path: tuple) -> Any:
    """A checkpoint's ``state`` -> MATLAB value; tensors in ``solverState`` go back to
    MatConvNet's layout (NumPy arrays and numbers there are written as they are)."""
    if not isinstance(state, dict) or "solverState" not in state:
        return from_python(state, path)
    slots = solver_slots(net)
    fields = {}
    for k, v in state.items():
        p = path + (check_name(k, path),)
        fields[k] = _solver_from_python(v, slots, p) if k == "solverState" \
            else from_python(v, p)
    return Struct.scalar(fields)


def _solver_from_python(v: Any, slots: list, path: tuple) -> Any:
    if not isinstance(v, (list, tuple)):
        return from_python(v, path)
    items = []
    for i, x in enumerate(v):
        slot = slots[i] if i < len(slots) else None
        p = path + (i,)
        if isinstance(slot, list) and isinstance(x, (list, tuple)):
            sub = [_solver_entry_from_python(e, slot[j] if j < len(slot) else None, p + (j,))
                   for j, e in enumerate(x)]
            items.append(new_cell(sub) if sub else Cell(np.empty((0, 0), dtype=object)))
        else:
            items.append(_solver_entry_from_python(x, None if isinstance(slot, list) else slot,
                                                   p))
    return new_cell(items) if items else Cell(np.empty((0, 0), dtype=object))


def _solver_entry_from_python(x: Any, slot: Optional[tuple], path: tuple) -> Any:
    kind = slot[0] if slot else RAW
    if isinstance(x, torch.Tensor):
        return _wrap(path, weight_to_mat, kind, x)
    if isinstance(x, dict):
        return Struct.scalar({check_name(k, path): _wrap(path + (k,), weight_to_mat, kind, e)
                              if isinstance(e, torch.Tensor) else from_python(e, path + (k,))
                              for k, e in x.items()})
    return from_python(x, path)
