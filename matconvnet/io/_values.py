"""MATLAB values as the MAT readers and writers see them, and their plain-Python form.

Both file formats (MAT v5/v7 through SciPy, v7.3 through h5py) are read into, and written
from, one neutral tree of *MATLAB values*:

* numeric and logical arrays: ``np.ndarray`` with MATLAB's dimensions (at least two, in
  MATLAB's order; logical arrays have dtype ``bool``);
* char arrays: ``str`` (a multi-row char matrix is read as a :class:`Cell` of its rows);
* cell arrays: :class:`Cell`; structs and struct arrays: :class:`Struct`;
* sparse matrices: ``scipy.sparse`` matrices;
* what cannot be read (function handles, MATLAB objects): :class:`Unreadable`.

:func:`to_python` and :func:`from_python` map that tree to and from the plain structure of
docs/net-structure.md (dicts, lists, str, bool, int/float, NumPy arrays) without knowing
anything about networks; ``layout.py`` handles the weights on top of them.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# ----------------------------------------------------------------------------- neutral tree


@dataclass
class Cell:
    """A MATLAB cell array: ``items`` is an object array with MATLAB's dimensions."""
    items: np.ndarray


@dataclass
class Struct:
    """A MATLAB struct array: ``items`` is an object array of dicts (field -> value) with
    MATLAB's dimensions; ``fields`` gives the field order."""
    fields: List[str]
    items: np.ndarray

    @staticmethod
    def scalar(values: Dict[str, Any]) -> "Struct":
        items = np.empty((1, 1), dtype=object)
        items[0, 0] = dict(values)
        return Struct(list(values), items)

    def is_scalar(self) -> bool:
        return self.items.size == 1

    def get(self, name: str, default=None):
        """Field ``name`` of a scalar struct."""
        return self.items.flat[0].get(name, default)


class Malformed(ValueError):
    """A file breaks its format or MatConvNet's structure (raised by the readers and the
    network checks without the file's name; ``io.load`` adds it as a ``MatFileError``)."""


@dataclass
class Unreadable:
    """A value no Python equivalent exists for (function handle, MATLAB object)."""
    what: str


def new_cell(values: Sequence[Any], shape: Optional[Tuple[int, ...]] = None) -> Cell:
    items = np.empty(shape if shape is not None else (1, len(values)), dtype=object)
    for i, v in enumerate(values):
        items.flat[i] = v
    return Cell(items)


def flat_items(a: np.ndarray) -> list:
    """Elements of an object array in MATLAB's (column-major) order."""
    return list(a.ravel(order="F"))


def is_vector_shape(shape: Tuple[int, ...]) -> bool:
    """MATLAB's isvector or isempty for a 2-D array (what we turn into a Python list)."""
    return len(shape) <= 2 and (len(shape) < 2 or min(shape) <= 1)


def native(a: np.ndarray) -> np.ndarray:
    """``a`` in the machine's byte order (MAT files may be big-endian)."""
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != _NATIVE:
        return a.astype(a.dtype.newbyteorder("="))
    return a


_NATIVE = "<" if np.little_endian else ">"

# ----------------------------------------------------------------------------- field rules
# Option fields whose (double) values are integers in MatConvNet: read as Python ints.
INT_FIELDS = frozenset({
    "pad", "stride", "pool", "dilate", "upsample", "crop", "numGroups", "size", "poolSize",
    "subdivisions", "inputSize", "imageSize", "border", "fullImageSize", "numChannels", "dim",
    "Ho", "Wo", "numEpochs", "batchSize", "num", "numInputs", "epoch",
})
# Fields that are lists even when the file holds a single number (one per weight).
_LIST_FIELDS = frozenset({("layers", "learningRate"), ("layers", "weightDecay")})
# Struct arrays that are lists even with one element (suffix of the field path).
_STRUCT_ARRAY_SUFFIXES = frozenset({("meta", "inputs")})
# ... and whole field paths from the file's variables.
_STRUCT_ARRAY_PATHS = frozenset({("stats", "train"), ("stats", "val")})
# Fields whose empty list is saved as an empty cell {} rather than an empty array [].
_EMPTY_CELL_FIELDS = frozenset({
    "weights", "opts", "inputs", "outputs", "params", "solverState", "layers", "name",
    "description", "momentum",
})

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}\Z")


