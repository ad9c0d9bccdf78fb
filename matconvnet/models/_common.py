"""Helpers shared by the model builders: random numbers, vl_simplenn_tidy's defaults and
vl_simplenn_display's data-size rule.

Private to :mod:`matconvnet.models`.
"""
from __future__ import annotations

import copy
import numbers
from typing import List, Optional, Sequence, Tuple, Union

import torch

Seed = Union[None, int, torch.Generator]

FLOAT = torch.float32  # MATLAB 'single', the class of every weight the example inits create


def generator(seed: Seed) -> Optional[torch.Generator]:
    """``None`` -> torch's global CPU generator; an int -> a fresh seeded CPU generator;
    a ``torch.Generator`` is used (and advanced) as given."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        g = torch.Generator()
        g.manual_seed(int(seed))
        return g
    raise TypeError(f"seed: expected None, an integer or a torch.Generator, got {seed!r}")


def device_of(device) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


class Random:
    """MATLAB's ``randn(..., 'single')`` / ``rand(..., 'single')`` drawn from one generator.

    Numbers are drawn on the CPU (so a seed gives the same weights on every device) and
    moved to ``device``; on the ``meta`` device nothing is drawn (shapes only).
    """

    def __init__(self, seed: Seed, device=None):
        self.gen = generator(seed)
        self.device = device_of(device)

    @property
    def meta(self) -> bool:
        return self.device.type == "meta"

    def randn(self, *shape: int, scale: float = 1.0) -> torch.Tensor:
        """``randn(shape, 'single') * scale``."""
        if self.meta:
            return torch.empty(shape, dtype=FLOAT, device=self.device)
        t = torch.randn(shape, generator=self.gen, dtype=FLOAT)
        return t.mul_(scale).to(self.device)

    def uniform(self, *shape: int, bound: float) -> torch.Tensor:
        """``(rand(shape, 'single') * 2 - 1) * bound``."""
        if self.meta:
            return torch.empty(shape, dtype=FLOAT, device=self.device)
        t = torch.rand(shape, generator=self.gen, dtype=FLOAT)
        return t.mul_(2).sub_(1).mul_(bound).to(self.device)

    def scaled(self, t: torch.Tensor, factor: float = 1.0, divisor: float = 1.0) -> torch.Tensor:
        """``factor * t / divisor`` (a no-op on the meta device, where there are no values)."""
        if self.meta:
            return t
        if factor != 1.0:
            t = factor * t
        return t / divisor if divisor != 1.0 else t

    def zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape, dtype=FLOAT, device=self.device)

    def ones(self, *shape: int) -> torch.Tensor:
        return torch.ones(shape, dtype=FLOAT, device=self.device)

    def empty(self) -> torch.Tensor:
        """MATLAB's ``[]`` in a weight slot (e.g. a removed conv bias): a 0-element tensor."""
        return torch.zeros(0, dtype=FLOAT, device=self.device)


# ------------------------------------------------------------------------ vl_simplenn_tidy

_TYPE_DEFAULTS = {
    "conv": (("pad", 0), ("stride", 1), ("dilate", 1), ("opts", [])),
    "pool": (("pad", 0), ("stride", 1), ("opts", [])),
    "convt": (("crop", 0), ("upsample", 1), ("numGroups", 1), ("opts", [])),
    "relu": (("leak", 0.0),),
    "dropout": (("rate", 0.5),),
    "normalize": (("param", [5, 1, 0.0001 / 5, 0.75]),),
    "lrn": (("param", [5, 1, 0.0001 / 5, 0.75]),),
    "pdist": (("noRoot", False), ("aggregate", False), ("p", 2), ("epsilon", 1e-3),
              ("instanceWeights", [])),
    "bnorm": (("epsilon", 1e-5),),
}


def tidy(net: dict) -> dict:
    """``vl_simplenn_tidy`` (beta25) as the example inits call it: fill in missing fields.

    Every layer gets ``weights`` (``[]`` if absent), ``name`` (``'layer<l>'``, 1-based) and
    ``precious`` (False); bnorm layers get zero moments ``(C, 2)`` as third weight; per type:
    conv ``pad 0, stride 1, dilate 1, opts []``; pool ``pad 0, stride 1, opts []``; relu
    ``leak 0``; dropout ``rate 0.5``; normalize ``param [5 1 1e-4/5 0.75]``; bnorm
    ``epsilon 1e-5``.  Fields are appended in the original's order; existing ones are kept.
    """
    layers: List[dict] = []
    for l, layer in enumerate(net["layers"], 1):
        layer = dict(layer)
        if layer["type"] == "custom":
            layers.append(layer)
            continue
        layer.setdefault("weights", [])
        if layer["type"] == "bnorm" and len(layer["weights"]) < 3:
            w0 = layer["weights"][0]
            layer["weights"] = list(layer["weights"]) + [
                torch.zeros(w0.numel(), 2, dtype=FLOAT, device=w0.device)]
        defaults = (("name", f"layer{l}"), ("precious", False)) + _TYPE_DEFAULTS.get(layer["type"], ())
        for key, value in defaults:
            if key not in layer:
                layer[key] = copy.deepcopy(value)
        layers.append(layer)
    return {"layers": layers, "meta": net.get("meta", {})}


# --------------------------------------------------------------------- vl_simplenn_display

def _pair(v) -> Tuple[int, int]:
    v = [v] if isinstance(v, numbers.Number) else list(v)
    return (int(v[0]), int(v[-1])) if len(v) <= 2 else (int(v[0]), int(v[1]))


def _quad(v) -> Tuple[int, int, int, int]:
    v = [v] if isinstance(v, numbers.Number) else list(v)
    return tuple(int(p) for p in v) if len(v) == 4 else (int(v[0]),) * 4


def data_size(layers: Sequence[dict], input_size: Sequence[int]) -> Tuple[int, int]:
    """Spatial size ``(H, W)`` after ``layers`` for an ``H x W`` input, by
    ``vl_simplenn_display``'s rule ``floor((H + P_t + P_b - support) / stride) + 1``, the
    support being a conv's filter size, a pool's window and 1 otherwise."""
    h, w = int(input_size[0]), int(input_size[1])
    for ly in layers:
        if ly["type"] == "conv":
            f = ly["weights"][0]
            support = (max(int(f.shape[2]), 1), max(int(f.shape[3]), 1))
        elif ly["type"] == "pool":
            support = _pair(ly["pool"])
        else:
            support = (1, 1)
        stride = _pair(ly.get("stride", 1))
        pad = _quad(ly.get("pad", 0))
        h = (h + pad[0] + pad[1] - support[0]) // stride[0] + 1
        w = (w + pad[2] + pad[3] - support[1]) // stride[1] + 1
    return h, w
