"""DagNN: networks as directed acyclic graphs of layers (manual 2.2.2, 2.3.4-5, 3.1.2)."""
from . import layers
from .dagnn import DagNN, LayerEntry, Param, Var
from .layers import LAYER_CLASSES, Layer, register_layer

__all__ = ["DagNN", "Var", "Param", "LayerEntry", "Layer", "LAYER_CLASSES", "register_layer",
           "layers"]
