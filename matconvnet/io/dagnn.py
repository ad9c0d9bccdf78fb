"""DagNN objects to and from MatConvNet's DagNN files (``DagNN.saveobj`` structures)."""
from __future__ import annotations

from ..dagnn import DagNN
from .mat import load, save

__all__ = ["load_dagnn", "save_dagnn"]


def load_dagnn(path) -> DagNN:
    """A DagNN from a MatConvNet DagNN model file, a checkpoint holding one as ``net``, or a
    SimpleNN file (converted with ``DagNN.from_simplenn``, as ``DagNN.loadobj`` does)."""
    data = load(path)
    struct = data["net"] if "net" in data and isinstance(data["net"], dict) else data
    try:
        return DagNN.from_struct(struct)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def save_dagnn(path, net: DagNN, *, format: str = "v7") -> None:
    """Write ``net`` as MatConvNet's DagNN file (variables vars, params, layers, meta).
    As the original's ``saveobj``, this resets the network's variables first."""
    save(path, net.to_struct(), format=format)