def names_of(path: tuple) -> tuple:
    return tuple(p for p in path if isinstance(p, str))


def show_path(path: tuple) -> str:
    """``('net', 'layers', 2, 'forward')`` -> ``net.layers{3}.forward`` (MATLAB indexing)."""
    out = ""
    for p in path:
        if isinstance(p, str):
            out += ("." if out else "") + p
        else:
            out += "{%d}" % (p + 1)
    return out or "<root>"


def forced_struct_array(path: tuple) -> bool:
    names = names_of(path)
    return names[-2:] in _STRUCT_ARRAY_SUFFIXES or names in _STRUCT_ARRAY_PATHS


class Context:
    """What a load or save carries along: notes on values that could not be read."""

    def __init__(self):
        self.unreadable: List[str] = []


# ----------------------------------------------------------------------------- to Python


def to_python(v: Any, path: tuple, ctx: Context, *, as_list: bool = False) -> Any:
    """A MATLAB value -> plain Python (no layout conversion; weights are handled by the
    caller).  ``as_list``: a struct array is a list even when it has one element."""
    if isinstance(v, str):
        return v
    if isinstance(v, Unreadable):
        ctx.unreadable.append(f"{show_path(path)} ({v.what})")
        return None
    if isinstance(v, Struct):
        return _struct_to_python(v, path, ctx, as_list or forced_struct_array(path))
    if isinstance(v, Cell):
        if is_vector_shape(v.items.shape):
            return [to_python(x, path + (i,), ctx) for i, x in enumerate(flat_items(v.items))]
        out = np.empty(v.items.shape, dtype=object)
        for idx in np.ndindex(*v.items.shape):
            out[idx] = to_python(v.items[idx], path, ctx)
        return out
    if isinstance(v, np.ndarray):
        return _array_to_python(v, path)
    return v  # sparse matrices


def _struct_to_python(v: Struct, path: tuple, ctx: Context, as_list: bool):
    def one(d, p):
        return {k: to_python(d[k], p + (k,), ctx) for k in v.fields}

    if v.items.size == 1 and not as_list:
        return one(v.items.flat[0], path)
    if is_vector_shape(v.items.shape):
        return [one(d, path + (i,)) for i, d in enumerate(flat_items(v.items))]
    out = np.empty(v.items.shape, dtype=object)
    for idx in np.ndindex(*v.items.shape):
        out[idx] = one(v.items[idx], path)
    return out


def _array_to_python(a: np.ndarray, path: tuple):
    a = native(a)
    if a.size == 0:
        return []
    names = names_of(path)
    name = names[-1] if names else ""
    if a.dtype == np.bool_:
        conv = bool
    elif a.dtype.kind in "iu":
        conv = int
    elif a.dtype.kind == "f":
        conv = float
        if name in INT_FIELDS and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            conv = int
    elif a.dtype.kind == "c":
        conv = complex
    else:
        return np.array(a)
    if a.size == 1 and names[-2:] not in _LIST_FIELDS:
        return conv(a.flat[0])
    if is_vector_shape(a.shape):
        return [conv(x) for x in a.ravel(order="F")]
    return np.array(a)  # a matrix: a NumPy array with MATLAB's dimensions


# ----------------------------------------------------------------------------- from Python


def check_name(name: Any, path: tuple, what: str = "field") -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(
            f"{show_path(path)}: {what} name {name!r} is not a valid MATLAB name (a letter, "
            f"then up to 62 letters, digits or underscores)")
    return name


