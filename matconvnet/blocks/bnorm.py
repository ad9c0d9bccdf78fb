"""vl_nnbnorm: batch normalisation.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnbnorm` (rendered as ``docs/blocks/vl_nnbnorm.md``).
"""
from __future__ import annotations

from typing import Optional

import torch

from .. import _tensor as T

__all__ = ["vl_nnbnorm"]


def vl_nnbnorm(x: T.Array, g: T.Array, b: T.Array, dzdy: Optional[T.Array] = None, *,
               moments: Optional[T.Array] = None, epsilon: float = 1e-4,
               return_moments: bool = False, cudnn: bool = True):
    r"""vl_nnbnorm: batch normalisation.

    Formula (manual 4.6.2 and 6.6.2), per channel ``k`` over the ``m = H W N`` values of the
    batch::

        mu_k = mean x_k,   sigma_k = sqrt(var x_k + epsilon)     (biased variance)
        y_k = g_k (x_k - mu_k) / sigma_k + b_k

    On the CPU the variance is computed as the original does, in one pass, ``mean(x^2) - mu^2``
    clamped at 0, in x's precision (FEATURES.md Q-09); on the GPU PyTorch's fused kernels are
    used (the same statistics up to rounding).  Networks trained with MatConvNet then reproduce to
    single-precision rounding (a two-pass variance differs by up to 3e-4 after a 2-sample batch
    norm); the price is the original's loss of precision in float32 when ``mu^2 >> var``
    (e.g. a mean of 1000 and unit variance): use float64 there.

    The moments are a C x 2 array ``[mu, sigma]`` (any other shape with 2C elements is read
    in MATLAB's column-major order: all mu, then all sigma) with epsilon already inside sigma, as
    MatConvNet returns and consumes them; given moments are used as they are (epsilon is not
    added again), in the forward and in the backward mode.  Derivatives::

        dzdb_k = sum dzdy_k,   dzdg_k = sum dzdy_k (x_k - mu_k) / sigma_k
        dzdx_k = g_k / sigma_k (dzdy_k - dzdb_k / m) - g_k dzdg_k / (m sigma_k^2) (x_k - mu_k)

    Shapes::

        x, y, dzdy, dzdx   N x C x H x W
        g, b               any shape with C elements (dzdg, dzdb keep those shapes)
        moments            C x 2: [mu, sigma]

    Call forms::

        y = vl_nnbnorm(x, g, b, moments=None, epsilon=1e-4)
        y, moments = vl_nnbnorm(x, g, b, return_moments=True)
        dzdx, dzdg, dzdb, moments = vl_nnbnorm(x, g, b, dzdy, moments=None, epsilon=1e-4)

    Options:

    * ``epsilon``: 1e-4; added to the variance (the wrappers' default is 1e-5).
    * ``moments``: None; given ``[mu, sigma]`` to use instead of the batch statistics (test
      mode).
    * ``return_moments``: False; forward mode: also return the moments used.
    * ``cudnn``: as in vl_nnconv.

    Example::

        import torch
        from matconvnet import vl_nnbnorm

        x = 3 + 2 * torch.randn(8, 4, 5, 5, dtype=torch.float64)
        g, b = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
        y, moments = vl_nnbnorm(x, g, b, return_moments=True)
        assert moments.shape == (4, 2)               # [mu, sigma] per channel
        assert y.mean(dim=(0, 2, 3)).abs().max() < 1e-9
        y_test = vl_nnbnorm(x, g, b, moments=moments)  # test mode: the stored moments
        assert torch.allclose(y, y_test)
        dzdx, dzdg, dzdb, _ = vl_nnbnorm(x, g, b, torch.ones_like(x))
        assert torch.allclose(dzdb, torch.full((4,), 200.0, dtype=torch.float64))
    """
    call = T.Call(x)
    x = call.x
    n, c, h, w = T.shape4(x, "x")
    g = call.tensor(g, "g")
    b = call.tensor(b, "b")
    for name, t in (("g", g), ("b", b)):
        if t.numel() != c:
            raise ValueError(f"{name}: expected {c} elements (one per channel), got shape {tuple(t.shape)}")
    epsilon = T.real(epsilon, "epsilon")
    if epsilon < 0:
        raise ValueError(f"epsilon: expected a non-negative number, got {epsilon}")
    if moments is not None:
        moments = call.tensor(moments, "moments")
        if moments.numel() != 2 * c:
            raise ValueError(
                f"moments: expected a C x 2 array [mu, sigma] with C = {c}, got shape "
                f"{tuple(moments.shape)}")
        if tuple(moments.shape) != (c, 2):  # MATLAB's column-major [mu; sigma] order
            moments = moments.reshape(2, c).t()
        # contiguous rows (one copy at most): the kernels ignore the strides of mean/invstd
        mu, sigma = moments.t().contiguous()
    elif x.is_cuda and dzdy is None:
        # one fused kernel on the GPU (Welford statistics: the same up to rounding)
        if _use_cudnn(x, g, b, epsilon, cudnn):
            y, mu, invstd, _ = torch.ops.aten.cudnn_batch_norm(
                x, g.reshape(-1), b.reshape(-1), None, None, True, 0.0, epsilon)
        else:
            y, mu, invstd = torch.ops.aten.native_batch_norm(
                x, g.reshape(-1), b.reshape(-1), None, None, True, 0.0, epsilon)
        moments = torch.stack((mu, invstd.reciprocal()), dim=1).to(x.dtype)
        return call.out(y, moments) if return_moments else call.out(y)
    else:
        mu, sigma = _batch_moments(x, epsilon)
        moments = torch.stack((mu, sigma), dim=1).to(x.dtype)
    gv, bv = g.reshape(-1), b.reshape(-1)
    if dzdy is None:
        scale = gv / sigma
        y = torch.addcmul((bv - mu * scale).view(1, c, 1, 1), x, scale.view(1, c, 1, 1))
        return call.out(y, moments) if return_moments else call.out(y)
    dzdy = call.tensor(dzdy, "dzdy")
    T.expect_shape(dzdy, "dzdy", x.shape, "the shape of x")
    # the CUDA kernels take the statistics of 16-bit data in float32, the CPU's in x's type
    acc = torch.float32 if x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) \
        else x.dtype
    mu, invstd = mu.to(acc), sigma.reciprocal().to(acc)
    if x.is_cuda and _use_cudnn(x, g, b, epsilon, cudnn):
        dzdx, dzdg, dzdb = torch.ops.aten.cudnn_batch_norm_backward(
            x, dzdy.contiguous(), gv, None, None, mu, invstd, epsilon,
            torch.empty(0, dtype=torch.uint8, device=x.device))
    else:
        dzdx, dzdg, dzdb = torch.ops.aten.native_batch_norm_backward(
            dzdy, x, gv, None, None, mu, invstd, True, epsilon, [True, True, True])
    return call.out(dzdx, dzdg.reshape(g.shape), dzdb.reshape(b.shape), moments)


