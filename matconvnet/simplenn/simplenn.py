r"""vl_simplenn: evaluate a SimpleNN network (a chain of blocks) forward and backward.

A SimpleNN network is ``net = {'layers': [...], 'meta': {...}}`` (docs/net-structure.md).
Evaluating it on ``x`` produces ``res``, a list of ``n + 1`` dicts (manual 3.1,
FEATURES.md 2.2)::

    res[0]['x'] = x,  res[i + 1]['x'] = output of layer i       (0-based i here)
    res[i]['dzdx'] = dz/d res[i]['x'],  res[n]['dzdx'] = dzdy
    res[i]['dzdw'] = derivatives of layer i's weights (bnorm: [dg, db, batch moments])
    res[i + 1]['aux'] = auxiliary output (dropout's mask; when the call backpropagates
                        through the layer, max pooling's switches and batch
                        normalisation's batch moments, which the backward pass reuses)
    res[i]['time'], res[i]['backward_time'] = seconds spent in layer i

Backpropagation is chapter 2's: the blocks are called in backward mode in reverse order,
each mapping ``res[i + 1]['dzdx']`` to ``res[i]['dzdx']``.

Call forms::

    res = vl_simplenn(net, x)                       # forward
    res = vl_simplenn(net, x, dzdy)                 # forward and backward
    res = vl_simplenn(net, x, dzdy, res, skip_forward=True)   # backward only

Options: ``mode`` ('normal' or 'test': dropout becomes the identity and batch
normalisation uses the stored moments in the forward pass; as in the original its backward
still uses batch statistics), ``conserve_memory`` (drop intermediate values not needed
any more; the network input is dropped too, as in the original), ``back_prop_depth``
(backpropagate through the last layers only), ``input_derivative`` (default True; False
skips the derivative with respect to the input of the lowest backpropagated layer,
``res[0]['dzdx']`` at full depth, which training never reads: it is left None, the first
layer's backward call gets ``no_der_data`` where the block has it (conv, convt), and a
first layer without weights is not backpropagated at all), ``skip_forward`` (reuse ``res``),
``accumulate`` (add the weight derivatives into ``res``), ``cudnn``, ``sync`` (wait for the
GPU after each layer, for timings), ``parameter_server`` (an object with ``push(name,
tensor)`` receiving each weight derivative as ``'l<i>_<j>'``, 1-based as in the
original) and ``hold_on`` (do not push).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import numpy as np
import torch

from .. import blocks as B
from .._tensor import TensorSpec
from ..blocks.options import block_options

__all__ = ["vl_simplenn", "LAYER_TYPES"]

Res = List[Dict[str, Any]]
_LOSSES = ("loss", "softmaxloss")
_PARAMETRIC = ("conv", "convt", "bnorm")


# ------------------------------------------------------------------ the layer table
# The one place that maps a layer's fields to its block's arguments.

class _Spec(NamedTuple):
    block: Callable
    args: Callable[[dict], tuple]          # positional arguments after x
    kwargs: Callable[[dict], dict]         # keyword options
    has_weights: bool = False              # backward returns (dzdx, dzdw1, dzdw2, ...)
    cudnn: bool = False                    # takes the cudnn switch


def _no_args(l):
    return ()


def _no_kwargs(l):
    return {}


def _weights(l):
    w = list(l.get("weights") or [])
    return (w[0] if w else None, w[1] if len(w) > 1 else None)


LAYER_TYPES: Dict[str, _Spec] = {
    "conv": _Spec(B.vl_nnconv, _weights, lambda l: dict(
        pad=l.get("pad", 0), stride=l.get("stride", 1), dilate=l.get("dilate", 1),
        **_opts(l, "conv")),
        has_weights=True, cudnn=True),
    "convt": _Spec(B.vl_nnconvt, _weights, lambda l: dict(
        crop=l.get("crop", 0), upsample=l.get("upsample", 1), num_groups=l.get("numGroups", 1),
        **_opts(l, "convt")), has_weights=True, cudnn=True),
    "pool": _Spec(B.vl_nnpool, lambda l: (l["pool"],), lambda l: dict(
        pad=l.get("pad", 0), stride=l.get("stride", 1), method=l.get("method", "max"),
        **_opts(l, "pool")), cudnn=True),
    "normalize": _Spec(B.vl_nnnormalize, lambda l: (l["param"],), _no_kwargs),
    "spnorm": _Spec(B.vl_nnspnorm, lambda l: (l["param"],), _no_kwargs),
    "noffset": _Spec(B.vl_nnnoffset, lambda l: (l["param"],), _no_kwargs),
    "softmax": _Spec(B.vl_nnsoftmax, _no_args, _no_kwargs),
    "sigmoid": _Spec(B.vl_nnsigmoid, _no_args, _no_kwargs),
    "relu": _Spec(B.vl_nnrelu, _no_args,
                  lambda l: {"leak": l["leak"]} if l.get("leak", 0) > 0 else {}),
    "loss": _Spec(B.vl_nnloss, lambda l: (l["class"],), _no_kwargs),
    "softmaxloss": _Spec(B.vl_nnsoftmaxloss, lambda l: (l["class"],), _no_kwargs),
    "pdist": _Spec(B.vl_nnpdist, lambda l: (l["class"], l.get("p", 2)), lambda l: dict(
        no_root=bool(l.get("noRoot", False)), epsilon=l.get("epsilon", 1e-3),
        aggregate=bool(l.get("aggregate", False)),
        instance_weights=_none_if_empty(l.get("instanceWeights")))),
    "bnorm": _Spec(B.vl_nnbnorm, lambda l: tuple(l["weights"][:2]),
                   lambda l: {"epsilon": l.get("epsilon", 1e-5)}, has_weights=True),
    "dropout": _Spec(B.vl_nndropout, _no_args, lambda l: {"rate": l.get("rate", 0.5)}),
}
LAYER_TYPES["lrn"] = LAYER_TYPES["normalize"]


def _opts(l, block: str) -> dict:
    """A layer's ``opts`` (MatConvNet's cell of extra block options) as keywords."""
    return block_options(l.get("opts"), block)


def _none_if_empty(v):
    if v is None or (hasattr(v, "__len__") and len(v) == 0 and not torch.is_tensor(v)):
        return None
    if torch.is_tensor(v) and v.numel() == 0:
        return None
    return v


# ------------------------------------------------------------------ vl_simplenn

def vl_simplenn(net: dict, x, dzdy=None, res: Optional[Res] = None, *, mode: str = "normal",
                conserve_memory: bool = False, sync: bool = False, accumulate: bool = False,
                cudnn: bool = True, back_prop_depth: float = math.inf,
                skip_forward: bool = False, parameter_server=None,
                hold_on: bool = False, input_derivative: bool = True) -> Res:
    layers = _layers(net)
    n = len(layers)
    if not back_prop_depth > 0:
        raise ValueError(f"back_prop_depth: expected a positive number, got {back_prop_depth}")
    lim = max(n - back_prop_depth, 0) if math.isfinite(back_prop_depth) else 0
    lim = int(lim)  # first layer (0-based) that backpropagates
    if mode not in ("normal", "test"):
        raise ValueError(f"mode: expected 'normal' or 'test', got {mode!r}")
    test = mode == "test"
    doder = dzdy is not None
    if skip_forward and not doder:
        raise ValueError("skip_forward: valid only when the backward pass is computed (give dzdy)")
    if res is None:
        if skip_forward:
            raise ValueError("res: a res list from an earlier call is required with skip_forward")
        res = [_new_res() for _ in range(n + 1)]
    elif len(res) != n + 1:
        raise ValueError(f"res: expected {n + 1} entries (layers + 1), got {len(res)}")
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    gpu = torch.is_tensor(x) and x.is_cuda

    specs: Dict[int, Any] = {}   # pooling inputs freed early: what their backward reads
    if not skip_forward:
        res[0]["x"] = x
        for i, l in enumerate(layers):
            start = time.perf_counter()
            needs_bprop = doder and i >= lim
            forget = conserve_memory and _forget_input(layers, i, needs_bprop)
            # a ReLU may overwrite an input that is forgotten anyway and that nothing else
            # holds (the output of a built-in block that is not a view of its own input)
            inplace = forget and l["type"] == "relu" and i > 0 \
                and layers[i - 1]["type"] != "custom" \
                and not _shares_memory(res[i]["x"], res[i - 1]["x"], x)
            _forward(l, res, i, test, cudnn, keep=needs_bprop, inplace=inplace)
            if forget:
                if l["type"] == "pool" and torch.is_tensor(res[i]["x"]):
                    specs[i] = TensorSpec(res[i]["x"])
                res[i]["x"] = None
            if gpu and sync:
                torch.cuda.synchronize(x.device)
            res[i]["time"] = time.perf_counter() - start

    if doder:
        res[n]["dzdx"] = dzdy
        i = n
        for i in range(n - 1, lim - 1, -1):
            l = layers[i]
            start = time.perf_counter()
            if conserve_memory and i != n - 1 and not l.get("precious", False) \
                    and l["type"] not in _READS_OUTPUT:
                res[i + 1]["x"] = None   # dropped after this layer anyway; its backward
                #                          does not read it, so drop it before
            bottom = i == lim and not input_derivative
            if bottom and l["type"] != "custom" and not LAYER_TYPES[l["type"]].has_weights:
                res[i]["dzdx"] = None   # nothing to compute: no weights, no input derivative
                dzdw = []
            else:
                # a ReLU may overwrite a derivative that is dropped after this layer and that
                # the layer above computed afresh (not the caller's dzdy, not passed through)
                inplace = l["type"] == "relu" and conserve_memory and i != n - 1 \
                    and not l.get("precious", False) and _fresh_input_der(layers[i + 1], test)
                dzdw = _backward(l, res, i, test, cudnn, no_der_data=bottom, inplace=inplace,
                                 spec=specs.get(i))
                if bottom:
                    res[i]["dzdx"] = None
            if l["type"] in _PARAMETRIC:
                if accumulate and res[i].get("dzdw"):
                    res[i]["dzdw"] = [a + b for a, b in zip(res[i]["dzdw"], dzdw)]
                else:
                    res[i]["dzdw"] = dzdw
                if parameter_server is not None and not hold_on:
                    for j, d in enumerate(res[i]["dzdw"]):
                        parameter_server.push(f"l{i + 1}_{j + 1}", d)
                    res[i]["dzdw"] = [None] * len(res[i]["dzdw"])
            if conserve_memory and not l.get("precious", False) and i != n - 1:
                res[i + 1]["dzdx"] = None
                res[i + 1]["x"] = None
                res[i + 1]["aux"] = None
            if gpu and sync:
                torch.cuda.synchronize(x.device)
            res[i]["backward_time"] = time.perf_counter() - start
        if i > 0 and i == lim and conserve_memory and not layers[i].get("precious", False):
            res[i]["dzdx"] = None
            res[i]["x"] = None
    return res


def _forget_input(layers, i: int, needs_bprop: bool) -> bool:
    """Whether layer i's input (res[i]['x']) can be dropped once the layer has run, under
    conserve_memory: the original's rules -- any input no backward pass needs, but never the
    network input, a loss output or a precious layer's output -- and, when backpropagating,
    the input of a ReLU, whose derivative uses the output instead (the original's stated
    intent, "forget RELU input, even for BPROP", which DagNN's ReLU short circuit does),
    and of a pooling layer, whose derivative needs only the input's shape given the max
    switches.  Such an input is kept where the layer below may read its output when
    backpropagating (ReLU, softmax, sigmoid and custom layers)."""
    if i == 0:
        return not needs_bprop
    prev = layers[i - 1]
    if prev.get("precious", False) or prev["type"] in _LOSSES:
        return False
    if not needs_bprop:
        return True
    return layers[i]["type"] in _READS_NO_INPUT and prev["type"] not in _READS_OUTPUT


_READS_OUTPUT = ("relu", "softmax", "sigmoid", "custom")   # backward may read the output
_READS_NO_INPUT = ("relu", "pool")   # backward reads no input values: ReLU uses its output,
#                                     pooling the switches kept and the input's shape


def _shares_memory(t, *others) -> bool:
    """Whether tensor t shares storage with one of the other tensors (None skipped)."""
    if not torch.is_tensor(t):
        return True
    p = t.untyped_storage().data_ptr()
    return any(torch.is_tensor(o) and o.untyped_storage().data_ptr() == p for o in others)


def _fresh_input_der(l, test: bool) -> bool:
    """Whether layer l's backward call returns a new tensor as its input derivative (not the
    derivative it was given, nor a view of it)."""
    return l["type"] != "custom" and not (l["type"] == "dropout" and test)


def _new_res() -> Dict[str, Any]:
    return {"x": None, "dzdx": None, "dzdw": [], "aux": None, "stats": None,
            "time": 0.0, "backward_time": 0.0}


def _layers(net) -> list:
    if not isinstance(net, dict) or not isinstance(net.get("layers"), (list, tuple)):
        raise TypeError("net: expected a SimpleNN dict with a 'layers' list")
    for i, l in enumerate(net["layers"]):
        if not isinstance(l, dict) or "type" not in l:
            raise ValueError(f"net: layer {i + 1} is not a dict with a 'type' field")
        if l["type"] != "custom" and l["type"] not in LAYER_TYPES:
            raise ValueError(
                f"net: layer {i + 1} ({l.get('name', '?')}) has unknown type {l['type']!r}; "
                f"expected one of {', '.join(sorted(LAYER_TYPES))} or custom")
    return list(net["layers"])


def _call(l, x, *extra, test=False, cudnn=True, **more):
    """Call layer l's block on x (forward, or backward when extra ends with dzdy)."""
    spec = LAYER_TYPES[l["type"]]
    kwargs = dict(spec.kwargs(l), **more)
    if spec.cudnn and not cudnn:
        kwargs["cudnn"] = False
    return spec.block(x, *spec.args(l), *extra, **kwargs)


