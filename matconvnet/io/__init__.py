"""Reading and writing other tools' files (DESIGN.md floor 3): MatConvNet's MAT files.

``load(path)`` -> the file's variables as plain Python: a SimpleNN or DagNN model file
gives the net itself (docs/net-structure.md), a checkpoint ``{'net', 'state', 'stats'}``.
``save(path, net_or_vars, format='v7')`` writes MatConvNet's format back ('v7', 'v6' or
'v7.3').  ``layout`` holds the H x W x C x N <-> N x C x H x W conversions, per layer type:
the only place in the package that knows MatConvNet's layout.  ``load_dagnn`` /
``save_dagnn`` go between DagNN objects and files.
"""
from . import layout
from .dagnn import load_dagnn, save_dagnn
from .mat import FORMATS, MatFileError, load, load_simplenn, save
from .onnx_export import save_onnx, to_onnx
from .torch_export import to_torch
from .onnx_import import load_onnx
from .torch_import import from_torch
from .caffe import CaffeImportError, load_caffe

__all__ = ["load", "save", "load_dagnn", "save_dagnn", "FORMATS", "layout"]
__all__ += ["to_torch", "save_onnx", "to_onnx"]
__all__ += ["load_onnx", "from_torch"]
__all__ += ["load_caffe", "CaffeImportError"]
__all__ += ["MatFileError", "load_simplenn"]