def _use_cudnn(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor, epsilon: float,
               cudnn: bool) -> bool:
    """Whether to use cuDNN's batch normalisation: where autograd's F.batch_norm would (the
    same kernels, so the same speed), for contiguous data only -- there cuDNN's spatial mode
    keeps no reserve space, so the backward call needs nothing of the forward's but the
    moments."""
    if not (cudnn and x.is_contiguous() and torch.backends.cudnn.enabled):
        return False
    gv, bv = g.reshape(-1), b.reshape(-1)
    try:
        stats = torch.empty_like(gv)
        backend = torch._C._select_batch_norm_backend(x, gv, bv, stats, stats, True, epsilon)
        return backend == torch._C._BatchNormBackend.Cudnn
    except (AttributeError, RuntimeError, TypeError):   # a PyTorch without the selector
        return (x.dtype in (torch.float32, torch.float64) and epsilon >= 1e-5
                and torch.backends.cudnn.is_available())


def _batch_moments(x: torch.Tensor, epsilon: float):
    """Per-channel mean and sigma = sqrt(var + epsilon).  On the CPU the variance is the
    original's single pass, E[x^2] - E[x]^2 (>= 0), in x's precision; on the GPU PyTorch's
    fused Welford statistics, equal up to rounding."""
    if x.is_cuda:
        mu, invstd = torch.batch_norm_stats(x, epsilon)
        return mu, invstd.reciprocal()
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.sum(dim=(0, 2, 3)) / m
    var = (x * x).sum(dim=(0, 2, 3)) / m - mu * mu
    return mu, (var.clamp_(min=0) + epsilon).sqrt()
