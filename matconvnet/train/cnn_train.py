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
exp_dir                ``'data/exp'``       checkpoint folder (created, and checked to be
                                            writable before any training)
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
checkpoint_format      ``'v6'``             MAT format of the checkpoints: 'v6'
                                            (uncompressed, fastest), 'v7' (zlib, MATLAB's
                                            default, ~8% smaller for float weights and
                                            ~20x slower to write) or 'v7.3' (HDF5); a
                                            variable over 2 GB is written as 'v7.3'
random_seed            0                    seed ``epoch + random_seed`` at each epoch start
                                            (torch, NumPy and ``random``)
prefetch               False                load the next (sub-)batch in a background
                                            thread while the current one computes
plot_statistics        True                 ``exp_dir/net-train.png`` after every epoch
                                            (needs matplotlib; skipped without it)
post_epoch_fn          None                 ``f(net, params, state)``; returns None (keep),
                                            a new learning rate, or 0 (stop)
verbose                1                    0 quiet; 1 a progress bar on a terminal, else
                                            4 lines per phase; 2 every batch
stream                 ``sys.stdout``       where the console output goes
gpus                   ``[]``               ``[k]``: train on ``cuda:k-1`` (1-based, as the
                                            original; one GPU only)
conserve_memory,       True, inf,           SimpleNN only: passed to ``vl_simplenn``
back_prop_depth,       False, True
sync, cudnn
error_function         ``'multiclass'``     SimpleNN only: 'multiclass' (top1err, top5err),
                                            'binary' (binerr), 'none' or a callable
                                            ``f(params, labels, res) -> errors (sums)``
error_labels           from error_function  SimpleNN only: names of the error statistics
plot_diagnostics       False                SimpleNN only: ``exp_dir/net-diagnostics.png``
                                            after every epoch: update sizes and response
                                            powers per layer (keeps every layer's output:
                                            ``conserve_memory`` off)
der_outputs            ``{'objective': 1}`` DagNN only: passed to ``net.eval``
extract_stats_fn       averages of Loss     DagNN only: ``f(stats, net) -> stats``
                       layers
=====================  ===================  ===============================================

``profile``, ``parameter_server`` and ``memory_map_file`` are accepted and ignored.

Prefetching calls ``get_batch`` for the next sub-batch in a thread (``concurrent.futures``,
one worker) while the network processes the current one, so the same calls happen with the
same indices and the results are those of ``prefetch=False``, provided ``get_batch`` does not
draw from the global random generators (they would then be shared, in an unpredictable
order, with the network's own draws such as dropout's): derive augmentation randomness from
the indices (e.g. a ``torch.Generator`` seeded with them) when prefetching.

The trainer copies the network's parameters once at the start (the caller's tensors and
arrays are never written) and then updates its copies and the momentum buffers in place, with
the operations of the out-of-place rule in the same order (the same bits, fewer allocations):
clone what ``post_epoch_fn`` keeps of ``net`` or ``state``.

