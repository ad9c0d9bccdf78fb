r"""from_torch: a PyTorch network of standard layers as a :class:`matconvnet.dagnn.DagNN`,
through a ``torch.fx`` trace.

::

    net = from_torch(module, torch.zeros(1, 3, 48, 48))
    net.eval({"x": x})                                  # the forward argument's name
    prob = net.vars[net.get_var_index(net.meta["outputs"][0]["name"])].value

The module is traced with :func:`torch.fx.symbolic_trace` (so its ``forward`` may not
branch on tensor values) and converted with eval-mode semantics: batch norm uses its
running statistics, dropout is off; the DagNN is returned in ``'test'`` mode.
``example_input`` (a tensor, or a tuple with one tensor per ``forward`` argument) gives the
static sizes; the batch size is a placeholder, the network works for any.

Supported (anything else fails with one ``ValueError`` listing every unsupported node):

* modules: ``Conv2d`` (zero padding, also ``'same'``/``'valid'``), ``ConvTranspose2d``,
  ``BatchNorm1d/2d`` (running statistics -> moments ``[mean, sqrt(var + eps)]``), ``ReLU``,
  ``LeakyReLU``, ``PReLU``, ``ReLU6``, ``Hardtanh``, ``Sigmoid``, ``Hardsigmoid``,
  ``MaxPool2d``/``AvgPool2d`` (padding, ``ceil_mode``, ``count_include_pad``),
  ``AdaptiveAvgPool2d``/``AdaptiveMaxPool2d`` to 1 x 1, ``LocalResponseNorm`` (odd sizes),
  ``Dropout``/``Dropout2d``, ``Identity``, ``Flatten``, ``Linear``, ``Softmax``;
* functions and tensor methods: ``torch.cat``, ``+ - * /`` (tensors or constants,
  broadcasting), ``torch.flatten``, ``relu``, ``sigmoid``, ``softmax``, ``leaky_relu``,
  ``dropout``, ``max_pool2d``, ``avg_pool2d``, ``permute``, ``transpose``, ``view``,
  ``reshape``, ``flatten``, ``squeeze``, ``unsqueeze``, ``contiguous``, ``size``,
  ``shape``, ``dim``, indexing of sizes.

Reshapes and permutations add no layer (see ``matconvnet/io/_dag_builder.py``): MTCNN's
``x.permute(0, 3, 2, 1).contiguous().view(N, -1)`` followed by a ``Linear`` becomes one
``Conv`` whose filter is the weight matrix reshaped and permuted to K x C x H x W.

Variables are named after the graph's nodes (the inputs after the ``forward``
arguments); ``net.meta['inputs']`` (``name``, ``size`` ``[H W C N]``) and
``net.meta['outputs']`` (``name``, ``shape``, in the order ``forward`` returns them)
list them.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..dagnn import DagNN
from ..dagnn import layers as L
from ._dag_builder import Builder, Sym, _axis

__all__ = ["from_torch"]


def from_torch(module: nn.Module, example_input: Any, *,
               output_names: Optional[Sequence[str]] = None) -> DagNN:
    """Convert ``module`` (traced with ``torch.fx`` on ``example_input``) into a DagNN.

    ``output_names`` renames the outputs (one name per returned tensor, in order); by
    default they are named after the nodes computing them."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    examples = _examples(example_input)
    traced = module
    if any(type(module) is cls for cls, _ in _MODULES):
        traced = nn.Sequential(module)   # fx would trace into a lone layer's functional code
    try:
        gm = torch.fx.symbolic_trace(traced)
    except Exception as e:  # fx raises TraceError, TypeError, RuntimeError, ...
        raise ValueError(f"module: torch.fx cannot trace {type(module).__name__} "
                         f"({type(e).__name__}: {e}); from_torch needs a forward without "
                         f"data-dependent control flow") from e
    return _Converter(gm, examples, type(module).__name__, output_names).run()


