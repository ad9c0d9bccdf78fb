r"""load_onnx: an ONNX CNN as a :class:`matconvnet.dagnn.DagNN`.

::

    net = load_onnx("squeezenet_cifar10.onnx")        # a path, bytes or an onnx.ModelProto
    net.eval({"input_1": x})                          # x: N x C x H x W (see meta below)
    y = net.vars[net.get_var_index("loss")].value     # N x 10 x 1 x 1

Operators (ai.onnx domain, any opset) and what they become:

=============================== ==========================================================
Conv, ConvTranspose             ``Conv`` / ``ConvTranspose`` (groups, strides, dilations,
                                explicit pads or ``auto_pad`` SAME_UPPER/SAME_LOWER/VALID,
                                optional bias; convolution-transpose dilation is applied to
                                the filters, ``output_padding`` / ``output_shape`` to the
                                crops)
MaxPool, AveragePool            ``Pooling`` (ceil_mode; count_include_pad through a ``Pad``
                                layer; see :meth:`Builder.pool`)
GlobalAveragePool/MaxPool       ``Pooling`` over the whole (static) map
BatchNormalization              ``BatchNorm`` with moments ``[mean, sqrt(var + epsilon)]``
Relu, LeakyRelu, PRelu          ``ReLU`` (``leak``), ``PReLU``
Sigmoid, HardSigmoid, Clip      ``Sigmoid``, ``HardSigmoid``, ``Clip``
Softmax                         ``SoftMax`` (on the channels; other axes are brought there)
LRN                             ``LRN`` with ``[size, bias, alpha / size, beta]``
Concat                          ``Concat``
Add, Sub, Mul, Div, Sum         ``Sum`` or ``BinaryOp`` (NumPy broadcasting); a per-channel
                                constant added to a convolution's output becomes its bias
Gemm, MatMul                    ``Conv`` over the whole map (a 1 x 1 map after a
                                flatten's 4-D input: the weight matrix is reshaped to
                                K x C x H x W, exactly)
Flatten, Reshape, Squeeze,      no layer: the importer tracks the layout (_dag_builder),
Unsqueeze, Transpose            adding ``Reshape``/``Permute`` only where needed
Pad, Slice                      ``Pad`` (constant mode, spatial axes; negative pads and
                                slices of H and W crop)
Dropout                         ``DropOut`` (the network is in 'test' mode: identity)
Identity, Constant, Shape,      no layer; constant sub-graphs (e.g. Reshape's shape, a
Gather, Cast, Min, Max          crop's start computed from Shape) are folded
=============================== ==========================================================

Weights may be initializers or ``Constant`` nodes; they become float32 parameters.
An operator outside this table makes ``load_onnx`` fail with one ``ValueError`` listing
every unsupported operator of the graph.  A damaged file (truncated protobuf, a value no
node computes, a cycle, ...) raises ``ValueError`` naming the problem.

Layout: the first axis of every tensor is the batch.  A 4-D tensor is ``N x C x H x W``;
a 2-D ``[N, D]`` tensor (a ``Gemm`` output, the ``[N, 10]`` scores) is an
``N x D x 1 x 1`` variable.  The batch size of the file may be fixed (mnist-8's 1) or
symbolic; the network works for any batch size.  The other sizes must be known, from
the file or from ``input_shapes``.  **Transpose at the input**: when every reader of a
4-D input is a ``Transpose`` by the same permutation ``q`` keeping the batch first (the
NHWC input of TensorFlow exports, ``q = [0, 3, 1, 2]``), the DagNN input takes the
*transposed* tensor, ``x.permute(q)`` (N x C x H x W), and the transpose disappears;
``meta['inputs'][i]['permutation']`` records ``q`` (0-based).

``net.meta``: ``inputs`` (per input: ``name``, ``size`` ``[H W C N]`` of the DagNN
variable, MatConvNet's order; ``onnxShape`` with NaN for symbolic sizes; ``permutation``),
``outputs`` (``name``, ``onnxShape``), ``onnx`` (producer, IR version, opset).
The network is returned in ``'test'`` mode (batch norm with the file's statistics,
dropout off).
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..dagnn import DagNN
from ..dagnn import layers as L
from ._dag_builder import Builder, Sym, _axis

__all__ = ["load_onnx"]

PathOrModel = Union[str, "os.PathLike[str]", bytes, Any]

#: The operators load_onnx converts (ai.onnx domain).
SUPPORTED = frozenset({
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "Clip",
    "Softmax", "LRN", "Concat", "Add", "Sub", "Mul", "Div", "Sum", "Gemm", "MatMul",
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Pad", "Dropout", "Identity",
    "Constant", "Shape", "Gather", "Cast", "Slice", "Min", "Max",
})

_FLOAT_TYPES = {1: "float", 10: "float16", 11: "double", 16: "bfloat16"}
_MAX_DIM = 1 << 31


def load_onnx(path_or_model: PathOrModel, *,
              input_shapes: Optional[Mapping[str, Sequence[int]]] = None) -> DagNN:
    """Read an ONNX model (a file path, its bytes, or an ``onnx.ModelProto``) into a DagNN.

    ``input_shapes`` gives the shapes (ONNX's layout, batch first) of inputs whose sizes
    the file leaves symbolic, e.g. ``{'data': [1, 3, 224, 224]}``.  See the module
    documentation for the operators, the layout conventions and ``net.meta``."""
    source, model = _read_model(path_or_model)
    if input_shapes is not None and not isinstance(input_shapes, Mapping):
        raise TypeError(f"input_shapes: expected a dict name -> shape, got {input_shapes!r}")
    try:
        return _Importer(model, dict(input_shapes or {})).run()
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e


# ----------------------------------------------------------------------------- reading


def _read_model(path_or_model: PathOrModel):
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as e:  # pragma: no cover
        raise ImportError("load_onnx needs the 'onnx' package: pip install onnx") from e
    if isinstance(path_or_model, onnx.ModelProto):
        return "model", path_or_model
    if isinstance(path_or_model, (bytes, bytearray, memoryview)):
        source, data = "model bytes", bytes(path_or_model)
    elif isinstance(path_or_model, (str, os.PathLike)):
        source = os.fspath(path_or_model)
        with open(source, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"path_or_model: expected a file path, bytes or an onnx.ModelProto, "
                        f"got {type(path_or_model).__name__}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{source}: not a readable ONNX model (protobuf decoding failed: "
                         f"{e}); the file may be truncated or damaged") from None
    if not model.HasField("graph"):
        raise ValueError(f"{source}: not an ONNX model (it holds no graph)")
    if any(_is_external(t) for t in model.graph.initializer):
        if isinstance(path_or_model, (str, os.PathLike)):
            try:
                from onnx.external_data_helper import load_external_data_for_model
                load_external_data_for_model(model, os.path.dirname(os.path.abspath(source)))
            except Exception as e:  # onnx raises many kinds here
                raise ValueError(f"{source}: cannot read the external weight data: "
                                 f"{type(e).__name__}: {e}") from None
        else:
            raise ValueError(f"{source}: the model keeps weights in external files; pass "
                             f"its path instead")
    return source, model


def _is_external(t) -> bool:
    return t.data_location == 1  # TensorProto.EXTERNAL


def _to_array(t, what: str) -> np.ndarray:
    from onnx import numpy_helper
    dims = list(t.dims)
    if any(d < 0 for d in dims) or math.prod(dims) > _MAX_DIM:
        raise ValueError(f"{what}: invalid dimensions {dims}")
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:  # onnx raises ValueError, TypeError, KeyError, ... on bad data
        raise ValueError(f"{what}: unreadable tensor data ({type(e).__name__}: {e})") from None
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{what}: expected a numeric tensor, got dtype {a.dtype}")
    return a


def _attributes(node) -> Dict[str, Any]:
    from onnx import helper
    out = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
        except Exception as e:
            raise ValueError(f"attribute {a.name!r}: unreadable ({type(e).__name__}: {e})") \
                from None
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[a.name] = v
    return out


def _node_label(node, index: int) -> str:
    return f"node {node.name or '#' + str(index)!r} ({node.op_type})"


# ----------------------------------------------------------------------------- the importer


class _Importer:
    """One import: the needed nodes in topological order through the ``_op_<OpType>``
    methods into a :class:`Builder`; ``env`` maps ONNX value names to :class:`Sym` (computed
    tensors) or NumPy arrays (constants)."""

    def __init__(self, model, input_shapes: Dict[str, Sequence[int]]):
        self.model = model
        self.graph = model.graph
        self.input_shapes = input_shapes
        self.opset = 1
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                self.opset = int(o.version)
        self.env: Dict[str, Any] = {}
        self.consumers: Dict[str, int] = {}
        self.symbolic_batch = False

    # -- structure

    def run(self) -> DagNN:
        g = self.graph
        if g.sparse_initializer:
            raise ValueError("sparse initializers are not supported")
        consts = {}
        for t in g.initializer:
            consts[t.name] = t
        outputs = [o.name for o in g.output]
        if not outputs:
            raise ValueError("the graph has no outputs")
        inputs = [i for i in g.input if i.name not in consts]
        unknown = sorted(set(self.input_shapes) - {i.name for i in inputs})
        if unknown:
            raise ValueError(f"input_shapes: {unknown} are not inputs of the graph; its "
                             f"inputs are {[i.name for i in inputs]}")
        nodes = self._needed_nodes(outputs, set(consts) | {i.name for i in inputs})
        self._check_supported(nodes)
        for name in outputs:
            self.consumers[name] = self.consumers.get(name, 0) + 1
        for _, node in nodes:
            for x in node.input:
                if x:
                    self.consumers[x] = self.consumers.get(x, 0) + 1
        reserved = [v for _, n in nodes for v in n.output] + [i.name for i in inputs]
        self.b = Builder(reserved)
        for name, t in consts.items():
            if name in self.consumers:
                self.env[name] = _to_array(t, f"initializer {name!r}")
        meta_inputs = self._inputs(inputs, nodes)
        for index, node in nodes:
            self._convert(index, node)
        meta_outputs, final = [], []
        for name in outputs:
            v = self.env.get(name)
            if not isinstance(v, Sym):
                raise ValueError(f"output {name!r} is a constant, not computed from the inputs")
            final.append((name, v))
            shape = [float(a) for a in v.shape]
            if self.symbolic_batch:
                shape[0] = math.nan
            meta_outputs.append({"name": name, "onnxShape": shape})
        meta = {"inputs": meta_inputs, "outputs": meta_outputs,
                "onnx": {"producer": f"{self.model.producer_name} "
                                     f"{self.model.producer_version}".strip(),
                         "irVersion": int(self.model.ir_version), "opset": self.opset}}
        return self.b.finish(final, meta)

    def _needed_nodes(self, outputs: List[str], available: set) -> List[Tuple[int, Any]]:
        """The nodes the outputs depend on, in a topological order (Kahn's algorithm:
        linear, no recursion); missing values and cycles are errors."""
        producer: Dict[str, int] = {}
        nodes = list(self.graph.node)
        for i, node in enumerate(nodes):
            for o in node.output:
                if not o:
                    continue
                if o in producer or o in available:
                    raise ValueError(f"the value {o!r} is computed twice (by "
                                     f"{_node_label(node, i)} and another node or input)")
                producer[o] = i
        needed, stack, missing = set(), [], []
        for o in outputs:
            if o in producer:
                stack.append(producer[o])
            elif o not in available:
                missing.append(f"{o!r} (a graph output)")
        while stack:
            i = stack.pop()
            if i in needed:
                continue
            needed.add(i)
            for x in nodes[i].input:
                if not x:
                    continue
                if x in producer:
                    stack.append(producer[x])
                elif x not in available:
                    missing.append(f"{x!r} (read by {_node_label(nodes[i], i)})")
        if missing:
            raise ValueError("these values are neither graph inputs, initializers nor "
                             "outputs of a node (a missing initializer or node?): "
                             + ", ".join(dict.fromkeys(missing)))
        deps = {i: {producer[x] for x in nodes[i].input if x in producer} for i in needed}
        users: Dict[int, List[int]] = {i: [] for i in needed}
        for i, ds in deps.items():
            for d in ds:
                users[d].append(i)
        count = {i: len(ds) for i, ds in deps.items()}
        ready = sorted(i for i, c in count.items() if c == 0)
        order = []
        while ready:
            i = ready.pop()
            order.append(i)
            for u in users[i]:
                count[u] -= 1
                if count[u] == 0:
                    ready.append(u)
        if len(order) != len(needed):
            stuck = set(needed) - set(order)
            # walk back through unfinished dependencies until a node repeats: a cycle
            path, i = [], min(stuck)
            while i not in path:
                path.append(i)
                i = min(d for d in deps[i] if d in stuck)
            cycle = path[path.index(i):] + [i]
            raise ValueError("the graph has a cycle: " + " -> ".join(
                _node_label(nodes[k], k) for k in reversed(cycle)) + " (each reads the "
                "output of the one before)")
        return [(i, nodes[i]) for i in order]

    def _check_supported(self, nodes) -> None:
        bad: Dict[str, List[str]] = {}
        for i, node in nodes:
            if node.domain not in ("", "ai.onnx"):
                key = f"{node.domain}.{node.op_type}"
            elif node.op_type not in SUPPORTED:
                key = node.op_type
            else:
                continue
            bad.setdefault(key, []).append(node.name or f"#{i}")
        if bad:
            items = [f"{k} ({len(v)}x: {', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                     for k, v in sorted(bad.items())]
            raise ValueError(f"unsupported operators: {'; '.join(items)}.  Supported: "
                             f"{', '.join(sorted(SUPPORTED))}")

    def _inputs(self, inputs, nodes) -> List[dict]:
        readers: Dict[str, List[Any]] = {}
        for _, node in nodes:
            for x in node.input:
                readers.setdefault(x, []).append(node)
        meta = []
        for inp in inputs:
            if inp.name not in self.consumers:
                continue
            shape, declared = self._input_shape(inp)
            self.symbolic_batch |= not declared or math.isnan(declared[0])
            reads = readers.get(inp.name, [])
            # an input that is also a graph output keeps its layout
            perm = _common_transpose(reads, len(shape)) \
                if self.consumers[inp.name] == len(reads) else None
            perm = perm or tuple(range(4))
            self.env[inp.name] = self.b.input(inp.name, shape, perm)
            size = self.b.sizes[inp.name]
            meta.append({"name": inp.name, "size": [size[2], size[3], size[1], size[0]],
                         "onnxShape": declared, "permutation": list(perm)})
        return meta

    def _input_shape(self, inp) -> Tuple[List[int], List[float]]:
        t = inp.type
        if not t.HasField("tensor_type"):
            raise ValueError(f"input {inp.name!r}: expected a tensor input")
        elem = t.tensor_type.elem_type
        if elem not in _FLOAT_TYPES:
            raise ValueError(f"input {inp.name!r}: expected a floating-point tensor, got "
                             f"element type {elem}")
        declared: List[float] = []
        if t.tensor_type.HasField("shape"):
            for d in t.tensor_type.shape.dim:
                declared.append(float(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0
                                else math.nan)
        given = self.input_shapes.get(inp.name)
        if given is not None:
            shape = [int(a) for a in given]
            if declared and len(declared) != len(shape):
                raise ValueError(f"input_shapes[{inp.name!r}]: expected {len(declared)} "
                                 f"sizes, got {list(given)}")
            for a, d in zip(shape, declared):
                if not math.isnan(d) and d != a:
                    raise ValueError(f"input_shapes[{inp.name!r}]: {list(given)} contradicts "
                                     f"the file's shape {declared}")
        else:
            if not declared:
                raise ValueError(f"input {inp.name!r}: the file gives no shape; pass "
                                 f"input_shapes={{{inp.name!r}: [...]}}")
            unknown = [k for k, d in enumerate(declared[1:], 1) if math.isnan(d)]
            if unknown:
                raise ValueError(f"input {inp.name!r}: the sizes of axes {unknown} of "
                                 f"{declared} are symbolic; pass input_shapes="
                                 f"{{{inp.name!r}: [...]}}")
            shape = [1 if math.isnan(declared[0]) else int(declared[0])] + \
                    [int(d) for d in declared[1:]]
        if not 1 <= len(shape) <= 4 or any(a < 1 or a > _MAX_DIM for a in shape):
            raise ValueError(f"input {inp.name!r}: expected 1 to 4 positive sizes, got {shape}")
        return shape, declared

    # -- nodes

    def _convert(self, index: int, node) -> None:
        label = _node_label(node, index)
        try:
            attrs = _attributes(node)
            ins = [self.env[x] if x else None for x in node.input]
            hint = _clean(node.name) or f"{node.op_type.lower()}{index}"
            self.node, self.hint = node, hint
            with np.errstate(all="ignore"):  # damaged weights may overflow; not an error
                outs = getattr(self, "_op_" + node.op_type)(ins, attrs)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{label}: {e}") from None
        for k, name in enumerate(node.output):
            if not name:
                continue
            if k >= len(outs) or outs[k] is None:
                if name in self.consumers:
                    raise ValueError(f"{label}: output {k + 1} ({name!r}) is not supported")
                continue
            self.env[name] = outs[k]

    @property
    def out(self) -> Optional[str]:
        """The DagNN name for the node's first output."""
        return self.node.output[0] if self.node.output else None

    def _sym(self, v, what: str) -> Sym:
        if not isinstance(v, Sym):
            raise ValueError(f"{what}: expected a tensor computed from the inputs, got a "
                             f"constant (constant-only {self.node.op_type} is not folded)")
        return v

    def _const(self, v, what: str) -> np.ndarray:
        if v is None:
            raise ValueError(f"{what}: missing")
        if isinstance(v, Sym):
            raise ValueError(f"{what}: expected a constant (an initializer or a Constant "
                             f"node), got a tensor computed from the inputs")
        return np.asarray(v)

    def _arg(self, ins, k: int, what: str, optional: bool = False):
        if k < len(ins) and ins[k] is not None:
            return ins[k]
        if optional:
            return None
        raise ValueError(f"{what} (input {k + 1}): missing")

    def _ints_attr(self, attrs, name, default, count=None) -> List[int]:
        v = attrs.get(name, default)
        try:
            v = [int(a) for a in v]
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected integers, got {v!r}") from None
        if any(abs(a) >= _MAX_DIM for a in v):
            raise ValueError(f"{name}: {v} holds values beyond the 32-bit range")
        if count is not None and len(v) != count:
            raise ValueError(f"{name}: expected {count} values, got {v}")
        return v

    # -- constants and layout

    def _op_Constant(self, ins, attrs):
        if "value" in attrs:
            return [_to_array(attrs["value"], "value")]
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attrs:
                return [np.asarray(attrs[key], dtype=dtype)]
        raise ValueError(f"expected a numeric 'value' attribute, got {sorted(attrs)}")

    def _op_Identity(self, ins, attrs):
        return [self._arg(ins, 0, "input")]

    def _op_Dropout(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        if not isinstance(x, Sym):
            return [x, None]
        ratio = attrs.get("ratio", 0.5)
        r = self._arg(ins, 1, "ratio", optional=True)
        if r is not None:
            ratio = float(np.asarray(self._const(r, "ratio")).reshape(-1)[0])
        if not 0 <= ratio < 1:
            raise ValueError(f"ratio: expected a value in [0, 1), got {ratio}")
        return [self.b.unary(x, L.DropOut(rate=float(ratio)), self.hint, self.out), None]

    def _op_Cast(self, ins, attrs):
        from onnx import helper
        x = self._arg(ins, 0, "input")
        to = int(attrs.get("to", 1))
        if isinstance(x, Sym):
            if to not in _FLOAT_TYPES:
                raise ValueError(f"to: casting a computed tensor to type {to} is not "
                                 f"supported (only to floating-point types)")
            return [x]
        try:
            dtype = helper.tensor_dtype_to_np_dtype(to)
        except Exception:
            raise ValueError(f"to: unknown element type {to}") from None
        return [np.asarray(x).astype(dtype)]

    def _op_Shape(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        shape = np.asarray(x.shape if isinstance(x, Sym) else np.shape(x), dtype=np.int64)
        start, end = int(attrs.get("start", 0)), attrs.get("end")
        return [shape[start:None if end is None else int(end)]]

    def _op_Gather(self, ins, attrs):
        data = self._const(self._arg(ins, 0, "data"), "data")
        idx = self._const(self._arg(ins, 1, "indices"), "indices")
        axis = _axis(attrs.get("axis", 0), max(data.ndim, 1), "axis")
        try:
            return [np.take(data, idx.astype(np.int64), axis=axis)]
        except IndexError as e:
            raise ValueError(f"indices: {e}") from None

    def _op_Reshape(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        if len(ins) > 1 and ins[1] is not None:
            target = self._const(ins[1], "shape").astype(np.int64).reshape(-1).tolist()
        elif "shape" in attrs:
            target = self._ints_attr(attrs, "shape", [])
        else:
            raise ValueError("shape (input 2): missing")
        shape = x.shape if isinstance(x, Sym) else np.shape(x)
        target = _reshape_target(shape, target, bool(attrs.get("allowzero", 0)))
        if isinstance(x, Sym):
            return [self.b.reshape(x, target)]
        return [np.reshape(x, target)]

    def _op_Flatten(self, ins, attrs):
        x = self._arg(ins, 0, "input")
        shape = x.shape if isinstance(x, Sym) else np.shape(x)
        axis = int(attrs.get("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        if not 0 <= axis <= len(shape):
            raise ValueError(f"axis: expected a value in [{-len(shape)}, {len(shape)}], got "
                             f"{attrs.get('axis')}")
        target = (_prod(shape[:axis]), _prod(shape[axis:]))
        if isinstance(x, Sym):
            return [self.b.reshape(x, target)]
        return [np.reshape(x, target)]

    def _axes(self, ins, attrs, what: str):
        if len(ins) > 1 and ins[1] is not None:
            return self._const(ins[1], "axes").astype(np.int64).reshape(-1).tolist()
        if "axes" in attrs:
            return self._ints_attr(attrs, "axes", [])
        return None

    def _op_Squeeze(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        shape = list(x.shape if isinstance(x, Sym) else np.shape(x))
        axes = self._axes(ins, attrs, "axes")
        if axes is None:
            axes = [k for k, d in enumerate(shape) if d == 1 and (k > 0 or not isinstance(x, Sym))]
        axes = sorted({_axis(a, len(shape), "axes") for a in axes})
        if any(shape[a] != 1 for a in axes):
            raise ValueError(f"axes: {axes} of shape {tuple(shape)} are not all of size 1")
        target = [d for k, d in enumerate(shape) if k not in axes]
        if isinstance(x, Sym):
            if 0 in axes:
                raise ValueError("axes: squeezing the batch axis is not supported")
            return [self.b.reshape(x, target)]
        return [np.reshape(x, target)]

    def _op_Unsqueeze(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        shape = list(x.shape if isinstance(x, Sym) else np.shape(x))
        axes = self._axes(ins, attrs, "axes")
        if axes is None:
            raise ValueError("axes: missing")
        rank = len(shape) + len(axes)
        axes = sorted({_axis(a, rank, "axes") for a in axes})
        if len(axes) != rank - len(shape):
            raise ValueError(f"axes: repeated entries in {axes}")
        target = list(shape)
        for a in axes:
            target.insert(a, 1)
        if isinstance(x, Sym):
            if 0 in axes:
                raise ValueError("axes: a new first axis would displace the batch axis")
            return [self.b.reshape(x, target)]
        return [np.reshape(x, target)]

    def _op_Transpose(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        rank = x.rank if isinstance(x, Sym) else np.ndim(x)
        perm = self._ints_attr(attrs, "perm", list(range(rank))[::-1], count=rank)
        if sorted(perm) != list(range(rank)):
            raise ValueError(f"perm: expected a permutation of 0..{rank - 1}, got {perm}")
        if isinstance(x, Sym):
            return [self.b.transpose(x, perm, self.hint)]
        return [np.transpose(x, perm)]

    def _op_Concat(self, ins, attrs):
        xs = [x for x in ins if x is not None]
        if not xs:
            raise ValueError("expected at least one input")
        if "axis" not in attrs and self.opset >= 4:
            raise ValueError("axis: missing")
        axis = int(attrs.get("axis", 1))
        if not any(isinstance(x, Sym) for x in xs):
            try:
                return [np.concatenate([np.asarray(x) for x in xs], axis=axis)]
            except ValueError as e:
                raise ValueError(str(e)) from None
        if not all(isinstance(x, Sym) for x in xs):
            raise ValueError("concatenating constants with computed tensors is not supported")
        return [self.b.concat(xs, axis, self.hint, self.out)]

    def _op_Slice(self, ins, attrs):
        x = self._arg(ins, 0, "data")
        if self.opset < 10:
            starts = self._ints_attr(attrs, "starts", [])
            ends = self._ints_attr(attrs, "ends", [])
            axes = attrs.get("axes")
            steps = None
        else:
            starts, ends = (self._const(self._arg(ins, k, n), n).astype(np.int64).reshape(-1)
                            .tolist() for k, n in ((1, "starts"), (2, "ends")))
            axes, steps = (None if self._arg(ins, k, n, optional=True) is None else
                           self._const(ins[k], n).astype(np.int64).reshape(-1).tolist()
                           for k, n in ((3, "axes"), (4, "steps")))
        shape = x.shape if isinstance(x, Sym) else np.shape(x)
        rank = len(shape)
        axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
        steps = [1] * len(starts) if steps is None else steps
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise ValueError(f"starts, ends, axes and steps differ in length: {starts}, "
                             f"{ends}, {axes}, {steps}")
        index = [slice(None)] * rank
        crops = [0] * (2 * rank)
        for start, end, axis, step in zip(starts, ends, axes, steps):
            a = _axis(axis, rank, "axes")
            if step != 1:
                if not isinstance(x, Sym) and step != 0:
                    index[a] = slice(start, end, step)
                    continue
                raise ValueError(f"steps: only step 1 is supported on computed tensors, "
                                 f"got {step}")
            n = shape[a]
            begin = min(max(start + n if start < 0 else start, 0), n)
            stop = min(max(end + n if end < 0 else end, 0), n)
            if stop <= begin:
                raise ValueError(f"the slice [{start}, {end}) of axis {a} (size {n}) is empty")
            index[a] = slice(begin, stop)
            crops[a], crops[a + rank] = begin, n - stop
        if not isinstance(x, Sym):
            return [np.asarray(x)[tuple(index)]]
        if not any(crops):
            return [x]
        if rank != 4 or any(crops[a] or crops[a + 4] for a in (0, 1)):
            raise ValueError(f"slicing a computed tensor is supported along the H and W axes "
                             f"of a 4-D tensor only, got starts {starts}, ends {ends}, axes "
                             f"{axes} for shape {x.shape}")
        return [self.b.pad(x, [-crops[2], -crops[6], -crops[3], -crops[7]], 0.0, self.hint,
                           self.out)]

    def _fold(self, fn, ins):
        xs = [x for x in ins if x is not None]
        if not xs or any(isinstance(x, Sym) for x in xs):
            raise ValueError(f"{self.node.op_type} is supported on constants only (e.g. "
                             f"size computations), not on tensors computed from the inputs")
        out = np.asarray(xs[0])
        for x in xs[1:]:
            out = fn(out, np.asarray(x))
        return [out]

    def _op_Min(self, ins, attrs):
        return self._fold(np.minimum, ins)

    def _op_Max(self, ins, attrs):
        return self._fold(np.maximum, ins)

    # -- arithmetic

    def _binary(self, op, ins, attrs):
        a, b = self._arg(ins, 0, "A"), self._arg(ins, 1, "B")
        if self.opset < 7 and attrs.get("broadcast", 0) and not isinstance(b, Sym):
            b = _legacy_broadcast(a, np.asarray(b), attrs.get("axis"))
        fold = isinstance(a, Sym) and a.var == self.node.input[0] \
            and self.consumers.get(self.node.input[0], 0) == 1
        return [self.b.binary(op, a, b, self.hint, self.out, fold=fold)]

    def _op_Add(self, ins, attrs):
        return self._binary("add", ins, attrs)

    def _op_Sub(self, ins, attrs):
        return self._binary("sub", ins, attrs)

    def _op_Mul(self, ins, attrs):
        return self._binary("mul", ins, attrs)

    def _op_Div(self, ins, attrs):
        return self._binary("div", ins, attrs)

    def _op_Sum(self, ins, attrs):
        xs = [x for x in ins if x is not None]
        if not xs:
            raise ValueError("expected at least one input")
        acc = xs[0]
        for k, x in enumerate(xs[1:]):
            last = k == len(xs) - 2
            acc = self.b.binary("add", acc, x, self.hint, self.out if last else None)
        return [acc]

    def _op_Gemm(self, ins, attrs):
        a = self._sym(self._arg(ins, 0, "A"), "A")
        w = self._const(self._arg(ins, 1, "B"), "B").astype(np.float64)
        c = self._arg(ins, 2, "C", optional=True)
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if attrs.get("transA", 0):
            raise ValueError("transA: transposing the data operand is not supported")
        if w.ndim != 2:
            raise ValueError(f"B: expected a matrix, got shape {w.shape}")
        w = w if attrs.get("transB", 0) else w.T
        y = self.b.linear(a, alpha * w, None, self.hint,
                          None if c is not None else self.out)
        if c is None:
            return [y]
        c = beta * self._const(c, "C").astype(np.float64)
        return [self.b.binary("add", y, c, self.hint, self.out, fold=True)]

    def _op_MatMul(self, ins, attrs):
        a = self._sym(self._arg(ins, 0, "A"), "A")
        w = self._const(self._arg(ins, 1, "B"), "B").astype(np.float64)
        if w.ndim != 2:
            raise ValueError(f"B: expected a D x K matrix, got shape {w.shape}")
        return [self.b.linear(a, w.T, None, self.hint, self.out)]

    # -- convolutions and pooling

    def _spatial(self, attrs, kernel: Sequence[int], size: Sequence[int],
                 strides: Sequence[int], dilations: Sequence[int]) -> List[int]:
        """Pads ``[top, bottom, left, right]`` from ``pads`` or ``auto_pad``."""
        auto = attrs.get("auto_pad", "NOTSET") or "NOTSET"
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for n, k, s, d in zip(size, kernel, strides, dilations):
                out = -(-n // s)
                total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
                small = total // 2
                pads += [small, total - small] if auto == "SAME_UPPER" else [total - small, small]
            return pads
        if auto == "VALID":
            return [0, 0, 0, 0]
        if auto != "NOTSET":
            raise ValueError(f"auto_pad: expected NOTSET, SAME_UPPER, SAME_LOWER or VALID, "
                             f"got {auto!r}")
        p = self._ints_attr(attrs, "pads", [0, 0, 0, 0], count=4)
        if min(p) < 0:
            raise ValueError(f"pads: negative pads {p} are not supported")
        return [p[0], p[2], p[1], p[3]]

    def _window(self, attrs, kernel_default=None):
        kernel = self._ints_attr(attrs, "kernel_shape", kernel_default or [], count=2)
        strides = self._ints_attr(attrs, "strides", [1, 1], count=2)
        dilations = self._ints_attr(attrs, "dilations", [1, 1], count=2)
        if min(kernel) < 1 or min(strides) < 1 or min(dilations) < 1:
            raise ValueError(f"expected positive kernel_shape, strides and dilations, got "
                             f"{kernel}, {strides}, {dilations}")
        return kernel, strides, dilations

    def _filter_inputs(self, ins, attrs, bank):
        """X, W, B and the window attributes of Conv / ConvTranspose (``bank`` describes
        W's expected layout)."""
        x = self.b.nchw(self._sym(self._arg(ins, 0, "X"), "X"), "X", self.hint)
        f = self._const(self._arg(ins, 1, "W"), "W")
        if f.ndim != 4:
            raise ValueError(f"W: expected a 4-D {bank} filter bank (2-D convolution), got "
                             f"shape {f.shape}")
        b = self._arg(ins, 2, "B", optional=True)
        b = None if b is None else self._const(b, "B")
        kernel, strides, dilations = self._window(attrs, list(f.shape[2:]))
        if list(f.shape[2:]) != kernel:
            raise ValueError(f"kernel_shape: {kernel} differs from W's {list(f.shape[2:])}")
        return x, f, b, kernel, strides, dilations, int(attrs.get("group", 1))

    def _op_Conv(self, ins, attrs):
        x, f, b, kernel, strides, dilations, group = self._filter_inputs(
            ins, attrs, "M x C/group x kH x kW")
        if group < 1 or x.size[1] != f.shape[1] * group:
            raise ValueError(f"group: {group} groups of {f.shape[1]} channels do not match "
                             f"the {x.size[1]} input channels")
        pad = self._spatial(attrs, kernel, x.size[2:], strides, dilations)
        return [self.b.conv(x, f, b, pad, strides, dilations, self.hint, self.out)]

    def _op_ConvTranspose(self, ins, attrs):
        x, f, b, kernel, strides, dilations, group = self._filter_inputs(
            ins, attrs, "C x M/group x kH x kW")
        if group < 1 or x.size[1] % group:
            raise ValueError(f"group: {group} does not divide the {x.size[1]} input channels")
        extra = self._ints_attr(attrs, "output_padding", [0, 0], count=2)
        extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
        if min(extra) < 0:
            raise ValueError(f"output_padding: expected non-negative values, got {extra}")
        auto = attrs.get("auto_pad", "NOTSET") or "NOTSET"
        if "output_shape" in attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
            if "output_shape" in attrs:
                target = self._ints_attr(attrs, "output_shape", [])[-2:]
            else:
                target = [n * s for n, s in zip(x.size[2:], strides)]
            pads = []
            for n, s, e, o, t in zip(x.size[2:], strides, extent, extra, target):
                total = max(s * (n - 1) + o + e - t, 0)   # never beyond the full output
                half = total // 2
                pads += [half, total - half] if auto == "SAME_UPPER" else [total - half, half]
        else:
            pads = self._spatial(attrs, kernel, x.size[2:], strides, dilations)
        crop = [pads[0], pads[1] - extra[0], pads[2], pads[3] - extra[1]]
        return [self.b.convt(x, f, b, strides, crop, group, dilations, self.hint, self.out)]

    def _pool(self, ins, attrs, method):
        x = self.b.nchw(self._sym(self._arg(ins, 0, "X"), "X"), "X", self.hint)
        if len(self.node.output) > 1 and self.node.output[1] in self.consumers:
            raise ValueError("the Indices output is not supported")
        kernel, strides, dilations = self._window(attrs)
        if dilations != [1, 1]:
            raise ValueError(f"dilations: dilated pooling ({dilations}) is not supported")
        pad = self._spatial(attrs, kernel, x.size[2:], strides, dilations)
        ceil = bool(attrs.get("ceil_mode", 0))
        if (attrs.get("auto_pad", "NOTSET") or "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
            ceil = False  # the SAME pads already give ceil(H / S) windows
        include = bool(attrs.get("count_include_pad", 0))
        return [self.b.pool(x, method, kernel, strides, pad, ceil, include, self.hint,
                            self.out), None]

    def _op_MaxPool(self, ins, attrs):
        return self._pool(ins, attrs, "max")

    def _op_AveragePool(self, ins, attrs):
        return self._pool(ins, attrs, "avg")

    def _op_GlobalAveragePool(self, ins, attrs):
        return [self.b.global_pool(self._sym(self._arg(ins, 0, "X"), "X"), "avg", self.hint,
                                   self.out)]

    def _op_GlobalMaxPool(self, ins, attrs):
        return [self.b.global_pool(self._sym(self._arg(ins, 0, "X"), "X"), "max", self.hint,
                                   self.out)]

    def _op_BatchNormalization(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "X"), "X")
        if any(o in self.consumers for o in self.node.output[1:]):
            raise ValueError("the training outputs (running mean/var) are not supported")
        if attrs.get("training_mode", 0):
            raise ValueError("training_mode: batch statistics are not supported")
        names = ("scale", "B", "input_mean", "input_var")
        g, b, mu, var = (self._const(self._arg(ins, k + 1, n), n) for k, n in enumerate(names))
        eps = float(attrs.get("epsilon", 1e-5))
        return [self.b.batchnorm(x, g, b, mu, var, eps, self.hint, self.out)]

    def _op_LRN(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "X"), "X")
        if "size" not in attrs:
            raise ValueError("size: missing")
        return [self.b.lrn(x, int(attrs["size"]), float(attrs.get("alpha", 1e-4)),
                           float(attrs.get("beta", 0.75)), float(attrs.get("bias", 1.0)),
                           self.hint, self.out)]

    def _op_Pad(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "data"), "data")
        mode = attrs.get("mode", "constant") or "constant"
        if mode != "constant":
            raise ValueError(f"mode: only constant padding is supported, got {mode!r}")
        if self.opset < 11:
            pads = self._ints_attr(attrs, "pads", [])
            value = float(attrs.get("value", 0.0))
        else:
            pads = self._const(self._arg(ins, 1, "pads"), "pads").astype(np.int64)
            pads = pads.reshape(-1).tolist()
            v = self._arg(ins, 2, "constant_value", optional=True)
            value = 0.0 if v is None else float(self._const(v, "constant_value").reshape(-1)[0])
            if self._arg(ins, 3, "axes", optional=True) is not None:
                axes = self._const(ins[3], "axes").astype(np.int64).reshape(-1).tolist()
                full = [0] * (2 * x.rank)
                for k, a in enumerate(axes):
                    a = _axis(a, x.rank, "axes")
                    full[a], full[a + x.rank] = pads[k], pads[k + len(axes)]
                pads = full
        r = x.rank
        if len(pads) != 2 * r:
            raise ValueError(f"pads: expected {2 * r} values for a rank-{r} tensor, got {pads}")
        if r != 4 or any(pads[a] or pads[a + 4] for a in (0, 1)):
            raise ValueError(f"pads: only padding (or cropping) the H and W axes of a 4-D "
                             f"tensor is supported, got {pads} for shape {x.shape}")
        return [self.b.pad(x, [pads[2], pads[6], pads[3], pads[7]], value, self.hint,
                           self.out)]

    # -- pointwise

    def _op_Relu(self, ins, attrs):
        return [self.b.unary(self._sym(self._arg(ins, 0, "X"), "X"), L.ReLU(), self.hint,
                             self.out)]

    def _op_LeakyRelu(self, ins, attrs):
        leak = float(attrs.get("alpha", 0.01))
        return [self.b.unary(self._sym(self._arg(ins, 0, "X"), "X"), L.ReLU(leak=leak),
                             self.hint, self.out)]

    def _op_PRelu(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "X"), "X")
        slope = self._const(self._arg(ins, 1, "slope"), "slope")
        return [self.b.prelu(x, slope, self.hint, self.out)]

    def _op_Sigmoid(self, ins, attrs):
        return [self.b.unary(self._sym(self._arg(ins, 0, "X"), "X"), L.Sigmoid(), self.hint,
                             self.out)]

    def _op_HardSigmoid(self, ins, attrs):
        block = L.HardSigmoid(alpha=float(attrs.get("alpha", 0.2)),
                              beta=float(attrs.get("beta", 0.5)))
        return [self.b.unary(self._sym(self._arg(ins, 0, "X"), "X"), block, self.hint,
                             self.out)]

    def _op_Clip(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "input"), "input")
        if self.opset < 11:
            lo = float(attrs.get("min", -math.inf))
            hi = float(attrs.get("max", math.inf))
        else:
            lo_v, hi_v = (self._arg(ins, k, n, optional=True) for k, n in ((1, "min"), (2, "max")))
            lo = -math.inf if lo_v is None else float(self._const(lo_v, "min").reshape(-1)[0])
            hi = math.inf if hi_v is None else float(self._const(hi_v, "max").reshape(-1)[0])
        return [self.b.unary(x, L.Clip(min=lo, max=hi), self.hint, self.out)]

    def _op_Softmax(self, ins, attrs):
        x = self._sym(self._arg(ins, 0, "input"), "input")
        if self.opset >= 13:
            return [self.b.softmax(x, int(attrs.get("axis", -1)), self.hint, self.out)]
        return [self.b.softmax_flat(x, int(attrs.get("axis", 1)), self.hint, self.out)]


# ----------------------------------------------------------------------------- helpers


def _prod(v) -> int:
    out = 1
    for a in v:
        out *= int(a)
    return out


def _clean(name: str) -> str:
    return str(name).strip()


def _common_transpose(readers, rank: int) -> Optional[Tuple[int, ...]]:
    """The permutation of the Transpose nodes reading a 4-D input, when all its readers
    are such nodes with one permutation keeping the batch first."""
    if rank != 4 or not readers:
        return None
    perms = set()
    for node in readers:
        if node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
            return None
        try:
            perm = tuple(int(p) for p in _attributes(node).get("perm", (3, 2, 1, 0)))
        except (ValueError, TypeError):
            return None
        perms.add(perm)
    if len(perms) != 1:
        return None
    perm = perms.pop()
    if sorted(perm) != [0, 1, 2, 3] or perm[0] != 0:
        return None
    return perm


def _reshape_target(shape: Sequence[int], target: Sequence[int], allowzero: bool) -> List[int]:
    """ONNX's Reshape target: 0 copies the input's size (unless allowzero), -1 is inferred."""
    out = []
    for k, t in enumerate(target):
        if t == 0 and not allowzero:
            if k >= len(shape):
                raise ValueError(f"shape: {list(target)} copies axis {k} of {tuple(shape)}, "
                                 f"which has no such axis")
            t = shape[k]
        out.append(int(t))
    if out.count(-1) > 1 or any(t < -1 or t == 0 for t in out):
        raise ValueError(f"shape: invalid target {list(target)} for {tuple(shape)}")
    total = _prod(shape)
    if -1 in out:
        known = _prod([t for t in out if t != -1])
        if known == 0 or total % known:
            raise ValueError(f"shape: cannot reshape {tuple(shape)} to {list(target)}")
        out[out.index(-1)] = total // known
    if _prod(out) != total:
        raise ValueError(f"shape: cannot reshape {tuple(shape)} ({total} values) to "
                         f"{list(target)}")
    return out


def _legacy_broadcast(a, b: np.ndarray, axis) -> np.ndarray:
    """Opset < 7 broadcasting (``broadcast=1``): B's axes align with A's from ``axis``."""
    rank = a.rank if isinstance(a, Sym) else np.ndim(a)
    start = rank - b.ndim if axis is None else _axis(int(axis), rank, "axis")
    if start < 0 or start + b.ndim > rank:
        raise ValueError(f"axis: B of shape {b.shape} does not fit at axis {axis} of a "
                         f"rank-{rank} tensor")
    return b.reshape((1,) * start + b.shape + (1,) * (rank - start - b.ndim))
