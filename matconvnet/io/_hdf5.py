"""MAT v7.3 files: MATLAB's layout on HDF5, read and written with h5py.

What MATLAB writes (and reads back):

* a 512-byte HDF5 userblock whose first 128 bytes are the MAT header: 116 bytes of text
  starting ``MATLAB 7.3 MAT-file``, 8 bytes of subsystem offset, version ``0x0200`` and the
  endian indicator ``IM``;
* one HDF5 object per variable at the root; each carries a ``MATLAB_class`` attribute
  (fixed-length ASCII: ``double``, ``single``, ``int8`` ... ``uint64``, ``logical``,
  ``char``, ``cell``, ``struct``);
* arrays as datasets with the dimensions reversed (HDF5 is row-major, MATLAB column-major);
  logicals as ``uint8`` (``MATLAB_int_decode`` 1); chars as UTF-16 ``uint16``
  (``MATLAB_int_decode`` 2); complex numbers as a compound ``{real, imag}``;
* empty arrays as a dataset holding their dimensions (``uint64``) with ``MATLAB_empty`` = 1;
* cells as datasets of object references to elements stored in the group ``/#refs#``;
* scalar structs as groups (``MATLAB_class`` ``struct``, field order in ``MATLAB_fields``,
  an array of variable-length arrays of one-byte strings) holding one object per field;
  struct arrays as groups whose fields are datasets of references with the struct array's
  dimensions and *no* ``MATLAB_class`` (which is how a reader tells them from a scalar
  struct holding a cell);
* sparse matrices as groups with ``MATLAB_sparse`` = rows and datasets ``data``, ``ir``,
  ``jc``; function handles and objects (``MATLAB_object_decode``) live in ``#subsystem#``
  and cannot be read here.
"""
from __future__ import annotations

import platform
import time
from typing import Any, Dict

import numpy as np

from ._values import Cell, Struct, Unreadable

_CLASSES = {
    "double": np.float64, "single": np.float32, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "logical": np.bool_,
}
_CLASS_OF = {np.dtype(v): k for k, v in _CLASSES.items()}
_CLASS_OF[np.dtype(np.complex128)] = "double"
_CLASS_OF[np.dtype(np.complex64)] = "single"
_COMPRESS_FROM = 4096  # elements; smaller datasets are stored contiguous


def header(now: float = None) -> bytes:
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now))
    text = (f"MATLAB 7.3 MAT-file, Platform: Python {platform.python_version()} matconvnet, "
            f"Created on: {stamp} HDF5 schema 1.00 .")
    return text.encode("ascii", "replace")[:116].ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"


def _attr_str(v: Any):
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _attr_str(v.item())
    return str(v)


# ----------------------------------------------------------------------------- reading


def read(path: str) -> Dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        reader = _Reader(f)
        return {name: reader.value(obj) for name, obj in f.items() if not name.startswith("#")}