def _examples(example_input: Any) -> List[torch.Tensor]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise TypeError(f"example_input: expected a tensor or a tuple of tensors, got "
                        f"{type(example_input).__name__}")
    for k, t in enumerate(items):
        if not 1 <= t.dim() <= 4 or not t.is_floating_point() or 0 in t.shape:
            raise ValueError(f"example_input[{k}]: expected a non-empty floating-point tensor "
                             f"of 1 to 4 dimensions (batch first), got {t.dtype} "
                             f"{tuple(t.shape)}")
    return items


def _np(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.detach().cpu().double().numpy()


def _pair(v: Any) -> List[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


# The functions and methods the converter knows (target -> handler name).
_FUNCTIONS: Dict[Any, str] = {
    operator.add: "add", torch.add: "add", operator.iadd: "add",
    operator.sub: "sub", torch.sub: "sub", operator.isub: "sub",
    operator.mul: "mul", torch.mul: "mul", operator.imul: "mul",
    operator.truediv: "div", torch.div: "div", operator.itruediv: "div",
    torch.cat: "cat", torch.concat: "cat",
    torch.flatten: "flatten", torch.reshape: "reshape", torch.permute: "permute",
    torch.transpose: "transpose", torch.squeeze: "squeeze", torch.unsqueeze: "unsqueeze",
    torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    torch.softmax: "softmax", F.softmax: "softmax", F.leaky_relu: "leaky_relu",
    F.dropout: "dropout", F.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d",
    operator.getitem: "getitem", getattr: "getattr",
}
if hasattr(torch, "concatenate"):
    _FUNCTIONS[torch.concatenate] = "cat"

_METHODS = {
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "permute": "permute",
    "transpose": "transpose", "view": "reshape", "reshape": "reshape", "flatten": "flatten",
    "squeeze": "squeeze", "unsqueeze": "unsqueeze", "contiguous": "identity",
    "size": "size", "dim": "dim", "softmax": "softmax", "relu": "relu", "sigmoid": "sigmoid",
}

_MODULES: List[Tuple[type, str]] = [
    (nn.Conv2d, "conv"), (nn.ConvTranspose2d, "convt"),
    (nn.BatchNorm2d, "batchnorm"), (nn.BatchNorm1d, "batchnorm"),
    (nn.ReLU, "relu_module"), (nn.LeakyReLU, "leaky_relu_module"), (nn.PReLU, "prelu"),
    (nn.ReLU6, "hardtanh"), (nn.Hardtanh, "hardtanh"), (nn.Sigmoid, "sigmoid_module"),
    (nn.Hardsigmoid, "hardsigmoid"), (nn.MaxPool2d, "maxpool"), (nn.AvgPool2d, "avgpool"),
    (nn.AdaptiveAvgPool2d, "adaptive"), (nn.AdaptiveMaxPool2d, "adaptive"),
    (nn.LocalResponseNorm, "lrn"), (nn.Dropout, "dropout_module"),
    (nn.Dropout2d, "dropout_module"), (nn.Identity, "identity_module"),
    (nn.Flatten, "flatten_module"), (nn.Linear, "linear"), (nn.Softmax, "softmax_module"),
]


class _Converter:
    """One conversion: the fx graph's nodes, in order, through the ``_<handler>`` methods
    (named in the tables above) into a :class:`Builder`."""

    def __init__(self, gm, examples, class_name: str, output_names):
        self.gm = gm
        self.examples = examples
        self.class_name = class_name
        self.output_names = list(output_names) if output_names is not None else None
        self.env: Dict[Any, Any] = {}

    # -- classification

    def _handler(self, node) -> Optional[str]:
        if node.op in ("placeholder", "get_attr", "output"):
            return node.op
        if node.op == "call_module":
            m = self.gm.get_submodule(node.target)
            for cls, name in _MODULES:
                if type(m) is cls:
                    return name
            return None
        if node.op == "call_function":
            try:
                return _FUNCTIONS.get(node.target)
            except TypeError:  # unhashable target
                return None
        if node.op == "call_method":
            return _METHODS.get(node.target)
        return None

    def _describe(self, node) -> str:
        if node.op == "call_module":
            return f"{node.name} (module {type(self.gm.get_submodule(node.target)).__name__})"
        if node.op == "call_function":
            t = node.target
            where = getattr(t, "__module__", None)
            name = getattr(t, "__name__", repr(t))
            return f"{node.name} (function {where + '.' if where else ''}{name})"
        return f"{node.name} ({node.op} {node.target})"

    # -- conversion

    def run(self) -> DagNN:
        nodes = list(self.gm.graph.nodes)
        handlers = {n: self._handler(n) for n in nodes}
        bad = [self._describe(n) for n in nodes if handlers[n] is None]
        if bad:
            raise ValueError(f"module {self.class_name}: unsupported operations: "
                             f"{'; '.join(bad)}")
        self.b = Builder([n.name for n in nodes])
        placeholders = [n for n in nodes if n.op == "placeholder"]
        if len(placeholders) < len(self.examples):
            raise ValueError(f"example_input: {len(self.examples)} tensors for a forward "
                             f"taking {len(placeholders)} arguments")
        meta_inputs = []
        result = None
        for node in nodes:
            h = handlers[node]
            try:
                if h == "placeholder":
                    k = placeholders.index(node)
                    if k >= len(self.examples):
                        raise ValueError(f"no example input for the argument {node.target!r}")
                    t = self.examples[k]
                    name = str(node.target)         # the forward argument's name
                    if name != node.name and name in {n.name for n in nodes}:
                        name = node.name
                    s = self.b.input(name, tuple(t.shape))
                    self.env[node] = s
                    n, c, hh, w = s.size
                    meta_inputs.append({"name": name, "size": [hh, w, c, n]})
                elif h == "output":
                    result = node.args[0]
                else:
                    self.node = node
                    args = torch.fx.node.map_arg(node.args, lambda n: self.env[n])
                    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: self.env[n])
                    self.env[node] = getattr(self, "_" + h)(args, kwargs)
            except (ValueError, TypeError, IndexError) as e:
                raise ValueError(f"module {self.class_name}, node {self._describe(node)}: "
                                 f"{e}") from None
        return self._finish(result, meta_inputs)

    def _finish(self, result, meta_inputs) -> DagNN:
        leaves: List[Any] = []

        def collect(v):
            if isinstance(v, torch.fx.Node):
                leaves.append(v)
            elif isinstance(v, (tuple, list)):
                for a in v:
                    collect(a)
            elif isinstance(v, dict):
                for a in v.values():
                    collect(a)
        collect(result)
        outs = [(n, self.env[n]) for n in leaves if isinstance(self.env[n], Sym)]
        if not outs:
            raise ValueError(f"module {self.class_name}: forward returns no tensor computed "
                             f"from the inputs")
        names = self.output_names
        if names is not None and len(names) != len(outs):
            raise ValueError(f"output_names: expected {len(outs)} names, got {len(names)}")
        final, meta_outputs, used = [], [], set()
        for k, (n, s) in enumerate(outs):
            name = names[k] if names is not None else n.name
            if name in used:
                name = f"{name}_{k + 1}"
            used.add(name)
            final.append((name, s))
            meta_outputs.append({"name": name, "shape": [float(a) for a in s.shape]})
        meta = {"inputs": meta_inputs, "outputs": meta_outputs,
                "torch": {"class": self.class_name}}
        return self.b.finish(final, meta)

    # -- helpers

    @property
    def out(self) -> str:
        return self.node.name

    def _sym(self, v, what: str = "input") -> Sym:
        if not isinstance(v, Sym):
            raise ValueError(f"{what}: expected a tensor computed from the inputs, got "
                             f"{type(v).__name__} {v!r}"[:300])
        return v

    def _module(self):
        return self.gm.get_submodule(self.node.target)

    def _get(self, args, kwargs, k: int, name: str, default: Any = None):
        if k < len(args):
            return args[k]
        return kwargs.get(name, default)

    def _dims(self, args, start: int = 1) -> List[int]:
        dims = args[start:]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list, torch.Size)):
            dims = dims[0]
        return [int(d) for d in dims]

    # -- structure

    def _get_attr(self, args, kwargs):
        obj: Any = self.gm
        for part in str(self.node.target).split("."):
            obj = getattr(obj, part)
        return _np(obj) if isinstance(obj, torch.Tensor) else obj

    def _getattr(self, args, kwargs):
        x, name = args[0], args[1]
        if isinstance(x, Sym):
            if name == "shape":
                return tuple(x.shape)
            if name == "ndim":
                return x.rank
            raise ValueError(f"getattr: attribute {name!r} of a tensor is not supported")
        return getattr(x, name)

    def _getitem(self, args, kwargs):
        x, k = args[0], args[1]
        if isinstance(x, Sym):
            raise ValueError("indexing a tensor is not supported")
        return x[k]

    def _size(self, args, kwargs):
        x = self._sym(args[0])
        d = self._get(args, kwargs, 1, "dim")
        return tuple(x.shape) if d is None else x.shape[_axis(d, x.rank, "dim")]

    def _dim(self, args, kwargs):
        return self._sym(args[0]).rank

    def _identity(self, args, kwargs):
        return args[0]

    def _identity_module(self, args, kwargs):
        return args[0]

    def _reshape(self, args, kwargs):
        x = args[0]
        shape = self._dims(args) if len(args) > 1 else [int(a) for a in kwargs.get("shape", ())]
        if isinstance(x, Sym):
            total = math.prod(x.shape)
            if shape.count(-1) == 1:
                known = math.prod(a for a in shape if a != -1)
                if known <= 0 or total % known:
                    raise ValueError(f"cannot view {x.shape} as {shape}")
                shape[shape.index(-1)] = total // known
            return self.b.reshape(x, shape)
        return np.reshape(x, shape)

    def _flatten_to(self, x, start: int, end: int):
        x = self._sym(x)
        if x.rank == 0:
            return x
        start, end = _axis(start, x.rank, "start_dim"), _axis(end, x.rank, "end_dim")
        shape = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
        return self.b.reshape(x, shape)

    def _flatten(self, args, kwargs):
        return self._flatten_to(args[0], self._get(args, kwargs, 1, "start_dim", 0),
                                self._get(args, kwargs, 2, "end_dim", -1))

    def _flatten_module(self, args, kwargs):
        m = self._module()
        return self._flatten_to(args[0], m.start_dim, m.end_dim)

    def _permute(self, args, kwargs):
        x = self._sym(args[0])
        dims = self._dims(args) if len(args) > 1 else [int(a) for a in kwargs["dims"]]
        return self.b.transpose(x, [_axis(d, x.rank, "dims") for d in dims], self.out)

    def _transpose(self, args, kwargs):
        x = self._sym(args[0])
        d0 = _axis(self._get(args, kwargs, 1, "dim0"), x.rank, "dim0")
        d1 = _axis(self._get(args, kwargs, 2, "dim1"), x.rank, "dim1")
        perm = list(range(x.rank))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self.b.transpose(x, perm, self.out)

    def _squeeze(self, args, kwargs):
        x = self._sym(args[0])
        d = self._get(args, kwargs, 1, "dim")
        dims = range(1, x.rank) if d is None else [d] if isinstance(d, int) else d
        dims = {_axis(a, x.rank, "dim") for a in dims}
        if 0 in dims and x.shape[0] == 1:
            raise ValueError("squeezing the batch axis is not supported")
        return self.b.reshape(x, [a for k, a in enumerate(x.shape)
                                  if not (k in dims and a == 1)])

    def _unsqueeze(self, args, kwargs):
        x = self._sym(args[0])
        d = _axis(self._get(args, kwargs, 1, "dim"), x.rank + 1, "dim")
        if d == 0:
            raise ValueError("a new first axis would displace the batch axis")
        shape = list(x.shape)
        shape.insert(d, 1)
        return self.b.reshape(x, shape)

    def _cat(self, args, kwargs):
        xs = list(self._get(args, kwargs, 0, "tensors"))
        dim = self._get(args, kwargs, 1, "dim", 0)
        return self.b.concat([self._sym(x, "tensors") for x in xs], dim, self.out, self.out)

    # -- arithmetic

    def _binary(self, op, args, kwargs):
        a, b = args[0], self._get(args, kwargs, 1, "other")
        alpha = kwargs.get("alpha", 1)
        if alpha != 1 or kwargs.get("rounding_mode") is not None:
            raise ValueError("alpha and rounding_mode are not supported")
        if isinstance(a, torch.Tensor):
            a = _np(a)
        if isinstance(b, torch.Tensor):
            b = _np(b)
        first = self.node.args[0]
        fold = isinstance(a, Sym) and isinstance(first, torch.fx.Node) \
            and a.var == first.name and len(first.users) == 1
        return self.b.binary(op, a, b, self.out, self.out, fold=fold)

    def _add(self, args, kwargs):
        return self._binary("add", args, kwargs)

    def _sub(self, args, kwargs):
        return self._binary("sub", args, kwargs)

    def _mul(self, args, kwargs):
        return self._binary("mul", args, kwargs)

    def _div(self, args, kwargs):
        return self._binary("div", args, kwargs)

    # -- pointwise

    def _unary(self, x, block):
        return self.b.unary(self._sym(x), block, self.out, self.out)

    def _relu(self, args, kwargs):
        return self._unary(args[0], L.ReLU())

    def _relu_module(self, args, kwargs):
        return self._unary(args[0], L.ReLU())

    def _leaky_relu(self, args, kwargs):
        return self._unary(args[0], L.ReLU(leak=float(self._get(args, kwargs, 1,
                                                                 "negative_slope", 0.01))))

    def _leaky_relu_module(self, args, kwargs):
        return self._unary(args[0], L.ReLU(leak=float(self._module().negative_slope)))

    def _sigmoid(self, args, kwargs):
        return self._unary(args[0], L.Sigmoid())

    def _sigmoid_module(self, args, kwargs):
        return self._unary(args[0], L.Sigmoid())

    def _hardtanh(self, args, kwargs):
        m = self._module()
        return self._unary(args[0], L.Clip(min=float(m.min_val), max=float(m.max_val)))

    def _hardsigmoid(self, args, kwargs):
        return self._unary(args[0], L.HardSigmoid(alpha=1.0 / 6.0, beta=0.5))

    def _prelu(self, args, kwargs):
        x = self._sym(args[0])
        w = _np(self._module().weight).reshape(-1)
        if w.size > 1:
            if x.rank < 2 or x.shape[1] != w.size:
                raise ValueError(f"{w.size} slopes for an input of shape {x.shape}")
            w = w.reshape((w.size,) + (1,) * (x.rank - 2))
        return self.b.prelu(x, w, self.out, self.out)

    def _dropout(self, args, kwargs):
        p = float(self._get(args, kwargs, 1, "p", 0.5))
        return self._unary(args[0], L.DropOut(rate=p))

    def _dropout_module(self, args, kwargs):
        return self._unary(args[0], L.DropOut(rate=float(self._module().p)))

    def _softmax_dim(self, x, dim):
        x = self._sym(x)
        if dim is None:  # PyTorch's legacy implicit dimension
            dim = 0 if x.rank in (0, 1, 3) else 1
        return self.b.softmax(x, int(dim), self.out, self.out)

    def _softmax(self, args, kwargs):
        if kwargs.get("dtype") is not None:
            raise ValueError("dtype is not supported")
        return self._softmax_dim(args[0], self._get(args, kwargs, 1, "dim"))

    def _softmax_module(self, args, kwargs):
        return self._softmax_dim(args[0], self._module().dim)

    def _lrn(self, args, kwargs):
        m = self._module()
        if m.size % 2 == 0:
            raise ValueError(f"size: PyTorch centres even windows ({m.size}) differently "
                             f"from MatConvNet; only odd sizes are supported")
        return self.b.lrn(self._sym(args[0]), m.size, m.alpha, m.beta, m.k, self.out,
                          self.out)

    # -- layers with weights

    def _conv(self, args, kwargs):
        m = self._module()
        if m.padding_mode != "zeros":
            raise ValueError(f"padding_mode {m.padding_mode!r}: only zero padding is supported")
        x = self.b.nchw(self._sym(args[0]), "input", self.out)
        kernel, dilation = _pair(m.kernel_size), _pair(m.dilation)
        if isinstance(m.padding, str):
            pad = [0, 0, 0, 0]
            if m.padding == "same":
                pad = []
                for k, d in zip(kernel, dilation):
                    total = d * (k - 1)
                    pad += [total // 2, total - total // 2]
        else:
            p = _pair(m.padding)
            pad = [p[0], p[0], p[1], p[1]]
        return self.b.conv(x, _np(m.weight), _np(m.bias), pad, _pair(m.stride), dilation,
                           self.out, self.out)

    def _convt(self, args, kwargs):
        m = self._module()
        if m.padding_mode != "zeros":
            raise ValueError(f"padding_mode {m.padding_mode!r}: only zero padding is supported")
        if len(args) > 1 or kwargs.get("output_size") is not None:
            raise ValueError("output_size is not supported")
        x = self.b.nchw(self._sym(args[0]), "input", self.out)
        p, op = _pair(m.padding), _pair(m.output_padding)
        crop = [p[0], p[0] - op[0], p[1], p[1] - op[1]]
        return self.b.convt(x, _np(m.weight), _np(m.bias), _pair(m.stride), crop, m.groups,
                            _pair(m.dilation), self.out, self.out)

    def _batchnorm(self, args, kwargs):
        m = self._module()
        if m.running_mean is None or m.running_var is None:
            raise ValueError("track_running_stats=False: there are no statistics to fix")
        c = m.num_features
        g = _np(m.weight) if m.weight is not None else np.ones(c)
        b = _np(m.bias) if m.bias is not None else np.zeros(c)
        return self.b.batchnorm(self._sym(args[0]), g, b, _np(m.running_mean),
                                _np(m.running_var), float(m.eps), self.out, self.out)

    def _linear(self, args, kwargs):
        m = self._module()
        return self.b.linear(self._sym(args[0]), _np(m.weight), _np(m.bias), self.out,
                             self.out)

    def _pool(self, method, x, kernel, stride, padding, ceil_mode, count_include_pad=True,
              dilation=1, divisor_override=None, return_indices=False):
        if _pair(dilation) != [1, 1] or return_indices or divisor_override is not None:
            raise ValueError("dilation, return_indices and divisor_override are not supported")
        kernel = _pair(kernel)
        stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
        p = _pair(padding)
        return self.b.pool(self._sym(x), method, kernel, stride, [p[0], p[0], p[1], p[1]],
                           bool(ceil_mode), bool(count_include_pad), self.out, self.out)

    def _maxpool(self, args, kwargs):
        m = self._module()
        return self._pool("max", args[0], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                          dilation=m.dilation, return_indices=m.return_indices)

    def _avgpool(self, args, kwargs):
        m = self._module()
        return self._pool("avg", args[0], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                          m.count_include_pad, divisor_override=m.divisor_override)

    def _max_pool2d(self, args, kwargs):
        g = lambda k, n, d=None: self._get(args, kwargs, k, n, d)  # noqa: E731
        return self._pool("max", args[0], g(1, "kernel_size"), g(2, "stride"),
                          g(3, "padding", 0), g(5, "ceil_mode", False),
                          dilation=g(4, "dilation", 1), return_indices=g(6, "return_indices",
                                                                         False))

    def _avg_pool2d(self, args, kwargs):
        g = lambda k, n, d=None: self._get(args, kwargs, k, n, d)  # noqa: E731
        return self._pool("avg", args[0], g(1, "kernel_size"), g(2, "stride"),
                          g(3, "padding", 0), g(4, "ceil_mode", False),
                          g(5, "count_include_pad", True),
                          divisor_override=g(6, "divisor_override"))

    def _adaptive(self, args, kwargs):
        m = self._module()
        size = m.output_size
        size = [size, size] if not isinstance(size, (tuple, list)) else list(size)
        if size != [1, 1]:
            raise ValueError(f"output_size {m.output_size}: only 1 x 1 (global pooling) is "
                             f"supported")
        method = "avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max"
        return self.b.global_pool(self._sym(args[0]), method, self.out, self.out)
