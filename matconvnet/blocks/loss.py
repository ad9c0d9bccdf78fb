"""vl_nnloss and vl_nnsoftmaxloss: classification and attribute losses.

The formula, shapes, call forms, options and an example are in the docstring of
:func:`vl_nnloss` and :func:`vl_nnsoftmaxloss` (rendered as ``docs/blocks/vl_nnloss.md``
and ``docs/blocks/vl_nnsoftmaxloss.md``).
"""
from __future__ import annotations

import numbers
import weakref
from typing import Dict, Optional, Tuple, Union

import torch

from .. import _tensor as T
from . import _triton, _triton_loss
from .softmax import log_softmax_channels, softmax_channels

__all__ = ["vl_nnloss", "vl_nnsoftmaxloss"]

CATEGORICAL = ("classerror", "topkerror", "log", "softmaxlog", "mhinge", "mshinge")
ATTRIBUTE = ("binaryerror", "binarylog", "logistic", "hinge")


def vl_nnloss(x: T.Array, c: T.Array, dzdy=None, *, loss: str = "softmaxlog",
              instance_weights: Optional[T.Array] = None, class_weights=None,
              top_k: int = 5, threshold: float = 0.0, normalise: bool = True):
    r"""vl_nnloss: classification and attribute losses.

    Formula (manual 4.7 and 6.7): ``vl_nnloss`` compares predictions ``x`` with labels ``c`` at
    every location and sums the per-location losses ``t``, weighted by ``w``::

        y = (1 / N if normalise else 1) * sum_{n, i, j(, k)} w * t(x, c)

    Categorical losses: ``c`` holds one 1-based class index per location (0 = ignore).  With
    ``x_c`` the score of the true class::

        classerror   t = [argmax_k x_k != c]                         (first maximum wins)
        topkerror    t = [c not among the top_k scores]               (stable sort)
        log          t = -log x_c                                     (x are probabilities)
        softmaxlog   t = log sum_k exp x_k - x_c
        mhinge       t = max(0, 1 - x_c)
        mshinge      t = max(0, 1 - x_c + max_{q != c} x_q)           (Crammer-Singer)

    Attribute (binary) losses: ``c`` in {-1, +1} for every element of ``x`` (0 = ignore)::

        binaryerror  t = [sign(x - threshold) != c]
        binarylog    t = -log(c (x - 1/2) + 1/2)                      (x are probabilities)
        logistic     t = log(1 + exp(-c x))
        hinge        t = max(0, 1 - c x)

    Weights: ``w = [c != 0]`` when some label is 0, times ``instance_weights``.  ``normalise``
    divides by N = the number of images, not by the number of labels used.  The error losses
    have zero derivative.  Derivatives (``dzdy`` is a scalar)::

        log          dzdx_c = -dzdy w / max(x_c, 1e-8)
        softmaxlog   dzdx = dzdy w (softmax(x) - 1[k = c])
        mhinge       dzdx_c = -dzdy w [x_c < 1]
        mshinge      dzdx_c = -W, dzdx_q* = +W, W = dzdy w [x_c - x_q* < 1], q* = argmax_{q != c}
        binarylog    dzdx = -dzdy w / (x + (c - 1) / 2)
        logistic     dzdx = -dzdy w c / (1 + exp(c x))
        hinge        dzdx = -dzdy w c [c x < 1]

    On CUDA (with Triton) ``softmaxlog`` runs as two one-pass kernels
    (``blocks/_triton_loss.py``).  The labels are checked (integers, in range) with one
    device synchronisation per labels tensor: a later call with the same, unchanged tensor
    (its in-place version counter unchanged) skips the check.

    Shapes::

        x                  N x C x H x W
        c (categorical)    N x 1 x H x W, or any shape with N elements (one label per image,
                           replicated over H x W)
        c (attribute)      N x C x H x W
        instance_weights   broadcast to the labels' shape (N x 1 x H x W or N x C x H x W);
                           a vector of N elements is one weight per image
        y                  0-d array of x's dtype
        dzdx               N x C x H x W

    Call forms::

        y = vl_nnloss(x, c, loss='softmaxlog', instance_weights=None, top_k=5, threshold=0,
                      normalise=True)
        dzdx = vl_nnloss(x, c, dzdy, loss='softmaxlog', ...)

    Options:

    * ``loss``: ``'softmaxlog'`` (default), ``'classerror'``, ``'topkerror'``, ``'log'``,
      ``'mhinge'``, ``'mshinge'``, ``'binaryerror'``, ``'binarylog'``, ``'logistic'`` or
      ``'hinge'`` (the option the original's help calls ``type``).
    * ``instance_weights``: None; per-location (or per-image) weights ``w``.
    * ``top_k``: 5; K of ``topkerror``.
    * ``threshold``: 0; the threshold of ``binaryerror``.
    * ``normalise``: True; divide the loss and its derivative by N.
    * ``class_weights``: parsed but never applied by the original; passing it raises an error.

    Example::

        import torch
        from matconvnet import vl_nnloss

        x = torch.randn(4, 10, 1, 1)                 # scores of 10 classes for 4 images
        c = torch.tensor([1, 5, 10, 2])              # 1-based labels
        y = vl_nnloss(x, c)                          # mean softmax log-loss
        assert torch.isclose(y, torch.nn.functional.cross_entropy(x.flatten(1), c - 1))
        dzdx = vl_nnloss(x, c, 1.0)
        assert dzdx.shape == x.shape
        err = vl_nnloss(x, c, loss="classerror", normalise=False)   # number of mistakes
        assert 0 <= err <= 4
    """
    call = T.Call(x)
    x = call.x
    n, channels, h, w = T.shape4(x, "x")
    loss = T.choice(loss, "loss", CATEGORICAL + ATTRIBUTE)
    if class_weights is not None:
        raise ValueError(
            "class_weights: MatConvNet parses this option but never applies it; "
            "pass per-location weights through instance_weights instead")
    top_k = T.positive_int(top_k, "top_k")
    threshold = T.real(threshold, "threshold")
    categorical = loss in CATEGORICAL
    c = _labels(call.labels(c, "c"), x, 1 if categorical else channels,
                "1 (one class index per location)" if categorical
                else f"{channels} (one label per channel of x)")
    if categorical:
        classes = _Classes(c, channels, lowest=0)
        has_ignore = classes.lowest == 0
    else:
        classes, has_ignore = None, bool((c == 0).any())
        c = c.to(x.dtype)
    ignore = (c == 0) if has_ignore else None
    weights = _weights(call, instance_weights, c.shape, ignore)
    scale = 1.0 / n if normalise else 1.0

    if dzdy is None:
        t = _loss(loss, x, c, classes, top_k, threshold)
        if has_ignore and not (loss == "softmaxlog" and _triton.applies(x)):  # 0 there already
            t = t.masked_fill(ignore, 0)
        y = (t * weights).sum() if weights is not None else t.sum()
        return call.out(y * scale)

    g = _projection(call, dzdy) * scale
    if weights is not None:
        g = g * weights
    dzdx = _derivative(loss, x, c, classes, g)
    if has_ignore and not categorical:
        dzdx = dzdx.masked_fill(ignore, 0)
    return call.out(dzdx)


