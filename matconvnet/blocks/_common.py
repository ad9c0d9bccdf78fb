"""Small helpers shared by the block modules (sizes, padding, backends)."""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch


def sliding_size(size: int, pad_before: int, pad_after: int, extent: int, stride: int) -> int:
    """Output length of a window of ``extent`` sliding with ``stride`` over a padded axis:
    ``floor((size + pad_before + pad_after - extent) / stride) + 1`` (manual, chapter 5)."""
    return (size + pad_before + pad_after - extent) // stride + 1


def window_output_size(size_hw, extent_hw, pad, stride, name: str, what: str) -> Tuple[int, int]:
    """Output size of a window of ``extent_hw`` sliding over the padded image, checking that
    it fits (``name``/``what`` word the error: ``pool: the window (3, 3) exceeds ...``)."""
    (h, w), (eh, ew) = size_hw, extent_hw
    padded = (h + pad[0] + pad[1], w + pad[2] + pad[3])
    if eh > padded[0] or ew > padded[1]:
        raise ValueError(f"{name}: {what} {(eh, ew)} exceeds the padded input size {padded}")
    return (sliding_size(h, pad[0], pad[1], eh, stride[0]),
            sliding_size(w, pad[2], pad[3], ew, stride[1]))


def check_pool_pad(pool, pad) -> None:
    """MatConvNet requires each pooling pad to be smaller than the window."""
    if pad[0] >= pool[0] or pad[1] >= pool[0] or pad[2] >= pool[1] or pad[3] >= pool[1]:
        raise ValueError(f"pad: expected each pad smaller than the pool size {tuple(pool)}, "
                         f"got {tuple(pad)}")


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


_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` (N x C x H x W) stored channels-last: channels innermost in memory.

    A tensor whose layout is ambiguous (one channel, or 1 x 1 planes) is given the
    canonical channels-last strides, as a view of the same memory, so that PyTorch's kernels
    (which take an ambiguous layout for the default one) see it as channels-last and
    return channels-last results."""
    t = t.contiguous(memory_format=torch.channels_last)
    n, c, h, w = t.shape
    strides = (h * w * c, 1, w * c, c)
    if t.stride() != strides:
        t = t.as_strided(t.shape, strides, t.storage_offset())
    return t


def onednn_layout(t: torch.Tensor) -> torch.Tensor:
    """``t`` in the layout the CPU convolution kernels run fastest on: channels-last for the
    float32/bfloat16 tensors that oneDNN computes, as it is otherwise.  Convolutions and
    pooling of channels-last inputs return channels-last outputs, so that a chain of
    blocks converts once, at its input; values are the same, only the strides differ."""
    if t.device.type == "cpu" and t.dtype in _ONEDNN_DTYPES and t.dim() == 4 \
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled:
        return channels_last(t)
    return t


def memory_format_of(t: torch.Tensor):
    """``torch.channels_last`` for a tensor stored channels-last and not also contiguous,
    else ``torch.contiguous_format``."""
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) \
            and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def cudnn_flag(enabled: bool):
    """Context that switches cuDNN for one call (MatConvNet's ``Cudnn`` / ``NoCudnn``)."""
    if enabled:
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=False)
