"""Array boundary and option validation shared by every block.

Blocks accept torch tensors (any device; float32, float64, and float16/bfloat16 where the
device's kernels support them) or NumPy arrays.  NumPy in gives NumPy out; torch in gives
torch out on the same device and dtype.  All data arguments of one call must agree in kind,
device and dtype, as MatConvNet requires all arguments to share class and device.

Blocks see torch tensors only: they open a :class:`Call` on their data argument, pass every
other array through :meth:`Call.tensor`, and hand their results to :meth:`Call.out`.

Option helpers return plain tuples and raise uniform messages, for example
``pad: expected 1 or 4 non-negative integers, got (1, -2)``.
"""
from __future__ import annotations

import numbers
import weakref
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

Array = Union[torch.Tensor, np.ndarray]

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _describe(a: Any) -> str:
    if isinstance(a, torch.Tensor):
        return f"torch tensor of dtype {a.dtype} on {a.device} with shape {tuple(a.shape)}"
    if isinstance(a, np.ndarray):
        return f"NumPy array of dtype {a.dtype} with shape {a.shape}"
    return f"{type(a).__name__} {a!r}"


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if any(s < 0 for s in a.strides) or not a.flags.writeable:
        a = np.array(a)
    return torch.from_numpy(a)


class Call:
    """The array context of one block call, opened on its data argument ``x``.

    Remembers whether the caller works in NumPy, checks that the other arrays agree with
    ``x`` in kind, device and dtype, and converts results back on the way out.
    """

    def __init__(self, x: Any, name: str = "x"):
        if isinstance(x, np.ndarray):
            self.numpy = True
            t = _from_numpy(x)
        elif isinstance(x, torch.Tensor):
            self.numpy = False
            t = x
        else:
            raise TypeError(f"{name}: expected a torch tensor or NumPy array, got {_describe(x)}")
        if t.dtype not in _FLOATS:
            raise TypeError(
                f"{name}: expected a floating-point array (float32, float64, float16 or "
                f"bfloat16), got {_describe(x)}")
        self.x = t
        self.name = name
        self.dtype = t.dtype
        self.device = t.device

    def tensor(self, a: Any, name: str, *, optional: bool = False) -> Optional[torch.Tensor]:
        """Return ``a`` as a tensor that agrees with ``x``; ``None`` passes if optional."""
        if a is None:
            if optional:
                return None
            raise TypeError(f"{name}: expected an array, got None")
        if isinstance(a, np.ndarray):
            if not self.numpy:
                raise TypeError(
                    f"{name}: got a NumPy array while {self.name} is a torch tensor; "
                    f"pass arrays of one kind")
            t = _from_numpy(a)
        elif isinstance(a, torch.Tensor):
            if self.numpy:
                raise TypeError(
                    f"{name}: got a torch tensor while {self.name} is a NumPy array; "
                    f"pass arrays of one kind")
            t = a
        else:
            raise TypeError(f"{name}: expected an array like {self.name}, got {_describe(a)}")
        if t.device != self.device:
            raise TypeError(
                f"{name}: expected an array on {self.device} like {self.name}, got {_describe(a)}")
        if t.dtype != self.dtype:
            raise TypeError(
                f"{name}: expected dtype {self.dtype} like {self.name}, got {_describe(a)}")
        return t

    def scalar_or_tensor(self, a: Any, name: str) -> torch.Tensor:
        """A projection that may be a Python number (the loss blocks' scalar ``dzdy``)."""
        if isinstance(a, numbers.Real) and not isinstance(a, bool):
            return torch.tensor(float(a), dtype=self.dtype, device=self.device)
        return self.tensor(a, name)

    def labels(self, a: Any, name: str) -> torch.Tensor:
        """Labels and masks: any real dtype, NumPy or torch; moved to ``x``'s device."""
        if isinstance(a, np.ndarray):
            t = _from_numpy(a)
        elif isinstance(a, torch.Tensor):
            t = a
        elif isinstance(a, (numbers.Real, Sequence)):
            t = torch.as_tensor(np.asarray(a))
        else:
            raise TypeError(f"{name}: expected an array of labels, got {_describe(a)}")
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name}: expected real numeric labels, got {_describe(a)}")
        return t.to(self.device)

    def out(self, *ts: Optional[torch.Tensor]):
        """Convert results back to the caller's kind; one result is returned bare."""
        if self.numpy:   # C-ordered arrays, whatever layout the kernels computed in
            ts = tuple(None if t is None else t.detach().cpu().contiguous().numpy() for t in ts)
        return ts[0] if len(ts) == 1 else ts


