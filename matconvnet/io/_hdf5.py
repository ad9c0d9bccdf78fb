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

Damaged files: every HDF5 error becomes :class:`~._values.Malformed` naming the object;
sizes are checked before data is read (a dataset cannot hold more than deflate's maximum
ratio, 1032:1, of the bytes it stores; attributes are small), references nested deeper
than ``MAX_DEPTH``, in a cycle, or re-reading shared groups and cells beyond a budget
(MATLAB writes trees) are refused, and the global heap collections (where
``MATLAB_fields`` lives) are checked before HDF5 parses them, because HDF5 (2.0.0) loops
forever on a collection holding a zero-length free-space object.
"""
from __future__ import annotations

import mmap
import os
import platform
import time
from typing import Any, Dict, Optional

import numpy as np

from ._values import Cell, Malformed, Struct, Unreadable

_CLASSES = {
    "double": np.float64, "single": np.float32, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "logical": np.bool_,
}
_CLASS_OF = {np.dtype(v): k for k, v in _CLASSES.items()}
_CLASS_OF[np.dtype(np.complex128)] = "double"
_CLASS_OF[np.dtype(np.complex64)] = "single"
_COMPRESS_FROM = 4096  # elements; smaller datasets are stored contiguous
MAX_DEPTH = 100        # cells/structs nested deeper than this (or cyclic) are taken as damage
_MAX_RATIO = 1032      # deflate cannot expand data more than this
_MAX_ATTR = 1 << 16    # elements of an attribute (MATLAB's are scalars or field lists)
_MAX_REVISITS = 1024   # re-reads of shared groups and cells, beyond 4 per distinct one


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

    hazard = check_global_heaps(path)
    if hazard:
        raise Malformed(hazard)
    try:
        f = h5py.File(path, "r")
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        raise Malformed(f"HDF5 cannot open it ({type(e).__name__}: {e})") from e
    with f:
        reader = _Reader(f)
        names = reader.guard("/", lambda: [n for n in f.keys() if not n.startswith("#")])
        return {name: reader.value(reader.guard(name, lambda: f[name]), name)
                for name in names}


class _Reader:
    def __init__(self, f):
        import h5py
        self.h5py = h5py
        self.f = f
        self.depth = 0
        self.path = set()       # identities of the groups and cells being read (ancestors)
        self.distinct = set()   # ... and of all those read
        self.visits = 0

    @staticmethod
    def guard(where: str, fn):
        """``fn()``, with HDF5's (and NumPy's) complaints about damaged data as Malformed;
        ``where`` is the value's MATLAB path (``net.layers{2}.weights``)."""
        try:
            return fn()
        except (Malformed, MemoryError, KeyboardInterrupt, RecursionError):
            raise
        except Exception as e:
            raise Malformed(f"{where}: {type(e).__name__}: {e}") from e

    def attr(self, obj, name: str, where: str, present=None):
        """Attribute ``name`` of ``obj`` (None when absent, or not in ``present``, the
        names of its attributes when known), its size and type checked first."""
        def get():
            if name not in (obj.attrs if present is None else present):
                return None
            aid = obj.attrs.get_id(name)
            shape = aid.shape or ()
            if int(np.prod(shape, dtype=object)) > _MAX_ATTR:
                raise Malformed(f"{where}: attribute {name} of size {shape}")
            problem = _type_problem(aid.get_type(), attribute=True)
            if problem:
                raise Malformed(f"{where}: attribute {name} {problem}")
            return obj.attrs[name]
        return self.guard(where, get)

    def data(self, obj, where: str) -> np.ndarray:
        """A dataset's values, after checking its type, and its declared size against what
        it stores."""
        def get():
            problem = _type_problem(obj.id.get_type(), attribute=False)
            if problem:
                raise Malformed(f"{where}: {problem}")
            shape = obj.shape or ()
            nbytes = int(np.prod(shape, dtype=object)) * obj.dtype.itemsize
            stored = obj.id.get_storage_size()
            if nbytes > _MAX_RATIO * stored + 4096:
                raise Malformed(f"{where}: declares {nbytes} bytes of data (shape "
                                f"{shape}, {obj.dtype}) but stores {stored}")
            return obj[()]
        return self.guard(where, get)

    def deref(self, ref, where: str) -> Any:
        if not ref:
            return np.zeros((0, 0))
        return self.value(self.guard(where, lambda: self.f[ref]), where)

    def value(self, obj, where: str) -> Any:
        if self.depth >= MAX_DEPTH:
            raise Malformed(f"{where}: references nested more than {MAX_DEPTH} levels deep "
                            f"(or a cycle)")
        self.depth += 1
        try:
            return self._value(obj, where)
        finally:
            self.depth -= 1

    def _value(self, obj, where: str) -> Any:
        if not (isinstance(obj, self.h5py.Group) or self.is_refs(obj)):
            return self._read(obj, where)
        # a group or cell reached again from inside itself is a cycle; one shared by many
        # references (MATLAB writes trees) is read again each time, within a budget, so
        # that damaged references cannot make the reading take exponential time
        key = self.guard(where, lambda: hash(obj.id))
        if key in self.path:
            raise Malformed(f"{where}: refers to a group or cell that contains it (a cycle)")
        self.distinct.add(key)
        self.visits += 1
        if self.visits - len(self.distinct) > _MAX_REVISITS + 4 * len(self.distinct):
            raise Malformed(f"{where}: groups and cells referred to over and over "
                            f"({self.visits} reads of {len(self.distinct)}; damaged references)")
        self.path.add(key)
        try:
            return self._read(obj, where)
        finally:
            self.path.discard(key)

    def _read(self, obj, where: str) -> Any:
        h5py = self.h5py
        present = self.guard(where, lambda: set(obj.attrs.keys()))
        cls = _attr_str(self.attr(obj, "MATLAB_class", where, present))
        if isinstance(obj, h5py.Group):
            if "MATLAB_sparse" in present:
                return self.sparse(obj, cls, where)
            if cls not in (None, "struct"):
                return Unreadable(f"MATLAB object of class {cls}")
            return self.struct(obj, where)
        if not isinstance(obj, h5py.Dataset):
            raise Malformed(f"{where}: neither a group nor a dataset")
        if "MATLAB_object_decode" in present or cls == "function_handle":
            return Unreadable("function handle" if cls == "function_handle"
                              else f"MATLAB object of class {cls}")
        empty = self.attr(obj, "MATLAB_empty", where, present)
        if empty is not None and self.guard(where, lambda: bool(np.asarray(empty).any())):
            return self.empty(obj, cls, where)
        data = self.data(obj, where)
        if self.is_refs(obj):
            refs = _matlab_dims(np.asarray(data, dtype=object).T)
            items = np.empty(refs.shape, dtype=object)
            for i, idx in enumerate(_column_major(refs.shape)):
                items[idx] = self.deref(refs[idx], f"{where}{{{i + 1}}}")
            return Cell(items)
        return self.guard(where, lambda: _array(np.asarray(data), cls, where))

    def empty(self, obj, cls, where: str) -> Any:
        data = np.asarray(self.data(obj, where))
        dims = (0, 0)
        if data.ndim == 1 and 2 <= data.size <= 32 and data.dtype.kind in "iu" \
                and int(np.prod(data, dtype=object)) == 0 and int(data.max()) < 2 ** 31:
            dims = tuple(int(d) for d in data)
        if cls == "char":
            return ""
        if cls == "cell":
            return Cell(np.empty(dims, dtype=object))
        if cls == "struct":
            return Struct(self.fields(obj, where) or [], np.empty(dims, dtype=object))
        return np.zeros(dims, dtype=_CLASSES.get(cls, np.float64))

    def fields(self, obj, where: str):
        names = self.attr(obj, "MATLAB_fields", where)
        if names is None:
            return None
        fields = self.guard(where, lambda: [b"".join(np.asarray(n).tolist()).decode("ascii")
                                            for n in names])
        if any(not f for f in fields) or len(set(fields)) != len(fields):
            raise Malformed(f"{where}: empty or repeated field names in {fields}")
        return fields

    def struct(self, g, where: str) -> Struct:
        h5py = self.h5py
        fields = self.fields(g, where)
        keys = self.guard(where, lambda: list(g.keys()))
        if fields is None:
            fields = [k for k in keys if not k.startswith("#")]
        missing = [k for k in fields if k not in keys]
        if missing:
            raise Malformed(f"{where}: fields {missing} are listed but absent")
        if not fields:
            return Struct([], _one({}))
        members = {k: self.guard(f"{where}.{k}", lambda k=k: g[k]) for k in fields}
        first = members[fields[0]]
        if self.is_refs(first) and self.attr(first, "MATLAB_class", where) is None:
            # a struct array: each field a dataset of references, one per element
            refs = {k: self.refs(members[k], f"{where}.{k}") for k in fields}
            dims = refs[fields[0]].shape
            bad = [k for k in fields if refs[k].shape != dims]
            if bad:
                raise Malformed(f"{where}: struct array fields of different sizes ("
                                + ", ".join(f"{k}: {refs[k].shape}" for k in [fields[0]] + bad)
                                + ")")
            items = np.empty(dims, dtype=object)
            for i, idx in enumerate(_column_major(dims)):
                items[idx] = {k: self.deref(refs[k][idx], f"{where}({i + 1}).{k}")
                              for k in fields}
            return Struct(fields, items)
        return Struct(fields, _one({k: self.value(members[k], f"{where}.{k}") for k in fields}))

    def is_refs(self, obj) -> bool:
        """A dataset of object references (a cell, or a struct array's field)."""
        h5py = self.h5py
        return isinstance(obj, h5py.Dataset) and \
            self.guard("?", lambda: h5py.check_ref_dtype(obj.dtype)) is h5py.Reference

    def refs(self, ds, where: str) -> np.ndarray:
        if not self.is_refs(ds):
            raise Malformed(f"{where}: expected a dataset of references (a field of a "
                            f"struct array)")
        return _matlab_dims(np.asarray(self.data(ds, where), dtype=object).T)

    def sparse(self, g, cls, where: str):
        import scipy.sparse as sp

        rows = self.guard(where, lambda: int(np.asarray(
            self.attr(g, "MATLAB_sparse", where)).item()))
        keys = self.guard(where, lambda: set(g.keys()))

        def part(name, integers: bool):
            if name not in keys:
                return None
            ds = self.guard(f"{where} ({name})", lambda: g[name])
            if not isinstance(ds, self.h5py.Dataset):
                raise Malformed(f"{where}: sparse matrix part {name} is not a dataset")
            a = np.asarray(self.data(ds, f"{where} ({name})"))
            if a.dtype.names and {"real", "imag"} <= set(a.dtype.names) and not integers:
                a = a["real"] + 1j * a["imag"]
            if a.dtype.kind not in ("iu" if integers else "biufc"):
                raise Malformed(f"{where}: sparse matrix part {name} holds {a.dtype} values")
            return a.ravel().astype(np.int64) if integers else a.ravel()

        jc, ir, data = part("jc", True), part("ir", True), part("data", False)
        ir = np.zeros(0, np.int64) if ir is None else ir
        data = np.zeros(0) if data is None else data
        if jc is None or jc.size == 0 or not 0 <= rows < 2 ** 48:
            raise Malformed(f"{where}: a sparse matrix needs column pointers and a row count")
        nnz = int(jc[-1])
        if jc[0] != 0 or (np.diff(jc) < 0).any() or nnz > min(ir.size, data.size) \
                or (nnz and (ir[:nnz].min() < 0 or ir[:nnz].max() >= rows)):
            raise Malformed(f"{where}: inconsistent sparse matrix (column pointers or row "
                            f"indices out of range)")
        if cls == "logical":
            data = data.astype(bool)
        return sp.csc_matrix((data[:nnz], ir[:nnz], jc), shape=(rows, len(jc) - 1))