Console (:mod:`matconvnet.train.progress`): per batch the original's
``train: epoch 01:   3/ 50: 4056.1 (4120.3) Hz objective: 0.123 top1err: ...`` line (average
and current images/s, running averages), redrawn in place as a progress bar when ``stream``
is a terminal, as plain lines otherwise; per epoch a summary line.

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
by :func:`matconvnet.io.save` in MatConvNet's format (temporary file in ``exp_dir``, fsync,
``os.replace``), so a checkpoint is never seen partial.  ``continue_=True`` resumes from the
newest checkpoint that loads; one that does not (truncated, corrupt, or without ``stats``)
is reported with a ``RuntimeWarning`` naming it, and the previous one is tried.  Every epoch
starts by seeding the generators with ``epoch + random_seed`` (as the original), so a run
resumed after epoch ``e`` continues exactly as the uninterrupted run: on the CPU the
parameters come out bit-identical.
"""
from __future__ import annotations

import copy
import math
import os
import random
import re
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from .. import io as mio
from ..dagnn import DagNN
from ..dagnn.layers import Loss
from ..simplenn import vl_simplenn, vl_simplenn_display, vl_simplenn_tidy
from . import distributed as dist
from .plots import plot_diagnostics, plot_statistics
from .progress import Progress, summary
from .solvers import average_update, get_solver, sgd_update, sgd_update_foreach

__all__ = ["cnn_train", "cnn_train_dag", "error_multiclass", "error_binary", "error_none",
           "find_last_checkpoint"]

_COMMON = {
    "exp_dir": os.path.join("data", "exp"), "continue_": True, "batch_size": 256,
    "num_sub_batches": 1, "train": None, "val": None, "gpus": [], "epoch_size": math.inf,
    "prefetch": False, "num_epochs": 300, "learning_rate": 0.001, "weight_decay": 0.0005,
    "solver": None, "solver_opts": None, "momentum": 0.9, "save_solver_state": True,
    "nesterov_update": False, "random_seed": 0, "profile": False, "plot_statistics": True,
    "post_epoch_fn": None, "verbose": 1, "parameter_server": None, "stream": None,
    "checkpoint_format": "v6",
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
    if out["checkpoint_format"] not in mio.FORMATS:
        raise ValueError(f"checkpoint_format: expected one of {', '.join(mio.FORMATS)}, got "
                         f"{out['checkpoint_format']!r}")
    if out["stream"] is not None and not callable(getattr(out["stream"], "write", None)):
        raise TypeError(f"stream: expected a text stream (with write), got "
                        f"{type(out['stream']).__name__}")
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


def _checkpoint_epochs(exp_dir) -> List[int]:
    if not os.path.isdir(exp_dir):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(exp_dir) if (m := _CKPT.match(f)))


def _load_checkpoint(path):
    data = mio.load(path)
    if not isinstance(data, dict) or "net" not in data:
        raise ValueError("no 'net' variable")
    if "stats" not in data:
        raise ValueError("epoch was only partially saved (no 'stats')")
    stats = data["stats"]
    stats = {k: _as_list(stats.get(k)) for k in ("train", "val")}
    return data["net"], data.get("state") or {}, stats


def _resume_point(exp_dir):
    """``(epoch, (net, state, stats))`` of the newest checkpoint of ``exp_dir`` that loads,
    or ``(0, None)``; each one that does not is reported with a warning naming it."""
    for epoch in reversed(_checkpoint_epochs(exp_dir)):
        path = _model_path(exp_dir, epoch)
        try:
            return epoch, _load_checkpoint(path)
        except Exception as e:   # a damaged file can fail in many ways; the reason is kept
            warnings.warn(f"{path}: cannot resume from this checkpoint "
                          f"({type(e).__name__}: {e}); "
                          + ("trying the previous one" if epoch > 1 else
                             "starting from the initial network"),
                          RuntimeWarning, stacklevel=5)
    return 0, None


def _save_checkpoint(path, variables, fmt) -> None:
    """``io.save`` (atomic); a variable too large for the MAT 5 formats (2 GB) is written as
    v7.3 instead, with a warning, rather than losing the epoch."""
    try:
        mio.save(path, variables, format=fmt)
    except ValueError as e:
        if fmt == "v7.3" or "too large" not in str(e):
            raise
        warnings.warn(f"{path}: {e}; writing it in the v7.3 (HDF5) format instead",
                      RuntimeWarning, stacklevel=2)
        mio.save(path, variables, format="v7.3")


def _plot(draw, data, path) -> None:
    """A figure that cannot be drawn is reported, never allowed to stop the training."""
    try:
        draw(data, path)
    except Exception as e:
        warnings.warn(f"{path}: not drawn ({type(e).__name__}: {e})", RuntimeWarning,
                      stacklevel=2)


def _prepare_exp_dir(exp_dir) -> None:
    """Create ``exp_dir`` and check that files can be written there, before any training
    (a failure after an epoch of work would lose it)."""
    try:
        os.makedirs(exp_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=exp_dir):
            pass
    except OSError as e:
        raise PermissionError(f"exp_dir: cannot write checkpoints to {exp_dir!r} "
                              f"({type(e).__name__}: {e.strerror or e})") from e


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


# ------------------------------------------------------------------ shared loop

def _seed(epoch, random_seed):
    torch.manual_seed(epoch + random_seed)
    np.random.seed((epoch + random_seed) % 2 ** 32)
    random.seed(epoch + random_seed)


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


def _owned(x, device):
    """A copy of ``x`` on ``device`` that the trainer may update in place (a tensor that
    ``_to_device`` returned unchanged, or a view of a NumPy array, is copied)."""
    y = _to_device(x, device)
    if torch.is_tensor(y) and (y is x or isinstance(x, np.ndarray)):
        y = y.clone()
    return y


def _update(value, state, der, lr_p, wd, opts, num_workers):
    """The 'gradient' rule of FEATURES.md 4.3 for one parameter: returns (value, state)."""
    g = der / num_workers if num_workers != 1 else der    # x / 1 == x: skip the copy
    if wd:
        g = (value * wd).add_(g)         # == g + wd * value, bit for bit, in one new tensor
    if opts["solver_fn"] is None:
        # the trainer owns value and state (copied in prepare) and a new g: update in place
        return sgd_update(value, state, g, lr_p, opts["momentum"],
                          bool(opts["nesterov_update"]), inplace=True,
                          consume_grad=g is not der)
    out = opts["solver_fn"](value, state, g, opts["solver_opts"], lr_p)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("solver: expected the solver to return (w, state)")
    return out


def _update_many(items, opts, num_workers):
    """:func:`_update` of each ``(value, state, der, lr_p, wd)``; returns their (value, state)
    in order.  The plain SGD steps of tensors with momentum buffers go through PyTorch's
    multi-tensor kernels, grouped by device, dtype and whether weight decay applies (the
    same arithmetic as one call each, so the same bits); the rest one by one."""
    out = [None] * len(items)
    groups: Dict[tuple, List[int]] = {}
    plain = opts["solver_fn"] is None and not opts["nesterov_update"]
    for i, (value, state, der, lr_p, wd) in enumerate(items):
        if plain and _foreach_ready(value, state, der):
            groups.setdefault((value.device, value.dtype, bool(wd)), []).append(i)
        else:
            out[i] = _update(value, state, der, lr_p, wd, opts, num_workers)
    for (_, _, decay), idx in groups.items():
        if len({id(items[i][0]) for i in idx}) < len(idx):   # one tensor twice: in turn
            for i in idx:
                out[i] = _update(*items[i], opts, num_workers)
            continue
        ws = [items[i][0] for i in idx]
        ms = [items[i][1] for i in idx]
        gs = [items[i][2] for i in idx]
        if num_workers != 1:
            gs = torch._foreach_div(gs, float(num_workers))
        if decay:                                   # g <- wd w + g, as in _update
            wg = torch._foreach_mul(ws, [float(items[i][4]) for i in idx])
            torch._foreach_add_(wg, gs)
            gs = wg
        sgd_update_foreach(ws, ms, gs, [float(items[i][3]) for i in idx],
                           float(opts["momentum"]))
        for i in idx:
            out[i] = (items[i][0], items[i][1])
    return out


def _foreach_ready(value, state, der) -> bool:
    """Whether a parameter can take the multi-tensor SGD step: tensors of one shape, dtype
    and device, and a momentum buffer past the initial state (one element could be 0)."""
    return (torch.is_tensor(value) and torch.is_tensor(state) and torch.is_tensor(der)
            and state.numel() > 1 and state.shape == value.shape == der.shape
            and state.dtype == value.dtype == der.dtype
            and state.device == value.device == der.device)


def _run(kind, net, imdb, get_batch, opts, who):
    rep = Progress(int(opts["verbose"]), who, opts["stream"])
    try:
        return _train(kind, net, imdb, get_batch, opts, rep)
    finally:
        rep.close_bar()


def _train(kind, net, imdb, get_batch, opts, rep):
    exp_dir = os.fspath(opts["exp_dir"])
    train, val = _default_sets(imdb, opts)
    evaluate = train is None
    distributed = dist.is_distributed()
    lead = dist.rank() == 0
    if not lead:
        rep.verbose = 0          # only rank 0 prints, writes checkpoints and plots
    if not evaluate and lead:
        _prepare_exp_dir(exp_dir)
    stats = {"train": [], "val": []}
    state: Dict[str, Any] = {}
    start, loaded = _resume_point(exp_dir) if opts["continue_"] and lead else (0, None)
    if start >= 1:
        rep.say(f"resuming by loading epoch {start}")
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
            _save_checkpoint(_model_path(exp_dir, epoch),
                             {"net": kind.to_checkpoint(net), "state": _cpu(saved_state),
                              "stats": stats}, opts["checkpoint_format"])
            if opts["plot_statistics"]:
                _plot(plot_statistics, stats, os.path.join(exp_dir, "net-train.png"))
            if opts.get("plot_diagnostics") and getattr(kind, "diagnostics", None):
                _plot(plot_diagnostics, kind.diagnostics,
                      os.path.join(exp_dir, "net-diagnostics.png"))
        if not evaluate:
            dist.barrier()   # the others wait for rank 0's checkpoint
        rep.say(summary(epoch, epoch_stats["train"], epoch_stats["val"]))
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
    plan = [[(s, b) for s, b in enumerate(sub_batches) if len(b)]
            for sub_batches in _batches(subset, bs, ns, lab, num_labs)]
    loader = _Loader(get_batch, imdb, [b for subs in plan for _, b in subs],
                     bool(params["prefetch"]))
    with loader:
        for k, subs in enumerate(plan, start=1):
            batch_start = time.perf_counter()
            batch_num = _process_batch(kind, net, state, params, acc, loader, subs, k,
                                       nbatches, mode, training)
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


def _process_batch(kind, net, state, params, acc, loader, subs, k, nbatches, mode, training):
    """Forward (and backward) of each sub-batch, then the update; returns the images seen."""
    batch_num = 0
    for s, batch in subs:
        try:
            kind.step(net, loader.next(), batch, s, training, params, acc)
        except (ValueError, TypeError, IndexError, RuntimeError) as e:
            raise type(e)(f"{mode} epoch {params['epoch']}, batch {k}/{nbatches} "
                          f"(images {batch[:4].tolist()}{'...' if len(batch) > 4 else ''}): "
                          f"{e}") from e
        batch_num += len(batch)
    if training:
        num_labs = dist.world_size()
        ders = kind.local_ders(net, batch_num > 0)
        if num_labs > 1:
            ders = _sum_ders(ders)
        kind.accumulate(net, state, params, int(params["num_sub_batches"]) * num_labs, ders)
    return batch_num


class _Loader:
    """``get_batch(imdb, b)`` for each ``b`` of ``batches`` in turn (:meth:`next`); with
    ``prefetch``, the call for the next one runs in a background thread while the caller
    works on the current one (FEATURES.md T-O-9)."""

    def __init__(self, get_batch, imdb, batches, prefetch):
        self.get_batch, self.imdb, self.batches = get_batch, imdb, batches
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcn-prefetch") \
            if prefetch and len(batches) > 1 else None
        self.pos = 0
        self.pending = None

    def next(self):
        i = self.pos
        if i >= len(self.batches):
            raise IndexError("no batch left")
        self.pos += 1
        fut, self.pending = self.pending, None
        out = fut.result() if fut is not None else self.get_batch(self.imdb, self.batches[i])
        if self.pool is not None and i + 1 < len(self.batches):
            self.pending = self.pool.submit(self.get_batch, self.imdb, self.batches[i + 1])
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            if self.pending is not None:
                self.pending.cancel()
            self.pool.shutdown(wait=True)   # an unfinished load completes and is dropped
        return False


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
        self.diagnostics = None

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
                l["weights"] = [_owned(w, dev) for w in ws]
        tidy = vl_simplenn_tidy(net)
        net["layers"][:] = tidy["layers"]
        net["meta"] = tidy["meta"]
        if len(net["layers"]) >= 2:
            net["layers"][-2]["precious"] = True
        if rep.verbose > 0:
            try:
                rep.text(str(vl_simplenn_display(net, batch_size=int(opts["batch_size"]))))
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
            conserve_memory=bool(params["conserve_memory"]) and not params["plot_diagnostics"],
            back_prop_depth=params["back_prop_depth"], sync=bool(params["sync"]),
            cudnn=bool(params["cudnn"]), input_derivative=False)
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
        if not params.get("plot_diagnostics"):
            self._accumulate(net, state, params, num_workers, ders)
            return
        before = [w.detach().clone() for w in self.values(net)]
        self._accumulate(net, state, params, num_workers, ders)
        self.diagnostics = self._diagnose(net, before)

    def _diagnose(self, net, before):
        """FEATURES.md T-O-28: the last update's size per parameter, the response power of
        each layer's output and the prediction scores (see :mod:`matconvnet.train.plots`)."""
        variation = []
        for (i, j), old, new in zip(self._slots(net), before, self.values(net)):
            if not old.numel():      # an absent parameter (MATLAB's [], e.g. a removed bias)
                continue
            l = net["layers"][i]
            names = _WEIGHT_NAMES.get(l["type"], ("filters", "biases"))
            label = f"{_layer_name(l, i)}:{names[j] if j < len(names) else f'w{j + 1}'}"
            variation.append((label, float((new - old).abs().mean())))
        power = []
        res = self.res or []
        for i, l in enumerate(net["layers"]):
            x = res[i + 1].get("x") if i + 1 < len(res) else None
            if torch.is_tensor(x) and x.numel():
                power.append((_layer_name(l, i), float(x.detach().double().pow(2).mean().sqrt())))
        scores = res[-2].get("x") if len(res) >= 2 else None
        if torch.is_tensor(scores) and scores.dim() >= 2:
            scores = scores.detach().reshape(scores.shape[0], -1).t().cpu().numpy()
        else:
            scores = None
        return {"variation": variation, "power": power, "scores": scores}

    def _accumulate(self, net, state, params, num_workers, ders):
        lr = params["learning_rate"]
        keys, items = [], []
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
                    l["weights"][j] = average_update(w, der.to(w.dtype), lr_m, num_workers,
                                                     inplace=True)
                    continue
                wd = params["weight_decay"] * float(_nth(l.get("weightDecay"), j, 1.0))
                lr_p = lr * float(_nth(l.get("learningRate"), j, 1.0))
                if lr_p > 0 or wd > 0:
                    keys.append((i, j))
                    items.append((w, state["solverState"][i][j], der, lr_p, wd))
        for (i, j), (value, st) in zip(keys, _update_many(items, params, num_workers)):
            net["layers"][i]["weights"][j], state["solverState"][i][j] = value, st

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


