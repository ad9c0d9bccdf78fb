"""SimpleNN utilities: tidy (defaults and format upgrades), move, deploy.

``vl_simplenn_tidy(net)`` returns a copy of ``net`` with exactly ``layers`` and ``meta``,
every layer's defaults filled in where the field is absent (FEATURES.md 2.3-2.4), legacy
``filters``/``biases`` fields turned into ``weights``, legacy top-level ``classes`` and
``normalization`` moved into ``meta``, and batch-norm moments added when missing.  Custom
layers are copied as they are.  Unlike the original (whose duplicate ``case 'pool'`` skips
it), a pool layer's ``method`` defaults to ``'max'``, which is vl_nnpool's own default.

``vl_simplenn_move(net, device)`` moves every weight (and momentum) tensor to a device.

``vl_simplenn_deploy(net)`` prepares a trained network for inference: batch normalisation
folded into the preceding convolution, dropout removed, ``softmaxloss`` replaced by
``softmax`` and other loss layers removed.
"""
from __future__ import annotations

import copy
from typing import Union

import torch

__all__ = ["vl_simplenn_tidy", "vl_simplenn_move", "vl_simplenn_deploy"]

_DEFAULTS = {
    "conv": {"pad": 0, "stride": 1, "dilate": 1, "opts": []},
    "convt": {"crop": 0, "upsample": 1, "numGroups": 1, "opts": []},
    "pool": {"method": "max", "pad": 0, "stride": 1, "opts": []},
    "normalize": {"param": [5, 1, 0.0001 / 5, 0.75]},
    "lrn": {"param": [5, 1, 0.0001 / 5, 0.75]},
    "bnorm": {"epsilon": 1e-5},
    "relu": {"leak": 0},
    "dropout": {"rate": 0.5},
    "pdist": {"p": 2, "noRoot": False, "aggregate": False, "epsilon": 1e-3,
              "instanceWeights": []},
}


def vl_simplenn_tidy(net: dict) -> dict:
    if not isinstance(net, dict) or "layers" not in net:
        raise TypeError("net: expected a SimpleNN dict with a 'layers' list")
    meta = copy.copy(net.get("meta") or {})
    for legacy in ("classes", "normalization"):
        if legacy in net and legacy not in meta:
            meta[legacy] = net[legacy]
    norm = meta.get("normalization")
    if isinstance(norm, dict) and "border" in norm and "imageSize" in norm \
            and "cropSize" not in norm:
        size = [float(s) for s in list(norm["imageSize"])[:2]]
        border = [float(b) for b in _as_list(norm["border"])]
        border = border * 2 if len(border) == 1 else border
        norm = dict(norm, cropSize=[s / (s + b) for s, b in zip(size, border)])
        meta["normalization"] = norm
    layers = [_tidy_layer(l, i) for i, l in enumerate(net["layers"])]
    return {"layers": layers, "meta": meta}


def _tidy_layer(layer: dict, index: int) -> dict:
    if not isinstance(layer, dict) or "type" not in layer:
        raise ValueError(f"net: layer {index + 1} is not a dict with a 'type' field")
    l = dict(layer)
    if l["type"] == "custom":
        return l
    if "filters" in l or "biases" in l:
        l["weights"] = [l.pop("filters", None), l.pop("biases", None)]
    l.setdefault("name", f"layer{index + 1}")
    l.setdefault("precious", False)
    l.setdefault("weights", [])
    for key, value in _DEFAULTS.get(l["type"], {}).items():
        l.setdefault(key, copy.copy(value))
    if l["type"] == "bnorm" and len(l["weights"]) < 3:
        g = l["weights"][0]
        l["weights"] = list(l["weights"]) + [torch.zeros(g.numel(), 2, dtype=g.dtype,
                                                         device=g.device)]
    return l


def _as_list(v):
    if torch.is_tensor(v):
        return v.reshape(-1).tolist()
    return list(v) if isinstance(v, (list, tuple)) else [v]


def vl_simplenn_move(net: dict, device: Union[str, torch.device]) -> dict:
    """A copy of ``net`` whose weights (and ``momentum``, legacy ``filters``/``biases``) live
    on ``device`` ('cpu', 'cuda', 'cuda:1', or MatConvNet's 'gpu')."""
    device = torch.device("cuda" if device == "gpu" else device)
    out = dict(net)
    out["layers"] = []
    for l in net["layers"]:
        l = dict(l)
        for key in ("weights", "momentum"):
            if key in l and l[key] is not None:
                l[key] = [w.to(device) if torch.is_tensor(w) else w for w in l[key]]
        for key in ("filters", "biases", "filtersMomentum", "biasesMomentum"):
            if torch.is_tensor(l.get(key)):
                l[key] = l[key].to(device)
        out["layers"].append(l)
    return out


def vl_simplenn_deploy(net: dict) -> dict:
    """Fold each bnorm into the convolution before it (``f' = f g / sigma``,
    ``b' = (b - mu) g / sigma + beta``), drop dropout and loss layers, and turn
    ``softmaxloss`` into ``softmax``.  A bnorm not preceded by a conv is kept."""
    net = vl_simplenn_tidy(net)
    out = []
    for l in net["layers"]:
        t = l["type"]
        if t == "dropout" or t == "loss":
            continue
        if t == "softmaxloss":
            out.append({"type": "softmax", "name": l.get("name", "softmax"), "precious": False,
                        "weights": []})
            continue
        if t == "bnorm" and out and out[-1]["type"] == "conv" and out[-1]["weights"]:
            out[-1] = _fold_bnorm(out[-1], l)
            continue
        out.append(l)
    return {"layers": out, "meta": net["meta"]}


def _fold_bnorm(conv: dict, bn: dict) -> dict:
    f = conv["weights"][0]
    b = conv["weights"][1] if len(conv["weights"]) > 1 and conv["weights"][1] is not None \
        and conv["weights"][1].numel() else torch.zeros(f.shape[0], dtype=f.dtype, device=f.device)
    g, beta, moments = (w.reshape(-1) if i < 2 else w for i, w in enumerate(bn["weights"][:3]))
    mu, sigma = moments[:, 0].to(f.dtype), moments[:, 1].to(f.dtype)
    if bool((sigma <= 0).any()):
        raise ValueError(f"net: bnorm layer {bn.get('name')!r} has moments with sigma <= 0 "
                         f"(untrained?); cannot fold it into the convolution")
    scale = g.to(f.dtype) / sigma
    folded = dict(conv)
    folded["weights"] = [f * scale.view(-1, 1, 1, 1),
                         (b.reshape(-1) - mu) * scale + beta.to(f.dtype)]
    return folded