def vl_nnsoftmaxloss(x: T.Array, c: T.Array, dzdy=None):
    r"""vl_nnsoftmaxloss: softmax log-loss (deprecated in MatConvNet, kept for old networks).

    Formula (manual 4.7 and 6.7): ``vl_nnloss``'s ``softmaxlog`` with labels ``c <= 0`` ignored
    and an optional second label channel of per-location weights ``w``; always divided by N,
    the number of images::

        y = (1 / N) sum_{n, i, j} w (log sum_k exp x_k - x_c)
        dzdx = dzdy w (softmax(x) - 1[k = c]) / N

    Shapes::

        x      N x C x H x W
        c      N elements (one 1-based label per image), or N x 1 x H x W,
               or N x 2 x H x W (channel 0 the labels, channel 1 the weights)
        y      0-d array of x's dtype
        dzdx   N x C x H x W

    Call forms::

        y = vl_nnsoftmaxloss(x, c)
        dzdx = vl_nnsoftmaxloss(x, c, dzdy)

    Options: none (use vl_nnloss for the other losses and for instance weights).

    Example::

        import torch
        from matconvnet import vl_nnloss, vl_nnsoftmaxloss

        x = torch.randn(3, 5, 2, 2)
        c = torch.randint(1, 6, (3, 1, 2, 2))        # a label at every location
        assert torch.isclose(vl_nnsoftmaxloss(x, c), vl_nnloss(x, c))
        assert torch.allclose(vl_nnsoftmaxloss(x, c, 1.0), vl_nnloss(x, c, 1.0))
    """
    call = T.Call(x)
    x = call.x
    n, channels, h, w = T.shape4(x, "x")
    c = call.labels(c, "c")
    if c.numel() == n:
        c = c.reshape(n, 1, 1, 1)
    if c.dim() != 4 or c.shape[0] != n or c.shape[1] not in (1, 2) \
            or c.shape[2:] not in ((1, 1), (h, w)):
        raise ValueError(
            f"c: expected N labels, or an N x 1 x H x W or N x 2 x H x W array with "
            f"N, H, W = {(n, h, w)}, got shape {tuple(c.shape)}")
    c = c.expand(n, c.shape[1], h, w)
    labels = c[:, :1]
    mass = (labels > 0).to(x.dtype)
    if c.shape[1] == 2:
        mass = mass * c[:, 1:].to(x.dtype)
    classes = _Classes(labels, channels, lowest=None)
    if dzdy is None:
        t = _loss("softmaxlog", x, None, classes, 0, 0.0)
        return call.out((t * mass).sum() / n)
    g = _projection(call, dzdy) * mass / n
    return call.out(_derivative("softmaxlog", x, None, classes, g))