def from_python(obj: Any, path: tuple, *, as_struct_array: bool = False) -> Any:
    """Plain Python -> a MATLAB value.  Numbers become doubles (MATLAB's default class),
    bools logicals, str char arrays, dicts structs, lists cells or row vectors; tensors and
    NumPy arrays keep their class and shape (no layout conversion here)."""
    import torch

    if obj is None:
        return np.zeros((0, 0))
    if isinstance(obj, (bool, np.bool_)):
        return np.array([[bool(obj)]])
    if isinstance(obj, numbers.Integral) and not isinstance(obj, np.integer):
        return np.array([[float(obj)]])
    if isinstance(obj, float):
        return np.array([[obj]])
    if isinstance(obj, complex):
        return np.array([[obj]])
    if isinstance(obj, np.generic):
        if isinstance(obj, (np.str_, np.bytes_)):
            return _text(obj)
        return np.array(obj).reshape(1, 1)
    if isinstance(obj, (str, bytes)):
        return _text(obj)
    if isinstance(obj, dict):
        return Struct.scalar(_struct_fields(obj, path))
    if isinstance(obj, (list, tuple)):
        return _list_from_python(list(obj), path, as_struct_array)
    if isinstance(obj, torch.Tensor):
        return matlab_array(tensor_to_numpy(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            items = np.empty(obj.shape if obj.ndim >= 2 else (1, obj.size), dtype=object)
            src = obj if obj.ndim >= 2 else obj.reshape(1, -1)
            for idx in np.ndindex(*src.shape):
                items[idx] = from_python(src[idx], path)
            return Cell(items)
        if obj.dtype.kind in "US":
            if obj.ndim == 0:
                return _text(obj.item())
            return from_python(obj.astype(object), path)
        if obj.dtype.names is not None:
            raise TypeError(f"{show_path(path)}: NumPy structured arrays are not supported; "
                            f"use a list of dicts")
        return matlab_array(obj)
    try:
        import scipy.sparse as sp
        if sp.issparse(obj):
            return obj
    except ImportError:  # pragma: no cover
        pass
    if callable(obj):
        raise TypeError(f"{show_path(path)}: a Python callable ({obj!r}) cannot be saved to a "
                        f"MAT file")
    raise TypeError(f"{show_path(path)}: cannot save a value of type {type(obj).__name__} to a "
                    f"MAT file")


def _text(s) -> str:
    return s.decode("utf-8") if isinstance(s, bytes) else str(s)


def _struct_fields(d: dict, path: tuple) -> dict:
    return {check_name(k, path): from_python(v, path + (k,)) for k, v in d.items()}


def struct_array(dicts: List[dict], path: tuple, convert=None) -> Struct:
    """A 1 x n struct array from dicts (fields: the union, in order of appearance; a field a
    dict lacks is empty).  ``convert(key, value, path)`` converts a field's value (default:
    :func:`from_python`)."""
    convert = convert or (lambda k, v, p: from_python(v, p))
    fields: List[str] = []
    for d in dicts:
        if not isinstance(d, dict):
            raise TypeError(f"{show_path(path)}: expected a list of dicts (a struct array), "
                            f"got an element of type {type(d).__name__}")
        fields += [k for k in d if k not in fields]
    items = np.empty((1, len(dicts)) if dicts else (0, 0), dtype=object)
    for i, d in enumerate(dicts):
        items[0, i] = {check_name(k, path): convert(k, d[k], path + (i, k)) if k in d
                       else np.zeros((0, 0)) for k in fields}
    return Struct(fields, items)


def _list_from_python(values: list, path: tuple, as_struct_array: bool):
    names = names_of(path)
    if not values:
        if as_struct_array:
            return Struct([], np.empty((0, 0), dtype=object))
        if names and names[-1] in _EMPTY_CELL_FIELDS:
            return Cell(np.empty((0, 0), dtype=object))
        return np.zeros((0, 0))
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.array([values], dtype=bool)
    if all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
           for v in values):
        return np.array([[float(v) for v in values]])
    if all(isinstance(v, dict) for v in values):
        same = all(list(v) == list(values[0]) for v in values)
        if as_struct_array or forced_struct_array(path) or (same and len(values) > 1):
            return struct_array(values, path)
    return new_cell([from_python(v, path + (i,)) for i, v in enumerate(values)])


# ----------------------------------------------------------------------------- arrays


def tensor_to_numpy(t) -> np.ndarray:
    """A torch tensor (any device) or array-like -> a NumPy array of a MATLAB class
    (half precision becomes single: MATLAB has no half class)."""
    import torch

    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.cpu().numpy()
    a = np.asarray(t)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    return a


def matlab_array(a: np.ndarray) -> np.ndarray:
    """A NumPy array with MATLAB's dimensions: at least 2-D (a 1-D array is a row), trailing
    singleton dimensions beyond the second dropped."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1) if a.size else np.zeros((0, 0), a.dtype)
    if a.size == 0:
        return np.zeros(a.shape if a.ndim == 2 else (0, 0), a.dtype)
    shape = list(a.shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape.pop()
    return a.reshape(shape)
