r"""The trainers' figures, written as PNG files (FEATURES.md T-O-28, T-O-29, T-P-3).

* :func:`plot_statistics` -- the original's figure 1 (``net-train``): one panel per statistic
  (``objective``, ``top1err``, ... : every field but ``num`` and ``time``), the ``train`` and
  ``val`` values per epoch as ``'o-'`` curves, grid and legend.
* :func:`plot_diagnostics` -- the original's figure 2 (``plotDiagnostics``, SimpleNN): per
  parameter the size of the last update, ``variation = mean |w_new - w_old|`` (for SGD this
  is the original's ``lr mean |momentum|``), and per layer the response power
  ``sqrt(mean(x^2))`` of its output, as horizontal bars on log axes, and the prediction scores
  of the last batch.

matplotlib is optional and imported only when a figure is drawn; it draws on its Agg canvas
directly (no ``pyplot``, so an interactive session's backend is left alone).  Without
matplotlib the functions return False and write nothing.  Files are written atomically: a
temporary file in the same folder, fsync, ``os.replace``.
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .._files import atomic_write

__all__ = ["plot_statistics", "plot_diagnostics", "have_matplotlib"]


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except Exception:   # missing or broken: plots are optional
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path) -> None:
    atomic_write(os.fspath(path), lambda tmp: fig.savefig(tmp, format="png"))


def _stat_names(stats: Dict[str, Sequence[Dict]]) -> List[str]:
    names = set()
    for mode in ("train", "val"):
        for s in stats.get(mode) or []:
            names.update(k for k in s if k not in ("num", "time"))
    return sorted(names)


def plot_statistics(stats: Dict[str, Sequence[Dict]], path) -> bool:
    """Draw ``stats = {'train': [per epoch], 'val': [per epoch]}`` (as returned by
    ``cnn_train``) into the PNG file ``path``.  Epochs without images of a phase are left
    out of that phase's curve.  Returns False (nothing written) without matplotlib or
    without any statistic to draw."""
    if not isinstance(stats, dict):
        raise TypeError(f"stats: expected a dict with 'train' and 'val' lists, got "
                        f"{type(stats).__name__}")
    names = _stat_names(stats)
    if not names or not have_matplotlib():
        return False
    width, height = 4.0 * len(names), 3.5
    fig = _figure(width, height)
    # fixed margins in inches (tight_layout would cost a third of the drawing time)
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.2 / width, bottom=0.55 / height,
                        top=1 - 0.35 / height, wspace=0.8 / 3.2)
    from matplotlib.ticker import MaxNLocator
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for mode in ("train", "val"):
            pts = [(e, v) for e, s in enumerate(stats.get(mode) or [], start=1)
                   if s.get("num") and (v := _scalar(s.get(name))) is not None]
            if pts:
                ax.plot(*zip(*pts), "o-", label=mode)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    _save_png(fig, path)
    return True


def _scalar(v):
    """A finite float from a number or a one-element array, else None (not drawn)."""
    try:
        v = float(np.asarray(v, dtype=np.float64).reshape(-1)[0]) if np.size(v) == 1 else None
    except (TypeError, ValueError):
        return None
    return v if v is not None and math.isfinite(v) else None


def plot_diagnostics(diagnostics: Dict, path) -> bool:
    """Draw ``diagnostics = {'variation': [(label, value)], 'power': [(label, value)],
    'scores': C x N array or None}`` into the PNG file ``path``.  Returns False without
    matplotlib."""
    if not isinstance(diagnostics, dict):
        raise TypeError(f"diagnostics: expected a dict with 'variation' and 'power', got "
                        f"{type(diagnostics).__name__}")
    if not have_matplotlib():
        return False
    fig = _figure(11, 8)
    ax_var, ax_pow, ax_scores, ax_none = fig.subplots(2, 2).ravel()
    _bars(ax_var, diagnostics.get("variation") or [], "Variation (mean |update|)", (1e-5, 1))
    _bars(ax_pow, diagnostics.get("power") or [], "Power (sqrt mean x^2)", (1e-5, 1e5))
    scores = diagnostics.get("scores")
    if scores is not None and np.size(scores):
        s = np.asarray(scores, dtype=np.float64)
        s = s.reshape(s.shape[0], -1)
        ax_scores.plot(np.arange(1, s.shape[0] + 1), s[:, :64])
        ax_scores.set_xlabel("class")
    ax_scores.set_title("Scores (last batch, up to 64 images)")
    ax_scores.grid(True)
    ax_none.axis("off")
    fig.tight_layout()
    _save_png(fig, path)
    return True


def _bars(ax, items: Sequence[Tuple[str, float]], title: str, xlim) -> None:
    labels = [str(k) for k, _ in items]
    values = [float(v) for _, v in items]
    if values:
        pos = np.arange(len(values))
        # log axes: zeros and NaNs are drawn at the left edge
        shown = [v if math.isfinite(v) and v > 0 else 0.0 for v in values]
        lo = min([xlim[0]] + [v for v in shown if v > 0])
        hi = max([xlim[1]] + shown)
        ax.barh(pos, [max(v - lo, 0.0) for v in shown], left=lo)
        ax.set_yticks(pos, labels=labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
    ax.set_title(title)
    ax.grid(True)