def _labels(c: torch.Tensor, x: torch.Tensor, depth: int, what: str) -> torch.Tensor:
    """Labels as N x depth x H x W: one label per image is replicated over H x W."""
    n, _, h, w = x.shape
    if c.numel() == n and not (c.dim() == 4 and c.shape == (n, depth, h, w)):
        c = c.reshape(n, 1, 1, 1).expand(n, 1, h, w)
    if c.dim() != 4 or c.shape[0] != n or c.shape[2:] != (h, w):
        raise ValueError(
            f"c: expected N labels or an N x {depth} x H x W array with N, H, W = "
            f"{(n, h, w)}, got shape {tuple(c.shape)}")
    if c.shape[1] != depth:
        raise ValueError(f"c: expected {what} along dimension 1, got shape {tuple(c.shape)}")
    return c


class _Classes:
    """Categorical labels ``c`` (N x 1 x H x W, 1-based, below 1 = ignored), checked: integers
    up to C, and at least ``lowest`` when given.  ``index`` gives them as 0-based int64
    indices (ignored ones pointing at 0), made on first use; the GPU kernels read ``c``."""

    def __init__(self, c: torch.Tensor, channels: int, lowest: Optional[int]):
        self.c = c
        lo, hi = _label_range(c)
        if hi > channels or (lowest is not None and lo < lowest):
            first = "1" if lowest is None else str(lowest)
            raise ValueError(
                f"c: expected class indices up to {channels} (from {first}; 0 = ignore), "
                f"got values in {lo}..{hi}")
        self.lowest = lo
        self._index = None

    @property
    def index(self) -> torch.Tensor:
        if self._index is None:
            i = self.c.long() - 1
            self._index = i.clamp_(min=0) if self.lowest < 1 else i
        return self._index


def _label_range(c: torch.Tensor) -> Tuple[int, int]:
    """(smallest, largest) label, checked to be integers: one device synchronisation, which
    a later call on the same labels, unchanged (same tensor, same version), skips."""
    base = c._base if c._base is not None else c     # the caller's tensor, not our view
    view = (tuple(c.shape), c.stride(), c.storage_offset())
    hit = _CHECKED.get(id(base))
    if hit is not None and hit[0]() is base and hit[1] == base._version and hit[2] == view:
        return hit[3]
    if c.dtype == torch.bool:
        c = c.to(torch.uint8)
    stats = list(torch.aminmax(c)) if c.numel() else [c.new_zeros(()), c.new_zeros(())]
    if c.dtype.is_floating_point:
        stats.append((c != c.round()).any().to(c.dtype))
    stats = torch.stack([t.to(c.dtype) for t in stats]).tolist()
    if len(stats) == 3 and stats[2]:
        raise ValueError("c: expected integer class indices, got non-integer labels")
    found = (int(stats[0]), int(stats[1]))
    key = id(base)
    try:
        ref = weakref.ref(base, lambda _, key=key: _CHECKED.pop(key, None))
    except TypeError:
        return found
    _CHECKED[key] = (ref, base._version, view, found)
    return found


# labels already checked: id -> (weak reference, version, the view's geometry, range)
_CHECKED: Dict[int, tuple] = {}


