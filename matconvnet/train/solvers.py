r"""Parameter updates of MatConvNet's trainers (FEATURES.md 4.3 and 4.7).

``sgd_update`` is the built-in rule of ``cnn_train`` / ``cnn_train_dag`` (momentum SGD, the
learning rate applied after the momentum buffer, optional Nesterov step);
``average_update`` is the running average used for batch-normalisation moments.

The four solvers of ``examples/+solver`` share the original's calling convention::

    w, state = solver(w, state, grad, opts, lr)     # one update
    opts = solver()                                 # the default options (a dict)

``grad`` is the normalised gradient with weight decay already added (as the trainers pass
it); ``state`` starts as the number ``0`` (MATLAB's initial ``solverState``) and becomes a
tensor or a dict of tensors, which the checkpoints store as they are.  The updates are
written out of place, so the caller's tensors are never modified -- except with
``inplace=True`` (``sgd_update``, ``average_update``: what the trainers use, on tensors they
own), which updates ``w`` and the momentum buffer in place with the same operations in the
same order, hence the same values to the last bit, without allocating new tensors.

===========  ===================================  ==========================================
solver       defaults                             state
===========  ===================================  ==========================================
``adam``     beta1 0.9, beta2 0.999, eps 1e-8     ``{'m', 'v', 't'}``
``adagrad``  epsilon 1e-10, rho 1                 ``g_sqr`` (a tensor)
``adadelta`` epsilon 1e-6, rho 0.9                ``{'g_sqr', 'delta_sqr'}`` (ignores lr)
``rmsprop``  epsilon 1e-8, rho 0.99               ``g_sqr`` (a tensor)
===========  ===================================  ==========================================
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

__all__ = ["sgd_update", "sgd_update_foreach", "average_update", "adam", "adagrad", "adadelta", "rmsprop",
           "SOLVERS", "get_solver", "is_initial_state"]


def is_initial_state(state: Any) -> bool:
    """Whether ``state`` is the initial solver state: MATLAB's ``isequal(state, 0)`` (a number
    0, or a one-element zero tensor as a checkpoint may give back), or ``None``."""
    if state is None:
        return True
    if isinstance(state, (int, float)) and not isinstance(state, bool):
        return state == 0
    if torch.is_tensor(state) and state.numel() == 1:
        return bool(state.item() == 0)
    return False


def _opts(defaults: Dict[str, float], opts: Optional[Dict[str, Any]], name: str) -> Dict:
    out = dict(defaults)
    for k, v in dict(opts or {}).items():
        if k not in defaults:
            raise ValueError(f"{name}: unknown option {k!r}; expected one of "
                             f"{', '.join(defaults)}")
        out[k] = float(v)
    return out


# ------------------------------------------------------------------ built-in rules

def sgd_update(w: torch.Tensor, momentum_state: Any, grad: torch.Tensor, lr: float,
               momentum: float = 0.9, nesterov: bool = False, *, inplace: bool = False,
               consume_grad: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """``m <- momentum m - g``; ``w <- w + lr m`` (Nesterov: ``w <- w + lr (momentum m - g)``
    with the updated ``m``).  ``momentum_state`` 0 means a zero buffer.  Returns (w, m).
    ``inplace``: ``w`` and a tensor ``momentum_state`` are updated in place (and returned);
    ``consume_grad`` (with ``inplace``): ``grad`` may be overwritten (scratch space for
    ``lr m``, saving an allocation)."""
    initial = is_initial_state(momentum_state)
    if not inplace:
        m = -grad if initial else momentum * momentum_state - grad
        delta = momentum * m - grad if nesterov else m
        return w + lr * delta, m
    if initial or not (torch.is_tensor(momentum_state) and momentum_state.shape == w.shape
                       and momentum_state.dtype == w.dtype):
        m = -grad if initial else momentum * momentum_state - grad
    else:
        m = momentum_state.mul_(momentum).sub_(grad)
    if nesterov:
        return w.add_(lr * (momentum * m - grad)), m
    if consume_grad and grad.shape == m.shape and grad.dtype == m.dtype and grad is not m:
        return w.add_(torch.mul(m, lr, out=grad)), m
    return w.add_(lr * m), m


def sgd_update_foreach(ws: List[torch.Tensor], ms: List[torch.Tensor], gs: List[torch.Tensor],
                       lrs: List[float], momentum: float) -> None:
    """:func:`sgd_update` (``inplace``, not Nesterov) of several parameters at once, with
    PyTorch's multi-tensor kernels: ``m <- momentum m - g``; ``w <- w + lr m``, bit for bit
    the same as one call per parameter, in a few kernel launches instead of several per
    parameter (what a GPU step of a deep network waits on).  ``ws`` and ``ms`` (momentum
    buffers of the same shapes and dtypes, not the initial state) are updated in place; all
    tensors on one device."""
    torch._foreach_mul_(ms, momentum)
    torch._foreach_sub_(ms, gs)
    torch._foreach_add_(ws, torch._foreach_mul(ms, lrs))


def average_update(value: torch.Tensor, der: torch.Tensor, lr: float,
                   scale: float = 1.0, *, inplace: bool = False) -> torch.Tensor:
    """``(1 - lr) value + (lr / scale) der``: batch-normalisation moments (``scale`` is
    ``numWorkers`` for SimpleNN, ``numWorkers * fanout`` for DagNN).  ``inplace``: ``value``
    is updated in place (and returned)."""
    if inplace:
        return value.mul_(1 - lr).add_((lr / scale) * der)
    return (1 - lr) * value + (lr / scale) * der


# ------------------------------------------------------------------ examples/+solver

_ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
_ADAGRAD = {"epsilon": 1e-10, "rho": 1.0}
_ADADELTA = {"epsilon": 1e-6, "rho": 0.9}
_RMSPROP = {"epsilon": 1e-8, "rho": 0.99}


def adam(w=None, state=None, grad=None, opts=None, lr=None):
    """Adam (torch.optim style bias correction): ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, ``t += 1``,
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``."""
    if w is None:
        return dict(_ADAM)
    o = _opts(_ADAM, opts, "adam")
    if is_initial_state(state):
        state = {"m": 0.0, "v": 0.0, "t": 0}
    m = o["beta1"] * state["m"] + (1 - o["beta1"]) * grad
    v = o["beta2"] * state["v"] + (1 - o["beta2"]) * grad * grad
    t = int(_number(state["t"])) + 1
    bias_correction = math.sqrt(1 - o["beta2"] ** t) / (1 - o["beta1"] ** t)
    w = w - (lr * bias_correction) * m / (torch.sqrt(v) + o["eps"])
    return w, {"m": m, "v": v, "t": t}


def adagrad(w=None, state=None, grad=None, opts=None, lr=None):
    """AdaGrad: ``g_sqr = rho g_sqr + g^2``; ``w -= lr g / (sqrt(g_sqr) + epsilon)``
    (``rho < 1`` gives a leaky accumulator)."""
    if w is None:
        return dict(_ADAGRAD)
    o = _opts(_ADAGRAD, opts, "adagrad")
    g_sqr = grad * grad if is_initial_state(state) else o["rho"] * state + grad * grad
    w = w - lr * grad / (torch.sqrt(g_sqr) + o["epsilon"])
    return w, g_sqr


def adadelta(w=None, state=None, grad=None, opts=None, lr=None):
    """AdaDelta (Zeiler 2012; ignores ``lr``): ``g_sqr = rho g_sqr + (1 - rho) g^2``,
    ``d = -sqrt((delta_sqr + eps) / (g_sqr + eps)) g``,
    ``delta_sqr = rho delta_sqr + (1 - rho) d^2``, ``w += d``."""
    if w is None:
        return dict(_ADADELTA)
    o = _opts(_ADADELTA, opts, "adadelta")
    if is_initial_state(state):
        state = {"g_sqr": 0.0, "delta_sqr": 0.0}
    rho, eps = o["rho"], o["epsilon"]
    g_sqr = state["g_sqr"] * rho + grad * grad * (1 - rho)
    delta = -torch.sqrt((state["delta_sqr"] + eps) / (g_sqr + eps)) * grad
    delta_sqr = state["delta_sqr"] * rho + delta * delta * (1 - rho)
    return w + delta, {"g_sqr": g_sqr, "delta_sqr": delta_sqr}


def rmsprop(w=None, state=None, grad=None, opts=None, lr=None):
    """RMSProp: ``g_sqr = rho g_sqr + (1 - rho) g^2``; ``w -= lr g / (sqrt(g_sqr) + eps)``."""
    if w is None:
        return dict(_RMSPROP)
    o = _opts(_RMSPROP, opts, "rmsprop")
    prev = 0.0 if is_initial_state(state) else state
    g_sqr = prev * o["rho"] + grad * grad * (1 - o["rho"])
    w = w - lr * grad / (torch.sqrt(g_sqr) + o["epsilon"])
    return w, g_sqr


def _number(x) -> float:
    return float(x.item()) if torch.is_tensor(x) else float(x)


#: name -> solver function (``None`` / ``'sgd'`` selects the built-in SGD).
SOLVERS: Dict[str, Callable] = {"adam": adam, "adagrad": adagrad, "adadelta": adadelta,
                                "rmsprop": rmsprop}


def get_solver(solver) -> Optional[Callable]:
    """``None`` / ``'sgd'`` -> None (built-in SGD); a name of :data:`SOLVERS` -> the function;
    a callable is returned as it is."""
    if solver is None or (isinstance(solver, str) and solver.lower() in ("sgd", "")):
        return None
    if isinstance(solver, str):
        try:
            return SOLVERS[solver.lower()]
        except KeyError:
            raise ValueError(f"solver: expected None, 'sgd', one of {', '.join(SOLVERS)} or "
                             f"a callable, got {solver!r}") from None
    if not callable(solver):
        raise TypeError(f"solver: expected None, a name or a callable, got "
                        f"{type(solver).__name__}")
    return solver
