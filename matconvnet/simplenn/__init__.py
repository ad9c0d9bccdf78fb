"""SimpleNN: networks as chains of blocks (manual 3.1), and their utilities."""
from .simplenn import LAYER_TYPES, vl_simplenn
from .tidy import vl_simplenn_deploy, vl_simplenn_move, vl_simplenn_tidy

__all__ = ["vl_simplenn", "vl_simplenn_tidy", "vl_simplenn_move", "vl_simplenn_deploy",
           "LAYER_TYPES"]
from .display import Display, vl_simplenn_display

__all__ += ["vl_simplenn_display", "Display"]
from .diagnose import vl_simplenn_diagnose

__all__ += ["vl_simplenn_diagnose"]
