"""MatConvNet's per-layer ``opts`` cells as keyword options of the blocks.

SimpleNN layers and DagNN layers both carry MatConvNet's ``opts`` (``{'CudnnWorkspaceLimit',
n}``, ``{'topK', 5}``, flags such as ``'NoCuDNN'``); :func:`block_options` is the one place
that maps them to a block's Python keywords.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import numpy as np
import torch

__all__ = ["block_options"]


def _is_empty(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (list, tuple, str)):
        return len(v) == 0
    if isinstance(v, torch.Tensor):
        return v.numel() == 0
    if isinstance(v, np.ndarray):
        return v.size == 0
    return False


# Flags (options without a value) of MatConvNet's blocks -> (our keyword, value).
_FLAGS = {
    "cudnn": ("cudnn", True), "nocudnn": ("cudnn", False), "verbose": None,
    "noderdata": ("no_der_data", True), "noderfilters": ("no_der_filters", True),
    "noderbiases": ("no_der_biases", True),
}

# Keywords each block accepts through a layer's ``opts``, and whether unknown options are
# an error (MATLAB blocks, vl_argparse) or silently ignored (MEX blocks, FEATURES.md G-06).
_BLOCK_KEYWORDS: Dict[str, Tuple[frozenset, bool]] = {
    "conv": (frozenset({"pad", "stride", "dilate", "cudnn", "no_der_data", "no_der_filters",
                        "no_der_biases"}), False),
    "convt": (frozenset({"upsample", "crop", "num_groups", "cudnn", "no_der_data",
                         "no_der_filters", "no_der_biases"}), False),
    "pool": (frozenset({"pad", "stride", "method", "cudnn"}), False),
    "bnorm": (frozenset({"epsilon", "moments", "cudnn"}), False),
    "loss": (frozenset({"loss", "instance_weights", "class_weights", "top_k", "threshold",
                        "normalise"}), True),
    "pdist": (frozenset({"no_root", "epsilon", "aggregate", "instance_weights"}), True),
    "relu": (frozenset({"leak"}), True),
}


def _key(name: str) -> str:
    return name.replace("_", "").lower()


_LOOKUP = {block: {_key(k): k for k in allowed} for block, (allowed, _) in _BLOCK_KEYWORDS.items()}


def block_options(opts: Any, block: str) -> Dict[str, Any]:
    """A layer's ``opts`` as keyword arguments of ``block`` ('conv', 'convt', 'pool',
    'bnorm', 'loss', 'pdist', 'relu').

    ``opts`` is MatConvNet's cell of options -- flags (``'cuDNN'``, ``'NoCuDNN'``,
    ``'Verbose'``, ``'NoDerData'``, ...) and name/value pairs (``'topK', 5``), names matched
    case-insensitively -- as a list, or a dict of names (MATLAB or snake_case) to values.
    Unknown options raise ``TypeError`` for the MATLAB blocks (loss, pdist, relu), as
    ``vl_argparse`` errors, and are ignored for the MEX blocks, as MatConvNet's MEX files
    ignore them (e.g. ``CudnnWorkspaceLimit``).
    """
    allowed, strict = _BLOCK_KEYWORDS[block]
    out: Dict[str, Any] = {}
    if _is_empty(opts):   # the common case, on every call of a layer: no work
        return out
    lookup = _LOOKUP[block]

    def put(name: Any, value: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"opts: expected an option name, got {name!r}")
        k = lookup.get(_key(name))
        if k is None:
            if strict:
                raise TypeError(f"opts: unknown option {name!r} for vl_nn{block}; expected "
                                f"some of {sorted(allowed)}")
            return
        out[k] = value

    if isinstance(opts, Mapping):
        for name, value in opts.items():
            put(name, value)
        return out
    if isinstance(opts, np.ndarray):
        opts = opts.ravel(order="F").tolist()
    if isinstance(opts, str):
        opts = [opts]
    if not isinstance(opts, (list, tuple)):
        raise TypeError(f"opts: expected a list of options or a dict, got {opts!r}")
    items = list(opts)
    i = 0
    while i < len(items):
        name = items[i]
        flag = _FLAGS.get(name.lower(), False) if isinstance(name, str) else False
        if flag is not False:
            if flag is not None:
                if flag[0] in allowed:
                    out[flag[0]] = flag[1]
                elif strict:
                    raise TypeError(f"opts: unknown option {name!r} for vl_nn{block}")
            i += 1
            continue
        if i + 1 >= len(items):
            raise ValueError(f"opts: option {name!r} has no value")
        put(name, items[i + 1])
        i += 2
    return out
