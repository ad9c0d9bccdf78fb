"""Training speed (images/s) of SimpleNN and DagNN against the same network in PyTorch.

One training step per contender, on the same batch of random images and labels, in the
same process, interleaved:

* **SimpleNN**: ``vl_simplenn(net, x, 1.0, res, conserve_memory=True,
  input_derivative=False)`` (as ``cnn_train`` calls it: no derivative with respect to the
  images, which autograd does not compute either) and the momentum-SGD update of every
  weight with ``solvers.sgd_update`` / ``average_update`` (bnorm moments), in place
  (``inplace=True``), exactly what ``cnn_train`` does per batch;
* **DagNN**: ``DagNN.from_simplenn(net)`` (ResNet-50: ``dagnn_models.resnet50``),
  ``net.eval(inputs, {objective: 1})`` with ``net.input_derivatives = False`` and the same
  update over ``net.params`` (as ``cnn_train_dag``);
* **PyTorch**: the same graph written as an ``nn.Module`` (``F.conv2d``, ``F.max_pool2d`` /
  ``F.avg_pool2d``, ``F.relu``, ``F.dropout``, ``F.batch_norm(training=True)``,
  ``F.local_response_norm``, ``F.cross_entropy(reduction='sum') / N``) with the same
  weights, trained with autograd and ``torch.optim.SGD(momentum=0.9)`` with one parameter
  group per weight carrying its learning-rate and weight-decay multipliers.

No data loading is timed.  Before timing, one step of each (dropout layers left out) is
checked to give the same loss and gradients.  Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` over the training steps minus the memory allocated before
them; on the CPU each contender runs its steps alone in a fresh subprocess and the figure is
its peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) minus its RSS just before
the first timed step (weights, batch, imports and one-time initialisation excluded), the
median of ``--memory-runs`` (3) such subprocesses.

    python3 benchmarks/train_speed.py                      # CPU: mnist-lenet, cifar-lenet, cifar-nin
    python3 benchmarks/train_speed.py --models cifar-nin --batch 16 --iters 10
    python3 benchmarks/train_speed.py --device cuda        # + alexnet ... vgg-vd-19, resnet-50
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matconvnet.dagnn import DagNN  # noqa: E402
from matconvnet.dagnn import layers as DL  # noqa: E402
from matconvnet.models import ARCHITECTURES  # noqa: E402
from matconvnet.models.dagnn_models import resnet50  # noqa: E402
from matconvnet.simplenn import vl_simplenn  # noqa: E402
from matconvnet.train.solvers import average_update, sgd_update  # noqa: E402

CPU_MODELS = ["mnist-lenet", "cifar-lenet", "cifar-nin"]
GPU_MODELS = ["alexnet", "vgg-f", "vgg-m", "vgg-s", "vgg-vd-16", "vgg-vd-19", "resnet-50"]
DEFAULT_BATCH = {"mnist-lenet": 100, "cifar-lenet": 100, "cifar-nin": 32,
                 "alexnet": 256, "vgg-f": 256, "vgg-m": 128, "vgg-s": 128,
                 "vgg-vd-16": 24, "vgg-vd-19": 24, "resnet-50": 32}
TARGETS = {"mnist-lenet": 1.15, "cifar-lenet": 1.15, "cifar-nin": 1.1}
# The manual's Table 1.1 (beta12, 2x Xeon E5-2667 v2 / Titan Black, CuDNN v2): batch, CPU,
# GPU, CuDNN images/s.  Different hardware and software: for orientation only.
PAPER = {"alexnet": (256, 22.1, 192.4, 264.1), "vgg-f": (256, 21.4, 211.4, 289.7),
         "vgg-m": (128, 7.8, 116.5, 136.6), "vgg-s": (128, 7.4, 96.2, 110.1),
         "vgg-vd-16": (24, 1.7, 18.4, 20.0), "vgg-vd-19": (24, 1.5, 15.7, 16.5)}
CONTENDERS = ("simplenn", "dagnn", "pytorch")
LR, WD, MOMENTUM = 1e-3, 5e-4, 0.9   # cnn_train's defaults for weight decay and momentum


# ----------------------------------------------------------------------------- networks

def build_nets(model, device, drop_dropout=False):
    """(SimpleNN dict or None, DagNN, image input name, objective var name, classes, HxWxC)."""
    if model == "resnet-50":
        dag = resnet50(seed=0)
        simple = None
        size = (224, 224, 3)
    else:
        builder = ARCHITECTURES[model]
        kw = {"batch_normalization": False} if model == "mnist-lenet" else {}
        simple = builder(seed=0, **kw) if model in CPU_MODELS else builder(seed=0)
        if drop_dropout:
            simple["layers"] = [l for l in simple["layers"] if l["type"] != "dropout"]
        size = tuple(int(v) for v in simple["meta"]["inputSize"][:3])
        for l in simple["layers"]:
            # cnn_imagenet_init's conv layers carry opts {'CudnnWorkspaceLimit', n}, which
            # vl_simplenn passes to vl_nnconv as an unknown keyword (a package bug at the
            # time of writing); it is only a cuDNN workspace hint, so it is dropped here.
            if l["type"] == "conv" and "opts" in l:
                l["opts"] = [o for k, o in enumerate(l["opts"]) if not (
                    str(o).lower() == "cudnnworkspacelimit" or
                    (k > 0 and str(l["opts"][k - 1]).lower() == "cudnnworkspacelimit"))]
        for l in simple["layers"]:
            if l.get("weights"):
                l["weights"] = [w.to(device) for w in l["weights"]]
        dag = DagNN.from_simplenn(simple)
    dag.move(device)
    if drop_dropout:
        for l in [l for l in dag.layers if isinstance(l.block, DL.DropOut)]:
            dag.remove_layer(l.name)  # (resnet-50 has none)
    image = [v for v in dag.get_inputs() if v != "label"][0]
    objective = "objective" if dag.get_var_index("objective") is not None else dag.get_outputs()[0]
    classes = 1000 if model in GPU_MODELS else 10
    return simple, dag, image, objective, classes, size


def _torch_pool(x, method, pool, stride, pad):
    """MatConvNet pooling (padding never counted) with PyTorch's pooling kernels."""
    (kh, kw), (sh, sw), (t, b, l, r) = pool, stride, pad
    if t == b and l == r and 2 * t <= kh and 2 * l <= kw:
        if method == "max":
            return F.max_pool2d(x, (kh, kw), (sh, sw), (t, l))
        return F.avg_pool2d(x, (kh, kw), (sh, sw), (t, l), count_include_pad=False)
    # Caffe-style extra pad at the bottom/right: PyTorch's ceil_mode computes the same
    # windows (clipped to the image) when the output sizes agree.
    h, w = x.shape[2], x.shape[3]
    floor_hw = ((h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1)
    ceil_hw = (math.ceil((h + 2 * t - kh) / sh) + 1, math.ceil((w + 2 * l - kw) / sw) + 1)
    if b >= t and r >= l and floor_hw == ceil_hw and 2 * t <= kh and 2 * l <= kw:
        if method == "max":
            return F.max_pool2d(x, (kh, kw), (sh, sw), (t, l), ceil_mode=True)
        return F.avg_pool2d(x, (kh, kw), (sh, sw), (t, l), ceil_mode=True,
                            count_include_pad=False)
    raise NotImplementedError(f"pool pad {pad} with kernel {pool}, stride {stride}")


class TorchNet(nn.Module):
    """The DagNN graph as a PyTorch module: same weights (copied), same operations."""

    def __init__(self, dag: DagNN, image: str, objective: str):
        super().__init__()
        self.image, self.objective = image, objective
        self.weights = nn.ParameterList()
        self.index = {}
        self.groups = []  # (parameter, learning-rate mult, weight-decay mult)
        self.steps = []
        for l in (dag.layers[i] for i in dag.execution_order):
            blk, names = l.block, []
            for pi in l.param_indexes:
                p = dag.params[pi]
                if p.name not in self.index:
                    if p.train_method == "average":   # bnorm moments -> running stats
                        m = p.value.detach().clone()
                        self.register_buffer(f"rm{len(self.index)}", m[:, 0].contiguous())
                        self.register_buffer(f"rv{len(self.index)}", (m[:, 1] ** 2).contiguous())
                        self.index[p.name] = ("buf", f"rm{len(self.index)}", f"rv{len(self.index)}")
                    else:
                        self.weights.append(nn.Parameter(p.value.detach().clone()))
                        self.index[p.name] = len(self.weights) - 1
                        self.groups.append((self.weights[-1], float(p.learning_rate),
                                            float(p.weight_decay)))
                names.append(p.name)
            self.steps.append((l.name, blk, list(l.inputs), list(l.outputs), names))

    def _param(self, name):
        i = self.index[name]
        return self.weights[i] if isinstance(i, int) else i

    def forward(self, x, labels0):
        v = {self.image: x, "label": labels0}
        for name, blk, ins, outs, pnames in self.steps:
            xs = [v.get(n) for n in ins]
            ps = [self._param(n) for n in pnames]
            if isinstance(blk, DL.Conv):
                f = ps[0]
                b = ps[1] if blk.hasBias and len(ps) > 1 and ps[1].numel() else None
                t, bt, le, r = blk.pad
                x0 = xs[0]
                if t != bt or le != r:
                    x0, t, le = F.pad(x0, (le, r, t, bt)), 0, 0
                y = F.conv2d(x0, f, b, tuple(blk.stride), (t, le), tuple(blk.dilate),
                             x0.shape[1] // f.shape[1])
            elif isinstance(blk, DL.Pooling):
                y = _torch_pool(xs[0], blk.method, blk.poolSize, blk.stride, blk.pad)
            elif isinstance(blk, DL.ReLU):
                y = F.leaky_relu(xs[0], blk.leak) if blk.leak else F.relu(xs[0])
            elif isinstance(blk, DL.DropOut):
                y = F.dropout(xs[0], blk.rate, training=True)
            elif isinstance(blk, DL.BatchNorm):
                _, rm, rv = ps[2]
                y = F.batch_norm(xs[0], getattr(self, rm), getattr(self, rv), ps[0], ps[1],
                                 training=True, momentum=0.1, eps=blk.epsilon)
            elif isinstance(blk, DL.LRN):
                n, kappa, alpha, beta = blk.param
                y = F.local_response_norm(xs[0], int(n), alpha * n, beta, kappa)
            elif isinstance(blk, DL.Sum):
                y = xs[0]
                for z in xs[1:]:
                    y = y + z
            elif isinstance(blk, DL.Loss):
                pred = xs[0].flatten(1)
                if blk.loss in ("softmaxlog", "softmaxloss"):
                    y = F.cross_entropy(pred, xs[1], reduction="sum") / pred.shape[0]
                else:  # classerror / topkerror: no gradient, computed as the DagNN does
                    with torch.no_grad():
                        k = 5 if blk.loss == "topkerror" else 1
                        top = pred.topk(k, 1).indices
                        y = (top != xs[1][:, None]).all(1).float().sum()
            else:
                raise NotImplementedError(f"layer {name}: {type(blk).__name__}")
            v[outs[0]] = y
        return v[self.objective]


# ----------------------------------------------------------------------------- steps

def make_contender(kind, model, device, batch, seed=0, drop_dropout=False):
    """Returns (step function, state used by the checks)."""
    simple, dag, image, objective, classes, (h, w, c) = build_nets(model, device, drop_dropout)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c, h, w, generator=g).to(device)
    labels = torch.randint(1, classes + 1, (batch,), generator=g).to(device)
    if kind == "simplenn":
        if simple is None:
            return None, None
        net, box = simple, {"res": None, "state": {}}
        net["layers"][-1]["class"] = labels

        def step():
            box["res"] = res = vl_simplenn(net, x, 1.0, box["res"], conserve_memory=True,
                                           input_derivative=False)
            for i in range(len(net["layers"]) - 1, -1, -1):   # cnn_train's accumulate
                l = net["layers"][i]
                dzdw = res[i].get("dzdw") or []
                for j in range(len(dzdw) - 1, -1, -1):
                    der = dzdw[j]
                    if der is None or der.numel() == 0:
                        continue
                    lrs = l.get("learningRate", [1.0] * 3)
                    wds = l.get("weightDecay", [1.0] * 3)
                    wj = l["weights"][j]
                    if j == 2 and l["type"] == "bnorm":
                        l["weights"][j] = average_update(wj, der, float(lrs[j]), 1,
                                                         inplace=True)
                        continue
                    wd, lr = WD * float(wds[j]), LR * float(lrs[j])
                    if lr > 0 or wd > 0:
                        gr = (wj * wd).add_(der) if wd else der
                        l["weights"][j], box["state"][i, j] = sgd_update(
                            wj, box["state"].get((i, j), 0), gr, lr, MOMENTUM, inplace=True,
                            consume_grad=gr is not der)
            return res[-1]["x"]
        return step, {"net": net, "res": box}
    if kind == "dagnn":
        net, state = dag, {}
        net.input_derivatives = False   # as cnn_train_dag trains
        inputs = {image: x, "label": labels}
        one = {objective: torch.tensor(1.0, device=device)}

        def step():
            net.eval(inputs, one)
            for p, prm in enumerate(net.params):   # cnn_train_dag's accumulate
                der = prm.der
                if der is None:
                    continue
                if prm.train_method == "average":
                    prm.value = average_update(prm.value, der, float(prm.learning_rate),
                                               max(prm.fanout, 1), inplace=True)
                else:
                    wd, lr = WD * float(prm.weight_decay), LR * float(prm.learning_rate)
                    if lr > 0 or wd > 0:
                        gr = (prm.value * wd).add_(der) if wd else der
                        prm.value, state[p] = sgd_update(prm.value, state.get(p, 0), gr, lr,
                                                         MOMENTUM, inplace=True,
                                                         consume_grad=gr is not der)
            return net.vars[net.get_var_index(objective)].value
        return step, {"net": net}
    model_t = TorchNet(dag, image, objective).to(device)
    del dag
    opt = torch.optim.SGD([{"params": [p], "lr": LR * lr, "weight_decay": WD * wd}
                           for p, lr, wd in model_t.groups if lr > 0 or wd > 0],
                          lr=LR, momentum=MOMENTUM)
    labels0 = labels - 1

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model_t(x, labels0)
        loss.backward()
        opt.step()
        return loss.detach()
    return step, {"net": model_t}


def check(model, device, batch):
    """One step of each without dropout: same loss and gradients (before the update)."""
    b = min(batch, 8)
    s_step, s = make_contender("simplenn", model, device, b, drop_dropout=True)
    _, d = make_contender("dagnn", model, device, b, drop_dropout=True)
    _, t = make_contender("pytorch", model, device, b, drop_dropout=True)
    dag, tm = d["net"], t["net"]
    dag.conserve_memory = False  # keep the objective's value for the comparison
    # in float64, so that float32 rounding (which grows through deep batch-normalised nets)
    # does not hide or fake a difference
    for p in dag.params:
        p.value = p.value.double()
    tm.double()
    obj = tm.objective
    x, lab = _inputs_of(dag, tm.image, model, device, b)
    x = x.double()
    dag.eval({tm.image: x, "label": lab},
             {obj: torch.tensor(1.0, device=device, dtype=torch.float64)})
    tm.zero_grad(set_to_none=True)
    loss_t = tm(x, lab - 1)
    loss_t.backward()
    loss_d = dag.vars[dag.get_var_index(obj)].value
    torch.testing.assert_close(loss_d.reshape(()), loss_t.detach().reshape(()))
    for p in dag.params:
        i = tm.index[p.name]
        if isinstance(i, int):
            ref = tm.weights[i].grad
            # relative L2 error; not ~1e-12 only where max-pool ties (all-zero windows after
            # a ReLU) route a derivative to a different, equal element, which LRN spreads
            err = float((p.der - ref).norm() / ref.norm().clamp_min(1e-300))
            assert err <= 1e-3, f"{model}: gradient of {p.name} differs from PyTorch's " \
                                f"(relative L2 error {err:.3g})"
    tm.float()
    if s_step is not None:
        loss_s = s_step()  # the SimpleNN on the same batch (same seed), in float32
        torch.testing.assert_close(loss_s.reshape(()), loss_t.detach().reshape(()).float(),
                                   rtol=1e-3, atol=1e-4)


def _inputs_of(dag, image, model, device, batch, seed=0):
    classes, (h, w, c) = _meta(model)
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, c, h, w, generator=g).to(device),
            torch.randint(1, classes + 1, (batch,), generator=g).to(device))


