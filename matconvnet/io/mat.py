"""MAT files: MatConvNet's model and checkpoint format (FEATURES.md 7.1, 4.4).

``load(path)`` reads a MAT file (v4, v5/v6/v7 through SciPy, v7.3 through h5py) and returns
its variables as plain Python (docs/net-structure.md):

* a SimpleNN model file saved with ``save(file, '-struct', 'net')`` (variables ``layers``
  and ``meta``) or a DagNN one (``vars``, ``params``, ``layers``, ``meta``) gives the net
  itself: ``{'layers': [...], 'meta': {...}}``;
* any other file gives ``{name: value}`` for its variables; a variable ``net`` holding a
  SimpleNN or DagNN struct is converted as a net, and a checkpoint's ``state`` (next to
  ``net``) has its solver state in our layout too.

Conversions: structs -> dicts; struct arrays -> lists of dicts; cells -> lists; char ->
str; logical -> bool; numeric scalars -> float (int for MATLAB integer classes and for the
integer-valued option fields such as ``pad``, ``stride``, ``pool``); vectors -> lists;
other matrices -> NumPy arrays with MATLAB's dimensions; empty arrays -> ``[]``; weights ->
torch tensors in our layout (``layout.py``).  Function handles and MATLAB objects cannot be
read: they become ``None`` and a warning names them.  Nothing in a file is ever executed.

``save(path, obj, format='v7')`` writes the inverse: ``obj`` is a SimpleNN or DagNN net
(saved as top-level variables, MatConvNet's ``-struct`` convention for model files), a
checkpoint ``{'net': ..., 'state': ..., 'stats': ...}`` or any dict of variables.  Python
numbers are written as doubles, tensors keep their class (single stays single).  The file
is written to a temporary file in the same folder and moved into place, so an interrupted
save never leaves a half-written file.  Formats: ``'v7'`` (compressed MAT v5, MATLAB's
default), ``'v6'`` (uncompressed) and ``'v7.3'`` (HDF5, for variables over 2 GB).

Python -> file -> Python is exact.  File -> Python -> file keeps MatConvNet's structure but
not every MATLAB detail: non-weight single-precision scalars (e.g. ``stats``' objectives)
come back as doubles, column vectors as rows, ``1 x 0`` empties as ``0 x 0``, biases as
``1 x K``, and a v7.3 file's variables in alphabetical order (a net's fields are put back in
MatConvNet's order).  A v5 file cut exactly between two variables reads as a shorter, valid
file: the format cannot tell.

Damaged and foreign files raise :class:`MatFileError` (a ``ValueError``) naming the file and
what is wrong: MAT v5 files are read by a pure-Python reader (``_mat5.py``) that checks
every size against the bytes present before using it, v7.3 files are checked around
h5py (``_hdf5.py``), and the nets read from a file are checked for MatConvNet's structure
(``_netcheck.py``: a SimpleNN layer's type and required fields, a DagNN's names and
references, sliding-window sizes).  ``load_simplenn(path)`` returns the SimpleNN net of a
model file or checkpoint, and fails clearly on a file that holds none.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict

import numpy as np

from .._files import atomic_write
from . import layout
from ._netcheck import check_net
from ._values import (Cell, Context, Malformed, Struct, Unreadable, check_name, from_python,
                      new_cell, to_python)

__all__ = ["load", "load_simplenn", "save", "FORMATS", "MatFileError"]

FORMATS = ("v7", "v6", "v7.3")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NET_ORDER = ("vars", "params", "layers", "meta")  # DagNN.saveobj's order (SimpleNN: 2 last)


# ----------------------------------------------------------------------------- load


class MatFileError(ValueError):
    """A MAT file that is damaged, is not a MAT file, or does not hold what was asked for
    (a MatConvNet network with its required fields); the message names the file, the
    place in it and what is wrong."""


def load(path) -> Dict[str, Any]:
    """The variables of a MAT file as plain Python (see the module's help)."""
    path = os.fspath(path)
    variables = _read(path)
    ctx = Context()
    try:
        out = _to_python(variables, ctx)
    except Malformed as e:
        raise MatFileError(f"{path}: not a valid MatConvNet network: {e}") from None
    if ctx.unreadable:
        warnings.warn(f"{path}: these values cannot be read in Python and were loaded as None: "
                      f"{', '.join(ctx.unreadable)}", stacklevel=2)
    return out


def load_simplenn(path) -> Dict[str, Any]:
    """The SimpleNN net ``{'layers': [...], 'meta': {...}}`` of a MatConvNet SimpleNN model
    file (variables ``layers``, ``meta``) or of a checkpoint's ``net`` variable.  A file
    holding anything else (a DagNN, a plain matrix) raises :class:`MatFileError` listing
    its variables."""
    data = load(path)
    net = data.get("net") if isinstance(data.get("net"), dict) else data
    if layout.is_simplenn(net):
        try:  # load checked it when it recognised a net; a file of untyped layers it did not
            check_net(net, ("net",) if net is not data else ())
        except Malformed as e:
            raise MatFileError(f"{os.fspath(path)}: not a valid MatConvNet network: {e}") \
                from None
        return net
    raise MatFileError(f"{os.fspath(path)}: not a MatConvNet SimpleNN network file: " + (
        "it holds a DagNN (load it with load_dagnn)" if layout.is_dagnn(net) else
        f"expected the variables layers and meta, or a variable 'net' holding them; "
        f"found {describe_variables(data)}"))


def describe_variables(data: Dict[str, Any]) -> str:
    """``'x (2 x 3 float64), s (struct)'``: what a loaded file holds, for messages."""
    def what(v):
        if isinstance(v, np.ndarray):
            return f"{' x '.join(map(str, v.shape))} {v.dtype}"
        if isinstance(v, dict):
            names = list(v)
            return ("struct with fields " + ", ".join(names[:6])
                    + (", ..." if len(names) > 6 else "")) if names else "struct"
        if isinstance(v, list):
            return f"{len(v)} values"
        return type(v).__name__
    return ", ".join(f"{k} ({what(v)})" for k, v in data.items()) or "no variables"


def _looks_simplenn(fields: Dict[str, Any]) -> bool:
    """A cell of layers, one of them at least with a type: a SimpleNN net (whose damaged
    layers the checks then name) rather than unrelated data."""
    layers = fields.get("layers")
    return layout.is_simplenn_mat(fields) or (
        not layout.is_dagnn_mat(fields) and isinstance(layers, Cell)
        and any(isinstance(l, Struct) and "type" in l.fields for l in layers.items.flat))


def _is_net(fields: Dict[str, Any]) -> bool:
    return _looks_simplenn(fields) or layout.is_dagnn_mat(fields)


def _to_python(variables: Dict[str, Any], ctx: Context) -> Dict[str, Any]:
    if _is_net(variables):
        # v7.3 files do not keep the variables' order: put a net's fields in MatConvNet's
        first = [k for k in _NET_ORDER if k in variables]
        variables = {k: variables[k] for k in first + [k for k in variables if k not in first]}
        out = layout.net_to_python(variables, (), ctx)
        check_net(out, ())
        return out
    out = {}
    net = variables.get("net")
    if isinstance(net, Struct) and net.is_scalar() and _is_net(_fields(net)):
        out_net = layout.net_to_python(_fields(net), ("net",), ctx)
        check_net(out_net, ("net",))
    else:
        out_net = None
    for name, v in variables.items():
        if name == "net" and out_net is not None:
            out[name] = out_net
        elif name == "state" and out_net is not None:
            out[name] = layout.state_to_python(v, out_net, (name,), ctx)
        else:
            out[name] = to_python(v, (name,), ctx)
    return out


def _fields(s: Struct) -> dict:
    return s.items.flat[0]


_KINDS = {"hdf5": "MAT v7.3 (HDF5)", "v5": "MAT v5/v7", "v4": "MAT v4"}


def _read(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as f:
            head = f.read(128)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            kind = _kind(head, size)
            if kind == "v5":
                f.seek(0)
                data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a directory, not a MAT file") from None
    if kind is None:
        raise MatFileError(f"{path}: not a MAT file (no MAT v5/v7.3 header and not a MAT v4 "
                           f"file; {size} bytes starting {head[:16]!r})")
    try:
        if kind == "v5":
            from . import _mat5
            return _mat5.read(data)
        if kind == "hdf5":
            from . import _hdf5
            return _hdf5.read(path)
        return _read_scipy(path, kind)
    except ImportError as e:
        raise ImportError(f"{path}: reading this MAT {kind} file needs {e.name} "
                          f"(pip install {e.name})") from e
    except Malformed as e:
        raise MatFileError(f"{path}: cannot read this {_KINDS[kind]} file, it is corrupt or "
                           f"truncated ({e})") from None
    except (MemoryError, KeyboardInterrupt, RecursionError):
        raise
    except Exception as e:  # SciPy's v4 reader: any complaint means a damaged file
        raise MatFileError(f"{path}: cannot read this {_KINDS[kind]} file, it is corrupt or "
                           f"truncated ({type(e).__name__}: {e})") from e


def _kind(head: bytes, size: int):
    """'v5', 'hdf5', 'v4' or None, from the first 128 bytes."""
    if head[:8] == _HDF5_SIGNATURE:
        return "hdf5"
    if len(head) == 128 and head[126:128] in (b"IM", b"MI"):
        order = "little" if head[126:128] == b"IM" else "big"
        version = int.from_bytes(head[124:126], order)
        if version == 0x0100:
            return "v5"
        if version == 0x0200:
            return "hdf5"
        return None
    if head[:10] == b"MATLAB 7.3":
        return "hdf5"
    if head[:10] == b"MATLAB 5.0":  # a header cut short
        return "v5"
    if len(head) >= 20 and _looks_v4(head):
        return "v4"
    return None


def _looks_v4(head: bytes) -> bool:
    # v4: int32 type (MOPT), rows, cols, imagf, namelen, in either byte order.
    for order in ("<", ">"):
        mopt, rows, cols, imagf, namelen = np.frombuffer(head[:20], dtype=order + "i4")
        m, rest = divmod(int(mopt), 1000)
        o, rest = divmod(rest, 100)
        p, t = divmod(rest, 10)
        if 0 <= mopt < 5000 and m in (0, 1) and o == 0 and p <= 5 and t <= 2 \
                and rows >= 0 and cols >= 0 and imagf in (0, 1) and 0 < namelen <= 64:
            return True
    return False


def _read_scipy(path: str, kind: str) -> Dict[str, Any]:
    """MAT v4 files (no networks; SciPy's reader of them is plain Python)."""
    import scipy.io as sio

    with warnings.catch_warnings():
        warnings.simplefilter("error", sio.matlab.MatReadWarning)
        raw = sio.loadmat(path, mat_dtype=True, squeeze_me=False, struct_as_record=True,
                          chars_as_strings=True, verify_compressed_data_integrity=True)
    return {k: _from_scipy(v) for k, v in raw.items() if not k.startswith("__")}


def _from_scipy(x: Any) -> Any:
    from scipy.io import matlab
    import scipy.sparse as sp

    if isinstance(x, getattr(matlab, "MatlabFunction", ())):
        return Unreadable("function handle")
    if isinstance(x, getattr(matlab, "MatlabOpaque", ())):
        return Unreadable("MATLAB object")
    if isinstance(x, getattr(matlab, "MatlabObject", ())):
        return Unreadable(f"MATLAB object of class {getattr(x, 'classname', '?')}")
    if sp.issparse(x):
        return x.tocsc()
    if isinstance(x, str):
        return x
    if not isinstance(x, np.ndarray):
        return Unreadable(f"value of type {type(x).__name__}")
    if x.dtype.names is not None:
        fields = list(x.dtype.names)
        items = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(*x.shape):
            items[idx] = {f: _from_scipy(x[f][idx]) for f in fields}
        return Struct(fields, items)
    if x.dtype == object and x.size and all(e is None for e in x.flat):
        items = np.empty(x.shape, dtype=object)  # SciPy's struct with no fields
        for idx in np.ndindex(*x.shape):
            items[idx] = {}
        return Struct([], items)
    if x.dtype == object:
        items = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(*x.shape):
            items[idx] = _from_scipy(x[idx])
        return Cell(items)
    if x.dtype.kind == "U":
        if x.size == 0:
            return ""
        if x.size == 1:
            return str(x.flat[0])
        return new_cell([str(s) for s in x.ravel(order="F")], (x.size, 1))  # char matrix rows
    return np.asarray(x)


# ----------------------------------------------------------------------------- save


def save(path, net_or_vars: Any, *, format: str = "v7") -> None:
    """Write a net, a checkpoint or a dict of variables as a MAT file (module help)."""
    path = os.fspath(path)
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
    variables = _variables(net_or_vars)
    if format == "v7.3":
        from . import _hdf5
        writer = lambda tmp: _hdf5.write(tmp, variables)  # noqa: E731
    else:
        writer = lambda tmp: _write_scipy(tmp, variables, compress=format == "v7")  # noqa: E731
    atomic_write(path, writer)


def _variables(obj: Any) -> Dict[str, Any]:
    if not isinstance(obj, dict) and callable(getattr(obj, "saveobj", None)):
        obj = obj.saveobj()
    if not isinstance(obj, dict):
        raise TypeError(f"expected a net or a dict of variables, got {type(obj).__name__}")
    if "net" not in obj and (layout.is_simplenn(obj) or layout.is_dagnn(obj)):
        return layout.net_from_python(obj, ())
    out = {}
    net = obj.get("net")
    if not isinstance(net, dict) and callable(getattr(net, "saveobj", None)):
        net = net.saveobj()
    is_net = layout.is_simplenn(net) or layout.is_dagnn(net)
    for name, v in obj.items():
        check_name(name, (), "variable")
        if name == "net" and is_net:
            out[name] = Struct.scalar(layout.net_from_python(net, (name,)))
        elif name == "state" and is_net:
            out[name] = layout.state_from_python(v, net, (name,))
        else:
            out[name] = from_python(v, (name,))
    return out


def _write_scipy(path: str, variables: Dict[str, Any], *, compress: bool) -> None:
    import scipy.io as sio

    mdict = {k: _to_scipy(v) for k, v in variables.items()}
    try:
        with open(path, "wb") as f:
            sio.savemat(f, mdict, format="5", long_field_names=True,
                        do_compression=compress, oned_as="row")
    except (OverflowError, ValueError) as e:
        if "too large" in str(e) or isinstance(e, OverflowError):
            raise ValueError(f"a variable is too large for the MAT v5/v7 format ({e}); "
                             f"save with format='v7.3'") from e
        raise


def _to_scipy(v: Any) -> Any:
    if isinstance(v, Cell):
        out = np.empty(v.items.shape, dtype=object)
        for idx in np.ndindex(*v.items.shape):
            out[idx] = _to_scipy(v.items[idx])
        return out
    if isinstance(v, Struct):
        if not v.fields:
            if v.items.size == 1:
                return {}
            return np.empty(v.items.shape, dtype=object)
        out = np.empty(v.items.shape, dtype=[(f, object) for f in v.fields])
        for idx in np.ndindex(*v.items.shape):
            for f in v.fields:
                out[f][idx] = _to_scipy(v.items[idx][f])
        return out
    return v  # arrays, str, sparse