class _Reader:
    def __init__(self, f):
        import h5py
        self.h5py = h5py
        self.f = f

    def deref(self, ref) -> Any:
        if not ref:
            return np.zeros((0, 0))
        return self.value(self.f[ref])

    def value(self, obj) -> Any:
        h5py = self.h5py
        cls = _attr_str(obj.attrs.get("MATLAB_class"))
        if isinstance(obj, h5py.Group):
            if "MATLAB_sparse" in obj.attrs:
                return self.sparse(obj, cls)
            if cls not in (None, "struct"):
                return Unreadable(f"MATLAB object of class {cls}")
            return self.struct(obj)
        if "MATLAB_object_decode" in obj.attrs or cls == "function_handle":
            return Unreadable("function handle" if cls == "function_handle"
                              else f"MATLAB object of class {cls}")
        if obj.attrs.get("MATLAB_empty", 0):
            return self.empty(obj, cls)
        data = obj[()]
        if h5py.check_ref_dtype(obj.dtype) is not None:
            refs = _matlab_dims(np.asarray(data, dtype=object).T)
            items = np.empty(refs.shape, dtype=object)
            for idx in np.ndindex(*refs.shape):
                items[idx] = self.deref(refs[idx])
            return Cell(items)
        data = np.asarray(data)
        if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
            data = data["real"] + 1j * data["imag"]
        a = _matlab_dims(data.T)
        if cls == "char":
            return _chars(a)
        if cls in _CLASSES:
            a = a.astype(_CLASSES[cls], copy=False) if a.dtype.kind != "c" else a
        return a

    def empty(self, obj, cls) -> Any:
        data = np.asarray(obj[()])
        dims = (0, 0)
        if data.ndim == 1 and data.size >= 2 and data.dtype.kind in "iu" \
                and int(np.prod(data)) == 0:
            dims = tuple(int(d) for d in data)
        if cls == "char":
            return ""
        if cls == "cell":
            return Cell(np.empty(dims, dtype=object))
        if cls == "struct":
            return Struct(self.fields(obj) or [], np.empty(dims, dtype=object))
        return np.zeros(dims, dtype=_CLASSES.get(cls, np.float64))

    def fields(self, obj):
        names = obj.attrs.get("MATLAB_fields")
        if names is None:
            return None
        return [b"".join(np.asarray(n).tolist()).decode("ascii") for n in names]

    def struct(self, g) -> Struct:
        h5py = self.h5py
        fields = self.fields(g)
        if fields is None:
            fields = [k for k in g.keys() if not k.startswith("#")]
        missing = [k for k in fields if k not in g]
        if missing:
            raise ValueError(f"struct {g.name}: fields {missing} listed but absent")
        if not fields:
            return Struct([], _one({}))
        first = g[fields[0]]
        if isinstance(first, h5py.Dataset) and h5py.check_ref_dtype(first.dtype) is not None \
                and "MATLAB_class" not in first.attrs:  # a struct array
            dims = _matlab_dims(np.asarray(first[()], dtype=object).T).shape
            items = np.empty(dims, dtype=object)
            for idx in np.ndindex(*dims):
                items[idx] = {}
            for k in fields:
                refs = _matlab_dims(np.asarray(g[k][()], dtype=object).T).reshape(dims)
                for idx in np.ndindex(*dims):
                    items[idx][k] = self.deref(refs[idx])
            return Struct(fields, items)
        return Struct(fields, _one({k: self.value(g[k]) for k in fields}))

    def sparse(self, g, cls):
        import scipy.sparse as sp

        rows = int(np.asarray(g.attrs["MATLAB_sparse"]).item())
        jc = np.asarray(g["jc"][()]).ravel().astype(np.int64)
        ir = np.asarray(g["ir"][()]).ravel().astype(np.int64) if "ir" in g \
            else np.zeros(0, np.int64)
        if "data" in g:
            data = np.asarray(g["data"][()])
            if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
                data = data["real"] + 1j * data["imag"]
            data = data.ravel()
        else:
            data = np.zeros(0)
        if cls == "logical":
            data = data.astype(bool)
        return sp.csc_matrix((data, ir, jc), shape=(rows, len(jc) - 1))


def _one(d: dict) -> np.ndarray:
    items = np.empty((1, 1), dtype=object)
    items[0, 0] = d
    return items


def _matlab_dims(a: np.ndarray) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a


def _chars(codes: np.ndarray):
    codes = codes.reshape(codes.shape[0], -1)
    if codes.dtype.itemsize <= 2:
        rows = [np.ascontiguousarray(r, dtype="<u2").tobytes().decode("utf-16-le", "replace")
                for r in codes]
    else:
        rows = ["".join(chr(int(c)) for c in r) for r in codes]
    if len(rows) == 1:
        return rows[0]
    items = np.empty((len(rows), 1), dtype=object)
    for i, r in enumerate(rows):
        items[i, 0] = r
    return Cell(items)


# ----------------------------------------------------------------------------- writing


