r"""``cnn_train`` and ``cnn_train_dag``: MatConvNet's example trainers (FEATURES.md section 4).

::

    net, stats = cnn_train(net, imdb, get_batch, exp_dir='data/mnist', num_epochs=8,
                           batch_size=100, learning_rate=0.1)
    net, stats = cnn_train_dag(dag, imdb, get_batch_dag, der_outputs={'objective': 1})

``imdb`` is any object; only ``imdb['images']['set']`` (1 = train, 2 = val, 3 = test) is read,
and only to default ``train`` / ``val``.  Indices are **0-based** positions (NumPy style).

* SimpleNN: ``images, labels = get_batch(imdb, idx)``; images N x C x H x W (tensor or NumPy
  array), labels as the net's loss layer takes them (set as ``net['layers'][-1]['class']``).
* DagNN: ``inputs = get_batch(imdb, idx)``, a dict ``{'input': images, 'label': labels}``
  (or MATLAB's flat ``['input', im, 'label', lab]`` list) passed to ``net.eval``.

Options (snake_case of the original's; the camelCase names are accepted too):

=====================  ===================  ===============================================
option                 default              meaning
=====================  ===================  ===============================================
exp_dir                ``'data/exp'``       checkpoint folder (created)
continue\_ / resume    True                 resume from the last ``net-epoch-N.mat``
batch_size             256                  images per update (over all sub-batches)
num_sub_batches        1                    split each batch; derivatives accumulated
train, val             from ``imdb``        index lists; ``train=nan``: evaluate only
epoch_size             inf                  cap on training images per epoch
num_epochs             300
learning_rate          0.001                scalar or per-epoch list (last one repeats)
weight_decay           0.0005               times each parameter's weightDecay
momentum               0.9                  SGD momentum
nesterov_update        False
solver                 None (SGD)           'adam', 'adagrad', 'adadelta', 'rmsprop' or a
                                            callable ``(w, state, g, opts, lr) -> (w, state)``
solver_opts            ``solver()``         overrides of the solver's defaults
save_solver_state      True                 store the solver state in checkpoints
random_seed            0                    seed ``epoch + random_seed`` at each epoch start
plot_statistics        True                 ``exp_dir/net-train.pdf`` (needs matplotlib;
                                            skipped silently without it)
post_epoch_fn          None                 ``f(net, params, state)``; returns None (keep),
                                            a new learning rate, or 0 (stop)
verbose                1                    0 quiet, 1 a few lines per epoch, 2 every batch
gpus                   ``[]``               ``[k]``: train on ``cuda:k-1`` (1-based, as the
                                            original; one GPU only)
conserve_memory,       True, inf,           SimpleNN only: passed to ``vl_simplenn``
back_prop_depth,       False, True
sync, cudnn
error_function         ``'multiclass'``     SimpleNN only: 'multiclass' (top1err, top5err),
                                            'binary' (binerr), 'none' or a callable
                                            ``f(params, labels, res) -> errors (sums)``
error_labels           from error_function  SimpleNN only: names of the error statistics
der_outputs            ``{'objective': 1}`` DagNN only: passed to ``net.eval``
extract_stats_fn       averages of Loss     DagNN only: ``f(stats, net) -> stats``
                       layers
=====================  ===================  ===============================================

``prefetch``, ``profile`` and ``parameter_server`` are accepted and ignored;
``plot_diagnostics`` is not implemented (an error says so).

Data-parallel training (several GPUs, several machines, or CPU workers): start the same
script with ``torchrun --nproc_per_node=W script.py`` (see
:mod:`matconvnet.train.distributed`; gloo on the CPU, NCCL on GPUs, ``gpus[LOCAL_RANK]`` or
``cuda:LOCAL_RANK`` per process).  Process ``r`` takes positions ``r, r+W, r+2W, ...`` of every
batch (MatConvNet's ``labindex:numlabs:end`` interleave, within each sub-batch), the
derivatives (batch-norm moments included) are summed over the processes and divided by
``numWorkers = W * num_sub_batches`` at the update, so W processes train exactly as one
process with ``W * num_sub_batches`` sub-batches (and, without batch norm, as one process
with the same global batch when the batch divides evenly).  Statistics are combined weighted
by ``num``; rank 0 alone writes checkpoints and plots, and its checkpoint is what every
process resumes from.  The initial parameters are broadcast from rank 0.

Returns ``(net, stats)``; ``stats = {'train': [per epoch], 'val': [per epoch]}``, each entry
``{'num', 'time', 'objective', <errors or loss outputs>}`` averaged over images.  After each
epoch ``exp_dir/net-epoch-<e>.mat`` holds ``net``, ``state`` (``solverState`` per layer and
weight, or per DagNN parameter, and this epoch's ``stats``) and ``stats``, written atomically
by :func:`matconvnet.io.save` in MatConvNet's format.
"""
from __future__ import annotations