def _forward(l, res, i, test, cudnn, keep=False, inplace=False):
    t = l["type"]
    x = res[i]["x"]
    out = res[i + 1]
    try:
        if t == "custom":
            res[i + 1] = l["forward"](l, res[i], res[i + 1])
        elif t == "dropout":
            out["x"], out["aux"] = (x, None) if test else _call(l, x)
        elif t == "bnorm" and test:
            out["x"] = _call(l, x, moments=l["weights"][2])
        elif t == "pool" and keep:
            # the backward pass reuses the maxima found here instead of searching again
            out["x"], out["aux"] = _call(l, x, cudnn=cudnn, return_switches=True)
        elif t == "bnorm" and keep:
            # ... and the batch moments instead of computing them again
            out["x"], out["aux"] = _call(l, x, cudnn=cudnn, return_moments=True)
        elif inplace:
            out["x"] = _call(l, x, inplace=True)
        else:
            out["x"] = _call(l, x, cudnn=cudnn)
    except (ValueError, TypeError) as e:
        raise type(e)(f"layer {i + 1} ({l.get('name', t)}): {e}") from e


def _backward(l, res, i, test, cudnn, no_der_data=False, inplace=False, spec=None):
    """Set res[i]['dzdx']; return the weight derivatives.  ``no_der_data``: the caller
    discards res[i]['dzdx'], so blocks that can skip it are told to."""
    t = l["type"]
    x, y, dzdy = res[i]["x"], res[i + 1]["x"], res[i + 1]["dzdx"]
    try:
        if t == "custom":
            res[i] = l["backward"](l, res[i], res[i + 1])
            return res[i].get("dzdw") or []
        if t == "dropout":
            res[i]["dzdx"] = dzdy if test else _call(l, x, dzdy, mask=res[i + 1]["aux"])
            return []
        if t == "relu" and x is None:
            x = y  # the input was dropped to save memory: y gives the same derivative
        if t == "pool" and x is None and spec is not None:
            x = spec.stand_in()   # ... and pooling reads only its shape (given switches)
        more = {"y": y} if t in ("softmax", "sigmoid") and y is not None else {}
        if t == "pool" and res[i + 1]["aux"] is not None:
            more["switches"] = res[i + 1]["aux"]
        if t == "bnorm" and not test and res[i + 1]["aux"] is not None:
            more["moments"] = res[i + 1]["aux"]
        if no_der_data and t in ("conv", "convt"):
            more["no_der_data"] = True
        if inplace and t == "relu" and torch.is_tensor(dzdy):
            more["inplace"] = True
        out = _call(l, x, dzdy, cudnn=cudnn, **more)
    except (ValueError, TypeError) as e:
        raise type(e)(f"layer {i + 1} ({l.get('name', t)}): {e}") from e
    if LAYER_TYPES[t].has_weights:  # bnorm's third "derivative" is the batch moments
        res[i]["dzdx"] = out[0]
        return list(out[1:])
    res[i]["dzdx"] = out[0] if isinstance(out, tuple) else out  # pdist: (dzdx, dzdx0)
    return []
