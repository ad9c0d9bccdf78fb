"""Text views of a DagNN: the ``print`` tables and Graphviz ``dot`` source (FEATURES.md
D-M-19).  Both return strings; nothing is printed here.

Tables: layers (name, type, inputs, outputs, params, pad, stride), parameters (name, dims,
memory, fan-out), variables (name, dims, memory, fan-in, fan-out) and a memory summary.
Sizes are N x C x H x W; memory assumes 4 bytes per element, as the original.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import torch

__all__ = ["dagnn_print", "dagnn_dot"]


def _mem(nbytes: float) -> str:
    if math.isnan(nbytes):
        return "NaN"
    for unit, scale in (("B", 1), ("KB", 1024), ("MB", 1024 ** 2)):
        if nbytes < scale * 1024:
            return f"{nbytes / scale:.0f}{unit}"
    return f"{nbytes / 1024 ** 3:.0f}GB"


def _dims(size) -> str:
    if size is None:
        return "n/a"
    return "x".join("NaN" if isinstance(s, float) and math.isnan(s) else str(int(s)) for s in size)


def _numel(size) -> float:
    p = 1.0
    for s in size:
        p *= float(s)
    return p


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cols = [header] + [list(r) for r in rows]
    widths = [max(len(str(r[c])) for r in cols) for c in range(len(header))]
    line = "|".join("-" * w for w in widths) + "|"
    out = ["|".join(str(h).rjust(w) for h, w in zip(header, widths)) + "|", line]
    out += ["|".join(str(v).rjust(w) for v, w in zip(r, widths)) + "|" for r in rows]
    return "\n".join(out)


def _field(block, name):
    v = getattr(block, name, None)
    if v is None:
        return "n/a"
    v = v if isinstance(v, (list, tuple)) else [v]
    return "x".join(f"{float(a):g}" for a in v) if len(set(v)) > 1 else f"{float(v[0]):g}"


def dagnn_print(net, input_sizes: Optional[Mapping[str, Sequence[float]]] = None) -> str:
    sizes = net.get_var_sizes(input_sizes) if input_sizes else {}
    layers = [[l.name, l.block.type_name.replace("dagnn.", ""), ",".join(l.inputs),
               ",".join(l.outputs), ",".join(l.params) or "-", _field(l.block, "pad"),
               _field(l.block, "stride")] for l in net.layers]
    params, ptotal = [], 0.0
    for p in net.params:
        n = float(p.value.numel()) if torch.is_tensor(p.value) else math.nan
        ptotal += 0 if math.isnan(n) else n
        params.append([p.name, _dims(tuple(p.value.shape)) if torch.is_tensor(p.value) else "n/a",
                       _mem(4 * n), str(p.fanout)])
    variables, vtotal = [], 0.0
    for v in net.vars:
        size = sizes.get(v.name)
        n = _numel(size) if size is not None else math.nan
        vtotal += 0 if math.isnan(n) else n
        variables.append([v.name, _dims(size), _mem(4 * n), str(v.fanin), str(v.fanout)])
    memory = [[_mem(4 * ptotal), _mem(4 * vtotal), _mem(4 * (ptotal + vtotal))]]
    return "\n\n".join([
        _table(["layer", "type", "inputs", "outputs", "params", "pad", "stride"], layers),
        _table(["param", "dims", "mem", "fanout"], params),
        _table(["var", "dims", "mem", "fanin", "fanout"], variables),
        _table(["params", "vars", "total"], memory)]) + "\n"


def dagnn_dot(net, input_sizes: Optional[Mapping[str, Sequence[float]]] = None) -> str:
    """Graphviz source: variables as ellipses (with sizes when known), layers as boxes."""
    sizes = net.get_var_sizes(input_sizes) if input_sizes else {}

    def q(s):
        return '"' + str(s).replace('"', r"\"") + '"'
    lines = ["digraph DagNN {", "  rankdir=TB;", "  node [fontsize=10];"]
    for v in net.vars:
        label = v.name if v.name not in sizes else f"{v.name}\\n{_dims(sizes[v.name])}"
        lines.append(f"  {q('var:' + v.name)} [label={q(label)}, shape=ellipse];")
    for l in net.layers:
        label = f"{l.name}\\n{l.block.type_name.replace('dagnn.', '')}"
        lines.append(f"  {q('layer:' + l.name)} [label={q(label)}, shape=box, style=filled, "
                     f"fillcolor=lightgrey];")
        for v in l.inputs:
            lines.append(f"  {q('var:' + v)} -> {q('layer:' + l.name)};")
        for v in l.outputs:
            lines.append(f"  {q('layer:' + l.name)} -> {q('var:' + v)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