import copy
import math
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from .. import io as mio
from ..dagnn import DagNN
from ..dagnn.layers import Loss
from ..simplenn import vl_simplenn, vl_simplenn_display, vl_simplenn_tidy
from . import distributed as dist
from .solvers import average_update, get_solver, sgd_update

__all__ = ["cnn_train", "cnn_train_dag", "error_multiclass", "error_binary", "error_none",
           "find_last_checkpoint"]

_COMMON = {
    "exp_dir": os.path.join("data", "exp"), "continue_": True, "batch_size": 256,
    "num_sub_batches": 1, "train": None, "val": None, "gpus": [], "epoch_size": math.inf,
    "prefetch": False, "num_epochs": 300, "learning_rate": 0.001, "weight_decay": 0.0005,
    "solver": None, "solver_opts": None, "momentum": 0.9, "save_solver_state": True,
    "nesterov_update": False, "random_seed": 0, "profile": False, "plot_statistics": True,
    "post_epoch_fn": None, "verbose": 1, "parameter_server": None,
}
_SIMPLENN = {"conserve_memory": True, "back_prop_depth": math.inf, "sync": False,
             "cudnn": True, "error_function": "multiclass", "error_labels": None,
             "plot_diagnostics": False, "memory_map_file": None}
_DAGNN = {"der_outputs": {"objective": 1.0}, "extract_stats_fn": None}


# ------------------------------------------------------------------ options

def _snake(name: str) -> str:
    if name in ("continue", "resume"):
        return "continue_"
    out = "".join("_" + ch.lower() if ch.isupper() else ch for ch in name)
    return out.lstrip("_")


def _parse(opts: Dict[str, Any], defaults: Dict[str, Any], who: str) -> Dict[str, Any]:
    out = copy.deepcopy(defaults)
    for k, v in opts.items():
        key = _snake(k)
        if key not in defaults:
            raise TypeError(f"{who}: unknown option {k!r}; expected one of "
                            f"{', '.join(sorted(defaults))}")
        out[key] = v
    if not (isinstance(out["batch_size"], (int, np.integer)) and out["batch_size"] >= 1):
        raise ValueError(f"batch_size: expected a positive integer, got {out['batch_size']!r}")
    if not (isinstance(out["num_sub_batches"], (int, np.integer))
            and out["num_sub_batches"] >= 1):
        raise ValueError(f"num_sub_batches: expected a positive integer, got "
                         f"{out['num_sub_batches']!r}")
    out["learning_rate"] = _lr_list(out["learning_rate"])
    gpus = list(out["gpus"] or [])
    if dist.init_from_env():
        # data-parallel: one process per GPU (or CPU worker), started by torchrun
        out["device"] = dist.default_device(gpus)
    else:
        if len(gpus) > 1:
            raise NotImplementedError(
                "gpus: several GPUs need one process each; start the training script with "
                f"`torchrun --nproc_per_node={len(gpus)} script.py` (gpus[LOCAL_RANK] is "
                "then used by each process)")
        out["device"] = torch.device(f"cuda:{int(gpus[0]) - 1}") if gpus \
            else torch.device("cpu")
    # parameter_server (MatConvNet's 'mmap' / 'tmove' exchange) is accepted and ignored:
    # derivatives are exchanged with torch.distributed
    if out.get("plot_diagnostics"):
        raise NotImplementedError("plot_diagnostics: not implemented")
    out["solver_fn"] = get_solver(out["solver"])
    if out["solver_fn"] is not None:
        defaults_fn = out["solver_fn"]
        try:
            solver_defaults = defaults_fn()
        except TypeError:
            solver_defaults = {}
        out["solver_opts"] = dict(solver_defaults or {}, **dict(out["solver_opts"] or {}))
    return out


def _lr_list(lr) -> List[float]:
    lr = [float(v) for v in (lr.reshape(-1).tolist() if hasattr(lr, "tolist") else lr)] \
        if isinstance(lr, (list, tuple, np.ndarray, torch.Tensor)) else [float(lr)]
    if not lr or any(not math.isfinite(v) or v < 0 for v in lr):
        raise ValueError(f"learning_rate: expected a non-negative number or a non-empty "
                         f"list of them, got {lr!r}")
    return lr


