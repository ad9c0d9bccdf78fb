r"""DagNN: a network as a directed acyclic graph of layers (manual 2.2.2, 2.3.4-5, 3.1.2).

Variables (``vars``) connect layers; parameters (``params``) hold their weights.  A layer
reads input variables and parameters and writes output variables; a variable read by several
layers (fan-out) receives the *sum* of their derivatives (the summation layers of manual
2.3.5), and a parameter named by several layers is shared: one value, derivatives summed.

``eval(inputs, der_outputs)`` runs the layers in topological order, then, when output
derivatives are given, backpropagates in the reverse order through each layer's backward
mode (chapter 2; no autograd)::

    net.eval({"input": x, "label": c}, {"objective": 1.0})
    net.vars[net.get_var_index("prediction")].value
    net.params[net.get_param_index("conv1f")].der

Options (attributes): ``mode`` ('normal' or 'test'), ``conserve_memory`` (default True:
a value is freed as soon as no layer needs it, a derivative once used; precious variables
keep theirs; after a forward pass only the outputs keep values, after a backward pass only
the inputs), ``input_derivatives`` (default True; False skips the derivatives of the
network's input variables, those no layer computes, which training never reads: their
``der`` stays None, Conv and ConvTranspose layers reading them skip their data derivative,
and a layer without parameters whose inputs are all network inputs is not backpropagated),
``accumulate_param_ders`` (add parameter derivatives to
those of the previous call instead of overwriting them), ``parameter_server`` and
``hold_on`` (push each parameter derivative as soon as it is complete).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

from .. import geometry as G
from .layers import LAYER_CLASSES, Layer

__all__ = ["DagNN", "Var", "Param", "LayerEntry"]


@dataclass
class Var:
    name: str
    value: Any = None
    der: Any = None
    fanin: int = 0
    fanout: int = 0
    precious: bool = False


@dataclass
class Param:
    name: str
    value: Any = None
    der: Any = None
    fanout: int = 0
    train_method: str = "gradient"
    learning_rate: float = 1.0
    weight_decay: float = 1.0


@dataclass
class LayerEntry:
    name: str
    block: Layer
    inputs: List[str]
    outputs: List[str]
    params: List[str]
    input_indexes: List[int] = field(default_factory=list)
    output_indexes: List[int] = field(default_factory=list)
    param_indexes: List[int] = field(default_factory=list)
    forward_time: float = 0.0
    backward_time: float = 0.0


def _names(x) -> List[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return [str(v) for v in x]


class DagNN:
    def __init__(self):
        self.layers: List[LayerEntry] = []
        self.vars: List[Var] = []
        self.params: List[Param] = []
        self.meta: Dict[str, Any] = {}
        self._mode = "normal"
        self.conserve_memory = True
        # whether the eval in progress will backpropagate: layers may then keep what their
        # backward pass would otherwise recompute (max pooling's switches)
        self.computing_derivatives = False
        self.accumulate_param_ders = False
        self.input_derivatives = True
        self.parameter_server = None
        self.hold_on = False
        self.device = torch.device("cpu")
        self.execution_order: List[int] = []
        self._producer: Dict[int, int] = {}   # var index -> the one layer writing it
        self._readers: Dict[int, List[int]] = {}   # var index -> the layers reading it
        # state of the eval in progress, for _input_disposable / _output_der_disposable
        self._pending: Optional[List[int]] = None
        self._backward_reads: set = set()
        self._owned_ders: set = set()

    # ------------------------------------------------------------------ mode
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        # the original silently ignores unknown values; an error is more useful
        value = str(value).lower()
        if value not in ("normal", "train", "test"):
            raise ValueError(f"mode: expected 'normal', 'train' or 'test', got {value!r}")
        self._mode = "test" if value == "test" else "normal"

    # ------------------------------------------------------------------ structure
    def add_layer(self, name: str, block: Layer, inputs, outputs, params=(), *,
                  skip_rebuild: bool = False) -> None:
        if not isinstance(block, Layer):
            raise TypeError(f"block: expected a matconvnet.dagnn.Layer, got {type(block).__name__}")
        if any(l.name == name for l in self.layers):
            raise ValueError(f"name: there is already a layer called {name!r}")
        entry = LayerEntry(name, block, _names(inputs), _names(outputs), _names(params))
        self.layers.append(entry)
        index = len(self.layers) - 1
        for v in entry.inputs + entry.outputs:
            if self.get_var_index(v) is None:
                self.vars.append(Var(v))
        for p in entry.params:
            if self.get_param_index(p) is None:
                self.params.append(Param(p))
        block.attach(self, index)
        if not skip_rebuild:
            self.rebuild()

    def remove_layer(self, names) -> None:
        for name in _names(names):
            i = self.get_layer_index(name)
            if i is None:
                raise ValueError(f"name: no layer called {name!r}")
            del self.layers[i]
        self.rebuild()

    def rename_layer(self, old: str, new: str) -> None:
        i = self._layer(old)
        if self.get_layer_index(new) is not None:
            raise ValueError(f"new: there is already a layer called {new!r}")
        self.layers[i].name = new

    def rename_var(self, old: str, new: str) -> None:
        """Rename a variable everywhere; if ``new`` exists the two are merged."""
        if self.get_var_index(old) is None:
            raise ValueError(f"old: no variable called {old!r}")
        for l in self.layers:
            l.inputs = [new if v == old else v for v in l.inputs]
            l.outputs = [new if v == old else v for v in l.outputs]
        if self.get_var_index(new) is None:
            self.vars[self.get_var_index(old)].name = new
        self.rebuild()

    def rename_param(self, old: str, new: str) -> None:
        i = self.get_param_index(old)
        if i is None:
            raise ValueError(f"old: no parameter called {old!r}")
        if self.get_param_index(new) is not None:
            raise ValueError(f"new: there is already a parameter called {new!r}")
        self.params[i].name = new
        for l in self.layers:
            l.params = [new if p == old else p for p in l.params]
        self.rebuild()

    def set_layer_inputs(self, layer: str, inputs) -> None:
        self._set_layer(layer, "inputs", inputs)

    def set_layer_outputs(self, layer: str, outputs) -> None:
        self._set_layer(layer, "outputs", outputs)

    def set_layer_params(self, layer: str, params) -> None:
        self._set_layer(layer, "params", params)

    def _set_layer(self, layer, what, names):
        entry = self.layers[self._layer(layer)]
        setattr(entry, what, _names(names))
        for n in _names(names):
            if what == "params":
                if self.get_param_index(n) is None:
                    self.params.append(Param(n))
            elif self.get_var_index(n) is None:
                self.vars.append(Var(n))
        self.rebuild()

    def _layer(self, name) -> int:
        i = self.get_layer_index(name)
        if i is None:
            raise ValueError(f"layer: no layer called {name!r}")
        return i

    def get_layer_index(self, name):
        return self._index(self.layers, name)

    def get_var_index(self, name):
        return self._index(self.vars, name)

    def get_param_index(self, name):
        return self._index(self.params, name)

    @staticmethod
    def _index(items, name):
        if isinstance(name, (list, tuple)):
            return [DagNN._index(items, n) for n in name]
        for i, item in enumerate(items):
            if item.name == name:
                return i
        return None

    def get_inputs(self) -> List[str]:
        return [v.name for v in self.vars if v.fanin == 0]

    def get_outputs(self) -> List[str]:
        return [v.name for v in self.vars if v.fanout == 0]

    def rebuild(self) -> None:
        """Recompute indexes and fan-in/fan-out, drop unused variables and parameters, and
        find the execution order (a cycle raises ValueError naming its layers)."""
        used_vars = {v for l in self.layers for v in l.inputs + l.outputs}
        used_params = {p for l in self.layers for p in l.params}
        self.vars = [v for v in self.vars if v.name in used_vars]
        self.params = [p for p in self.params if p.name in used_params]
        var_index = {v.name: i for i, v in enumerate(self.vars)}
        param_index = {p.name: i for i, p in enumerate(self.params)}
        for v in self.vars:
            v.fanin = v.fanout = 0
        for p in self.params:
            p.fanout = 0
        for i, l in enumerate(self.layers):
            l.input_indexes = [var_index[v] for v in l.inputs]
            l.output_indexes = [var_index[v] for v in l.outputs]
            l.param_indexes = [param_index[p] for p in l.params]
            for v in l.input_indexes:
                self.vars[v].fanout += 1
            for v in l.output_indexes:
                self.vars[v].fanin += 1
            for p in l.param_indexes:
                self.params[p].fanout += 1
            l.block.layer_index = i
        self.execution_order = self._order()
        self._producer = {i: li for li, l in enumerate(self.layers) for i in l.output_indexes
                          if self.vars[i].fanin == 1}
        self._readers = {}
        for li, l in enumerate(self.layers):
            for i in set(l.input_indexes):
                self._readers.setdefault(i, []).append(li)

    def _order(self) -> List[int]:
        producers: Dict[int, List[int]] = {}
        for i, l in enumerate(self.layers):
            for v in l.output_indexes:
                producers.setdefault(v, []).append(i)
        state = [0] * len(self.layers)
        order: List[int] = []
        stack: List[int] = []

        def visit(i):
            if state[i] == 2:
                return
            if state[i] == 1:
                cycle = stack[stack.index(i):] + [i]
                raise ValueError("net: the network graph contains a cycle through layers "
                                 + " -> ".join(self.layers[j].name for j in cycle))
            state[i] = 1
            stack.append(i)
            for v in self.layers[i].input_indexes:
                for p in producers.get(v, []):
                    visit(p)
            stack.pop()
            state[i] = 2
            order.append(i)

        for i in range(len(self.layers)):
            visit(i)
        return order

    # ------------------------------------------------------------------ evaluation
    def eval(self, inputs: Union[Mapping[str, Any], Sequence], der_outputs=None, *,
             hold_on: Optional[bool] = None) -> None:
        if hold_on is not None:
            self.hold_on = hold_on
        inputs = _pairs(inputs, "inputs")
        der_outputs = _pairs(der_outputs, "der_outputs") if der_outputs is not None else None
        computing_der = bool(der_outputs)
        self.computing_derivatives = computing_der
        for name, value in inputs:
            i = self.get_var_index(name)
            if i is None:
                raise ValueError(f"inputs: no variable called {name!r}")
            self.vars[i].value = value
        pending = [v.fanout for v in self.vars]
        self._pending = pending
        self._backward_reads = self._reads_backward() if computing_der else set()
        try:
            self._forward_pass(pending, computing_der)
            if computing_der:
                self._backward_pass(der_outputs)
        finally:
            self._pending = None
            self._owned_ders = set()

    def _forward_pass(self, pending, computing_der) -> None:
        for li in self.execution_order:
            l = self.layers[li]
            ins = [self.vars[i].value for i in l.input_indexes]
            if any(x is None for x in ins):
                continue  # the original skips layers with a missing input
            start = time.perf_counter()
            try:
                outs = l.block.forward(ins, [self.params[p].value for p in l.param_indexes])
            except (ValueError, TypeError) as e:
                raise type(e)(f"layer {l.name!r} ({l.block.type_name}): {e}") from e
            for i, y in zip(l.output_indexes, outs):
                self.vars[i].value = y
            for i in l.input_indexes:
                pending[i] -= 1
                v = self.vars[i]
                if pending[i] == 0 and self.conserve_memory and not v.precious \
                        and (not computing_der or not self._needed_backward(i)):
                    v.value = None
            l.forward_time = time.perf_counter() - start

    def _backward_pass(self, der_outputs) -> None:
        if not self.input_derivatives:
            for v in self.vars:      # none computed: leave none from an earlier call
                if v.fanin == 0:
                    v.der = None
        for name, der in der_outputs:
            i = self.get_var_index(name)
            if i is None:
                raise ValueError(f"der_outputs: no variable called {name!r}")
            self.vars[i].der = der
        var_refs = [0] * len(self.vars)
        param_refs = [0] * len(self.params)
        skip_inputs = not self.input_derivatives
        for li in reversed(self.execution_order):
            l = self.layers[li]
            ders = [self.vars[i].der for i in l.output_indexes]
            if all(d is None for d in ders):
                continue
            start = time.perf_counter()
            if any(d is None for d in ders):
                ders = [torch.zeros_like(v.value) if d is None and v.value is not None else d
                        for d, v in zip(ders, (self.vars[i] for i in l.output_indexes))]
            if self.conserve_memory and not l.block.backward_needs_outputs():
                for i in l.output_indexes:   # freed after this layer anyway: free them before
                    if not self.vars[i].precious:
                        self.vars[i].value = None
            wanted = [not skip_inputs or self.vars[i].fanin > 0 for i in l.input_indexes]
            if not l.param_indexes and not any(wanted):
                der_ins = [None] * len(l.input_indexes)   # nothing this pass would use
                der_params = []
            else:
                outs = [self.vars[i].value for i in l.output_indexes]
                ins = [self.vars[i].value for i in l.input_indexes]
                try:
                    der_ins, der_params = l.block.backward(
                        ins, [self.params[p].value for p in l.param_indexes], ders,
                        outputs=outs)
                except (ValueError, TypeError) as e:
                    raise type(e)(f"layer {l.name!r} ({l.block.type_name}) backward: {e}") \
                        from e
                if len(der_ins) != len(l.input_indexes):
                    raise ValueError(f"layer {l.name!r}: invalid derivatives returned by layer "
                                     f"({len(der_ins)} for {len(l.input_indexes)} inputs)")
                if skip_inputs:
                    der_ins = [d if w else None for d, w in zip(der_ins, wanted)]
            if self.conserve_memory:
                for i in l.output_indexes:
                    if not self.vars[i].precious:
                        self.vars[i].value = None
                        self.vars[i].der = None
            fresh = bool(der_ins) and l.block.fresh_input_ders()
            for i, d in zip(l.input_indexes, der_ins):
                if d is None:
                    continue
                v = self.vars[i]
                if var_refs[i] == 0 or v.der is None:
                    v.der = d
                    if fresh:
                        self._owned_ders.add(i)
                    else:
                        self._owned_ders.discard(i)
                else:
                    v.der = v.der + d
                    self._owned_ders.add(i)
                var_refs[i] += 1
            for p, d in zip(l.param_indexes, der_params or []):
                if d is None:
                    continue
                prm = self.params[p]
                if param_refs[p] == 0 and not self.accumulate_param_ders or prm.der is None:
                    prm.der = d
                else:
                    prm.der = prm.der + d
                param_refs[p] += 1
                if param_refs[p] == prm.fanout and self.parameter_server is not None \
                        and not self.hold_on:
                    self.parameter_server.push(prm.name, prm.der)
                    prm.der = None
            l.backward_time = time.perf_counter() - start

    def _input_der_wanted(self, layer_index: int, k: int) -> bool:
        """Whether the backward pass uses the derivative of input ``k`` of layer
        ``layer_index`` (False only for a network input with ``input_derivatives`` off)."""
        if self.input_derivatives:
            return True
        return self.vars[self.layers[layer_index].input_indexes[k]].fanin > 0

    def _needed_backward(self, var_index: int) -> bool:
        """Whether a layer needs this variable's value to backpropagate."""
        return var_index in self._backward_reads

    def _reads_backward(self) -> set:
        """The variables whose values the backward pass reads: the inputs of layers whose
        backward needs them, and the outputs of those that use their outputs instead (a
        ReLU short circuit); and the network inputs, which keep their values."""
        reads = {i for i, v in enumerate(self.vars) if v.fanin == 0}
        for l in self.layers:
            if l.block.backward_needs_inputs():
                reads.update(l.input_indexes)
            if l.block.backward_needs_outputs():
                reads.update(l.output_indexes)
        return reads

    def _input_disposable(self, layer_index: int, k: int) -> bool:
        """Whether layer ``layer_index`` may overwrite its input ``k`` during the forward
        pass in progress: under ``conserve_memory`` the variable is dropped right after this
        layer (its last reader, not precious, not needed backward), is not a network input,
        and no other variable holds its memory: the layer that computed it returns new
        tensors and keeps none, and so do the layers that read it before
        (``Layer.fresh_outputs``: none of them passes it through or returns a view)."""
        if not self.conserve_memory or self._pending is None:
            return False
        l = self.layers[layer_index]
        i = l.input_indexes[k]
        v = self.vars[i]
        if v.precious or v.fanin != 1 or self._pending[i] != 1 or l.input_indexes.count(i) != 1:
            return False
        if self.computing_derivatives and i in self._backward_reads:
            return False
        producer = self._producer.get(i)
        if producer is None or not torch.is_tensor(v.value):
            return False
        return all(self.layers[j].block.fresh_outputs()
                   for j in [producer] + self._readers.get(i, []) if j != layer_index)

    def _output_der_disposable(self, layer_index: int, k: int) -> bool:
        """Whether layer ``layer_index`` may overwrite the derivative of its output ``k``
        during the backward pass in progress: under ``conserve_memory`` it is dropped after
        this layer (not precious), and it was computed afresh for this variable alone (not
        given in ``der_outputs``, nor passed through or shared by another layer)."""
        if not self.conserve_memory or self._pending is None:
            return False
        o = self.layers[layer_index].output_indexes[k]
        return not self.vars[o].precious and o in self._owned_ders

    # ------------------------------------------------------------------ sizes, fields
    def get_var_sizes(self, input_sizes: Mapping[str, Sequence[float]]) -> Dict[str, tuple]:
        """Sizes (N, C, H, W) of every variable, propagated from the given input sizes
        (NaN where unknown)."""
        nan = (math.nan,) * 4
        sizes = [nan] * len(self.vars)
        for name, size in dict(input_sizes).items():
            i = self.get_var_index(name)
            if i is None:
                raise ValueError(f"input_sizes: no variable called {name!r}")
            sizes[i] = tuple(size) if len(size) else (0, 0, 0, 0)
        for li in self.execution_order:
            l = self.layers[li]
            outs = l.block.get_output_sizes([sizes[i] for i in l.input_indexes])
            for i, s in zip(l.output_indexes, outs):
                sizes[i] = tuple(s)
        return {v.name: sizes[i] for i, v in enumerate(self.vars)}

    def get_var_receptive_fields(self, var: str) -> Dict[str, Optional[dict]]:
        """For every variable, its receptive field in ``var``: ``{'size', 'stride', 'offset'}``
        as (y, x) pairs (NaN where not expressible), or None when it does not depend on
        ``var`` (manual chapter 5; FEATURES.md D-L-10)."""
        v0 = self.get_var_index(var)
        if v0 is None:
            raise ValueError(f"var: no variable called {var!r}")
        NAN = "nan"
        rfs: List[Any] = [None] * len(self.vars)
        rfs[v0] = (G.IDENTITY, G.IDENTITY)
        for li in self.execution_order:
            l = self.layers[li]
            block_rfs = l.block.get_receptive_fields()
            for a, i in enumerate(l.input_indexes):
                if rfs[i] is None:
                    continue
                for b, o in enumerate(l.output_indexes):
                    brf = block_rfs[a][b] if block_rfs else None
                    if brf == ():       # layers.NO_DEPENDENCY: e.g. Crop's reference input
                        continue
                    new = NAN if rfs[i] is NAN or brf is None else G.compose(rfs[i], brf)
                    if rfs[o] is None:
                        rfs[o] = new
                    elif rfs[o] is NAN or new is NAN:
                        rfs[o] = NAN
                    else:
                        try:
                            rfs[o] = G.overlay(rfs[o], new)
                        except ValueError:
                            rfs[o] = NAN
        out: Dict[str, Optional[dict]] = {}
        for i, v in enumerate(self.vars):
            if rfs[i] is None:
                out[v.name] = None
            elif rfs[i] is NAN:
                out[v.name] = {k: (math.nan, math.nan) for k in ("size", "stride", "offset")}
            else:
                ry, rx = rfs[i]
                out[v.name] = {"size": (float(ry.size), float(rx.size)),
                               "stride": (float(ry.stride), float(rx.stride)),
                               "offset": (float(ry.offset), float(rx.offset))}
        return out

    # ------------------------------------------------------------------ parameters, device
    def init_params(self) -> None:
        for l in self.layers:
            values = l.block.init_params()
            for p, value in zip(l.param_indexes, values or []):
                self.params[p].value = value.to(self.device) if torch.is_tensor(value) else value

    def reset(self) -> None:
        for v in self.vars:
            v.value = v.der = None
        for p in self.params:
            p.der = None
        for l in self.layers:
            l.block.reset()

    def move(self, device) -> "DagNN":
        device = torch.device("cuda" if device == "gpu" else device)
        self.reset()
        for p in self.params:
            if torch.is_tensor(p.value):
                p.value = p.value.to(device)
        for l in self.layers:
            l.block.move(device)
        self.device = device
        return self

    # ------------------------------------------------------------------ text views
    def print(self, input_sizes: Optional[Mapping[str, Sequence[float]]] = None) -> str:
        """The original's tables (layers, parameters, variables, memory) as text; sizes
        (N, C, H, W) of the given inputs are propagated.  Returns the text."""
        from .text import dagnn_print
        return dagnn_print(self, input_sizes)

    def to_dot(self, input_sizes: Optional[Mapping[str, Sequence[float]]] = None) -> str:
        """Graphviz ``dot`` source of the graph (render it with ``dot -Tpdf``)."""
        from .text import dagnn_dot
        return dagnn_dot(self, input_sizes)

    # ------------------------------------------------------------------ structs and files
    def to_struct(self) -> dict:
        """MatConvNet's ``saveobj`` structure (``vars``, ``params``, ``layers``, ``meta``);
        parameter values are the Python tensors (``io.save`` transposes them).  As in the
        original, the network is reset first."""
        self.reset()
        return {
            "vars": [{"name": v.name, "precious": v.precious} for v in self.vars],
            "params": [{"name": p.name, "value": p.value, "learningRate": p.learning_rate,
                        "weightDecay": p.weight_decay} for p in self.params],
            "layers": [{"name": l.name, "type": l.block.type_name, "inputs": list(l.inputs),
                        "outputs": list(l.outputs), "params": list(l.params),
                        "block": l.block.save()} for l in self.layers],
            "meta": copy.copy(self.meta),
        }

    @classmethod
    def from_struct(cls, s: Mapping[str, Any]) -> "DagNN":
        """``DagNN.loadobj``: build a network from a saved structure (as ``io.load`` returns
        it).  A SimpleNN structure (``layers`` of dicts with a ``type`` but no ``block``) is
        converted with :meth:`from_simplenn`."""
        layers = s.get("layers") or []
        if "vars" not in s and layers and all(isinstance(l, Mapping) and "block" not in l
                                             for l in layers):
            return cls.from_simplenn(s)
        for key in ("vars", "params", "layers"):
            if key not in s:
                raise ValueError(f"struct: not a DagNN structure (no {key!r} field)")
        declared = {v.get("name") for v in s["vars"]}
        for ls in s["layers"]:
            for v in _names(ls.get("inputs")) + _names(ls.get("outputs")):
                if v not in declared:
                    raise ValueError(f"struct: layer {ls.get('name')!r} refers to variable "
                                     f"{v!r}, which is not in vars (a dangling connection)")
        net = cls()
        for i, ls in enumerate(s["layers"]):
            t = ls.get("type")
            klass = LAYER_CLASSES.get(t)
            if klass is None:
                raise ValueError(
                    f"struct: layer {ls.get('name', i)!r} has type {t!r}, which is not a "
                    f"registered layer class; define a subclass of matconvnet.dagnn.Layer "
                    f"with type_name = {t!r} and decorate it with @register_layer")
            block = klass.load(ls.get("block") or {})
            net.add_layer(ls["name"], block, ls.get("inputs"), ls.get("outputs"),
                          ls.get("params"), skip_rebuild=True)
        net.rebuild()
        for ps in s["params"]:
            i = net.get_param_index(ps["name"])
            if i is None:
                continue
            p = net.params[i]
            p.value = ps.get("value")
            p.learning_rate = float(ps.get("learningRate", p.learning_rate))
            p.weight_decay = float(ps.get("weightDecay", p.weight_decay))
            if "trainMethod" in ps:
                p.train_method = ps["trainMethod"]
        for vs in s["vars"]:
            i = net.get_var_index(vs["name"])
            if i is not None:
                net.vars[i].precious = bool(vs.get("precious", False))
        net.meta = dict(s.get("meta") or {})
        return net

    @classmethod
    def from_simplenn(cls, net: Mapping[str, Any], *, canonical_names: bool = False) -> "DagNN":
        from .convert import from_simplenn
        return from_simplenn(cls, net, canonical_names=canonical_names)


def _pairs(x, name) -> List[tuple]:
    if x is None:
        return []
    if isinstance(x, Mapping):
        return list(x.items())
    x = list(x)
    if len(x) % 2:
        raise ValueError(f"{name}: expected a dict or name/value pairs, got {len(x)} items")
    return list(zip(x[::2], x[1::2]))