def _type_problem(tid, *, attribute: bool) -> Optional[str]:
    """What is wrong with an HDF5 datatype for MATLAB data, or None.  MATLAB writes
    integers, floats, compounds of them (complex numbers), object references (datasets)
    and fixed-length strings and variable-length sequences of bytes (attributes); HDF5
    itself crashes converting some damaged variable-length types, so their encoding (the
    datatype message, read back with ``H5Tencode``) is checked before any value is read."""
    import h5py

    enc = tid.encode()
    cls = enc[2] & 0x0F if len(enc) > 2 else -1
    if cls in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        return None
    if cls == h5py.h5t.COMPOUND and not attribute:
        for i in range(tid.get_nmembers()):
            problem = _type_problem(tid.get_member_type(i), attribute=False)
            if problem or tid.get_member_type(i).get_class() == h5py.h5t.COMPOUND:
                return problem or "has a nested compound datatype"
        return None
    if cls == h5py.h5t.REFERENCE and not attribute:
        return None
    if cls == h5py.h5t.STRING and attribute:
        return None
    if cls == h5py.h5t.VLEN and attribute and len(enc) > 10 and enc[3] & 0x0F in (0, 1) \
            and enc[10] & 0x0F in (h5py.h5t.INTEGER, h5py.h5t.STRING):
        return None
    return f"has a datatype MATLAB does not write (class {cls}, encoded {enc[2:12].hex()})"