def _indices(v, name) -> Optional[np.ndarray]:
    """None for NaN (no phase), else an int64 array of 0-based indices."""
    if isinstance(v, float) and math.isnan(v):
        return None
    a = np.asarray(v.cpu() if torch.is_tensor(v) else v)
    if a.dtype == bool:
        a = np.flatnonzero(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name}: expected integer indices")
    return a.astype(np.int64).reshape(-1)


def _default_sets(imdb, opts):
    def from_set(k):
        try:
            s = imdb["images"]["set"]
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"imdb: no images.set to default {('train', 'val')[k - 1]!r} "
                             f"from; pass train= and val=") from None
        s = np.asarray(s.cpu() if torch.is_tensor(s) else s).reshape(-1)
        return np.flatnonzero(s == k)

    train = from_set(1) if opts["train"] is None else _indices(opts["train"], "train")
    val = from_set(2) if opts["val"] is None else _indices(opts["val"], "val")
    return train, (val if val is not None else np.zeros(0, np.int64))


# ------------------------------------------------------------------ checkpoints

_CKPT = re.compile(r"^net-epoch-(\d+)\.mat$")


def _model_path(exp_dir, epoch):
    return os.path.join(exp_dir, f"net-epoch-{epoch}.mat")


def find_last_checkpoint(exp_dir) -> int:
    """The largest N among ``exp_dir/net-epoch-N.mat`` (0 if none)."""
    if not os.path.isdir(exp_dir):
        return 0
    eps = [int(m.group(1)) for f in os.listdir(exp_dir) if (m := _CKPT.match(f))]
    return max(eps, default=0)


def _load_checkpoint(path):
    data = mio.load(path)
    if "stats" not in data:
        raise ValueError(f"{path}: epoch was only partially saved (no 'stats'); delete this "
                         f"file and try again")
    stats = data["stats"]
    stats = {k: _as_list(stats.get(k)) for k in ("train", "val")}
    return data["net"], data.get("state") or {}, stats


def _as_list(v):
    if v is None:
        return []
    if isinstance(v, dict):
        return [v]
    return list(v)


# ------------------------------------------------------------------ error functions

def error_multiclass(params, labels, res) -> List[float]:
    """[top1 errors, top5 errors] summed over the batch (label 0 skipped; a second label
    channel weights the samples)."""
    pred = res[-2]["x"]
    labels = torch.as_tensor(labels, device=pred.device)
    n = pred.shape[0]
    if labels.numel() == n:
        labels = labels.reshape(n, 1, 1, 1)
    if labels.dim() != 4:
        raise ValueError(f"labels: expected N labels or an N x 1 x H x W (or N x 2 x H x W) "
                         f"array, got shape {tuple(labels.shape)}")
    mass = (labels[:, :1] > 0).to(pred.dtype)
    if labels.shape[1] == 2:
        mass = mass * labels[:, 1:2].to(pred.dtype)
        labels = labels[:, :1]
    order = torch.argsort(pred, dim=1, descending=True) + 1    # 1-based classes
    m = min(5, pred.shape[1])
    wrong = order != labels.to(order.dtype)
    top1 = float((mass * wrong[:, :1]).sum())
    top5 = float((mass * wrong[:, :m].all(dim=1, keepdim=True)).sum())
    return [top1, top5]


def error_binary(params, labels, res) -> List[float]:
    pred = res[-2]["x"]
    labels = torch.as_tensor(labels, device=pred.device).to(pred.dtype)
    return [float(((pred * labels.reshape(pred.shape) if labels.numel() == pred.numel()
                    else pred * labels) < 0).sum())]


def error_none(params, labels, res) -> List[float]:
    return []


_ERRORS = {"multiclass": (error_multiclass, ["top1err", "top5err"]),
           "binary": (error_binary, ["binerr"]), "none": (error_none, [])}


# ------------------------------------------------------------------ console, plots

class _Reporter:
    def __init__(self, verbose, who):
        self.verbose = verbose
        self.who = who

    def batch(self, mode, epoch, k, nbatches, speed, cur_speed, stats):
        if self.verbose <= 0:
            return
        if self.verbose == 1 and not (k == nbatches or k % max(1, math.ceil(nbatches / 4)) == 0):
            return
        line = f"{mode}: epoch {epoch:02d}: {k:3d}/{nbatches:3d}: {speed:.1f} ({cur_speed:.1f}) Hz"
        for name in sorted(s for s in stats if s not in ("num", "time")):
            line += f" {name}: {stats[name]:.3f}"
        print(line, flush=True)

    def say(self, text):
        if self.verbose > 0:
            print(f"{self.who}: {text}", flush=True)


