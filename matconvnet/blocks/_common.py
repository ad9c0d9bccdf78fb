"""Small helpers shared by the block modules (sizes, padding, backends)."""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch


def sliding_size(size: int, pad_before: int, pad_after: int, extent: int, stride: int) -> int:
    """Output length of a window of ``extent`` sliding with ``stride`` over a padded axis:
    ``floor((size + pad_before + pad_after - extent) / stride) + 1`` (manual, chapter 5)."""
    return (size + pad_before + pad_after - extent) // stride + 1


def transposed_size(size: int, extent: int, upsample: int, crop_before: int, crop_after: int) -> int:
    """Output length of a convolution transpose: ``U (size - 1) + F - C_b - C_a``
    (manual, chapter 5)."""
    return upsample * (size - 1) + extent - crop_before - crop_after


def is_symmetric(pad: Tuple[int, int, int, int]) -> bool:
    t, b, l, r = pad
    return t == b and l == r


def torch_pad(pad: Tuple[int, int, int, int]) -> Tuple[int, int, int, int]:
    """MatConvNet's ``[TOP BOTTOM LEFT RIGHT]`` as ``torch.nn.functional.pad``'s order."""
    t, b, l, r = pad
    return (l, r, t, b)


def crop_hw(t: torch.Tensor, pad: Tuple[int, int, int, int]) -> torch.Tensor:
    """Remove ``pad = (t, b, l, r)`` rows and columns from the spatial borders of ``t``."""
    top, bottom, left, right = pad
    h, w = t.shape[-2], t.shape[-1]
    return t[..., top:h - bottom, left:w - right]


def cudnn_flag(enabled: bool):
    """Context that switches cuDNN for one call (MatConvNet's ``Cudnn`` / ``NoCudnn``)."""
    if enabled:
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=False)
