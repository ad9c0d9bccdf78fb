"""Computational blocks (manual, chapter 4): forward and backward (projected derivative)
modes of every MatConvNet operator, as plain functions on N x C x H x W arrays."""
from .conv import vl_nnconv

__all__ = ["vl_nnconv"]