def _summary(epoch, tr, va) -> str:
    parts = []
    for mode, s in (("train", tr), ("val", va)):
        if s and s.get("num"):
            keys = sorted(k for k in s if k not in ("num", "time"))
            parts.append(f"{mode} " + " ".join(f"{k} {s[k]:.4f}" for k in keys)
                         + f" ({s['num']} im, {s['time']:.1f} s)")
    return f"epoch {epoch:02d}: " + "; ".join(parts)


def _plot(exp_dir, stats) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:   # matplotlib missing or broken: plots are optional
        return
    keys = sorted({k for s in stats["train"] + stats["val"] for k in s} - {"num", "time"})
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for ax, k in zip(axes[0], keys):
        for mode in ("train", "val"):
            ys = [s.get(k, math.nan) if s.get("num") else math.nan for s in stats[mode]]
            if any(not math.isnan(y) for y in ys):
                ax.plot(range(1, len(ys) + 1), ys, "o-", label=mode)
        ax.set_xlabel("epoch")
        ax.set_title(k)
        ax.grid(True)
        ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(os.path.join(exp_dir, "net-train.pdf"))
    finally:
        plt.close(fig)


# ------------------------------------------------------------------ shared loop

def _seed(epoch, random_seed):
    torch.manual_seed(epoch + random_seed)
    np.random.seed((epoch + random_seed) % 2 ** 32)


def _batches(subset, batch_size, num_sub, lab=0, num_labs=1):
    """FEATURES.md T-D-4: lab ``lab`` (0-based) of ``num_labs`` gets, for sub-batch ``s``,
    the positions ``t + lab + s*num_labs :: num_sub*num_labs`` of each batch (interleaved),
    so ``num_labs`` processes with ``num_sub`` sub-batches see exactly the sub-batches of one
    process with ``num_sub*num_labs`` sub-batches."""
    n = len(subset)
    stride = num_sub * num_labs
    for t in range(0, n, batch_size):
        end = min(t + batch_size, n)
        yield [subset[t + lab + s * num_labs:end:stride] for s in range(num_sub)]


def _to_device(x, device):
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if torch.is_tensor(x) and x.device != device:
        x = x.to(device)
    return x


def _update(value, state, der, lr_p, wd, opts, num_workers):
    """The 'gradient' rule of FEATURES.md 4.3 for one parameter: returns (value, state)."""
    g = der / num_workers
    if wd:
        g = g + wd * value
    if opts["solver_fn"] is None:
        return sgd_update(value, state, g, lr_p, opts["momentum"], bool(opts["nesterov_update"]))
    out = opts["solver_fn"](value, state, g, opts["solver_opts"], lr_p)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("solver: expected the solver to return (w, state)")
    return out


def _run(kind, net, imdb, get_batch, opts, who):
    rep = _Reporter(int(opts["verbose"]), who)
    exp_dir = os.fspath(opts["exp_dir"])
    train, val = _default_sets(imdb, opts)
    evaluate = train is None
    distributed = dist.is_distributed()
    lead = dist.rank() == 0
    if not lead:
        rep.verbose = 0          # only rank 0 prints, writes checkpoints and plots
    if not evaluate and lead:
        os.makedirs(exp_dir, exist_ok=True)
    start = find_last_checkpoint(exp_dir) if opts["continue_"] and lead else 0
    stats = {"train": [], "val": []}
    state: Dict[str, Any] = {}
    loaded = None
    if lead and start >= 1:
        rep.say(f"resuming by loading epoch {start}")
        loaded = _load_checkpoint(_model_path(exp_dir, start))
    if distributed:   # rank 0's checkpoint (if any) reaches every process
        start, loaded = dist.broadcast_object((start, loaded))
    if start >= 1:
        net_s, state, stats = loaded
        net = kind.from_checkpoint(net_s)
        stats = {k: v[:start] for k, v in stats.items()}
        if not opts["save_solver_state"]:
            state = {}
    state = dict(state or {})
    if not isinstance(state.get("solverState"), list):
        state["solverState"] = kind.init_solver_state(net)
    kind.prepare(net, opts, rep)
    if distributed:   # every process starts from rank 0's parameters
        kind.set_values(net, dist.broadcast_tensors(kind.values(net)))
    state["solverState"] = _move(state["solverState"], opts["device"])

    for epoch in range(start + 1, int(opts["num_epochs"]) + 1):
        _seed(epoch, int(opts["random_seed"]))
        lrs = opts["learning_rate"]
        lr = lrs[min(epoch, len(lrs)) - 1]
        params = dict(opts, epoch=epoch, learning_rate=lr)
        if not evaluate:
            perm = torch.randperm(len(train)).numpy()
            params["train"] = train[perm][:int(min(opts["epoch_size"], len(train)))]
        else:
            params["train"] = np.zeros(0, np.int64)
        params["val"] = val[torch.randperm(len(val)).numpy()]
        epoch_stats = {}
        for mode in ("train", "val"):
            epoch_stats[mode] = _process_epoch(kind, net, state, params, mode, get_batch,
                                               imdb, rep) \
                if (mode == "val" or not evaluate) else _empty_stats(kind, net)
        state["stats"] = epoch_stats
        stats["train"].append(epoch_stats["train"])
        stats["val"].append(epoch_stats["val"])
        if not evaluate and lead:
            saved_state = {k: v for k, v in state.items()
                           if k != "solverState" or opts["save_solver_state"]}
            mio.save(_model_path(exp_dir, epoch), {"net": kind.to_checkpoint(net),
                                                   "state": _cpu(saved_state),
                                                   "stats": stats})
            if opts["plot_statistics"]:
                _plot(exp_dir, stats)
        if not evaluate:
            dist.barrier()   # the others wait for rank 0's checkpoint
        rep.say(_summary(epoch, epoch_stats["train"], epoch_stats["val"]))
        if opts["post_epoch_fn"] is not None:
            new_lr = opts["post_epoch_fn"](net, params, state)
            if new_lr is not None and not (hasattr(new_lr, "__len__") and len(new_lr) == 0):
                opts["learning_rate"] = _lr_list(new_lr)
            if all(v == 0 for v in opts["learning_rate"]):
                break
    return kind.finish(net), stats