def _meta(model):
    if model == "resnet-50":
        return 1000, (224, 224, 3)
    net = ARCHITECTURES[model](device="meta")
    return (1000 if model in GPU_MODELS else 10), tuple(int(v) for v in net["meta"]["inputSize"][:3])


# ----------------------------------------------------------------------------- timing

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(model, device, batch, iters, warmup):
    steps = {}
    for k in CONTENDERS:
        fn, _ = make_contender(k, model, device, batch)
        if fn is not None:
            steps[k] = fn
    names = list(steps)
    for _ in range(warmup):
        for k in names:
            steps[k]()
    _sync(device)
    samples = {k: [] for k in names}
    for it in range(iters):
        order = names[it % len(names):] + names[:it % len(names)]   # rotate who goes first
        for k in order:
            _sync(device)
            t0 = time.perf_counter()
            steps[k]()
            _sync(device)
            samples[k].append(time.perf_counter() - t0)
    return {k: batch / statistics.median(v) for k, v in samples.items()}


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_child(model, kind, device, batch, steps):
    """Run in a fresh process: MiB of peak memory above what was held before training.

    CPU: a throw-away instance first takes one step (one-time library initialisation,
    lazily loaded code), is freed and the heap trimmed (``malloc_trim``); the peak-RSS mark
    is reset (``/proc/self/clear_refs`` 5) after building the measured instance, and the
    figure is ``VmHWM`` after its steps minus ``VmRSS`` before them: activations,
    derivatives, gradients, solver state, temporaries."""
    fn, _ = make_contender(kind, model, device, batch)
    if fn is None:
        return None
    fn()
    del fn
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    else:
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
    fn, _ = make_contender(kind, model, device, batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kb("VmRSS")
    for _ in range(steps):
        fn()
    return (_status_kb("VmHWM") - base) / 1024


def peak_memory(model, device, batch, steps, threads, runs=3):
    """Median over ``runs`` fresh subprocesses per contender, interleaved (the peak RSS
    of one run moves by a few MiB with the C allocator's state)."""
    samples = {kind: [] for kind in CONTENDERS}
    for _ in range(runs):
        for kind in CONTENDERS:
            cmd = [sys.executable, __file__, "--_memory-child", f"{model}:{kind}", "--device",
                   device.type, "--batch", f"{model}={batch}", "--threads", str(threads),
                   "--iters", str(steps)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"memory child {model}:{kind} failed:\n{r.stderr[-2000:]}")
            samples[kind].append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {kind: None if None in v else statistics.median(v) for kind, v in samples.items()}


# ----------------------------------------------------------------------------- main

def _parse_batch(spec, models):
    out = {m: DEFAULT_BATCH[m] for m in models}
    for part in (spec or "").split(","):
        if not part:
            continue
        if "=" in part:
            m, n = part.split("=", 1)
            out[m.strip()] = int(n)
        else:
            out = {m: int(part) for m in models}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--models", default=None,
                    help=f"comma list (CPU default {','.join(CPU_MODELS)}; CUDA default all; "
                         f"GPU-only: {','.join(GPU_MODELS)})")
    ap.add_argument("--batch", default=None,
                    help="one batch size for all models, or model=N,model=N overrides")
    ap.add_argument("--iters", type=int, default=None,
                    help="timed steps per contender (CPU default 12; CUDA 20)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--memory-steps", type=int, default=2, help="steps in each memory child")
    ap.add_argument("--memory-runs", type=int, default=3,
                    help="memory children per contender (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    ap.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    ap.add_argument("--allow-cpu-imagenet", action="store_true",
                    help="allow the GPU models on the CPU (small --batch advised; testing)")
    ap.add_argument("--_memory-child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available (PyTorch build or machine)")
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()

    if a._memory_child:
        model, kind = a._memory_child.split(":")
        batch = _parse_batch(a.batch, [model])[model]
        print(json.dumps(peak_memory_child(model, kind, device, batch, a.iters)))
        return

    models = [m.strip() for m in (a.models or ",".join(
        CPU_MODELS + (GPU_MODELS if device.type == "cuda" else []))).split(",") if m.strip()]
    for m in models:
        if m not in CPU_MODELS + GPU_MODELS:
            ap.error(f"--models: unknown model {m!r}; expected {', '.join(CPU_MODELS + GPU_MODELS)}")
        if m in GPU_MODELS and device.type != "cuda" and not a.allow_cpu_imagenet:
            ap.error(f"--models: {m} is benchmarked on the GPU only (use --device cuda)")
    batches = _parse_batch(a.batch, models)
    iters = a.iters or (20 if device.type == "cuda" else 12)

    rows = []
    for m in models:
        b = batches[m]
        if not a.no_check:
            check(m, device, b)
        speed = time_model(m, device, b, iters, a.warmup)
        mem = None if a.no_memory else peak_memory(m, device, b, a.memory_steps, threads,
                                                   a.memory_runs)
        rows.append((m, b, speed, mem))
        print(f"# {m}: done", file=sys.stderr, flush=True)

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {threads} threads"
    print(f"Training images/s, {dev}, torch {torch.__version__}; median of {iters} interleaved "
          f"steps after {a.warmup} warm-up; peak memory MiB above the pre-training level "
          f"({'max_memory_allocated' if device.type == 'cuda' else 'peak RSS (VmHWM)'}, median of "
          f"{a.memory_runs} subprocesses each).\n")
    print("| model | batch | SimpleNN im/s | DagNN im/s | PyTorch im/s | SimpleNN/PyTorch "
          "| DagNN/PyTorch | target | peak mem MiB (SimpleNN / DagNN / PyTorch) "
          "| paper im/s (manual Table 1.1: batch; CPU / GPU / CuDNN) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    for m, b, s, mem in rows:
        pt = s["pytorch"]
        sn, dg = s.get("simplenn"), s.get("dagnn")
        ratio = sn / pt if sn else dg / pt
        tgt = TARGETS.get(m)
        tcell = "—" if tgt is None else f">= {tgt:.2f}x: {'met' if ratio >= tgt else 'missed'}"
        if mem:
            mcell = " / ".join("—" if mem[k] is None else f"{mem[k]:.0f}" for k in CONTENDERS)
            ours = min(v for k, v in mem.items() if k != "pytorch" and v is not None)
            mcell += " (ours <= PyTorch)" if ours <= mem["pytorch"] else " (ours > PyTorch)"
        else:
            mcell = "—"
        p = PAPER.get(m)
        pcell = f"batch {p[0]}: {p[1]} / {p[2]} / {p[3]}" if p else "— (not in Table 1.1)"
        print(f"| {m} | {b} | {'—' if sn is None else f'{sn:.1f}'} | {dg:.1f} | {pt:.1f} | "
              f"{'—' if sn is None else f'{sn / pt:.2f}x'} | {dg / pt:.2f}x | {tcell} | {mcell} "
              f"| {pcell} |")
    if any(m in PAPER for m, *_ in rows):
        print("\nPaper figures: MatConvNet beta12, MATLAB R2015a, 2x Xeon E5-2667 v2 (CPU) and "
              "one Titan Black (GPU, CuDNN v2) — different hardware, with data loading.")


if __name__ == "__main__":
    main()
