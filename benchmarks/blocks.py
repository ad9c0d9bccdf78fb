#!/usr/bin/env python3
"""Forward+backward timing of each matconvnet block against the same computation in autograd.

For every case (a block at an AlexNet / VGG-16 style layer shape: by default on CPU scaled
down so that one forward+backward takes roughly 5-50 ms on 2 cores; on CUDA the real layer
shapes at batch 32; see ``--size``) two contenders are timed in the same process, on the same
tensors:

* **ours**: the block's forward call and then its backward call, e.g.::

      y = mcn.vl_nnconv(x, f, b, pad=1)
      dzdx, dzdf, dzdb = mcn.vl_nnconv(x, f, b, dzdy, pad=1)

* **autograd**: the equivalent ``torch.nn.functional`` call on leaf tensors with
  ``requires_grad=True``, then ``torch.autograd.backward(y, dzdy)`` (grads cleared before
  every run).

Both are timed forward+backward together.  Each case first checks (once) that the two
produce the same output and derivatives, then runs ``--warmup`` untimed runs of each, then
``--repeat`` timed samples of each, alternating ours / autograd so that drift and load from
other processes hit both alike.  A sample loops over the computation enough times to last
at least ``--min-time`` ms (short cases such as the loss on 128 x 1000 scores would otherwise
be dominated by timer noise); the reported time is the median sample divided by that count.
On CUDA every sample is bracketed by ``torch.cuda.synchronize()``.

The result is a Markdown table: block | case | ours fwd+bwd ms | autograd fwd+bwd ms |
ratio (ours / autograd) | target | spread; rows whose ratio exceeds the target (1.05 for conv,
convt, pool, relu, softmax and loss; 1.1 for bnorm, LRN and the bilinear sampler) are
flagged.  The other blocks (normalizelp, spnorm, pdist, dropout, concat, crop, noffset) are
compared, for information, with their formula written in plain torch ops; roipool, which
torch lacks, is checked against a per-ROI loop and timed alone.  The spread (interquartile
range / median of each side's samples) tells how much to trust a row: other processes on the
machine show up there.  ``--profile`` prints torch.profiler operator tables of both sides
instead of timing.

Run from the repository root::

    python3 benchmarks/blocks.py                        # all cases, CPU, float32
    python3 benchmarks/blocks.py --filter pool --repeat 25
    python3 benchmarks/blocks.py --device cuda          # on a GPU machine
    python3 benchmarks/blocks.py --profile --filter loss
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

try:
    import matconvnet as mcn
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import matconvnet as mcn

TARGET = 1.05  # ours / autograd, for conv, convt, pool, relu, softmax and loss
TARGET_NORM = 1.1  # for bnorm, LRN (normalize) and the bilinear sampler

Tensors = Dict[str, torch.Tensor]


@dataclass
class Case:
    """One benchmark row.

    ``make(device, dtype, gen)`` builds the input tensors (a dict).  ``ours(t)`` runs the
    block forward then backward and returns ``(y, *derivatives)``.  ``ref(*leaves)`` is the
    autograd forward on the tensors named in ``leaves`` (in that order, each made a leaf with
    ``requires_grad=True``); its output ``y`` is back-propagated with ``t['dzdy']`` (or with
    nothing when ``y`` is a scalar loss) and ``(y, *leaf grads)`` is compared with ours.
    ``info``: the target is shown but a miss is not flagged; ``timed_ref=False``: the
    reference is only a correctness check (too slow to be a fair contender), only ours is
    timed.
    """
    block: str
    desc: str
    make: Callable[[torch.device, torch.dtype, torch.Generator], Tensors]
    ours: Callable[[Tensors], Sequence[Optional[torch.Tensor]]]
    ref: Callable[..., torch.Tensor]
    leaves: Tuple[str, ...] = ("x",)
    target: Optional[float] = TARGET
    extra: Dict[str, object] = field(default_factory=dict)
    info: bool = False
    timed_ref: bool = True


def _randn(shape, device, dtype, gen, scale=1.0):
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * scale).to(device, dtype)


def _with_dzdy(t: Tensors, fn, gen, *names) -> Tensors:
    """Add ``dzdy`` shaped like ``fn(*t[names])`` (run once without grad)."""
    with torch.no_grad():
        y = fn(*(t[n] for n in names))
    t["dzdy"] = _randn(y.shape, "cpu", torch.float32, gen).to(y.device, y.dtype)
    return t


# ----------------------------------------------------------------------------- cases


def conv_case(desc, n, c, hw, k, fhw, pad=0, stride=1, dilate=1, groups=1):
    def ref(x, f, b):
        return F.conv2d(x, f, b, stride, pad, dilate, groups)

    def make(device, dtype, gen):
        fan_in = (c // groups) * fhw * fhw
        t = {"x": _randn((n, c, hw, hw), device, dtype, gen),
             "f": _randn((k, c // groups, fhw, fhw), device, dtype, gen, fan_in ** -0.5),
             "b": _randn((k,), device, dtype, gen, 0.1)}
        return _with_dzdy(t, ref, gen, "x", "f", "b")

    def ours(t):
        x, f, b = t["x"], t["f"], t["b"]
        y = mcn.vl_nnconv(x, f, b, pad=pad, stride=stride, dilate=dilate)
        dzdx, dzdf, dzdb = mcn.vl_nnconv(x, f, b, t["dzdy"], pad=pad, stride=stride,
                                         dilate=dilate)
        return y, dzdx, dzdf, dzdb

    opts = [f"pad {pad}"] if pad else []
    opts += [f"stride {stride}"] if stride != 1 else []
    opts += [f"dilate {dilate}"] if dilate != 1 else []
    opts += [f"{groups} groups"] if groups != 1 else []
    shape = f"x {n}x{c}x{hw}x{hw}, f {k}x{c // groups}x{fhw}x{fhw}"
    return Case("conv", f"{desc}: {shape}" + (", " + ", ".join(opts) if opts else ""),
                make, ours, ref, ("x", "f", "b"))


def convt_case(desc, n, d, hw, k, fhw, upsample, crop):
    def ref(x, f, b):
        return F.conv_transpose2d(x, f, b, upsample, crop)

    def make(device, dtype, gen):
        t = {"x": _randn((n, d, hw, hw), device, dtype, gen),
             "f": _randn((d, k, fhw, fhw), device, dtype, gen, (d * fhw * fhw) ** -0.5),
             "b": _randn((k,), device, dtype, gen, 0.1)}
        return _with_dzdy(t, ref, gen, "x", "f", "b")

    def ours(t):
        x, f, b = t["x"], t["f"], t["b"]
        y = mcn.vl_nnconvt(x, f, b, upsample=upsample, crop=crop)
        dzdx, dzdf, dzdb = mcn.vl_nnconvt(x, f, b, t["dzdy"], upsample=upsample, crop=crop)
        return y, dzdx, dzdf, dzdb

    return Case("convt", f"{desc}: x {n}x{d}x{hw}x{hw}, f {d}x{k}x{fhw}x{fhw}, "
                         f"upsample {upsample}, crop {crop}",
                make, ours, ref, ("x", "f", "b"))


def pool_case(desc, method, n, c, hw, pool, stride, pad=0, switches=True):
    """``switches``: max pooling's forward call returns the switches and the backward call
    takes them (what the wrappers do); False times the stateless call forms, whose backward
    call finds the maxima again (shown for information)."""
    if method == "max":
        def ref(x):
            return F.max_pool2d(x, pool, stride, pad)
    else:
        def ref(x):
            return F.avg_pool2d(x, pool, stride, pad, count_include_pad=False)

    def make(device, dtype, gen):
        return _with_dzdy({"x": _randn((n, c, hw, hw), device, dtype, gen)}, ref, gen, "x")

    def ours(t):
        x, kw = t["x"], dict(method=method, pad=pad, stride=stride)
        if method == "max" and switches:
            y, s = mcn.vl_nnpool(x, pool, return_switches=True, **kw)
            return y, mcn.vl_nnpool(x, pool, t["dzdy"], switches=s, **kw)
        y = mcn.vl_nnpool(x, pool, **kw)
        return y, mcn.vl_nnpool(x, pool, t["dzdy"], **kw)

    opts = f", pad {pad}" if pad else ""
    opts += ", stateless" if method == "max" and not switches else ""
    return Case(f"pool {method}", f"{desc}: x {n}x{c}x{hw}x{hw}, pool {pool}, stride {stride}"
                + opts, make, ours, ref, info=method == "max" and not switches)


def elementwise_case(block, desc, n, c, h, w, use_y=True, target=TARGET):
    """relu, sigmoid, softmax (the latter two with and without the forward output y=)."""
    ref = {"relu": F.relu, "sigmoid": torch.sigmoid,
           "softmax": lambda x: torch.softmax(x, dim=1)}[block]
    fn = {"relu": mcn.vl_nnrelu, "sigmoid": mcn.vl_nnsigmoid, "softmax": mcn.vl_nnsoftmax}[block]

    def make(device, dtype, gen):
        return _with_dzdy({"x": _randn((n, c, h, w), device, dtype, gen, 2.0)}, ref, gen, "x")

    if block == "relu":
        def ours(t):
            x = t["x"]
            y = fn(x)
            return y, fn(x, t["dzdy"])
        form = ""
    elif use_y:
        def ours(t):
            x = t["x"]
            y = fn(x)
            return y, fn(x, t["dzdy"], y=y)
        form = ", backward given y="
    else:
        def ours(t):
            x = t["x"]
            y = fn(x)
            return y, fn(x, t["dzdy"])
        form = ", backward recomputes y"
    return Case(block, f"{desc}: x {n}x{c}x{h}x{w}{form}", make, ours, ref, target=target)


def loss_case(desc, n, c, h, w):
    def make(device, dtype, gen):
        x = _randn((n, c, h, w), device, dtype, gen, 2.0)
        labels = torch.randint(1, c + 1, (n, 1, h, w), generator=gen).to(device)
        t = {"x": x, "c": labels.reshape(n) if h == w == 1 else labels,
             "target": (labels - 1).reshape(n, h, w)}  # 0-based, for F.cross_entropy
        return t

    def ours(t):
        x, c_ = t["x"], t["c"]
        y = mcn.vl_nnloss(x, c_, loss="softmaxlog")
        dzdx = mcn.vl_nnloss(x, c_, 1.0, loss="softmaxlog")
        return y, dzdx

    def ref(x, target):
        return F.cross_entropy(x, target, reduction="sum") / n

    lab = f"c ({n},)" if h == w == 1 else f"c {n}x1x{h}x{w}"
    return Case("loss", f"{desc}: x {n}x{c}x{h}x{w}, {lab}, softmaxlog",
                make, ours, ref, ("x",), extra={"ref_args": ("target",)})


# The blocks added after the core ones share one pattern, folded into block_case.


def _sz(*dims) -> str:
    """``8x64x56x56``."""
    return "x".join(str(d) for d in dims)


def _normals(scale=1.0, **shapes):
    """``inputs`` for :func:`block_case`: a normal tensor (times ``scale``) per keyword,
    ``name=shape``."""
    def inputs(device, dtype, gen):
        return {name: _randn(shape, device, dtype, gen, scale) for name, shape in shapes.items()}
    return inputs


def block_case(block, desc, inputs, call, ref, leaves=("x",), target=None, ref_args=(),
               info=False, timed_ref=True):
    """A block whose forward is ``call(t)`` and backward ``call(t, dzdy)``.

    ``inputs(device, dtype, gen)`` builds the tensors; ``ref(*leaves, *ref_args)`` is the
    autograd forward.  The first ``len(leaves)`` results of the backward call are compared
    with autograd's leaf gradients (so bnorm's returned moments are left out)."""
    def make(device, dtype, gen):
        return _with_dzdy(inputs(device, dtype, gen), ref, gen, *leaves, *ref_args)

    def ours(t):
        y = call(t)
        d = call(t, t["dzdy"])
        d = tuple(d) if isinstance(d, (tuple, list)) else (d,)
        return (y, *d[:len(leaves)])

    return Case(block, desc, make, ours, ref, tuple(leaves), target,
                extra={"ref_args": tuple(ref_args)}, info=info, timed_ref=timed_ref)


def bnorm_case(desc, n, c, h, w):
    def ref(x, g, b):
        return F.batch_norm(x, None, None, g, b, training=True, eps=1e-4)

    def make(device, dtype, gen):
        t = _normals(x=(n, c, h, w), g=(c,), b=(c,))(device, dtype, gen)
        return _with_dzdy(t, ref, gen, "x", "g", "b")

    def ours(t):
        # as the wrappers do: the backward call reuses the forward call's batch moments
        y, moments = mcn.vl_nnbnorm(t["x"], t["g"], t["b"], return_moments=True)
        dzdx, dzdg, dzdb, _ = mcn.vl_nnbnorm(t["x"], t["g"], t["b"], t["dzdy"],
                                             moments=moments)
        return y, dzdx, dzdg, dzdb

    return Case("bnorm", f"{desc}: x {_sz(n, c, h, w)}, batch statistics", make, ours, ref,
                ("x", "g", "b"), TARGET_NORM)


def lrn_case(desc, n, c, hw, param, scale):
    """``param = [N, kappa, alpha, beta]`` with odd N: MatConvNet's alpha is not divided by N
    (torch's is) and for even N its window is torch's mirrored.  ``scale``: of the input, so
    that the normalisation term matters (as on post-ReLU activations)."""
    size, kappa, alpha, beta = param
    assert size % 2 == 1, "even LRN windows differ between MatConvNet and torch"

    def ref(x):
        return F.local_response_norm(x, size, alpha=alpha * size, beta=beta, k=kappa)

    return block_case("normalize", f"{desc}: x {_sz(n, c, hw, hw)}, "
                                   f"param [{size}, {kappa:g}, {alpha:g}, {beta:g}]",
                      _normals(scale, x=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nnnormalize(t["x"], list(param), *d),
                      ref, target=TARGET_NORM)


def _affine_grid(n, ho, wo, gen):
    """Spatial-transformer sampling grids (N x 2 x Ho x Wo; vertical, horizontal): the output
    pixels rotated by up to 0.3 rad, scaled by 0.7 and shifted by up to 0.1, so every point
    stays strictly inside [-1, 1] (no zeroed samples left of / above the first pixel)."""
    angle = (torch.rand(n, generator=gen) - 0.5) * 0.6
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.2
    cos, sin = (0.7 * angle.cos())[:, None, None], (0.7 * angle.sin())[:, None, None]
    u, v = torch.meshgrid(torch.linspace(-1, 1, ho), torch.linspace(-1, 1, wo), indexing="ij")
    return torch.stack((cos * u - sin * v + shift[:, 0, None, None],
                        sin * u + cos * v + shift[:, 1, None, None]), dim=1)


def bilinear_case(desc, n, c, hw, out_hw):
    def inputs(device, dtype, gen):
        if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
            # Seen with torch 2.13: heap corruption (crashes, NaNs) at 224x224, for ours and
            # for autograd alike, as both call that kernel.
            raise NotImplementedError("PyTorch's CPU grid_sampler_2d_backward is unsafe in "
                                      "16-bit types")
        return {"x": _randn((n, c, hw, hw), device, dtype, gen),
                "grid": _affine_grid(n, out_hw, out_hw, gen).to(device, dtype)}

    def ref(x, grid):
        return F.grid_sample(x, grid.flip(1).permute(0, 2, 3, 1), mode="bilinear",
                             padding_mode="zeros", align_corners=True)

    return block_case("bilinearsampler", f"{desc}: x {_sz(n, c, hw, hw)}, "
                                         f"grid {_sz(n, 2, out_hw, out_hw)} (affine)",
                      inputs, lambda t, *d: mcn.vl_nnbilinearsampler(t["x"], t["grid"], *d),
                      ref, ("x", "grid"), TARGET_NORM)


def normalizelp_case(desc, n, c, hw):
    def ref(x):
        return x / ((x * x).sum(dim=1, keepdim=True) + 1e-2).sqrt()

    return block_case("normalizelp", f"{desc}: x {_sz(n, c, hw, hw)}, p 2 over channels",
                      _normals(x=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nnnormalizelp(t["x"], *d),
                      ref, target=TARGET_NORM, info=True)


def spnorm_case(desc, n, c, hw, param):
    """``param = [PH, PW, alpha, beta]`` with odd PH, PW (centred windows)."""
    ph, pw, alpha, beta = param
    assert ph % 2 == 1 and pw % 2 == 1

    def ref(x):
        n2 = F.avg_pool2d(x * x, (ph, pw), 1, (ph // 2, pw // 2), count_include_pad=False)
        return x * (1 + alpha * n2).pow(-beta)

    return block_case("spnorm", f"{desc}: x {_sz(n, c, hw, hw)}, "
                                f"param [{ph}, {pw}, {alpha:g}, {beta:g}]",
                      _normals(x=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nnspnorm(t["x"], list(param), *d), ref)


def pdist_case(desc, n, c, hw):
    def ref(x, x0):
        return torch.linalg.vector_norm(x - x0, dim=1, keepdim=True)

    return block_case("pdist", f"{desc}: x, x0 {_sz(n, c, hw, hw)}, p 2",
                      _normals(x=(n, c, hw, hw), x0=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nnpdist(t["x"], t["x0"], 2, *d), ref, ("x", "x0"))


def roipool_case(desc, n, c, h, w, k, sub):
    """Max ROI pooling of ``k`` random ROIs into ``sub x sub`` bins.  ROI sides are multiples
    of ``sub`` so that every bin boundary is exact in float32; then the bins are those of
    ``F.adaptive_max_pool2d`` on the ROI, which the (untimed) reference loops over."""
    def inputs(device, dtype, gen):
        def corner(size, count):  # 1-based first pixel and side (a multiple of sub)
            side = sub * torch.randint(1, size // sub + 1, (count,), generator=gen)
            first = 1 + (torch.rand(count, generator=gen) * (size - side + 1)).long()
            return first, side
        (u0, du), (v0, dv) = corner(w, k), corner(h, k)
        image = torch.randint(1, n + 1, (k,), generator=gen)
        rois = torch.stack((image, u0, v0, u0 + du - 1, v0 + dv - 1))  # 5 x K
        return {"x": _randn((n, c, h, w), device, dtype, gen), "rois": rois.to(device, dtype)}

    def ref(x, rois):
        return torch.stack([F.adaptive_max_pool2d(x[i - 1, :, v0 - 1:v1, u0 - 1:u1], sub)
                            for i, u0, v0, u1, v1 in rois.t().long().tolist()])

    return block_case("roipool", f"{desc}: x {_sz(n, c, h, w)}, {k} ROIs, "
                                 f"{sub}x{sub} bins, max",
                      inputs, lambda t, *d: mcn.vl_nnroipool(
                          t["x"], t["rois"], *d, method="max", subdivisions=sub),
                      ref, ref_args=("rois",), timed_ref=False)


def dropout_case(desc, n, c, h, w, rate=0.5):
    def inputs(device, dtype, gen):
        keep = torch.rand((n, c, h, w), generator=gen) >= rate
        return {"x": _randn((n, c, h, w), device, dtype, gen),
                "mask": (keep.float() / (1 - rate)).to(device, dtype)}

    def ref(x, mask):
        return mask * x

    return block_case("dropout", f"{desc}: x {_sz(n, c, h, w)}, rate {rate:g}, mask given",
                      inputs, lambda t, *d: mcn.vl_nndropout(t["x"], *d, mask=t["mask"]),
                      ref, ref_args=("mask",))


def concat_case(desc, n, channels, hw):
    names = tuple(f"x{i + 1}" for i in range(len(channels)))

    def ref(*xs):
        return torch.cat(xs, dim=1)

    shapes = _sz(n, "{" + ",".join(map(str, channels)) + "}", hw, hw)
    return block_case("concat", f"{desc}: {len(channels)} inputs {shapes}, channels",
                      _normals(**{a: (n, ch, hw, hw) for a, ch in zip(names, channels)}),
                      lambda t, *d: mcn.vl_nnconcat([t[a] for a in names], 1, *d),
                      ref, names)


def crop_case(desc, n, c, hw, crop):
    top, bottom, left, right = crop

    def ref(x):
        return x[:, :, top:hw - bottom, left:hw - right]

    return block_case("crop", f"{desc}: x {_sz(n, c, hw, hw)}, crop {list(crop)}",
                      _normals(x=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nncrop(t["x"], list(crop), *d), ref)


def noffset_case(desc, n, c, hw, param):
    a, b = param

    def ref(x):
        return x - a * (x * x).sum(dim=1, keepdim=True).clamp(min=1e-8).pow(b)

    return block_case("noffset", f"{desc}: x {_sz(n, c, hw, hw)}, param [{a:g}, {b:g}]",
                      _normals(x=(n, c, hw, hw)),
                      lambda t, *d: mcn.vl_nnnoffset(t["x"], list(param), *d), ref)


def cases(full: bool = False) -> List[Case]:
    """The benchmark rows.  ``full``: the real AlexNet / VGG-16 layer shapes at batch 32 (for
    a GPU); otherwise those shapes scaled down (batch 8-16, fewer channels, smaller images)
    so that one forward+backward takes about 5-50 ms on a 2-core CPU."""
    def pick(small, big):
        return big if full else small
    b = pick(8, 32)  # batch
    return [
        # AlexNet conv1: 3x227x227 -> 96 filters 11x11 stride 4 (small: half image, half filters).
        conv_case("AlexNet conv1", b, 3, pick(115, 227), pick(48, 96), 11, stride=4),
        # AlexNet conv2: 96x27x27 -> 256, 5x5 pad 2, 2 filter groups (small: channels /2).
        conv_case("AlexNet conv2", b, pick(48, 96), 27, pick(128, 256), 5, pad=2, groups=2),
        # VGG-16 conv3_x: 256x56x56 -> 256, 3x3 pad 1 (small: channels /4, image /2).
        conv_case("VGG conv3", b, pick(64, 256), pick(28, 56), pick(64, 256), 3, pad=1),
        conv_case("dilated 3x3 (DeepLab)", b, pick(64, 256), pick(28, 56), pick(64, 256), 3,
                  pad=2, dilate=2),
        # 1x1 bottleneck (NiN / ResNet): 1024x14x14 -> 256 (small: 256 -> 256).
        conv_case("1x1 (NiN/ResNet)", pick(16, b), pick(256, 1024), 14, 256, 1),
        # AlexNet fc6 as a convolution whose filter covers its 256x6x6 input: -> 4096
        # (small: 128x6x6 -> 512, batch 16).
        conv_case("fully connected (fc6)", pick(16, b), pick(128, 256), 6, pick(512, 4096), 6),
        # convt: 2x upsampling with 4x4 filters and crop 1 (FCN / DCGAN) and U-Net's 2x2 up-conv.
        convt_case("2x upsample (FCN/DCGAN)", b, pick(64, 256), 28, pick(64, 256), 4, 2, 1),
        convt_case("U-Net up-conv", b, pick(128, 512), 28, pick(64, 256), 2, 2, 0),
        # pooling: AlexNet pool1 (96x55x55, 3x3 stride 2), VGG pool2 (128x112x112, 2x2 stride
        # 2), GoogLeNet-style 3x3 stride 1 pad 1; small: channels and image halved.
        pool_case("AlexNet pool1", "max", b, pick(48, 96), 55, 3, 2),
        pool_case("VGG pool2", "max", b, pick(64, 128), pick(56, 112), 2, 2),
        pool_case("3x3 stride 1 pad 1", "max", b, pick(64, 256), 28, 3, 1, 1),
        pool_case("AlexNet pool1", "max", b, pick(48, 96), 55, 3, 2, switches=False),
        pool_case("AlexNet pool1", "avg", b, pick(48, 96), 55, 3, 2),
        pool_case("VGG pool2", "avg", b, pick(64, 128), pick(56, 112), 2, 2),
        pool_case("3x3 stride 2 pad 1", "avg", b, pick(64, 128), pick(56, 112), 3, 2, 1),
        # relu / sigmoid after VGG conv1_x (64x224x224; small: image /2) and on fc7's 4096.
        elementwise_case("relu", "VGG conv1", b, 64, pick(112, 224), pick(112, 224)),
        elementwise_case("relu", "AlexNet fc7", 128, 4096, 1, 1),
        elementwise_case("sigmoid", "VGG conv1", b, 64, pick(112, 224), pick(112, 224),
                         target=None),
        elementwise_case("sigmoid", "VGG conv1", b, 64, pick(112, 224), pick(112, 224),
                         use_y=False, target=None),
        # softmax and loss: ImageNet scores (128 x 1000) and per-pixel PASCAL scores (21
        # classes; 128x128 small, 256x256 full).
        elementwise_case("softmax", "ImageNet scores", 128, 1000, 1, 1),
        elementwise_case("softmax", "FCN per-pixel", b, 21, pick(128, 256), pick(128, 256)),
        elementwise_case("softmax", "FCN per-pixel", b, 21, pick(128, 256), pick(128, 256),
                         use_y=False, target=None),
        loss_case("ImageNet scores", 128, 1000, 1, 1),
        loss_case("FCN per-pixel", b, 21, pick(128, 256), pick(128, 256)),
        # batch normalisation (training: batch statistics) after a VGG conv2 (128x112x112;
        # small: channels /2, image /2), a ResNet res3 (512x28x28; small: channels /4) and
        # an fc layer (4096; batch 128).
        bnorm_case("VGG conv2", b, pick(64, 128), pick(56, 112), pick(56, 112)),
        bnorm_case("ResNet res3", b, pick(128, 512), 28, 28),
        bnorm_case("fc (4096)", 128, 4096, 1, 1),
        # AlexNet LRN: norm1 on 96x55x55, norm2 on 256x27x27 (small: channels /2), with
        # MatConvNet's AlexNet parameters.
        lrn_case("AlexNet norm1", b, pick(48, 96), 55, (5, 1.0, 1e-4 / 5, 0.75), 30.0),
        lrn_case("AlexNet norm2", b, pick(128, 256), 27, (5, 1.0, 1e-4 / 5, 0.75), 30.0),
        # spatial transformer: an affine grid over a feature map (small: 64x56x56 -> 56x56;
        # full: 256x56x56) and over the image (3x224x224 -> 224x224; small: 112x112 out).
        bilinear_case("ST on features", b, pick(64, 256), 56, 56),
        bilinear_case("ST on the image", b, 3, 224, pick(112, 224)),
        # the other blocks, against the same formula in plain torch ops (information only).
        normalizelp_case("conv5 features", b, pick(256, 512), pick(14, 28)),
        spnorm_case("VGG conv3", b, pick(64, 256), pick(28, 56), (5, 5, 1.0, 0.5)),
        pdist_case("conv features", b, pick(64, 256), pick(28, 56)),
        # Fast R-CNN: VGG-16 conv5_3 of 2 images of ~600x800 (512x38x50), 128 ROIs into
        # 7x7 bins (small: 128 channels, 64 ROIs).  Timed alone: torch has no ROI pooling.
        roipool_case("Fast R-CNN", 2, pick(128, 512), 38, 50, pick(64, 128), 7),
        dropout_case("AlexNet fc6", 128, 4096, 1, 1),
        concat_case("GoogLeNet inception 3a", b, (64, 128, 32, 32), 28),
        crop_case("FCN score crop", b, 21, pick(160, 320), (16, 16, 16, 16)),
        noffset_case("conv features", b, pick(64, 256), pick(28, 56), (1.0, 0.5)),
    ]


# ----------------------------------------------------------------------------- running


class Runner:
    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def sample(self, fn: Callable[[], object], number: int) -> float:
        """Seconds per call of ``fn``, over ``number`` back-to-back calls."""
        self.sync()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / number


def contenders(case: Case, t: Tensors):
    """The two zero-argument callables (ours, autograd) and the autograd leaves."""
    leaves = [t[name].detach().clone().requires_grad_(True) for name in case.leaves]
    ref_args = [t[name] for name in case.extra.get("ref_args", ())]
    dzdy = t.get("dzdy")

    def run_ours():
        return case.ours(t)

    def run_ref():
        for leaf in leaves:
            leaf.grad = None
        y = case.ref(*leaves, *ref_args)
        torch.autograd.backward(y, dzdy)
        return (y.detach(), *(leaf.grad for leaf in leaves))

    return run_ours, run_ref


def tolerance(dtype: torch.dtype, device: torch.device) -> float:
    """Max abs error allowed, relative to the largest reference value.

    The two sides run the same kernels, but bias sums and reductions may be ordered
    differently; on CUDA, convolutions may use TF32 (PyTorch's default), hence the looser
    float32 bound there."""
    if dtype == torch.float64:
        return 1e-9
    if dtype == torch.float32:
        return 2e-3 if device.type == "cuda" else 1e-4
    return 2e-2


def check(case: Case, ours_out, ref_out, dtype, device):
    names = ["y"] + [f"dzd{n}" for n in case.leaves]
    if len(ours_out) != len(ref_out):
        raise AssertionError(f"{case.block} [{case.desc}]: {len(ours_out)} outputs from ours, "
                             f"{len(ref_out)} from autograd")
    tol = tolerance(dtype, device)
    # In 16-bit types random data has tied maxima within pooling windows, which MatConvNet
    # (column-major) and PyTorch (row-major) break differently; ties only move derivative
    # mass within a window, so compare the per-channel sums of the max-pool derivative
    # (max pooling and ROI max pooling).
    tie_blind = (case.block in ("pool max", "roipool")
                 and dtype not in (torch.float32, torch.float64))
    for name, a, b in zip(names, ours_out, ref_out):
        if a is None or b is None:
            raise AssertionError(f"{case.block} [{case.desc}]: {name} missing")
        a, b = a.detach().double().cpu(), b.detach().double().cpu().reshape(a.shape)
        if tie_blind and name != "y":
            a, b = a.sum(dim=(2, 3)), b.sum(dim=(2, 3))
        if not bool(torch.isfinite(b).all()):
            print(f"warning: {case.block} [{case.desc}]: autograd's {name} overflows in "
                  f"{dtype}; not compared", file=sys.stderr)
            continue
        scale = b.abs().max().item() or 1.0
        err = (a - b).abs().max().item()
        if not err <= tol * scale:
            raise AssertionError(
                f"{case.block} [{case.desc}]: {name} differs from autograd: max abs error "
                f"{err:.3g} > {tol:g} x max |ref| {scale:.3g}")


def run_case(case: Case, runner: Runner, dtype, args) -> Tuple[List[float], List[float]]:
    """Seconds per forward+backward: the samples of ours and of autograd (none when the
    reference is only a check, ``case.timed_ref`` false)."""
    gen = torch.Generator().manual_seed(0)
    t = case.make(runner.device, dtype, gen)
    run_ours, run_ref = contenders(case, t)
    check(case, run_ours(), run_ref(), dtype, runner.device)
    timed = (run_ours, run_ref) if case.timed_ref else (run_ours,)
    for _ in range(args.warmup):
        for fn in timed:
            fn()
    # Calls per sample: enough for the slower contender to last --min-time.
    one = max(runner.sample(fn, 1) for fn in timed)
    number = max(1, math.ceil(args.min_time / 1e3 / max(one, 1e-9)))
    number = min(number, 1000)
    ours_s, ref_s = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(args.repeat):
            # Alternate which contender goes first, so neither always follows the other.
            if not case.timed_ref:
                ours_s.append(runner.sample(run_ours, number))
            elif i % 2 == 0:
                ours_s.append(runner.sample(run_ours, number))
                ref_s.append(runner.sample(run_ref, number))
            else:
                ref_s.append(runner.sample(run_ref, number))
                ours_s.append(runner.sample(run_ours, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    return ours_s, ref_s


def spread(samples: Sequence[float]) -> float:
    """Interquartile range over median, in percent (0 for fewer than 4 samples)."""
    if len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return 100.0 * (q3 - q1) / statistics.median(samples)


def profile_case(case: Case, runner: Runner, dtype, args) -> None:
    """Print torch.profiler's operator table for ours and for autograd (``--profile``)."""
    from torch.profiler import ProfilerActivity, profile

    gen = torch.Generator().manual_seed(0)
    t = case.make(runner.device, dtype, gen)
    run_ours, run_ref = contenders(case, t)
    timed = (("ours", run_ours), ("autograd", run_ref))[:2 if case.timed_ref else 1]
    for _ in range(max(1, args.warmup)):
        for _, fn in timed:
            fn()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if runner.cuda else [])
    sort = "self_cuda_time_total" if runner.cuda else "self_cpu_time_total"
    for label, fn in timed:
        runner.sync()
        with profile(activities=activities) as prof:
            for _ in range(5):
                fn()
            runner.sync()
        print(f"\n## {label}: {case.block}: {case.desc} (5 runs)\n")
        print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=50))


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0].replace("|", "/") if str(e) else type(e).__name__


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Time each matconvnet block forward+backward against torch autograd.")
    p.add_argument("--repeat", type=int, default=20, help="timed samples per contender (20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per contender (3)")
    p.add_argument("--min-time", type=float, default=5.0,
                   help="shortest sample in ms; short cases loop to reach it (5)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    p.add_argument("--dtype", default="float32",
                   choices=["float32", "float64", "float16", "bfloat16"])
    p.add_argument("--filter", default=None, metavar="NAME",
                   help="only the cases whose 'block: case' text contains NAME "
                        "(case-insensitive), e.g. conv, 'pool max', VGG")
    p.add_argument("--size", choices=["small", "full"], default=None,
                   help="layer shapes: 'small' (scaled down for a CPU; the default on cpu) or "
                        "'full' (real AlexNet/VGG-16 shapes at batch 32; the default on cuda)")
    p.add_argument("--profile", action="store_true",
                   help="instead of timing, print torch.profiler's operator table of ours and "
                        "of autograd for each selected case")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the number of usable cores)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat: expected a positive integer")

    try:
        device = torch.device(args.device)
    except RuntimeError:
        p.error(f"--device: expected cpu or cuda, got {args.device!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            p.error("--device cuda: CUDA is not available in this PyTorch build/machine "
                    f"(torch {torch.__version__})")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    elif device.type != "cpu":
        p.error(f"--device: expected cpu or cuda, got {args.device!r}")
    dtype = getattr(torch, args.dtype)
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count() or 1)
    torch.set_num_threads(threads)

    size = args.size or ("full" if device.type == "cuda" else "small")
    selected = [c for c in cases(size == "full")
                if args.filter is None or args.filter.lower() in f"{c.block}: {c.desc}".lower()]
    if not selected:
        p.error(f"--filter: no case matches {args.filter!r}")

    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {threads} threads")
    print(f"# matconvnet blocks vs autograd: forward+backward, {args.dtype} on {where}, "
          f"{size} shapes")
    runner = Runner(device)
    if args.profile:
        print(f"torch {torch.__version__}; operator profiles")
        for case in selected:
            try:
                profile_case(case, runner, dtype, args)
            except NotImplementedError as e:
                print(f"\n## {case.block}: {case.desc}: skipped: {_first_line(e)}")
        return 0
    print(f"torch {torch.__version__}; median of {args.repeat} interleaved samples after "
          f"{args.warmup} warm-ups; samples of >= {args.min_time:g} ms\n", flush=True)
    rows, misses = [], []
    for case in selected:
        try:
            ours_s, ref_s = run_case(case, runner, dtype, args)
        except NotImplementedError as e:  # a kernel that this dtype / device lacks
            rows.append((case.block, case.desc, "-", "-", "-", f"skipped: {_first_line(e)}",
                         "-"))
            print(f"  {case.block:12s} skipped  {case.desc}", file=sys.stderr, flush=True)
            continue
        except Exception as e:  # a failed equivalence check or a kernel error: report, go on
            rows.append((case.block, case.desc, "-", "-", "-",
                         f"**FAILED**: {type(e).__name__}: {_first_line(e)}", "-"))
            misses.append(f"{case.block} [{case.desc}]: failed ({type(e).__name__})")
            print(f"  {case.block:12s} FAILED   {case.desc}: {_first_line(e)}", file=sys.stderr,
                  flush=True)
            continue
        ours_ms = statistics.median(ours_s) * 1e3
        if not case.timed_ref:  # no autograd contender: absolute time only
            rows.append((case.block, case.desc, f"{ours_ms:.3f}", "-", "-", "-",
                         f"{spread(ours_s):.0f}% / -"))
            print(f"  {case.block:12s} {ours_ms:5.1f} ms  {case.desc}", file=sys.stderr,
                  flush=True)
            continue
        ref_ms = statistics.median(ref_s) * 1e3
        ratio = ours_ms / ref_ms
        if case.target is None:
            target = "- (info)"
        elif case.info:
            target = f"<= {case.target:g} (info) " + ("over" if ratio > case.target else "ok")
        elif ratio > case.target:
            target = f"<= {case.target:g} **OVER**"
            misses.append(f"{case.block} [{case.desc}]: {ratio:.2f}")
        else:
            target = f"<= {case.target:g} ok"
        noise = f"{spread(ours_s):.0f}% / {spread(ref_s):.0f}%"
        rows.append((case.block, case.desc, f"{ours_ms:.3f}", f"{ref_ms:.3f}", f"{ratio:.2f}",
                     target, noise))
        print(f"  {case.block:12s} {ratio:5.2f}  {case.desc}", file=sys.stderr, flush=True)
    header = ("block", "case (shapes, options)", "ours fwd+bwd ms", "autograd fwd+bwd ms",
              "ratio (ours/autograd)", "target", "spread ours / autograd")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---", "---", "---:", "---:", "---:", "---", "---:"]) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    if misses:
        print(f"{len(misses)} row(s) over target:")
        for m in misses:
            print(f"- {m}")
    else:
        print("All rows with a target are within it.")
    print("\nspread: interquartile range / median of the samples; a large spread means the "
          "machine was busy and the ratio is unreliable (rerun with more --repeat).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