def _move(x, device):
    if torch.is_tensor(x):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _move(v, device) for k, v in x.items()}
    if isinstance(x, list):
        return [_move(v, device) for v in x]
    return x


def _cpu(x):
    return _move(x, torch.device("cpu"))


def _empty_stats(kind, net):
    return dict({"num": 0, "time": 0.0}, **{k: math.nan for k in kind.stat_names(net)})


def _process_epoch(kind, net, state, params, mode, get_batch, imdb, rep):
    subset = params[mode]
    training = mode == "train"
    bs, ns = int(params["batch_size"]), int(params["num_sub_batches"])
    lab, num_labs = dist.rank(), dist.world_size()
    nbatches = math.ceil(len(subset) / bs) if len(subset) else 0
    kind.begin(net, mode)
    acc = kind.new_accumulator(net)
    num = 0
    start = time.perf_counter()
    adjust = 0.0
    for k, sub_batches in enumerate(_batches(subset, bs, ns, lab, num_labs), start=1):
        batch_start = time.perf_counter()
        batch_num = 0
        for s, batch in enumerate(sub_batches):
            if len(batch) == 0:
                continue
            try:
                kind.step(net, get_batch(imdb, batch), batch, s, training, params, acc)
            except (ValueError, TypeError, IndexError, RuntimeError) as e:
                raise type(e)(f"{mode} epoch {params['epoch']}, batch {k}/{nbatches} "
                              f"(images {batch[:4].tolist()}{'...' if len(batch) > 4 else ''}): "
                              f"{e}") from e
            batch_num += len(batch)
        if training:
            ders = kind.local_ders(net, batch_num > 0)
            if num_labs > 1:
                ders = _sum_ders(ders)
            kind.accumulate(net, state, params, ns * num_labs, ders)
        num += batch_num
        now = time.perf_counter()
        batch_time = now - batch_start
        if k == 3:  # the first batches are outliers (warm-up)
            adjust = 4 * batch_time - (now - start)
        elapsed = max(now - start + adjust, 1e-12)
        st = kind.stats(net, acc, num, now - start)
        rep.batch(mode, params["epoch"], k, nbatches, num / elapsed,
                  batch_num / max(batch_time, 1e-12), st)
    st = kind.stats(net, acc, num, time.perf_counter() - start)
    if num_labs > 1:
        st = _combine_stats(st)
    kind.end(net)
    return st


def _sum_ders(ders):
    """Sums a ``{key: (derivative, present)}`` dict over the processes (the parameter
    server's pull, T-G-2) in one flat buffer per dtype.  A process without images in this
    batch (or without a derivative for a key) passes zeros, not present; the result maps a
    key to the sum, or to None when no process had that derivative."""
    keys = sorted(ders)
    if not keys:
        return {}
    present = torch.tensor([float(ders[k][1]) for k in keys], dtype=torch.float64)
    summed = dist.all_reduce_sum([ders[k][0] for k in keys] + [present])
    flags = summed[-1]
    return {k: (summed[i] if flags[i] > 0 else None) for i, k in enumerate(keys)}


