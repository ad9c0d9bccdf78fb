r"""Building a DagNN from another framework's graph: the part of the importers
(:func:`matconvnet.io.load_onnx`, :func:`matconvnet.io.from_torch`) that does not depend
on the source format.

Frameworks see tensors of any rank and layout; DagNN variables are N x C x H x W.  An
imported tensor is a :class:`Sym`: a DagNN variable ``var`` of static size ``(N, C, H, W)``
and the *logical* (source) tensor it stands for::

    logical = reshape(permute(var, perm), shape)          (row-major, as torch and ONNX)

with ``perm[0] = 0`` and ``shape[0] = N``: the first axis is always the batch.  Reshapes,
flattens, squeezes and transposes only change ``perm`` and ``shape``; no layer is added until
an operator needs the channels on axis 1 (:meth:`Builder.canonical` then adds a
``Permute`` and/or ``Reshape`` layer).  This is how a flatten followed by a fully-connected
layer becomes one exact ``Conv`` whose filter is the weight matrix reshaped to
K x C x H x W (and permuted back where the source permuted the data first, as MTCNN's
``permute(0, 3, 2, 1)``), and how a transposed (NHWC) input folds away.

A logical rank-2 tensor ``[N, D]`` is an ``N x D x 1 x 1`` variable when it is made
canonical; ranks up to 4 are padded with trailing ones.  The batch size ``N`` of the sizes
is a placeholder (the example's, or 1): every layer works for any batch size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import geometry as G
from ..dagnn import DagNN
from ..dagnn import layers as L

__all__ = ["Sym", "Builder", "IDENTITY", "inverse_perm"]

IDENTITY = (0, 1, 2, 3)
#: The most values a variable may hold per batch item, or a filter bank in all (PyTorch's
#: kernels index with 32-bit integers in places; larger sizes come from damaged files).
MAX_ELEMENTS = 2 ** 31 - 1
Value = Union["Sym", np.ndarray]


def inverse_perm(perm: Sequence[int]) -> Tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def pad4(shape: Sequence[int]) -> Tuple[int, ...]:
    return tuple(shape) + (1,) * (4 - len(shape))


def _prod(v: Sequence[int]) -> int:
    out = 1
    for a in v:
        out *= int(a)
    return out


@dataclass(frozen=True)
class Sym:
    """An imported tensor: ``reshape(permute(var, perm), shape)`` (see the module doc)."""
    var: str
    size: Tuple[int, int, int, int]
    perm: Tuple[int, int, int, int]
    shape: Tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def permuted_size(self) -> Tuple[int, ...]:
        return tuple(self.size[p] for p in self.perm)

    def is_canonical(self) -> bool:
        return self.perm == IDENTITY and len(self.shape) <= 4 and pad4(self.shape) == self.size


@dataclass
class _LayerSpec:
    name: str
    block: L.Layer
    inputs: List[str]
    outputs: List[str]
    params: List[str]


class Builder:
    """Accumulates layers and parameters, then emits the :class:`DagNN` (:meth:`finish`).

    Errors are ``ValueError`` messages naming what was received and what was expected; the
    importers prefix them with the source node."""

    def __init__(self, reserved: Sequence[str] = ()):
        self.layers: List[_LayerSpec] = []
        self.values: Dict[str, torch.Tensor] = {}
        self.no_decay: set = set()
        self.sizes: Dict[str, Tuple[int, int, int, int]] = {}
        self.producer: Dict[str, _LayerSpec] = {}
        self.readers: Dict[str, int] = {}
        self.input_vars: List[str] = []
        self._reserved = set(reserved)
        self._layer_names: set = set()
        self._param_names: set = set()
        self._renamed: Dict[str, str] = {}
        self._canonical: Dict[Sym, Sym] = {}

    # ------------------------------------------------------------------ names

    def _unique(self, hint: str, taken) -> str:
        hint = hint or "x"
        name, k = hint, 1
        while name in taken:
            k += 1
            name = f"{hint}_{k}"
        return name

    def new_var(self, hint: str) -> str:
        name = self._unique(hint, self._reserved | set(self.sizes))
        self._reserved.add(name)
        return name

    # ------------------------------------------------------------------ layers

    def add(self, hint: str, block: L.Layer, inputs: Sequence[str],
            params: Sequence[Tuple[str, Any]] = (), out: Optional[str] = None) -> str:
        """Add a layer reading ``inputs`` (variables) with ``params`` ((suffix, array) pairs);
        return its output variable (``out``, or a new name)."""
        name = self._unique(hint, self._layer_names)
        self._layer_names.add(name)
        in_sizes = [self.sizes[v] for v in inputs]
        try:
            size = tuple(block.get_output_sizes(in_sizes)[0])
        except (ValueError, TypeError, ZeroDivisionError) as e:
            raise ValueError(f"layer {name!r}: {e}") from None
        if len(size) != 4 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ValueError(f"layer {name!r} ({block.type_name}): the input sizes "
                             f"{in_sizes} give an invalid output size {size}")
        if _prod(size[1:]) > MAX_ELEMENTS:
            raise ValueError(f"layer {name!r} ({block.type_name}): the output size {size} "
                             f"exceeds {MAX_ELEMENTS} values per item")
        if out is None or out in self.sizes:
            out = self.new_var(out or name)
        pnames = []
        for suffix, value in params:
            p = self._unique(name + suffix, self._param_names)
            self._param_names.add(p)
            self.values[p] = _tensor(value)
            pnames.append(p)
        spec = _LayerSpec(name, block, list(inputs), [out], pnames)
        self.layers.append(spec)
        for v in inputs:
            self.readers[v] = self.readers.get(v, 0) + 1
        self.sizes[out] = size  # type: ignore[assignment]
        self.producer[out] = spec
        return out

    def input(self, name: str, shape: Sequence[int], perm: Sequence[int] = IDENTITY) -> Sym:
        """A network input holding the source tensor of ``shape`` permuted by ``perm``
        (``var = logical.permute(perm)``; identity: the variable is the tensor itself)."""
        shape = tuple(int(s) for s in shape)
        if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
            raise ValueError(f"input {name!r}: expected a shape of 1 to 4 positive sizes "
                             f"(batch first), got {shape}")
        perm = tuple(perm)
        if len(shape) < 4 and perm != IDENTITY:
            raise ValueError(f"input {name!r}: a permutation needs a 4-D input")
        size = tuple(pad4(shape)[p] for p in perm)
        self.sizes[name] = size  # type: ignore[assignment]
        self._reserved.add(name)
        self.input_vars.append(name)
        return Sym(name, size, inverse_perm(perm), shape)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ layouts

    def canonical(self, s: Sym, hint: str = "") -> Sym:
        """``s`` as a variable holding the logical tensor itself (rank <= 4, trailing ones)."""
        if s.rank > 4:
            raise ValueError(f"expected a tensor of rank at most 4, got shape {s.shape}")
        if s.is_canonical():
            return s
        if s in self._canonical:        # made canonical before: reuse the layers
            return self._canonical[s]
        v = s.var
        if s.perm != IDENTITY:
            v = self.add(f"{hint or v}_permute", L.Permute(perm=list(s.perm)), [v])
        target = pad4(s.shape)
        if self.sizes[v] != target:
            v = self.add(f"{hint or v}_reshape", L.Reshape(shape=list(target[1:])), [v])
        out = Sym(v, target, IDENTITY, s.shape)  # type: ignore[arg-type]
        self._canonical[s] = out
        return out

    def nchw(self, s: Sym, what: str, hint: str = "") -> Sym:
        """A canonical 4-D ``N x C x H x W`` tensor for ``what`` (which needs one)."""
        if s.rank != 4:
            raise ValueError(f"{what}: expected a 4-D N x C x H x W tensor, got shape {s.shape}")
        return self.canonical(s, hint)

    def channels(self, s: Sym, what: str, hint: str = "") -> Sym:
        """A canonical tensor of rank 2 to 4 with the channels on axis 1."""
        if not 2 <= s.rank <= 4:
            raise ValueError(f"{what}: expected a tensor of rank 2 to 4 with the channels on "
                             f"axis 1, got shape {s.shape}")
        return self.canonical(s, hint)

    def reshape(self, s: Sym, shape: Sequence[int]) -> Sym:
        """The logical tensor reshaped (row-major) to ``shape``, whose first axis must be
        the batch: no layer is added."""
        shape = tuple(int(a) for a in shape)
        if not shape or shape[0] != s.shape[0] or _prod(shape[1:]) != _prod(s.shape[1:]) \
                or any(a < 1 for a in shape):
            raise ValueError(
                f"cannot reshape {s.shape} to {shape}: the first axis is the batch "
                f"({s.shape[0]}) and must stay first, with the other {_prod(s.shape[1:])} "
                f"values per item")
        return Sym(s.var, s.size, s.perm, shape)

    def transpose(self, s: Sym, perm: Sequence[int], hint: str = "") -> Sym:
        """The logical tensor with its axes permuted (``perm[0]`` must be 0, the batch)."""
        perm = tuple(int(p) for p in perm)
        if sorted(perm) != list(range(s.rank)):
            raise ValueError(f"perm: expected a permutation of 0..{s.rank - 1}, got {perm}")
        if s.rank > 1 and perm[0] != 0:
            raise ValueError(f"perm: {perm} moves the batch axis, which must stay first")
        if s.rank > 4:
            raise ValueError(f"expected a tensor of rank at most 4, got shape {s.shape}")
        if s.permuted_size()[:s.rank] != s.shape or any(d != 1 for d in s.permuted_size()[s.rank:]):
            s = self.canonical(s, hint)
        p4 = perm + tuple(range(len(perm), 4))
        new = tuple(s.perm[p4[i]] for i in range(4))
        return Sym(s.var, s.size, new, tuple(s.shape[p] for p in perm))  # type: ignore[arg-type]

    def const_layout(self, s: Sym, c: np.ndarray) -> Tuple[Sym, np.ndarray, Tuple[int, ...]]:
        """A constant operand broadcast (NumPy rules) against ``s``, in the layout of the
        variable of the returned Sym: ``(s2, c4, shape)`` with ``c4`` a 4-D array that
        broadcasts against ``s2.var`` and ``shape`` the logical result shape.  Axes along
        which the constant does not vary are collapsed to 1."""
        c = np.asarray(c)
        if c.ndim > s.rank:
            raise ValueError(f"a constant of shape {c.shape} has more axes than the data "
                             f"{s.shape}")
        cp = c.reshape((1,) * (s.rank - c.ndim) + c.shape)
        if cp.ndim and cp.shape[0] != 1:
            raise ValueError(f"a constant of shape {c.shape} varies along the batch axis of "
                             f"{s.shape}; only a size of 1 broadcasts over the batch")
        try:
            out = tuple(np.broadcast_shapes(s.shape, cp.shape))
        except ValueError:
            raise ValueError(f"a constant of shape {c.shape} does not broadcast with the data "
                             f"{s.shape}") from None
        if out == s.shape:
            full = np.broadcast_to(cp, (1,) + s.shape[1:])
            full = full.reshape((1,) + s.permuted_size()[1:])
            c4 = np.transpose(full, inverse_perm(s.perm))
            return s, _collapse(c4), out
        if s.rank > 4 or len(out) > 4:
            raise ValueError(f"expected tensors of rank at most 4, got {out}")
        s2 = self.canonical(s)
        return s2, cp.reshape(pad4(cp.shape)), out

    # ------------------------------------------------------------------ operators

    def unary(self, s: Sym, block: L.Layer, hint: str, out: Optional[str] = None) -> Sym:
        """An elementwise layer: it works on the variable in any layout."""
        v = self.add(hint, block, [s.var], out=out)
        return Sym(v, s.size, s.perm, s.shape)

    def prelu(self, s: Sym, slope: np.ndarray, hint: str, out: Optional[str] = None) -> Sym:
        s2, a4, shape = self.const_layout(s, np.asarray(slope, dtype=np.float64))
        if shape != s.shape:
            raise ValueError(f"slope: a shape of {np.shape(slope)} would broadcast the data "
                             f"{s.shape} to {shape}")
        v = self.add(hint, L.PReLU(slopeShape=list(a4.shape)), [s2.var],
                     [("_slope", a4)], out=out)
        return Sym(v, s2.size, s2.perm, s2.shape)

    def conv(self, s: Sym, f: np.ndarray, b: Optional[np.ndarray], pad: Sequence[int],
             stride: Sequence[int], dilate: Sequence[int], hint: str,
             out: Optional[str] = None) -> Sym:
        """Convolution with a ``K x C/g x FH x FW`` filter bank (``g`` from the channels)."""
        s = self.nchw(s, "the convolution input", hint)
        f = _filters(f, "filters")
        n, c, h, w = s.size
        k, depth, fh, fw = f.shape
        if c % depth or k % (c // depth):
            raise ValueError(f"filters: a {tuple(f.shape)} bank does not fit {c} input "
                             f"channels (C must be a multiple of the filter depth {depth}, "
                             f"and K = {k} of the number of groups)")
        G.conv_output_size((h, w), (fh, fw), list(pad), list(stride), list(dilate))
        params = [("f", f)] + ([("b", _bias(b, k))] if b is not None else [])
        block = L.Conv(size=[fh, fw, depth, k], hasBias=b is not None, pad=list(pad),
                       stride=list(stride), dilate=list(dilate))
        v = self.add(hint, block, [s.var], params, out=out)
        return Sym(v, self.sizes[v], IDENTITY, self.sizes[v])

    def convt(self, s: Sym, f: np.ndarray, b: Optional[np.ndarray], upsample: Sequence[int],
              crop: Sequence[int], groups: int, dilate: Sequence[int], hint: str,
              out: Optional[str] = None) -> Sym:
        """Convolution transpose with a ``C x K x FH x FW`` bank (``K g`` output channels).
        Dilation is applied to the filters (zeros between the taps); a negative ``crop``
        (output padding beyond the source padding) adds zero rows and columns, with the bias
        added after them."""
        s = self.nchw(s, "the convolution transpose input", hint)
        f = _filters(f, "filters")
        extent = [(k - 1) * int(d) + 1 for k, d in zip(f.shape[2:], dilate)]
        if _prod(f.shape[:2]) * _prod(extent) > MAX_ELEMENTS:
            raise ValueError(f"dilations: {list(dilate)} make the filters {extent} too large")
        f = _dilated(f, dilate)
        n, c, h, w = s.size
        d, k, fh, fw = f.shape
        if d != c or c % groups:
            raise ValueError(f"filters: a {tuple(f.shape)} bank does not fit {c} input "
                             f"channels in {groups} groups")
        crop = [int(x) for x in crop]
        positive = [max(x, 0) for x in crop]
        extra = [max(-x, 0) for x in crop]
        G.convt_output_size((h, w), (fh, fw), list(upsample), positive)
        late_bias = b is not None and any(extra)
        params = [("f", f)] + ([("b", _bias(b, k * groups))] if b is not None and not late_bias
                               else [])
        block = L.ConvTranspose(size=[fh, fw, k, d], hasBias=len(params) > 1,
                                upsample=list(upsample), crop=positive, numGroups=groups)
        v = self.add(hint, block, [s.var], params, out=None if any(extra) else out)
        if any(extra):
            v = self.add(f"{hint}_pad", L.Pad(pad=extra), [v],
                         out=None if late_bias else out)
        if late_bias:
            v = self.add(f"{hint}_bias", L.BinaryOp(op="add", constShape=[1, k * groups, 1, 1]),
                         [v], [("b", _bias(b, k * groups).reshape(1, -1, 1, 1))], out=out)
        return Sym(v, self.sizes[v], IDENTITY, self.sizes[v])

    def pool(self, s: Sym, method: str, kernel: Sequence[int], stride: Sequence[int],
             pad: Sequence[int], ceil_mode: bool, count_include_pad: bool, hint: str,
             out: Optional[str] = None) -> Sym:
        """Max or average pooling with the source's rules: ``pad = [top, bottom, left,
        right]``; ``ceil_mode`` rounds the output size up, dropping a last window that would
        start in the bottom/right padding (PyTorch's and onnxruntime's rule), by extending
        the bottom/right padding, which MatConvNet's pooling ignores; average pooling with
        ``count_include_pad`` pads with explicit zeros first (a ``Pad`` layer), so that the
        windows' clipped area is counted on the padded image, as the source does."""
        s = self.nchw(s, f"{method} pooling input", hint)
        kernel, stride = [int(a) for a in kernel], [int(a) for a in stride]
        pad = [int(a) for a in pad]
        if min(kernel) < 1 or min(stride) < 1 or min(pad) < 0:
            raise ValueError(f"expected positive kernel sizes and strides and non-negative "
                             f"pads, got kernel {kernel}, stride {stride}, pads {pad}")
        expected = []
        for a, n in enumerate(s.size[2:]):
            k, st, pb, pe = kernel[a], stride[a], pad[2 * a], pad[2 * a + 1]
            num = n + pb + pe - k
            if num < 0:
                raise ValueError(f"the pooling window {tuple(kernel)} exceeds the padded "
                                 f"input {n + pb + pe} (input {tuple(s.size[2:])}, pads {pad})")
            m = num // st + 1
            if ceil_mode:
                m = -(-num // st) + 1
                if (m - 1) * st >= n + pb:   # the last window would start in the padding
                    m -= 1
            expected.append(m)
        v, size = s.var, s.size
        if method == "avg" and count_include_pad and any(pad):
            v = self.add(f"{hint}_pad", L.Pad(pad=pad), [v])
            size, pad = self.sizes[v], [0, 0, 0, 0]
        mpad: List[int] = []
        for a, n in enumerate(size[2:]):
            k, st, pb, m = kernel[a], stride[a], pad[2 * a], expected[a]
            # the bottom/right padding the last window reaches (none where it ends inside)
            mpad += [pb, max((m - 1) * st + k - n - pb, 0)]
        if max(mpad[0], mpad[1]) >= kernel[0] or max(mpad[2], mpad[3]) >= kernel[1]:
            raise ValueError(f"pads {pad} (with ceil_mode={bool(ceil_mode)}) reach a whole "
                             f"window {tuple(kernel)}: MatConvNet's pooling needs each pad "
                             f"smaller than the window")
        # MatConvNet's (floor) rule with these pads gives the source's output size
        assert G.pool_output_size(size[2:], kernel, mpad, stride) == tuple(expected)
        block = L.Pooling(method=method, poolSize=kernel, stride=stride, pad=mpad)
        v = self.add(hint, block, [v], out=out)
        return Sym(v, self.sizes[v], IDENTITY, self.sizes[v])

    def global_pool(self, s: Sym, method: str, hint: str, out: Optional[str] = None) -> Sym:
        s = self.nchw(s, f"global {method} pooling input", hint)
        block = L.Pooling(method=method, poolSize=list(s.size[2:]))
        v = self.add(hint, block, [s.var], out=out)
        return Sym(v, self.sizes[v], IDENTITY, self.sizes[v])

    def batchnorm(self, s: Sym, gamma, beta, mean, var, epsilon: float, hint: str,
                  out: Optional[str] = None) -> Sym:
        """Batch normalisation with fixed statistics: the moments are ``[mean,
        sqrt(var + epsilon)]`` (MatConvNet keeps epsilon inside sigma); the network must be
        in 'test' mode to use them."""
        s = self.channels(s, "batch normalisation", hint)
        c = s.size[1]
        arrays = []
        for name, a in (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var)):
            a = np.asarray(a, dtype=np.float64).reshape(-1)
            if a.size != c:
                raise ValueError(f"{name}: expected {c} values (one per channel), got {a.size}")
            arrays.append(a)
        g, b, mu, v2 = arrays
        if np.any(v2 + epsilon < 0):
            raise ValueError("var: expected non-negative variances")
        moments = np.stack([mu, np.sqrt(v2 + epsilon)], axis=1)
        block = L.BatchNorm(numChannels=c, epsilon=float(epsilon))
        v = self.add(hint, block, [s.var], [("m", g), ("b", b), ("x", moments)], out=out)
        self.no_decay.add(self.producer[v].params[2])
        return Sym(v, s.size, IDENTITY, s.shape)

    def softmax(self, s: Sym, axis: int, hint: str, out: Optional[str] = None) -> Sym:
        """Softmax along one logical axis (not the batch): the axis is brought to the
        channels (a lazy permutation) when it is not there."""
        axis = _axis(axis, s.rank, "axis")
        if axis == 0:
            raise ValueError("axis: a softmax across the batch is not supported")
        s = self.canonical(s, hint)
        if axis == 1:
            v = self.add(hint, L.SoftMax(), [s.var], out=out)
            return Sym(v, s.size, IDENTITY, s.shape)
        q = list(IDENTITY)
        q[1], q[axis] = q[axis], q[1]
        t = self.canonical(Sym(s.var, s.size, tuple(q), tuple(s.size[p] for p in q)), hint)
        v = self.add(hint, L.SoftMax(), [t.var], out=out)
        return Sym(v, t.size, tuple(q), s.shape)  # type: ignore[arg-type]

    def softmax_flat(self, s: Sym, axis: int, hint: str, out: Optional[str] = None) -> Sym:
        """Softmax over the axes ``axis..`` taken together (ONNX before opset 13)."""
        axis = _axis(axis, s.rank, "axis")
        if axis == s.rank - 1 or all(d == 1 for d in s.shape[axis + 1:]):
            return self.softmax(s, axis, hint, out)
        if axis != 1:
            raise ValueError(f"axis: a softmax over the axes {axis}.. of {s.shape} is not "
                             f"supported (only from axis 1 or over the last axis)")
        t = self.canonical(self.reshape(s, (s.shape[0], _prod(s.shape[1:]))), hint)
        v = self.add(hint, L.SoftMax(), [t.var], out=out)
        return Sym(v, t.size, IDENTITY, s.shape)

    def lrn(self, s: Sym, size: int, alpha: float, beta: float, bias: float, hint: str,
            out: Optional[str] = None) -> Sym:
        """Local response normalisation ``x / (bias + alpha / size * sum x^2)^beta`` over
        ``size`` channels: MatConvNet's ``[size, bias, alpha / size, beta]`` (its alpha is
        not divided by the window)."""
        s = self.nchw(s, "LRN", hint)
        if int(size) != size or size < 1:
            raise ValueError(f"size: expected a positive integer, got {size}")
        v = self.add(hint, L.LRN(param=[int(size), float(bias), float(alpha) / int(size),
                                        float(beta)]), [s.var], out=out)
        return Sym(v, s.size, IDENTITY, s.shape)

    def concat(self, syms: Sequence[Sym], axis: int, hint: str, out: Optional[str] = None) -> Sym:
        rank = syms[0].rank
        if any(t.rank != rank for t in syms):
            raise ValueError(f"expected inputs of one rank, got shapes {[t.shape for t in syms]}")
        axis = _axis(axis, rank, "axis")
        if axis == 0 or rank > 4:
            raise ValueError(f"axis: concatenating along axis {axis} of rank-{rank} tensors "
                             f"is not supported (only along axes 1-3 of tensors of rank <= 4)")
        for t in syms[1:]:
            first = syms[0].shape
            if t.shape[:axis] + t.shape[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise ValueError(f"the shapes {[t.shape for t in syms]} differ outside "
                                 f"axis {axis}")
        vs = [self.canonical(t, hint).var for t in syms]
        dim = {1: 3, 2: 1, 3: 2}[axis]
        v = self.add(hint, L.Concat(dim=dim), vs, out=out)
        shape = list(syms[0].shape)
        shape[axis] = sum(t.shape[axis] for t in syms)
        return Sym(v, self.sizes[v], IDENTITY, tuple(shape))

    def linear(self, s: Sym, w: np.ndarray, b: Optional[np.ndarray], hint: str,
               out: Optional[str] = None) -> Sym:
        """``y = x W^T + b`` on a ``[N, D]`` tensor, ``W`` being ``K x D``: one convolution
        whose ``K x C x H x W`` filter is ``W`` reshaped to the (permuted) layout of the
        variable the ``[N, D]`` tensor flattens, and permuted back; the output is
        ``N x K x 1 x 1``."""
        if s.rank != 2:
            raise ValueError(f"expected a 2-D [N, D] input, got shape {s.shape}")
        w = np.asarray(w, dtype=np.float64)
        p = s.permuted_size()
        if w.ndim != 2 or w.shape[1] != s.shape[1]:
            raise ValueError(f"weights: expected a K x {s.shape[1]} matrix, got shape {w.shape}")
        k = w.shape[0]
        inv = inverse_perm(s.perm)
        f = w.reshape(k, *p[1:]).transpose(0, inv[1], inv[2], inv[3])
        n, c, h, wd = s.size
        block = L.Conv(size=[h, wd, c, k], hasBias=b is not None)
        params = [("f", f)] + ([("b", _bias(b, k))] if b is not None else [])
        v = self.add(hint, block, [s.var], params, out=out)
        return Sym(v, self.sizes[v], IDENTITY, (s.shape[0], k))

    def pad(self, s: Sym, pad: Sequence[int], value: float, hint: str,
            out: Optional[str] = None) -> Sym:
        s = self.nchw(s, "padding", hint)
        v = self.add(hint, L.Pad(pad=[int(a) for a in pad], value=float(value)), [s.var],
                     out=out)
        return Sym(v, self.sizes[v], IDENTITY, self.sizes[v])

    def binary(self, op: str, a: Value, b: Value, hint: str, out: Optional[str] = None,
               fold: bool = False) -> Value:
        """``a op b`` (add, sub, mul, div) with NumPy broadcasting; constants are folded.
        With ``fold`` (the caller knows nothing else reads ``a``), adding a per-channel
        constant to the output of a convolution becomes its bias."""
        if not isinstance(a, Sym) and not isinstance(b, Sym):
            with np.errstate(all="ignore"):
                return _NUMPY_OPS[op](np.asarray(a), np.asarray(b))
        if isinstance(a, Sym) and isinstance(b, Sym):
            return self._binary_vars(op, a, b, hint, out)
        reverse = not isinstance(a, Sym)
        s, c = (b, a) if reverse else (a, b)
        s2, c4, shape = self.const_layout(s, np.asarray(c, dtype=np.float64))
        if fold and not reverse and op in ("add", "sub") and s2 is s:
            folded = self._fold_bias(s, c4 if op == "add" else -c4, out)
            if folded is not None:
                return folded
        block = L.BinaryOp(op=op, constShape=list(c4.shape), reverse=reverse)
        v = self.add(hint, block, [s2.var], [("_c", c4)], out=out)
        if shape == s.shape:
            return Sym(v, s2.size, s2.perm, s2.shape)
        return Sym(v, self.sizes[v], IDENTITY, shape)  # type: ignore[arg-type]

    def _binary_vars(self, op, a: Sym, b: Sym, hint, out) -> Sym:
        if a.size == b.size and a.perm == b.perm and a.shape == b.shape:
            block = L.Sum() if op == "add" else L.BinaryOp(op=op)
            v = self.add(hint, block, [a.var, b.var], out=out)
            return Sym(v, a.size, a.perm, a.shape)
        if a.rank != b.rank:
            raise ValueError(f"operands of shapes {a.shape} and {b.shape}: broadcasting "
                             f"between computed tensors of different ranks is not supported")
        try:
            shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            raise ValueError(f"the operands' shapes {a.shape} and {b.shape} do not "
                             f"broadcast") from None
        a2, b2 = self.canonical(a, hint), self.canonical(b, hint)
        v = self.add(hint, L.BinaryOp(op=op), [a2.var, b2.var], out=out)
        return Sym(v, self.sizes[v], IDENTITY, shape)

    def _fold_bias(self, s: Sym, c4: np.ndarray, out: Optional[str]) -> Optional[Sym]:
        spec = self.producer.get(s.var)
        if spec is None or self.readers.get(s.var, 0) or s.perm != IDENTITY \
                or not isinstance(spec.block, (L.Conv, L.ConvTranspose)) \
                or c4.shape[2:] != (1, 1) or c4.shape[1] not in (1, s.size[1]):
            return None
        k = s.size[1]
        bias = np.broadcast_to(c4.reshape(-1), (k,)).astype(np.float64)
        if spec.block.hasBias:
            name = spec.params[1]
            self.values[name] = _tensor(self.values[name].double().numpy() + bias)
        else:
            name = self._unique(spec.name + "b", self._param_names)
            self._param_names.add(name)
            self.values[name] = _tensor(bias)
            spec.params.append(name)
            spec.block.hasBias = True
        var = s.var
        if out is not None and out not in self.sizes and var not in self.input_vars:
            self.sizes[out] = self.sizes.pop(var)
            self.producer[out] = self.producer.pop(var)
            spec.outputs = [out]
            var = out
        return Sym(var, s.size, s.perm, s.shape)

    # ------------------------------------------------------------------ the network

    def finish(self, outputs: Sequence[Tuple[str, Sym]], meta: Dict[str, Any]) -> DagNN:
        """The network: each output made canonical, its variable named as the source's
        output and marked precious (kept by ``eval`` even when other layers read it);
        layers nothing reads are dropped; 'test' mode (fixed batch statistics, no
        dropout)."""
        for name, s in outputs:
            if s.var == name and not s.is_canonical():
                self._rename_var(name, self.new_var(f"{name}_raw"))
        syms = [(name, self.canonical(self._resolve(s), name)) for name, s in outputs]
        claimed = {name for name, s in syms if s.var == name}
        final = []
        for name, s in syms:
            var = self._renamed.get(s.var, s.var)
            if var != name:
                if name in self.sizes:
                    raise ValueError(f"output {name!r}: the name is taken by another variable")
                if var in claimed or var in self.input_vars or var not in self.producer:
                    self.add(f"{name}_copy", L.Reshape(shape=list(self.sizes[var][1:])), [var],
                             out=name)
                else:
                    self._rename_var(var, name)
            claimed.add(name)
            final.append(name)
        self._prune(set(final))
        net = DagNN()
        for spec in self.layers:
            net.add_layer(spec.name, spec.block, spec.inputs, spec.outputs, spec.params,
                          skip_rebuild=True)
        net.rebuild()
        for p in net.params:
            p.value = self.values[p.name]
            if p.name in self.no_decay:
                p.weight_decay = 0.0
        missing = [v for v in final if net.get_var_index(v) is None]
        if missing:
            raise ValueError(f"outputs {missing} are not computed by any layer")
        for v in final:
            net.vars[net.get_var_index(v)].precious = True
        net.meta = meta
        net.mode = "test"
        return net

    def _resolve(self, s: Sym) -> Sym:
        var = self._renamed.get(s.var, s.var)
        return s if var == s.var else Sym(var, s.size, s.perm, s.shape)

    def _rename_var(self, old: str, new: str) -> None:
        self._canonical.clear()
        for k, v in list(self._renamed.items()):
            if v == old:
                self._renamed[k] = new
        self._renamed[old] = new
        for spec in self.layers:
            spec.inputs = [new if v == old else v for v in spec.inputs]
            spec.outputs = [new if v == old else v for v in spec.outputs]
        self.sizes[new] = self.sizes.pop(old)
        self.producer[new] = self.producer.pop(old)
        if old in self.readers:
            self.readers[new] = self.readers.pop(old)

    def _prune(self, keep: set) -> None:
        while True:
            read = {v for spec in self.layers for v in spec.inputs}
            dead = [spec for spec in self.layers
                    if not any(o in read or o in keep for o in spec.outputs)]
            if not dead:
                return
            self.layers = [spec for spec in self.layers if spec not in dead]


# ----------------------------------------------------------------------------- helpers


_NUMPY_OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def _tensor(a: Any) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def _filters(f: Any, name: str) -> np.ndarray:
    f = np.asarray(f)
    if f.ndim != 4 or min(f.shape) < 1:
        raise ValueError(f"{name}: expected a 4-D filter bank, got shape {f.shape}")
    return f


def _bias(b: Any, k: int) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if b.size == 1 and k > 1:
        b = np.full(k, b[0])
    if b.size != k:
        raise ValueError(f"bias: expected {k} values, got {b.size}")
    return b


def _dilated(f: np.ndarray, dilate: Sequence[int]) -> np.ndarray:
    """The filters with ``dilate - 1`` zeros between the taps."""
    dy, dx = (int(d) for d in dilate)
    if dy < 1 or dx < 1:
        raise ValueError(f"dilations: expected positive integers, got {list(dilate)}")
    if dy == dx == 1:
        return f
    d, k, fh, fw = f.shape
    out = np.zeros((d, k, (fh - 1) * dy + 1, (fw - 1) * dx + 1), dtype=f.dtype)
    out[:, :, ::dy, ::dx] = f
    return out


def _collapse(c: np.ndarray) -> np.ndarray:
    """``c`` with every non-batch axis along which it does not vary reduced to size 1."""
    for a in (1, 2, 3):
        if c.shape[a] > 1 and np.array_equal(c, np.broadcast_to(c.take([0], axis=a), c.shape)):
            c = c.take([0], axis=a)
    return np.ascontiguousarray(c)


def _axis(axis: int, rank: int, name: str) -> int:
    a = int(axis)
    if not -rank <= a < rank:
        raise ValueError(f"{name}: expected an axis in [{-rank}, {rank - 1}], got {axis}")
    return a + rank if a < 0 else a
