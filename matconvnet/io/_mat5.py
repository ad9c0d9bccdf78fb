"""MAT v5/v6/v7 files read in pure Python: every size is checked against the bytes present.

SciPy's reader trusts the sizes written in a file, and on a damaged one it can crash the
interpreter (a segmentation fault in its compiled code), loop forever or allocate what the
file merely claims; this reader is the format's grammar with every length checked before it
is used, so a damaged file raises :class:`~._values.Malformed` naming the byte offset and
what is wrong.  It returns the neutral tree of ``_values.py`` exactly as the SciPy-based
reader did (``loadmat(mat_dtype=True, chars_as_strings=True)``), except that complex
values keep their imaginary part (SciPy drops it) and ``uint16`` character data is decoded
as UTF-16 (SciPy takes the low bytes).

The format (MathWorks, "MAT-File Format", chapter 1): a 128-byte header (text, subsystem
offset, version ``0x0100``, endian indicator ``IM``/``MI``), then data elements: an 8-byte
tag (type, byte count; or a "small" 4-byte tag holding up to 4 bytes of data) and the data,
padded to 8 bytes.  A variable is an ``miMATRIX`` element, or an ``miCOMPRESSED`` element
holding one, zlib-compressed.  An ``miMATRIX`` holds the array flags (class, complex,
logical), the dimensions (``miINT32``), the name (``miINT8``) and the class's data: the real
and imaginary parts (numeric classes), the characters (char), one ``miMATRIX`` per element
(cell), the field name length, the names and one ``miMATRIX`` per element and field
(struct; objects add a class name first), row indices, column pointers and values
(sparse).  Function handles and opaque objects are skipped as :class:`~._values.Unreadable`.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, Tuple

import numpy as np

from ._values import Cell, Malformed, Struct, Unreadable, new_cell

# data types (MAT-File Format, table 1-1) -> NumPy type codes
_MI_NUMERIC = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
               12: "i8", 13: "u8"}
_MI_NAMES = {1: "miINT8", 2: "miUINT8", 3: "miINT16", 4: "miUINT16", 5: "miINT32",
             6: "miUINT32", 7: "miSINGLE", 9: "miDOUBLE", 12: "miINT64", 13: "miUINT64",
             14: "miMATRIX", 15: "miCOMPRESSED", 16: "miUTF8", 17: "miUTF16", 18: "miUTF32"}
MI_INT8, MI_UINT8, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 4, 5, 6
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18
# array classes (table 1-3) -> NumPy dtypes of the numeric ones
_MX_NUMERIC = {6: np.float64, 7: np.float32, 8: np.int8, 9: np.uint8, 10: np.int16,
               11: np.uint16, 12: np.int32, 13: np.uint32, 14: np.int64, 15: np.uint64}
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
MX_FUNCTION, MX_OPAQUE = 16, 17
_FLAG_COMPLEX, _FLAG_LOGICAL = 0x800, 0x200

MAX_DIMS = 32            # as SciPy; MATLAB itself allows more, NumPy 64
MAX_DEPTH = 100          # cells/structs nested deeper than this are taken as damage
MAX_FIELDLESS = 1 << 20  # elements of a struct array without fields (they take no bytes)


def read(data: bytes) -> Dict[str, Any]:
    """The variables of a MAT v5 file held in ``data``: name -> MATLAB value (neutral tree).
    Variables with an empty name (MATLAB's function workspace) are skipped."""
    if len(data) < 128:
        raise Malformed(f"the 128-byte MAT header is cut short ({len(data)} bytes)")
    order = {b"IM": "<", b"MI": ">"}.get(bytes(data[126:128]))
    if order is None:
        raise Malformed(f"bad endian indicator {bytes(data[126:128])!r} (expected b'IM' or "
                        f"b'MI')")
    top = _Stream(data, 128, len(data), order, "file")
    out: Dict[str, Any] = {}
    while top.pos < top.end:
        start = top.pos
        mtype, body = top.element()
        if mtype == MI_COMPRESSED:
            inflated = _inflate(body, order, start)
            stream = _Stream(inflated, 0, len(inflated), order,
                             f"the compressed variable at byte {start}")
        elif mtype == MI_MATRIX:
            stream = _Stream(top.data, start, top.pos, order, "file")
        else:
            raise Malformed(f"byte {start}: expected a variable (miMATRIX or miCOMPRESSED "
                            f"element), found an element of type {_mi_name(mtype)}")
        name, value = stream.variable()
        if not name:
            continue
        if name in out:
            raise Malformed(f"byte {start}: variable {name!r} appears twice")
        out[name] = value
    return out


def _mi_name(mtype: int) -> str:
    return _MI_NAMES.get(mtype, str(mtype))


def _inflate(body: memoryview, order: str, start: int) -> bytes:
    """An miCOMPRESSED element's zlib stream, whose content is one miMATRIX element: only
    as many bytes as that element's tag announces are inflated (a damaged stream cannot
    make the reader allocate more), and the stream must end with a correct checksum."""
    d = zlib.decompressobj()
    try:
        head = d.decompress(body, 8)
        if len(head) < 8:
            raise Malformed(f"byte {start}: the compressed variable holds no element")
        mtype, nbytes = struct.unpack(order + "II", head)
        if mtype != MI_MATRIX:
            raise Malformed(f"byte {start}: the compressed variable holds an element of "
                            f"type {_mi_name(mtype & 0xFFFF)}, not a variable (miMATRIX)")
        rest = d.decompress(d.unconsumed_tail, nbytes + (-nbytes % 8))
        if len(rest) < nbytes:
            raise Malformed(f"byte {start}: the compressed variable announces {nbytes} "
                            f"bytes but holds {len(rest)}")
        # nothing may follow the element but the end of the stream and its checksum
        if d.decompress(d.unconsumed_tail, 8):
            raise Malformed(f"byte {start}: the compressed variable holds more than its "
                            f"element's {nbytes} bytes")
        if not d.eof:
            raise Malformed(f"byte {start}: the compressed variable is cut short (its zlib "
                            f"stream does not end)")
    except zlib.error as e:
        raise Malformed(f"byte {start}: the compressed variable is damaged ({e})") from None
    return head + rest


class _Stream:
    """A cursor over ``data[pos:end]`` reading elements in byte order ``order``; ``where``
    names the stream in messages (offsets are relative to it)."""

    def __init__(self, data, pos: int, end, order: str, where: str):
        self.data = data if isinstance(data, memoryview) else memoryview(data)
        self.pos = pos
        self.end = end
        self.order = order
        self.where = where
        self.depth = 0

    def fail(self, at: int, what: str):
        place = f"byte {at}" if self.where == "file" else f"{self.where}, byte {at}"
        raise Malformed(f"{place}: {what}")

    # -- elements

    def tag(self) -> Tuple[int, int, int, bool]:
        """(type, byte count, data start, small) of the element at ``pos``."""
        at = self.pos
        if self.end - at < 8:
            self.fail(at, f"expected an 8-byte element tag, {self.end - at} bytes are left")
        first, second = struct.unpack_from(self.order + "II", self.data, at)
        if first >> 16:  # small data element: type and count share the first 4 bytes
            nbytes, mtype = first >> 16, first & 0xFFFF
            if nbytes > 4:
                self.fail(at, f"a small data element cannot hold {nbytes} bytes (at most 4)")
            return mtype, nbytes, at + 4, True
        return first, second, at + 8, False

    def element(self) -> Tuple[int, memoryview]:
        """The next element's (type, data); the cursor moves past its padding."""
        at = self.pos
        mtype, nbytes, start, small = self.tag()
        if small:
            self.pos = at + 8
        else:
            if nbytes > self.end - start:
                self.fail(at, f"an element of type {_mi_name(mtype)} announces {nbytes} "
                              f"bytes, {self.end - start} are left")
            # compressed variables are not padded; the last element may lack its padding
            pad = 0 if mtype == MI_COMPRESSED else -nbytes % 8
            self.pos = min(start + nbytes + pad, self.end)
        return mtype, self.data[start:start + nbytes]

    def numbers(self, what: str, types=None) -> Tuple[np.ndarray, int]:
        """The next element as a NumPy array in the machine's byte order (and its type)."""
        at = self.pos
        mtype, body = self.element()
        code = _MI_NUMERIC.get(mtype)
        if code is None or (types is not None and mtype not in types):
            allowed = ", ".join(_mi_name(t) for t in (types or _MI_NUMERIC))
            self.fail(at, f"{what}: expected an element of type {allowed}, found "
                          f"{_mi_name(mtype)}")
        dtype = np.dtype(self.order + code)
        if len(body) % dtype.itemsize:
            self.fail(at, f"{what}: {len(body)} bytes is not a whole number of "
                          f"{_mi_name(mtype)} values")
        a = np.frombuffer(body, dtype=dtype)
        return a.astype(dtype.newbyteorder("="), copy=True), mtype

    def text(self, what: str) -> str:
        at = self.pos
        mtype, body = self.element()
        if mtype not in (MI_INT8, MI_UINT8):
            self.fail(at, f"{what}: expected an miINT8 element, found {_mi_name(mtype)}")
        return bytes(body).split(b"\0", 1)[0].decode("latin-1")

    # -- arrays

    def variable(self) -> Tuple[str, Any]:
        at = self.pos
        mtype, nbytes, start, small = self.tag()
        if small or nbytes == 0:
            self.fail(at, "a variable's miMATRIX element is empty")
        return self.matrix()

    def matrix(self) -> Tuple[str, Any]:
        """The miMATRIX element at ``pos``: (name, value); the cursor moves past it."""
        at = self.pos
        _, _, start, _ = self.tag()
        mtype, body = self.element()
        if mtype != MI_MATRIX:
            self.fail(at, f"expected an array (miMATRIX element), found {_mi_name(mtype)}")
        if len(body) == 0:  # MATLAB's [] in a cell or a field
            return "", np.zeros((0, 0))
        if self.depth >= MAX_DEPTH:
            self.fail(at, f"cells or structs nested more than {MAX_DEPTH} levels deep")
        inner = _Stream(self.data, start, start + len(body), self.order, self.where)
        inner.depth = self.depth + 1
        return inner.array_body(at)

    def array_body(self, at: int) -> Tuple[str, Any]:
        flags, _ = self.numbers("array flags", (MI_UINT32,))
        if flags.size != 2:
            self.fail(at, f"array flags: expected 2 miUINT32 values, found {flags.size}")
        mclass, complex_, logical = (int(flags[0]) & 0xFF, bool(flags[0] & _FLAG_COMPLEX),
                                     bool(flags[0] & _FLAG_LOGICAL))
        if mclass == MX_OPAQUE:  # no dimensions: name, then a format of its own
            return self.text("array name"), Unreadable("MATLAB object")
        dims = self.dims(at)
        name = self.text("array name")
        if mclass in _MX_NUMERIC:
            return name, self.numeric(at, dims, mclass, complex_, logical)
        if mclass == MX_CHAR:
            return name, self.char(at, dims)
        if mclass == MX_CELL:
            return name, self.cell(at, dims)
        if mclass == MX_STRUCT:
            return name, self.struct(at, dims)
        if mclass == MX_OBJECT:
            return name, Unreadable(f"MATLAB object of class {self.text('class name')}")
        if mclass == MX_SPARSE:
            return name, self.sparse(at, dims, complex_)
        if mclass == MX_FUNCTION:
            return name, Unreadable("function handle")
        self.fail(at, f"unknown array class {mclass}")

    def dims(self, at: int) -> Tuple[int, ...]:
        d, _ = self.numbers("dimensions", (MI_INT32,))
        if not 1 <= d.size <= MAX_DIMS:
            self.fail(at, f"dimensions: expected 1 to {MAX_DIMS} values, found {d.size}")
        if (d < 0).any():
            self.fail(at, f"dimensions: negative size in {tuple(int(x) for x in d)}")
        return tuple(int(x) for x in d)

    def count(self, at: int, dims: Tuple[int, ...], min_bytes: int, what: str) -> int:
        """Elements of an array of ``dims`` whose elements take at least ``min_bytes``
        each: checked against the bytes left before anything is allocated."""
        n = 1
        for d in dims:
            n *= d
        if n * min_bytes > self.end - self.pos:
            self.fail(at, f"{what} of size {_show(dims)} needs at least {n * min_bytes} "
                          f"bytes, the element has {self.end - self.pos} left")
        return n

    def numeric(self, at, dims, mclass, complex_, logical) -> np.ndarray:
        n = self.count(at, dims, 0, "array")
        re, _ = self.numbers("real part")
        if re.size != n:
            self.fail(at, f"real part: {re.size} values for an array of size {_show(dims)}")
        target = np.bool_ if logical else _MX_NUMERIC[mclass]
        if complex_:
            im, _ = self.numbers("imaginary part")
            if im.size != n:
                self.fail(at, f"imaginary part: {im.size} values for an array of size "
                              f"{_show(dims)}")
            ctype = np.complex64 if mclass == 7 else np.complex128
            a = re.astype(ctype)
            a.imag = im
        else:
            a = re.astype(target, copy=False)
        return a.reshape(dims, order="F")

    def char(self, at, dims) -> Any:
        n = self.count(at, dims, 0, "char array")
        pos = self.pos
        mtype, body = self.element()
        raw = bytes(body)
        try:
            if mtype == MI_UTF8:
                s = raw.decode("utf-8")
            elif mtype in (MI_UTF16, MI_UINT16):
                s = raw.decode("utf-16-le" if self.order == "<" else "utf-16-be",
                               "surrogatepass")
            elif mtype == MI_UTF32:
                s = raw.decode("utf-32-le" if self.order == "<" else "utf-32-be")
            elif mtype in (MI_INT8, MI_UINT8):
                s = raw.decode("latin-1")
            else:
                self.fail(pos, f"characters: unexpected element type {_mi_name(mtype)}")
        except UnicodeDecodeError as e:
            self.fail(pos, f"characters: not valid text ({e.reason})")
        if mtype in (MI_UTF16, MI_UINT16) and len(s) != n:  # surrogate pairs: one code unit each
            s = "".join(chr(c) for c in np.frombuffer(raw, self.order + "u2"))
        if len(s) != n:
            self.fail(at, f"characters: {len(s)} for a char array of size {_show(dims)}")
        return char_value(s, dims)

    def cell(self, at, dims) -> Cell:
        n = self.count(at, dims, 8, "cell array")
        flat = np.empty(n, dtype=object)
        for i in range(n):
            flat[i] = self.matrix()[1]
        return Cell(flat.reshape(dims, order="F"))

    def struct(self, at, dims) -> Any:
        size, _ = self.numbers("field name length", (MI_INT32,))
        if size.size != 1 or not 1 <= int(size[0]) <= 4096:
            self.fail(at, f"field name length: expected one value from 1 to 4096, found "
                          f"{size.tolist()}")
        length = int(size[0])
        pos = self.pos
        mtype, body = self.element()
        if mtype not in (MI_INT8, MI_UINT8) or len(body) % length:
            self.fail(pos, f"field names: expected an miINT8 element of a multiple of "
                           f"{length} bytes, found {_mi_name(mtype)} of {len(body)} bytes")
        raw = bytes(body)
        fields = [raw[i:i + length].split(b"\0", 1)[0].decode("latin-1")
                  for i in range(0, len(raw), length)]
        if any(not f for f in fields) or len(set(fields)) != len(fields):
            self.fail(pos, f"field names: empty or repeated names in {fields}")
        n = self.count(at, dims, 8 * len(fields), "struct array")
        if not fields:
            if n == 0:
                return Cell(np.empty(dims, dtype=object))  # as SciPy's reader gave it
            if n > MAX_FIELDLESS:
                self.fail(at, f"a struct array without fields of size {_show(dims)} (more "
                              f"than {MAX_FIELDLESS} elements)")
        flat = np.empty(n, dtype=object)
        for i in range(n):
            flat[i] = {f: self.matrix()[1] for f in fields}
        return Struct(fields, flat.reshape(dims, order="F"))

    def sparse(self, at, dims, complex_) -> Any:
        import scipy.sparse as sp

        if len(dims) != 2:
            self.fail(at, f"a sparse matrix must have 2 dimensions, found {_show(dims)}")
        rows, cols = dims
        ir, _ = self.numbers("row indices")
        jc, _ = self.numbers("column pointers")
        data, _ = self.numbers("values")
        if complex_:
            im, _ = self.numbers("imaginary parts")
            if im.size != data.size:
                self.fail(at, "sparse matrix: as many imaginary parts as values expected")
            data = data.astype(np.complex64 if data.dtype == np.float32 else np.complex128)
            data.imag = im
        if jc.size < cols + 1:
            self.fail(at, f"sparse matrix: {jc.size} column pointers for {cols} columns")
        jc = jc[:cols + 1].astype(np.int64)
        nnz = int(jc[-1])
        if jc[0] != 0 or (np.diff(jc) < 0).any() or nnz > min(ir.size, data.size):
            self.fail(at, "sparse matrix: column pointers are not increasing from 0 up to "
                          "the number of values")
        ir = ir[:nnz].astype(np.int64)
        if ir.size and (ir.min() < 0 or ir.max() >= rows):
            self.fail(at, f"sparse matrix: row indices outside 0..{rows - 1}")
        return sp.csc_matrix((data[:nnz], ir, jc), shape=(rows, cols))


def _show(dims) -> str:
    return " x ".join(str(d) for d in dims)


def char_value(s: str, dims: Tuple[int, ...]) -> Any:
    """A char array of ``dims`` holding ``s`` (column-major) as a neutral value: its rows
    (strings along the last dimension) as one ``str`` or, for several, a ``Cell`` column;
    as SciPy's ``chars_as_strings`` gives them (trailing NULs dropped)."""
    if not dims or dims[-1] == 0 or len(s) == 0:
        return ""
    chars = np.array(list(s), dtype="U1").reshape(dims, order="F")
    rows = ["".join(r).rstrip("\0") for r in chars.reshape(-1, dims[-1])]
    grid = np.empty(len(rows), dtype=object)
    grid[:] = rows
    grid = grid.reshape(dims[:-1] or (1,))
    if grid.size == 1:
        return rows[0]
    return new_cell(list(grid.ravel(order="F")), (grid.size, 1))