def _combine_stats(st):
    """Per-process statistics (averages over ``num`` images) combined weighted by ``num``
    (T-G-4); ``time`` is the slowest process's."""
    num = int(st.get("num", 0))
    keys = sorted(k for k, v in st.items() if k not in ("num", "time")
                  and isinstance(v, (int, float, np.floating, np.integer)))
    vals = [num] + [float(st[k]) * num if num else 0.0 for k in keys]
    sums = dist.all_reduce_scalars(vals)
    out = dict(st)
    total = int(round(sums[0]))
    out["num"] = total
    out["time"] = dist.max_scalar(float(st.get("time", 0.0)))
    for k, v in zip(keys, sums[1:]):
        out[k] = v / total if total else math.nan
    return out


# ------------------------------------------------------------------ SimpleNN

class _SimpleNN:
    def __init__(self, opts):
        self.opts = opts
        ef = opts["error_function"]
        if callable(ef):
            self.error_fn, labels = ef, opts["error_labels"]
        else:
            if ef not in _ERRORS:
                raise ValueError(f"error_function: expected 'multiclass', 'binary', 'none' "
                                 f"or a callable, got {ef!r}")
            self.error_fn, labels = _ERRORS[ef]
            labels = opts["error_labels"] if opts["error_labels"] is not None else labels
        self.error_labels = list(labels) if labels is not None else None
        self.res = None

    @staticmethod
    def from_checkpoint(net_s):
        return vl_simplenn_tidy(net_s)

    @staticmethod
    def init_solver_state(net):
        return [[0.0] * len(l.get("weights") or []) for l in net["layers"]]

    def prepare(self, net, opts, rep):
        dev = opts["device"]
        for l in net["layers"]:
            ws = l.get("weights") or []
            if ws:
                n = len(ws)
                for key in ("learningRate", "weightDecay"):
                    if key not in l or l[key] is None or (hasattr(l[key], "__len__")
                                                          and len(l[key]) == 0):
                        l[key] = [1.0] * n
                l["weights"] = [_to_device(w, dev) for w in ws]
        tidy = vl_simplenn_tidy(net)
        net["layers"][:] = tidy["layers"]
        net["meta"] = tidy["meta"]
        if len(net["layers"]) >= 2:
            net["layers"][-2]["precious"] = True
        if rep.verbose > 0:
            try:
                print(vl_simplenn_display(net, batch_size=int(opts["batch_size"])), flush=True)
            except Exception:  # display needs known sizes; it is informative only
                pass

    def stat_names(self, net):
        return ["objective"] + list(self.error_labels or [])

    def begin(self, net, mode):
        self.mode = "normal" if mode == "train" else "test"

    def new_accumulator(self, net):
        return {"objective": 0.0, "errors": None}

    def step(self, net, batch_out, batch, s, training, params, acc):
        if not (isinstance(batch_out, (tuple, list)) and len(batch_out) == 2):
            raise TypeError("get_batch: expected (images, labels) for a SimpleNN network, got "
                            f"{type(batch_out).__name__}")
        im, labels = batch_out
        im = _to_device(im, params["device"])
        if not torch.is_tensor(im) or im.dim() != 4:
            raise ValueError(f"get_batch: expected images as an N x C x H x W array, got "
                             f"{_describe(im)}")
        if im.shape[0] != len(batch):
            raise ValueError(f"get_batch: returned {im.shape[0]} images for {len(batch)} "
                             f"indices")
        labels = _to_device(labels, params["device"])
        net["layers"][-1]["class"] = labels
        self.res = vl_simplenn(
            net, im, 1.0 if training else None, self.res if training else None,
            mode=self.mode, accumulate=training and s != 0,
            conserve_memory=bool(params["conserve_memory"]),
            back_prop_depth=params["back_prop_depth"], sync=bool(params["sync"]),
            cudnn=bool(params["cudnn"]))
        y = self.res[-1]["x"]
        y = float(y.sum()) * (len(batch) if y.numel() == 1 else 1)
        acc["objective"] += y
        errs = [float(e) for e in np.asarray(self.error_fn(params, labels, self.res),
                                             dtype=np.float64).reshape(-1)]
        if self.error_labels is None:
            self.error_labels = [f"err{i + 1}" for i in range(len(errs))]
        if len(errs) != len(self.error_labels):
            raise ValueError(f"error_function: returned {len(errs)} values for error labels "
                             f"{self.error_labels}")
        acc["errors"] = errs if acc["errors"] is None else [a + b for a, b in
                                                             zip(acc["errors"], errs)]

    @staticmethod
    def _slots(net):
        return [(i, j) for i, l in enumerate(net["layers"])
                for j in range(len(l.get("weights") or []))]

    @staticmethod
    def values(net):
        return [net["layers"][i]["weights"][j] for i, j in _SimpleNN._slots(net)]

    @staticmethod
    def set_values(net, values):
        for (i, j), v in zip(_SimpleNN._slots(net), values):
            net["layers"][i]["weights"][j] = v

    def local_ders(self, net, had_images):
        """{(layer, weight): (derivative, present)}; zeros (not present) where this process
        computed none, so every process exchanges the same tensors."""
        out = {}
        for i, j in self._slots(net):
            der = None
            if had_images and self.res is not None:
                dzdw = self.res[i].get("dzdw") or []
                der = dzdw[j] if j < len(dzdw) else None
                if der is not None and (not torch.is_tensor(der) or der.numel() == 0):
                    der = None
            w = net["layers"][i]["weights"][j]
            out[(i, j)] = (der.to(w.dtype), True) if der is not None \
                else (torch.zeros_like(w), False)
        return out

    def accumulate(self, net, state, params, num_workers, ders):
        lr = params["learning_rate"]
        for i in range(len(net["layers"]) - 1, -1, -1):
            l = net["layers"][i]
            for j in range(len(l.get("weights") or []) - 1, -1, -1):
                der = ders.get((i, j))
                if isinstance(der, tuple):
                    der = der[0] if der[1] else None
                if der is None:
                    continue
                w = l["weights"][j]
                if j == 2 and l["type"] == "bnorm":
                    lr_m = float(_nth(l.get("learningRate"), j, 1.0))
                    l["weights"][j] = average_update(w, der.to(w.dtype), lr_m, num_workers)
                    continue
                wd = params["weight_decay"] * float(_nth(l.get("weightDecay"), j, 1.0))
                lr_p = lr * float(_nth(l.get("learningRate"), j, 1.0))
                if lr_p > 0 or wd > 0:
                    l["weights"][j], state["solverState"][i][j] = _update(
                        w, state["solverState"][i][j], der, lr_p, wd, params, num_workers)

    def stats(self, net, acc, num, elapsed):
        out = {"num": num, "time": elapsed,
               "objective": acc["objective"] / num if num else math.nan}
        errs = acc["errors"] or [math.nan] * len(self.error_labels or [])
        for name, e in zip(self.error_labels or [], errs):
            out[name] = e / num if num else math.nan
        return out

    def end(self, net):
        self.res = None

    @staticmethod
    def to_checkpoint(net):
        out = dict(net)
        out["layers"] = [dict(l) for l in net["layers"]]
        out["layers"][-1].pop("class", None)
        for l in out["layers"]:
            if l.get("weights"):
                l["weights"] = [w.cpu() if torch.is_tensor(w) else w for w in l["weights"]]
        return out

    @staticmethod
    def finish(net):
        net["layers"][-1].pop("class", None)
        for l in net["layers"]:      # the trained net comes back on the CPU, as in MATLAB
            if l.get("weights"):
                l["weights"] = [w.cpu() if torch.is_tensor(w) else w for w in l["weights"]]
        return net