_WEIGHT_NAMES = {"bnorm": ("multipliers", "biases", "moments")}


def _layer_name(layer, i) -> str:
    name = layer.get("name")
    return str(name) if isinstance(name, str) and name else f"{layer['type']}{i + 1}"


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
        for prm in net.params:   # updated in place: never the caller's other references
            prm.value = _owned(prm.value, opts["device"])

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
            keep, net.input_derivatives = net.input_derivatives, False   # never read here
            try:
                net.eval(inputs, params["der_outputs"])
            finally:
                net.input_derivatives = keep
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
        keys, items = [], []
        for p, prm in enumerate(net.params):
            der = ders.get(p)
            if isinstance(der, tuple):
                der = der[0] if der[1] else None
            if der is None:
                continue
            if prm.train_method == "average":
                prm.value = average_update(prm.value, der.to(prm.value.dtype),
                                           float(prm.learning_rate),
                                           num_workers * max(prm.fanout, 1), inplace=True)
            elif prm.train_method == "gradient":
                wd = params["weight_decay"] * float(prm.weight_decay)
                lr_p = lr * float(prm.learning_rate)
                if lr_p > 0 or wd > 0:
                    keys.append(p)
                    items.append((prm.value, state["solverState"][p], der, lr_p, wd))
            else:
                raise ValueError(f"unknown training method {prm.train_method!r} for "
                                 f"parameter {prm.name!r}")
        for p, (value, st) in zip(keys, _update_many(items, params, num_workers)):
            net.params[p].value, state["solverState"][p] = value, st

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
