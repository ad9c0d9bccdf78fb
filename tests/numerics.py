"""Numerical-derivative helpers shared by the block tests (float64 central differences).

MatConvNet's test suite checks every analytic derivative against finite differences of the
projected output ``sum(dzdy .* g(x))`` (X-H-6, X-H-7).  This module does the same, with
central differences in float64 so that the tolerance can be tight::

    from tests import numerics as nm

    x, f, b = nm.randn(2, 3, 5, 6), nm.randn(4, 3, 3, 3), nm.randn(4)
    fn = lambda x, f, b: mcn.vl_nnconv(x, f, b, pad=1)
    dzdy = nm.randn(*fn(x, f, b).shape)
    dzdx, dzdf, dzdb = mcn.vl_nnconv(x, f, b, dzdy, pad=1)
    nm.check_derivative(fn, [x, f, b], 0, dzdy, dzdx)
    nm.check_derivative(fn, [x, f, b], 1, dzdy, dzdf)

Every element of ``inputs[wrt]`` is perturbed in turn (two calls of ``fn`` per element), so
keep the tensors small: a few hundred elements.  ``fn`` runs single-threaded during the check,
which is much faster for small tensors on a busy machine.

For blocks with kinks (max pooling, ReLU, ...) draw inputs with :func:`distinct`: distinct
values spaced far apart compared with the step ``eps`` keep every perturbation on one side
of each kink, as MatConvNet's suite does with ``randperm`` inputs (X-H-8).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional, Sequence

import numpy as np
import torch

DTYPE = torch.float64


# ------------------------------------------------------------------------------ inputs


def randn(*shape: int, scale: float = 1.0, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """Standard normal values times ``scale`` (uses the global torch RNG: seed it)."""
    return torch.randn(*shape, dtype=dtype) * scale


def distinct(*shape: int, scale: float = 1.0, center: bool = True,
             dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """A random permutation of ``1..numel`` (distinct integers), times ``scale``.

    ``center`` subtracts ``(numel + 1) / 2`` first, so the values straddle zero.  Any two
    values differ by at least ``scale``: finite-difference steps much smaller than that never
    reorder them (no ties, no crossing of a max/ReLU kink).
    """
    n = int(np.prod(shape)) if shape else 1
    v = torch.randperm(n, dtype=torch.int64).to(dtype) + 1
    if center:
        v = v - (n + 1) / 2
    return (v * scale).reshape(shape)


# ------------------------------------------------------------------------ derivatives


@contextlib.contextmanager
def single_thread():
    """Run torch single-threaded inside the block, restoring the thread count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _as_tensor(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    return torch.as_tensor(np.asarray(a))


def numerical_derivative(fn: Callable[..., torch.Tensor], inputs: Sequence,
                         wrt: int, dzdy, eps: float = 1e-6) -> torch.Tensor:
    """Central-difference derivative of ``sum(dzdy * fn(*inputs))`` w.r.t. ``inputs[wrt]``.

    ``inputs`` may hold ``None`` or non-tensor entries; only ``inputs[wrt]`` (a floating-point
    tensor) is perturbed, on a private copy, element by element:
    ``(p(x + eps e_i) - p(x - eps e_i)) / (2 eps)`` with ``p = sum(dzdy * fn(...))``.
    The result has the shape and dtype of ``inputs[wrt]``.
    """
    args = list(inputs)
    x0 = args[wrt]
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point():
        raise TypeError(f"inputs[{wrt}] must be a floating-point torch tensor, got {type(x0)}")
    x = x0.detach().clone().contiguous()
    args[wrt] = x
    # Write perturbations through a NumPy view of x's memory: much cheaper per element.
    numpy_ok = x.device.type == "cpu" and x.dtype in (torch.float64, torch.float32)
    flat = x.numpy().reshape(-1) if numpy_ok else x.view(-1)
    dzdy = _as_tensor(dzdy).to(device=x.device, dtype=torch.float64)
    shape, dzdy = tuple(dzdy.shape), dzdy.reshape(-1)
    out = torch.zeros(x.numel(), dtype=torch.float64)

    def projected() -> float:
        y = _as_tensor(fn(*args))
        if tuple(y.shape) != shape:
            raise ValueError(f"fn output shape {tuple(y.shape)} != dzdy shape {shape}")
        y = y.reshape(-1)
        return float(torch.dot(dzdy, y if y.dtype == torch.float64 else y.double()))

    with single_thread(), torch.no_grad():
        for i in range(x.numel()):
            v = float(flat[i])
            flat[i] = v + eps
            plus = projected()
            flat[i] = v - eps
            minus = projected()
            flat[i] = v
            out[i] = (plus - minus) / (2 * eps)
    return out.reshape(x.shape).to(x0.dtype)


def assert_close(got, expected, rtol: float = 1e-6, atol: float = 0.0, what: str = "") -> None:
    """Assert ``max|got - expected| <= atol + rtol * max(1, max|expected|)``.

    Shapes must agree exactly.  Accepts torch tensors or NumPy arrays.
    """
    label = f"{what}: " if what else ""
    assert got is not None, f"{label}got None"
    got = _as_tensor(got).detach().to(torch.float64)
    expected = _as_tensor(expected).detach().to(torch.float64)
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{label}shape {tuple(got.shape)} != expected {tuple(expected.shape)}")
    if expected.numel() == 0:
        return
    scale = max(1.0, float(expected.abs().max()))
    err = float((got - expected).abs().max())
    tol = atol + rtol * scale
    assert err <= tol, f"{label}max abs error {err:.3g} > tolerance {tol:.3g} (scale {scale:.3g})"


def check_derivative(fn: Callable[..., torch.Tensor], inputs: Sequence, wrt: int, dzdy,
                     analytic, eps: float = 1e-6, rtol: float = 1e-6, atol: float = 0.0,
                     what: Optional[str] = None) -> torch.Tensor:
    """Check ``analytic`` against :func:`numerical_derivative`; return the numerical one.

    Passes when ``max|analytic - num| <= atol + rtol * max(1, max|num|)``.  The defaults
    suit float64 blocks that are smooth (or kept off their kinks) over ``+-eps``.
    """
    num = numerical_derivative(fn, inputs, wrt, dzdy, eps)
    assert_close(analytic, num, rtol=rtol, atol=atol,
                 what=what or f"derivative w.r.t. inputs[{wrt}]")
    return num