def _nth(v, j, default):
    if v is None:
        return default
    if torch.is_tensor(v) or isinstance(v, np.ndarray):
        v = v.reshape(-1).tolist()
    if not isinstance(v, (list, tuple)):
        return v if j == 0 else default
    return v[j] if j < len(v) else default


def _describe(x):
    if torch.is_tensor(x) or isinstance(x, np.ndarray):
        return f"{type(x).__name__} of shape {tuple(x.shape)}"
    return type(x).__name__


def cnn_train(net: dict, imdb, get_batch: Callable, **opts):
    """Train a SimpleNN network (``examples/cnn_train.m``); returns ``(net, stats)``.
    See the module's help for the options."""
    o = _parse(opts, {**_COMMON, **_SIMPLENN}, "cnn_train")
    if not isinstance(net, dict) or "layers" not in net:
        raise TypeError("net: expected a SimpleNN dict (use cnn_train_dag for a DagNN)")
    net = dict(net, layers=[dict(l) for l in net["layers"]])  # value semantics, as MATLAB
    return _run(_SimpleNN(o), net, imdb, get_batch, o, "cnn_train")


# ------------------------------------------------------------------ DagNN

class _Dag:
    def __init__(self, opts):
        self.opts = opts

    @staticmethod
    def from_checkpoint(net_s):
        return DagNN.from_struct(net_s)

    @staticmethod
    def init_solver_state(net):
        return [0.0] * len(net.params)

    def prepare(self, net, opts, rep):
        if opts["device"] != net.device:
            net.move(opts["device"])

    def stat_names(self, net):
        return [n for n, _ in self._losses(net)]

    @staticmethod
    def _losses(net):
        for l in net.layers:
            if isinstance(l.block, Loss) and not l.block.ignoreAverage:
                yield l.outputs[0], l.block

    def begin(self, net, mode):
        net.mode = "normal" if mode == "train" else "test"
        net.reset()

    def new_accumulator(self, net):
        return {"stats": {}}

    def step(self, net, inputs, batch, s, training, params, acc):
        if isinstance(inputs, (list, tuple)) and len(inputs) % 2 == 0 \
                and all(isinstance(k, str) for k in inputs[::2]):
            inputs = dict(zip(inputs[::2], inputs[1::2]))
        if not isinstance(inputs, dict):
            raise TypeError("get_batch: expected a dict of inputs (e.g. {'input': images, "
                            f"'label': labels}}) for a DagNN network, got "
                            f"{type(inputs).__name__}")
        inputs = {k: _to_device(v, params["device"]) for k, v in inputs.items()}
        for k, v in inputs.items():
            if net.get_var_index(k) is None:
                raise ValueError(f"get_batch: input {k!r} is not a variable of the network "
                                 f"(inputs: {', '.join(net.get_inputs())})")
            if torch.is_tensor(v) and v.dim() == 4 and v.shape[0] != len(batch):
                raise ValueError(f"get_batch: input {k!r} has {v.shape[0]} images for "
                                 f"{len(batch)} indices")
        if training:
            net.accumulate_param_ders = s != 0
            net.eval(inputs, params["der_outputs"])
        else:
            net.eval(inputs)

    @staticmethod
    def values(net):
        return [prm.value for prm in net.params]

    @staticmethod
    def set_values(net, values):
        for prm, v in zip(net.params, values):
            prm.value = v

    @staticmethod
    def local_ders(net, had_images):
        out = {}
        for p, prm in enumerate(net.params):
            der = prm.der if had_images else None
            if der is not None and (not torch.is_tensor(der) or der.numel() == 0):
                der = None
            out[p] = (der.to(prm.value.dtype), True) if der is not None \
                else (torch.zeros_like(prm.value), False)
        return out

    def accumulate(self, net, state, params, num_workers, ders):
        lr = params["learning_rate"]
        for p, prm in enumerate(net.params):
            der = ders.get(p)
            if isinstance(der, tuple):
                der = der[0] if der[1] else None
            if der is None:
                continue
            if prm.train_method == "average":
                prm.value = average_update(prm.value, der.to(prm.value.dtype),
                                           float(prm.learning_rate),
                                           num_workers * max(prm.fanout, 1))
            elif prm.train_method == "gradient":
                wd = params["weight_decay"] * float(prm.weight_decay)
                lr_p = lr * float(prm.learning_rate)
                if lr_p > 0 or wd > 0:
                    prm.value, state["solverState"][p] = _update(
                        prm.value, state["solverState"][p], der, lr_p, wd, params, num_workers)
            else:
                raise ValueError(f"unknown training method {prm.train_method!r} for "
                                 f"parameter {prm.name!r}")

    def stats(self, net, acc, num, elapsed):
        fn = self.opts["extract_stats_fn"]
        out = {"num": num, "time": elapsed}
        if fn is not None:
            out.update(fn({}, net) or {})
        else:
            for name, block in self._losses(net):
                out[name] = float(block.average) if num else math.nan
        return out

    def end(self, net):
        net.reset()

    @staticmethod
    def to_checkpoint(net):
        s = net.to_struct()
        for p in s["params"]:
            if torch.is_tensor(p["value"]):
                p["value"] = p["value"].cpu()
        return s

    @staticmethod
    def finish(net):
        if net.device.type != "cpu":   # the trained net comes back on the CPU, as in MATLAB
            net.move("cpu")
        net.reset()
        return net


def cnn_train_dag(net: DagNN, imdb, get_batch: Callable, **opts):
    """Train a DagNN network (``examples/cnn_train_dag.m``); returns ``(net, stats)``.
    The network is trained in place (a handle object, as in MATLAB).  See the module's help."""
    o = _parse(opts, {**_COMMON, **_DAGNN}, "cnn_train_dag")
    if not isinstance(net, DagNN):
        raise TypeError("net: expected a matconvnet.dagnn.DagNN (use cnn_train for SimpleNN)")
    o["der_outputs"] = dict(o["der_outputs"]) if isinstance(o["der_outputs"], dict) else \
        dict(zip(o["der_outputs"][::2], o["der_outputs"][1::2]))
    return _run(_Dag(o), net, imdb, get_batch, o, "cnn_train_dag")