def write(path: str, variables: Dict[str, Any]) -> None:
    """Write MATLAB values as a v7.3 MAT file at ``path`` (replaced)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        w = _Writer(f)
        for name, v in variables.items():
            w.write(f, name, v)
    with open(path, "r+b") as fh:
        fh.write(header())


class _Writer:
    def __init__(self, f):
        import h5py
        self.h5py = h5py
        self.f = f
        self.refs = None
        self.count = 0

    def write(self, parent, name: str, v: Any) -> None:
        import scipy.sparse as sp

        if isinstance(v, str):
            self.char(parent, name, v)
        elif isinstance(v, Cell):
            self.cell(parent, name, v)
        elif isinstance(v, Struct):
            self.struct(parent, name, v)
        elif isinstance(v, np.ndarray):
            self.array(parent, name, v)
        elif sp.issparse(v):
            self.sparse(parent, name, v)
        else:
            raise TypeError(f"{name}: cannot write a value of type {type(v).__name__}")

    def _name(self) -> str:
        # MATLAB names its references a, b, ..., z, ba, bb, ...; 'a' is kept for its
        # canonical empty.
        self.count += 1
        n, s = self.count, ""
        while True:
            n, r = divmod(n, 26)
            s = chr(ord("a") + r) + s
            if n == 0:
                return s

    def ref(self, v: Any):
        if self.refs is None:
            self.refs = self.f.require_group("#refs#")
        name = self._name()
        self.write(self.refs, name, v)
        return self.refs[name].ref

    def _refs(self, parent, name: str, values: np.ndarray):
        h5py = self.h5py
        refs = np.empty(values.shape, dtype=object)
        for idx in np.ndindex(*values.shape):
            refs[idx] = self.ref(values[idx])
        return parent.create_dataset(name, data=np.ascontiguousarray(refs.T),
                                     dtype=h5py.ref_dtype)

    @staticmethod
    def _set_class(obj, cls: str) -> None:
        obj.attrs["MATLAB_class"] = np.bytes_(cls.encode("ascii"))

    def empty(self, parent, name: str, cls: str, dims, fields=None) -> None:
        dims = tuple(dims) if len(dims) >= 2 else (0, 0)
        ds = parent.create_dataset(name, data=np.array(dims, dtype=np.uint64))
        self._set_class(ds, cls)
        ds.attrs["MATLAB_empty"] = np.uint8(1)
        if cls == "logical":
            ds.attrs["MATLAB_int_decode"] = np.int32(1)
        if cls == "char":
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
        if fields:
            self._fields(ds, fields)

    def _fields(self, obj, fields) -> None:
        h5py = self.h5py
        dt = h5py.vlen_dtype(np.dtype("S1"))
        names = np.empty(len(fields), dtype=object)
        for i, f in enumerate(fields):
            names[i] = np.array([c.encode("ascii") for c in f], dtype="S1")
        obj.attrs.create("MATLAB_fields", names, dtype=dt)

    def array(self, parent, name: str, a: np.ndarray) -> None:
        cls = _CLASS_OF.get(a.dtype.newbyteorder("=") if a.dtype.byteorder == ">" else a.dtype)
        if cls is None:
            raise TypeError(f"{name}: arrays of dtype {a.dtype} have no MATLAB class")
        if a.size == 0:
            self.empty(parent, name, cls, a.shape)
            return
        data = a.T
        if a.dtype == np.bool_:
            data = data.astype(np.uint8)
        elif a.dtype.kind == "c":
            real = a.real.dtype
            c = np.empty(data.shape, dtype=[("real", real), ("imag", real)])
            c["real"], c["imag"] = data.real, data.imag
            data = c
        kw = {"compression": "gzip", "compression_opts": 3} if a.size >= _COMPRESS_FROM else {}
        ds = parent.create_dataset(name, data=np.ascontiguousarray(data), **kw)
        self._set_class(ds, cls)
        if cls == "logical":
            ds.attrs["MATLAB_int_decode"] = np.int32(1)

    def char(self, parent, name: str, s: str) -> None:
        if not s:
            self.empty(parent, name, "char", (0, 0))
            return
        codes = np.frombuffer(s.encode("utf-16-le", "surrogatepass"), dtype="<u2")
        ds = parent.create_dataset(name, data=codes.reshape(-1, 1).astype(np.uint16))
        self._set_class(ds, "char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)

    def cell(self, parent, name: str, c: Cell) -> None:
        if c.items.size == 0:
            self.empty(parent, name, "cell", c.items.shape)
            return
        ds = self._refs(parent, name, c.items)
        self._set_class(ds, "cell")

    def struct(self, parent, name: str, s: Struct) -> None:
        if s.items.size == 0:
            self.empty(parent, name, "struct", s.items.shape, s.fields)
            return
        g = parent.create_group(name)
        self._set_class(g, "struct")
        if s.fields:
            self._fields(g, s.fields)
        if s.items.size == 1:
            d = s.items.flat[0]
            for k in s.fields:
                self.write(g, k, d[k])
            return
        for k in s.fields:
            values = np.empty(s.items.shape, dtype=object)
            for idx in np.ndindex(*s.items.shape):
                values[idx] = s.items[idx][k]
            self._refs(g, k, values)  # no MATLAB_class: fields of a struct array

    def sparse(self, parent, name: str, m) -> None:
        m = m.tocsc()
        m.sort_indices()
        cls = _CLASS_OF.get(m.dtype)
        if cls is None:
            raise TypeError(f"{name}: sparse matrices of dtype {m.dtype} have no MATLAB class")
        g = parent.create_group(name)
        self._set_class(g, cls)
        g.attrs["MATLAB_sparse"] = np.uint64(m.shape[0])
        g.create_dataset("jc", data=m.indptr.astype(np.uint64))
        if m.nnz:
            g.create_dataset("ir", data=m.indices.astype(np.uint64))
            data = m.data.astype(np.uint8) if m.dtype == np.bool_ else m.data
            if m.dtype.kind == "c":
                c = np.empty(data.shape, dtype=[("real", data.real.dtype),
                                                 ("imag", data.real.dtype)])
                c["real"], c["imag"] = data.real, data.imag
                data = c
            g.create_dataset("data", data=data)
