"""vl_simplenn_diagnose: statistics of a network's parameters and of a res list.

For every conv/convt/bnorm layer: the minimum, mean and maximum of its filters and biases
and, when ``res`` is given, of each layer's ``x`` and ``dzdx`` and of the filter and bias
derivatives -- the six panels the original plots as error bars.  Returns the numbers;
``plot=True`` also draws them with matplotlib (if installed) and returns the figure.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

__all__ = ["vl_simplenn_diagnose"]

_PARAMETRIC = ("conv", "convt", "bnorm")


def _stats(t) -> Optional[tuple]:
    if not torch.is_tensor(t) or t.numel() == 0:
        return None
    t = t.detach().float()
    return float(t.min()), float(t.mean()), float(t.max())


def vl_simplenn_diagnose(net: dict, res: Optional[list] = None, *, plot: bool = False):
    layers = net["layers"]
    panels: Dict[str, List[Optional[tuple]]] = {"filters": [], "biases": []}
    for l in layers:
        w = l.get("weights") or [] if l["type"] in _PARAMETRIC else []
        panels["filters"].append(_stats(w[0]) if len(w) > 0 else None)
        panels["biases"].append(_stats(w[1]) if len(w) > 1 else None)
    if res is not None:
        panels["x"] = [_stats(r.get("x")) for r in res]
        panels["dzdx"] = [_stats(r.get("dzdx")) for r in res]
        panels["dfilters"] = [_stats((r.get("dzdw") or [None])[0]) for r in res[:len(layers)]]
        panels["dbiases"] = [_stats((r.get("dzdw") or [None, None])[1])
                             if len(r.get("dzdw") or []) > 1 else None for r in res[:len(layers)]]
    if not plot:
        return panels
    import matplotlib.pyplot as plt  # optional dependency, only for plotting
    fig, axes = plt.subplots(len(panels) // 2, 2, squeeze=False, figsize=(10, 3 * len(panels) // 2))
    for ax, (name, values) in zip(axes.ravel(), panels.items()):
        idx = [i for i, v in enumerate(values) if v is not None]
        lo, mid, hi = zip(*(values[i] for i in idx)) if idx else ((), (), ())
        ax.errorbar(idx, mid, yerr=[[m - a for a, m in zip(lo, mid)], [b - m for b, m in zip(hi, mid)]],
                    fmt="o")
        ax.set_title(name)
    return panels, fig
