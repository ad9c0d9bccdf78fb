"""vl_simplenn_display: the table of a SimpleNN network's layers and geometry.

``d = vl_simplenn_display(net, input_size=[H, W, C, N])`` returns a :class:`Display` whose
``text`` is the original's table (one column per layer: type, name, support, filter
dimension, dilation, number of filters, stride, pad, receptive field size/offset/stride, data
size/depth/number, data and parameter memory, then the totals) and whose ``info`` is the
original's ``info`` struct (support, stride, pad, receptiveFieldSize, receptiveFieldOffset,
receptiveFieldStride, dataSize: lists of rows, MatConvNet's orders).  ``print(d)`` shows
the table; nothing is printed here.

Options: ``input_size`` (MatConvNet's [H, W, C, N]; default ``meta.inputSize``, else
``meta.normalization.imageSize``, else unknown), ``batch_size`` (overrides N),
``max_num_columns`` (18: wider tables are split), ``format`` ('ascii', 'latex' or 'csv').
Memory assumes 4 bytes per element, as the original.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..geometry import simplenn_geometry

__all__ = ["vl_simplenn_display", "Display"]

_ABBREVIATIONS = {"normalize": "norm", "softmax": "softmx", "softmaxloss": "softmxl"}


@dataclass
class Display:
    info: Dict[str, List[list]]
    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def vl_simplenn_display(net: dict, *, input_size: Optional[Sequence[float]] = None,
                        batch_size: Optional[int] = None, max_num_columns: int = 18,
                        format: str = "ascii") -> Display:
    if format not in ("ascii", "latex", "csv"):
        raise ValueError(f"format: expected 'ascii', 'latex' or 'csv', got {format!r}")
    layers = list(net["layers"])
    size = _input_size(net, input_size)
    if batch_size is not None:
        size = size[:3] + [batch_size]
    geom = simplenn_geometry(layers, size)
    info = geom.info()

    cols = [["input", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a",
             _dims(geom.data_size[0][:2]), _num(geom.data_size[0][2]),
             _num(geom.data_size[0][3]), _mem(_prod(geom.data_size[0]) * 4), "n/a"]]
    param_total = 0
    for i, l in enumerate(layers):
        t = l["type"]
        kind = ("apool" if str(l.get("method", "max")).lower() == "avg" else "mpool") \
            if t == "pool" else _ABBREVIATIONS.get(t, t)
        params = sum(int(w.numel()) for w in (l.get("weights") or []) if torch.is_tensor(w))
        param_total += params
        conv = t == "conv" and l.get("weights") and torch.is_tensor(l["weights"][0]) \
            and l["weights"][0].numel() > 0
        f = l["weights"][0] if conv else None
        ds = geom.data_size[i + 1]
        cols.append([
            kind, str(l.get("name", f"layer{i + 1}")),
            _dims(geom.support[i]),
            _num(f.shape[1]) if conv else "n/a",
            _dims(_pair(l.get("dilate", 1))) if conv else "n/a",
            _num(f.shape[0]) if conv else "n/a",
            _dims(geom.stride[i]), _dims(geom.pad[i]),
            _dims(geom.receptive_field_size[i]), _dims(geom.receptive_field_offset[i]),
            _dims(geom.receptive_field_stride[i]),
            _dims(ds[:2]), _num(ds[2]), _num(ds[3]), _mem(_prod(ds) * 4), _mem(params * 4)])
    labels = ["type", "name", "-", "support", "filt dim", "filt dilat", "num filts", "stride",
              "pad", "-", "rf size", "rf offset", "rf stride", "-", "data size", "data depth",
              "data num", "-", "data mem", "param mem"]
    # the column cells in label order, with separators where the labels say '-'
    table = []
    for j, col in enumerate(cols):
        cells, k = [str(j)], 0
        for label in labels:
            if label == "-":
                cells.append("-")
            else:
                cells.append(col[k])
                k += 1
        table.append(cells)
    head = ["layer"] + labels
    data_total = sum(_prod(ds) * 4 for ds in geom.data_size)
    summary = [["parameter memory", f"{_mem(param_total * 4)} ({param_total:.2g} parameters)"],
               ["data memory", f"{_mem(data_total)} (for batch size {_num(geom.data_size[0][3])})"]]
    text = _render(head, table, summary, max_num_columns, format)
    return Display(info=info, text=text)


def _input_size(net, input_size) -> list:
    meta = net.get("meta") or {}
    if input_size is None:
        input_size = meta.get("inputSize")
    if input_size is None and isinstance(meta.get("normalization"), dict):
        input_size = meta["normalization"].get("imageSize")
    size = [float("nan")] * 3 + [1]
    if input_size is not None:
        # a scalar (as some published models store it) sets the height only, as in MATLAB
        vals = np.asarray(input_size.tolist() if torch.is_tensor(input_size)
                          else input_size, dtype=float).reshape(-1).tolist()
        size[:len(vals)] = vals
    return size


def _pair(v):
    v = v.reshape(-1).tolist() if torch.is_tensor(v) else v
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * 2 if len(v) == 1 else v


def _fmt(x) -> str:
    """MATLAB's %.4g."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    s = f"{x:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{exp[0]}{int(exp[1:]):02d}"
    return s


def _num(x) -> str:
    return _fmt(x)


def _dims(values) -> str:
    values = list(values)
    if all(_fmt(v) == _fmt(values[0]) for v in values):
        return _fmt(values[0])
    return "x".join(_fmt(v) for v in values)


def _prod(values) -> float:
    p = 1.0
    for v in values:
        p *= float(v)
    return p


def _mem(x) -> str:
    x = float(x)
    if math.isnan(x):
        return "NaN"
    for unit, scale in (("B", 1), ("KB", 1024), ("MB", 1024 ** 2)):
        if x < scale * 1024:
            return f"{_round(x / scale)}{unit}"
    return f"{_round(x / 1024 ** 3)}GB"


def _round(x: float) -> str:
    return f"{x:.0f}"


def _render(head, table, summary, max_cols, format) -> str:
    chunks = [table[i:i + max_cols] for i in range(0, len(table), max_cols)]
    out = []
    for chunk in chunks:
        rows = [[h] + [col[r] for col in chunk] for r, h in enumerate(head)]
        out.append(_grid(rows, format))
    out.append(_grid(summary, format))
    return "\n\n".join(out) + "\n\n"


def _grid(rows, format) -> str:
    widths = [max(len(r[c]) for r in rows if r[c] != "-") for c in range(len(rows[0]))]
    lines = []
    for r in rows:
        if format == "csv":
            if r[1] != "-":
                lines.append(",".join(r))
            continue
        if format == "latex":
            lines.append("\\hline" if r[1] == "-" else " & ".join(r) + " \\\\")
            continue
        cells = [("-" * w) if cell == "-" else cell.rjust(w) for cell, w in zip(r, widths)]
        if r[1] == "-":
            cells[0] = "-" * widths[0]
        lines.append("|".join(cells) + "|")
    return "\n".join(lines)