def _array(data: np.ndarray, cls, where: str) -> Any:
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]
    if data.dtype.kind not in "biufc":
        raise Malformed(f"{where}: values of type {data.dtype}, not numbers")
    a = _matlab_dims(data.T)
    if cls == "char":
        return _chars(a)
    if cls in _CLASSES:
        a = a.astype(_CLASSES[cls], copy=False) if a.dtype.kind != "c" else a
    return a


def check_global_heaps(path: str) -> Optional[str]:
    """A description of the first global heap collection of the file at ``path`` that
    HDF5 could not parse without looping forever or leaving its buffer, or None.

    HDF5 walks a collection's objects (index u16, references u16, 4 reserved bytes, size)
    by adding each object's size, aligned to 8 plus the object header (index 0, the free
    space, adds its size alone): a zero size never advances, and a size near 2^64 wraps
    the pointer backwards.  Every byte run that starts like a collection ("GCOL", version
    1) and fits in the file is walked the same way."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            lengths = _sizeof_lengths(m)
            at = m.find(b"GCOL\x01")
            while at != -1:
                problem = _walk_collection(m, at, lengths)
                if problem:
                    return f"global heap collection at byte {at}: {problem}"
                at = m.find(b"GCOL\x01", at + 1)
    return None


def _sizeof_lengths(m) -> int:
    """The superblock's "size of lengths" (at byte 0, 512, 1024, ...); 8 by default."""
    at = 0
    while at + 16 <= len(m):
        if m[at:at + 8] == b"\x89HDF\r\n\x1a\n":
            version = m[at + 8]
            n = m[at + 14] if version in (0, 1) else m[at + 10]
            return n if n in (2, 4, 8, 16, 32) else 8
        at = 512 if at == 0 else at * 2
    return 8


def _walk_collection(m, at: int, lengths: int) -> Optional[str]:
    size = int.from_bytes(m[at + 8:at + 8 + lengths], "little")
    if at + size > len(m):
        return None  # HDF5 refuses to read past the end of the file
    wrap = 1 << 64  # size_t arithmetic
    p, head = 8 + lengths, 8 + lengths
    while p < size:
        if p + head > size:
            break  # a tail too small for an object header: free space
        idx = int.from_bytes(m[at + p:at + p + 2], "little")
        osize = int.from_bytes(m[at + p + 8:at + p + 8 + lengths], "little")
        need = (head + (osize + 7) // 8 * 8 if idx > 0 else osize) % wrap
        if need == 0:
            return f"object {idx} at offset {p} has size 0"
        if need >= wrap // 2:
            return f"object {idx} at offset {p} has an impossible size {osize}"
        p += need
    return None


def _column_major(shape):
    """The indexes of an array of ``shape`` in MATLAB's (column-major) order."""
    return (idx[::-1] for idx in np.ndindex(*shape[::-1]))


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