def _weights(call, instance_weights, shape, ignore):
    """w = [c != 0] (if some label is 0) times the broadcast instance weights, or None."""
    weights = None if ignore is None else (~ignore).to(call.dtype)
    if instance_weights is None:
        return weights
    iw = call.scalar_or_tensor(instance_weights, "instance_weights")
    if iw.dim() == 1 and iw.numel() == shape[0]:
        iw = iw.reshape(-1, 1, 1, 1)
    T.expect_broadcastable(iw, "instance_weights", shape, "the labels' shape")
    return iw.expand(shape) if weights is None else weights * iw


def _projection(call, dzdy) -> Union[float, torch.Tensor]:
    """The scalar ``dzdy``: a Python number stays one (no device copy, and a unit
    projection costs no multiplication), anything else becomes a 0-d tensor."""
    if isinstance(dzdy, numbers.Real) and not isinstance(dzdy, bool):
        return float(dzdy)
    d = call.tensor(dzdy, "dzdy")
    if d.numel() != 1:
        raise ValueError(f"dzdy: expected a scalar (the loss is a scalar), got shape {tuple(d.shape)}")
    return d.reshape(())


def _loss(loss, x, c, classes, top_k, threshold):
    """Per-location loss t: N x 1 x H x W (categorical) or N x C x H x W (attribute)."""
    if loss == "softmaxlog" and _triton.applies(x):
        return _triton_loss.softmaxlog_loss(x, classes.c)   # 0 at ignored locations
    index = classes.index if classes is not None else None
    if loss == "classerror":
        return (x.argmax(dim=1, keepdim=True) != index).to(x.dtype)
    if loss == "topkerror":
        k = min(top_k, x.shape[1])
        top = torch.sort(x, dim=1, descending=True, stable=True)[1][:, :k]
        return 1 - (top == index).any(dim=1, keepdim=True).to(x.dtype)
    if loss == "log":
        return -torch.log(x.gather(1, index))
    if loss == "softmaxlog":
        return -log_softmax_channels(x).gather(1, index)
    if loss == "mhinge":
        return (1 - x.gather(1, index)).clamp_(min=0)
    if loss == "mshinge":
        xc = x.gather(1, index)
        others = x.scatter(1, index, float("-inf")).amax(dim=1, keepdim=True)
        return (1 - xc + others).clamp_(min=0)
    if loss == "binaryerror":
        return (torch.sign(x - threshold) != c).to(x.dtype)
    if loss == "binarylog":
        return -torch.log(c * (x - 0.5) + 0.5)
    if loss == "logistic":
        a = -c * x
        b = a.clamp(min=0)
        return b + torch.log(torch.exp(-b) + torch.exp(a - b))
    return (1 - c * x).clamp_(min=0)  # hinge


def _derivative(loss, x, c, classes, g):
    """dzdx for the per-location weight-times-projection ``g`` (scalar or label-shaped)."""
    if loss == "softmaxlog" and _triton.applies(x):
        return _triton_loss.softmaxlog_derivative(x, classes.c, g)
    index = classes.index if classes is not None else None
    if loss in ("classerror", "topkerror", "binaryerror"):
        return torch.zeros_like(x)
    if loss == "softmaxlog":
        # on the CPU log-softmax and exp beat PyTorch's softmax over dimension 1; on the GPU
        # the softmax kernel is one pass
        p = softmax_channels(x) if x.is_cuda else log_softmax_channels(x).exp_()
        if isinstance(g, float):
            if g != 1.0:
                p.mul_(g)
            return p.scatter_add_(1, index, torch.full(index.shape, -g, dtype=x.dtype,
                                                       device=x.device))
        p.scatter_add_(1, index, torch.full(index.shape, -1.0, dtype=x.dtype, device=x.device))
        return p.mul_(g)
    if loss in ("log", "mhinge"):
        xc = x.gather(1, index)
        d = -g / xc.clamp(min=1e-8) if loss == "log" else -g * (xc < 1).to(x.dtype)
        return torch.zeros_like(x).scatter_(1, index, d.expand(index.shape))
    if loss == "mshinge":
        xc = x.gather(1, index)
        xq, q = x.scatter(1, index, float("-inf")).max(dim=1, keepdim=True)
        big = (g * (xc - xq < 1).to(x.dtype)).expand(index.shape)
        return torch.zeros_like(x).scatter_(1, index, -big).scatter_(1, q, big)
    if loss == "binarylog":
        return -g / (x + (c - 1) * 0.5)
    if loss == "logistic":
        return -g * c / (1 + torch.exp(c * x))
    return -g * c * (c * x < 1).to(x.dtype)  # hinge