# ---------------------------------------------------------------------------- options


def _ints(value: Any, name: str) -> Tuple[int, ...]:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = np.asarray(value.tolist() if isinstance(value, torch.Tensor) else value).ravel().tolist()
    elif isinstance(value, numbers.Number):
        value = [value]
    elif isinstance(value, (list, tuple)):
        value = list(value)
    else:
        raise TypeError(f"{name}: expected an integer or a sequence of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != int(v):
            raise TypeError(f"{name}: expected integers, got {tuple(value)!r}")
        out.append(int(v))
    return tuple(out)


def pair(value: Any, name: str, *, minimum: int = 1) -> Tuple[int, int]:
    """Scalar or ``[Y X]`` option (stride, dilate, upsample, pool size): ``(y, x)``."""
    v = _ints(value, name)
    if len(v) not in (1, 2) or min(v) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name}: expected 1 or 2 {what} integers, got {_show(v)}")
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def quad(value: Any, name: str) -> Tuple[int, int, int, int]:
    """Scalar or ``[TOP BOTTOM LEFT RIGHT]`` option (pad, crop): ``(t, b, l, r)``."""
    v = _ints(value, name)
    if len(v) not in (1, 4) or min(v) < 0:
        raise ValueError(f"{name}: expected 1 or 4 non-negative integers, got {_show(v)}")
    return (v[0],) * 4 if len(v) == 1 else (v[0], v[1], v[2], v[3])


def positive_int(value: Any, name: str) -> int:
    v = _ints(value, name)
    if len(v) != 1 or v[0] < 1:
        raise ValueError(f"{name}: expected a positive integer, got {_show(v)}")
    return v[0]


def real(value: Any, name: str) -> float:
    if isinstance(value, (torch.Tensor, np.ndarray)) and np.size(value) == 1:
        value = float(np.asarray(value.tolist() if isinstance(value, torch.Tensor) else value).ravel()[0])
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    return float(value)


def reals(value: Any, name: str, count: int, what: str) -> Tuple[float, ...]:
    """A fixed-length parameter vector such as LRN's ``[N, kappa, alpha, beta]``."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        v = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected {count} numbers {what}, got {value!r}") from None
    if v.size != count:
        raise ValueError(f"{name}: expected {count} numbers {what}, got {value!r}")
    return tuple(float(a) for a in v)


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """Case-insensitive string option, as MatConvNet matches them."""
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"{name}: expected one of {', '.join(options)}; got {value!r}")
    return value.lower()


def _show(v: Tuple[int, ...]) -> str:
    return str(v[0]) if len(v) == 1 else str(v)


def shape4(t: torch.Tensor, name: str) -> Tuple[int, int, int, int]:
    """Check a data tensor is N x C x H x W (a 3-D C x H x W or 2-D array is not accepted)."""
    if t.dim() != 4:
        raise ValueError(f"{name}: expected a 4-D N x C x H x W array, got shape {tuple(t.shape)}")
    return tuple(t.shape)  # type: ignore[return-value]


def expect_broadcastable(t: torch.Tensor, name: str, shape: Sequence[int], what: str) -> None:
    """Check that ``t`` broadcasts to ``shape`` without growing it."""
    shape = tuple(shape)
    try:
        ok = t.dim() <= len(shape) and torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: expected an array that broadcasts to {what} {shape}, got shape {tuple(t.shape)}")


def expect_shape(t: torch.Tensor, name: str, shape: Sequence[int], what: str = "") -> None:
    if tuple(t.shape) != tuple(shape):
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name}: expected shape {tuple(shape)}{extra}, got {tuple(t.shape)}")


class TensorSpec:
    """What a backward call reads of a tensor whose values it does not need (pooling's
    input, given the switches): its shape, dtype and device.  The wrappers keep one in
    place of the tensor, to free the tensor early, and hand the block :meth:`stand_in`."""

    __slots__ = ("shape", "dtype", "device", "_ref")

    def __init__(self, t: torch.Tensor):
        self.shape, self.dtype, self.device = tuple(t.shape), t.dtype, t.device
        self._ref = weakref.ref(t)

    def describes(self, t: Optional[torch.Tensor]) -> bool:
        """Whether ``t`` is the tensor this was taken from (None: it was freed since)."""
        return t is None or self._ref() is t

    def stand_in(self) -> torch.Tensor:
        """A tensor of that shape, dtype and device with no memory behind it (one element
        repeated by zero strides): never to be read, let alone written."""
        return torch.empty((1,) * len(self.shape), dtype=self.dtype,
                           device=self.device).expand(self.shape)
