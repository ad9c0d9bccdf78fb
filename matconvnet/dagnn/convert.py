"""DagNN.from_simplenn: a SimpleNN chain as a DagNN (FEATURES.md 3.6).

Variables are ``x0`` (the input), ``x1``, ... (``x<l>`` is layer l's output); a layer keeps
its SimpleNN name (``layer<l>`` by default); conv/convt parameters are ``<name>f`` and
``<name>b`` (no bias parameter when the bias is empty), batch norm's ``<name>m``, ``<name>b``,
``<name>x`` (moments, weight decay 0).  ``softmaxloss`` becomes a ``Loss`` layer reading a
second input ``label``.  SimpleNN's ``loss``, ``spnorm``, ``pdist``, ``noffset`` and
``custom`` layers have no DagNN counterpart in the original and raise an error.

``canonical_names=True`` renames the first input ``input``, a SoftMax's input ``prediction``
and output ``prob``, and a Loss's input ``prediction`` and output ``objective``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..simplenn import vl_simplenn_move, vl_simplenn_tidy
from . import layers as L

__all__ = ["from_simplenn"]


def _matlab_size(f: torch.Tensor):
    k, c, fh, fw = f.shape
    return [int(fh), int(fw), int(c), int(k)]


def _has(w) -> bool:
    return torch.is_tensor(w) and w.numel() > 0


def from_simplenn(cls, simple: Mapping[str, Any], *, canonical_names: bool = False):
    simple = vl_simplenn_tidy(vl_simplenn_move(dict(simple), "cpu"))
    net = cls()
    net.meta = dict(simple.get("meta") or {})
    label_count = 0
    for l, layer in enumerate(simple["layers"], start=1):
        t = layer["type"]
        name = layer.get("name") or f"layer{l}"
        inputs, outputs = [f"x{l - 1}"], [f"x{l}"]
        params, values = [], []
        weights = list(layer.get("weights") or [])
        if t in ("conv", "convt"):
            f, b = weights[0], weights[1] if len(weights) > 1 else None
            common = dict(size=_matlab_size(f), hasBias=_has(b), opts=layer.get("opts") or [])
            if t == "conv":
                block = L.Conv(pad=layer.get("pad", 0), stride=layer.get("stride", 1),
                               dilate=layer.get("dilate", 1), **common)
            else:
                block = L.ConvTranspose(upsample=layer.get("upsample", 1),
                                        crop=layer.get("crop", 0),
                                        numGroups=layer.get("numGroups", 1), **common)
            params, values = ([name + "f", name + "b"], [f, b]) if _has(b) else ([name + "f"], [f])
        elif t == "pool":
            block = L.Pooling(method=layer.get("method", "max"), poolSize=layer["pool"],
                              pad=layer.get("pad", 0), stride=layer.get("stride", 1),
                              opts=layer.get("opts") or [])
        elif t in ("normalize", "lrn"):
            block = L.LRN(param=layer["param"])
        elif t == "dropout":
            block = L.DropOut(rate=layer.get("rate", 0.5))
        elif t == "relu":
            block = L.ReLU(leak=layer.get("leak", 0))
        elif t == "sigmoid":
            block = L.Sigmoid()
        elif t == "softmax":
            block = L.SoftMax()
        elif t == "softmaxloss":
            block = L.Loss(loss="softmaxlog")
            inputs.append("label" if label_count == 0 else f"label{label_count}")
            label_count += 1
        elif t == "bnorm":
            block = L.BatchNorm(epsilon=layer.get("epsilon", 1e-5))
            params, values = [name + "m", name + "b", name + "x"], weights[:3]
        else:
            raise ValueError(f"net: layer {l} ({name!r}) has type {t!r}, which DagNN cannot "
                             f"represent (the original's fromSimpleNN supports conv, convt, "
                             f"pool, normalize/lrn, dropout, relu, sigmoid, softmax, "
                             f"softmaxloss and bnorm)")
        net.add_layer(name, block, inputs, outputs, params, skip_rebuild=True)
        net.rebuild()
        lr = list(layer.get("learningRate") or [])
        wd = list(layer.get("weightDecay") or [])
        for j, (pname, value) in enumerate(zip(params, values)):
            p = net.params[net.get_param_index(pname)]
            p.value = value
            if j < len(lr):
                p.learning_rate = float(lr[j])
            if j < len(wd):
                p.weight_decay = float(wd[j])
            if t == "bnorm" and j == 2:
                p.weight_decay = 0.0
    if canonical_names:
        _canonical(net)
    return net


def _canonical(net) -> None:
    inputs = net.get_inputs()
    if inputs and inputs[0] != "input":
        net.rename_var(inputs[0], "input")
        norm = net.meta.get("inputs")
        if isinstance(norm, list) and norm and isinstance(norm[0], dict):
            norm[0]["name"] = "input"
    n_prob = 0
    for l in list(net.layers):
        if isinstance(l.block, L.SoftMax):
            net.rename_var(l.outputs[0], "prob" if n_prob == 0 else f"prob{n_prob}")
            net.rename_var(l.inputs[0], "prediction" if n_prob == 0 else f"prediction{n_prob}")
            n_prob += 1
    n_obj = 0
    for l in list(net.layers):
        if isinstance(l.block, L.Loss) and type(l.block) is L.Loss:
            net.rename_var(l.outputs[0], "objective" if n_obj == 0 else f"objective{n_obj}")
            if not l.inputs[0].startswith("prob"):
                net.rename_var(l.inputs[0], "prediction")
            n_obj += 1
