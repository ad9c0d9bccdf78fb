"""DagNN objects to and from MatConvNet's DagNN files (``DagNN.saveobj`` structures)."""
from __future__ import annotations

import os
from typing import Any, Dict, List

from ..dagnn import DagNN
from ..dagnn.layers import LAYER_CLASSES
from . import layout
from ._netcheck import check_net
from ._values import Malformed
from .mat import MatFileError, describe_variables, load, save

__all__ = ["load_dagnn", "save_dagnn"]


def load_dagnn(path) -> DagNN:
    """A DagNN from a MatConvNet DagNN model file, a checkpoint holding one as ``net``, or a
    SimpleNN file (converted with ``DagNN.from_simplenn``, as ``DagNN.loadobj`` does).

    Raises :class:`~matconvnet.io.MatFileError` for a damaged file, a file holding no
    network, or a network the DagNN cannot be built from: layers of classes that are not
    registered (all of them listed), dangling connections, bad layer properties."""
    data = load(path)
    struct = data["net"] if "net" in data and isinstance(data["net"], dict) else data
    path = os.fspath(path)
    if not (layout.is_dagnn(struct) or layout.is_simplenn(struct)):
        raise MatFileError(f"{path}: not a MatConvNet network file: expected the variables "
                           f"of a DagNN (vars, params, layers, meta) or of a SimpleNN net "
                           f"(layers, meta), or a variable 'net' holding one; found "
                           f"{describe_variables(data)}")
    try:
        check_net(struct, ("net",) if struct is not data else ())
    except Malformed as e:
        raise MatFileError(f"{path}: not a valid MatConvNet network: {e}") from None
    if layout.is_dagnn(struct):
        unknown = _unknown_classes(struct["layers"])
        if unknown:
            raise MatFileError(
                f"{path}: layers of unknown classes: "
                + "; ".join(f"{t} (layer{'s' if len(names) > 1 else ''} "
                            f"{', '.join(repr(n) for n in names)})"
                            for t, names in unknown.items())
                + "; define a subclass of matconvnet.dagnn.Layer with that type_name and "
                  "decorate it with @register_layer to load them")
    try:
        return DagNN.from_struct(struct)
    except (ValueError, TypeError) as e:
        raise MatFileError(f"{path}: cannot build the DagNN: {e}") from e


def _unknown_classes(layers: List[Dict[str, Any]]) -> Dict[str, List[str]]:
    """Layer class -> names of the layers of that class, for the classes not registered."""
    out: Dict[str, List[str]] = {}
    for layer in layers:
        if layer["type"] not in LAYER_CLASSES:
            out.setdefault(layer["type"], []).append(layer["name"])
    return out


def save_dagnn(path, net: DagNN, *, format: str = "v7") -> None:
    """Write ``net`` as MatConvNet's DagNN file (variables vars, params, layers, meta).
    As the original's ``saveobj``, this resets the network's variables first."""
    save(path, net.to_struct(), format=format)
