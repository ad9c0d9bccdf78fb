"""Data-parallel helpers for ``cnn_train`` / ``cnn_train_dag`` (FEATURES.md 4.6).

MatConvNet trains on several GPUs with ``spmd`` labs and a ``ParameterServer`` that sums the
parameter derivatives over the labs.  Here the labs are processes started by ``torchrun``
(``torch.distributed``: gloo on the CPU, NCCL on GPUs); the same code path serves several
GPUs of one machine and several machines::

    torchrun --nproc_per_node=2 train_script.py      # calls cnn_train(...) unchanged

``cnn_train`` calls :func:`init_from_env` itself, so a training script needs no changes.
The backend is ``'nccl'`` when CUDA is available and ``'gloo'`` otherwise; the environment
variable ``MATCONVNET_DIST_BACKEND`` overrides it.
"""
from __future__ import annotations

import datetime
import os
from typing import Any, List, Optional, Sequence

import torch

__all__ = ["is_available", "is_distributed", "rank", "world_size", "local_rank",
           "launched_by_torchrun", "init_from_env", "default_device", "backend",
           "all_reduce_sum", "all_reduce_mean", "broadcast_tensors", "broadcast_object",
           "barrier", "all_reduce_scalars", "max_scalar"]


def is_available() -> bool:
    return torch.distributed.is_available()


def _initialized() -> bool:
    return is_available() and torch.distributed.is_initialized()


def launched_by_torchrun() -> bool:
    """True when the environment describes a process group of more than one process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def world_size() -> int:
    return torch.distributed.get_world_size() if _initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if _initialized() else 0


def local_rank() -> int:
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return world_size() > 1


def backend() -> Optional[str]:
    return torch.distributed.get_backend() if _initialized() else None


def init_from_env(backend_name: Optional[str] = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group described by torchrun's environment variables (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ...), if launched so and not yet joined.  Returns
    :func:`is_distributed`.  On NCCL, selects ``cuda:LOCAL_RANK``."""
    if _initialized():
        return is_distributed()
    if not launched_by_torchrun():
        return False
    if not is_available():
        raise RuntimeError("launched by torchrun, but torch.distributed is not available in "
                           "this PyTorch build")
    name = backend_name or os.environ.get("MATCONVNET_DIST_BACKEND") or \
        ("nccl" if torch.cuda.is_available() else "gloo")
    if name == "nccl":
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group(backend=name,
                                         timeout=datetime.timedelta(seconds=timeout_s))
    return is_distributed()


def default_device(gpus: Sequence[int] = ()) -> torch.device:
    """The device of this process: ``gpus[LOCAL_RANK]`` (1-based, as MatConvNet's ``gpus``)
    when given, else ``cuda:LOCAL_RANK`` on NCCL, else the CPU."""
    gpus = list(gpus or [])
    if gpus:
        return torch.device(f"cuda:{int(gpus[local_rank() % len(gpus)]) - 1}")
    if backend() == "nccl":
        return torch.device(f"cuda:{local_rank()}")
    return torch.device("cpu")


def _comm_device() -> Optional[torch.device]:
    return torch.device(f"cuda:{torch.cuda.current_device()}") if backend() == "nccl" \
        else None


def all_reduce_sum(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """Sums each tensor over the processes; returns new tensors (same order, shapes, dtypes
    and devices).  Tensors are packed into one flat buffer per (dtype, device), so a whole
    network's derivatives take one collective per dtype.  Every process must pass tensors
    of the same shapes and dtypes in the same order."""
    if not is_distributed():
        return [t.clone() for t in tensors]
    return _packed(tensors, lambda flat: torch.distributed.all_reduce(
        flat, op=torch.distributed.ReduceOp.SUM))


def all_reduce_mean(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """The mean over the processes of each tensor (see :func:`all_reduce_sum`)."""
    w = world_size()
    return [t / w for t in all_reduce_sum(tensors)] if w > 1 else [t.clone() for t in tensors]


def broadcast_tensors(tensors: List[torch.Tensor], src: int = 0) -> List[torch.Tensor]:
    """Rank ``src``'s values of the tensors, on every process (same packing as
    :func:`all_reduce_sum`)."""
    if not is_distributed():
        return list(tensors)
    return _packed(tensors, lambda flat: torch.distributed.broadcast(flat, src=src))


def _packed(tensors: List[torch.Tensor], collective) -> List[torch.Tensor]:
    """Run ``collective`` in place on one flat buffer per (dtype, device) holding the
    tensors, and unpack the results into new tensors."""
    out: List[Optional[torch.Tensor]] = [None] * len(tensors)
    groups: dict = {}
    for k, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(k)
    comm = _comm_device()
    for (dtype, device), ks in sorted(groups.items(), key=lambda kv: str(kv[0])):
        flat = torch.cat([tensors[k].detach().reshape(-1) for k in ks])
        if comm is not None and flat.device != comm:
            flat = flat.to(comm)
        collective(flat)
        flat = flat.to(device)
        offset = 0
        for k in ks:
            n = tensors[k].numel()
            out[k] = flat[offset:offset + n].view(tensors[k].shape).clone()
            offset += n
    return out  # type: ignore[return-value]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s (picklable) object, on every process."""
    if not is_distributed():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def all_reduce_scalars(values: Sequence[float]) -> List[float]:
    """Float64 sums over the processes of a list of numbers."""
    if not is_distributed() or not values:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return [float(v) for v in all_reduce_sum([t])[0]]


def max_scalar(value: float) -> float:
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    comm = _comm_device()
    if comm is not None:
        t = t.to(comm)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t.cpu()[0])


def barrier() -> None:
    if is_distributed():
        if backend() == "nccl":
            torch.distributed.barrier(device_ids=[torch.cuda.current_device()])
        else:
            torch.distributed.barrier()
