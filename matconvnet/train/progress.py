r"""Console output of ``cnn_train`` / ``cnn_train_dag`` (FEATURES.md T-P-1, T-P-2).

Per batch, the original's line::

    train: epoch 01:   3/ 50: 4056.1 (4120.3) Hz objective: 0.123 top1err: 0.045 top5err: 0.000

(average speed over the epoch so far, current batch's speed in parentheses, then the running
averages of the statistics in alphabetical order).  Where it goes depends on the stream:

* a terminal (``stream.isatty()``): one progress bar per phase, redrawn in place with a
  carriage return (at most every ``min_interval`` seconds, and always for the first and last
  batch), ended by a newline when the phase ends::

      train: epoch 01:  12/ 50 [####----------------]  24% 4056.1 (4120.3) Hz objective: ...

* anything else (a file, a pipe, a notebook cell): plain lines, four per phase with
  ``verbose=1`` (batches n/4, n/2, 3n/4 and n) and one per batch with ``verbose=2``.

``verbose=0`` prints nothing.  Each epoch ends with a one-line summary (:func:`summary`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Dict, Optional, TextIO

__all__ = ["Progress", "summary", "batch_line"]

_BAR = 20


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):   # no isatty, or a closed stream
        return False


def _columns(stream, default: int = 120) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return default


def _stat_text(stats: Dict[str, float]) -> str:
    return "".join(f" {name}: {stats[name]:.3f}"
                   for name in sorted(k for k in stats if k not in ("num", "time")))


def batch_line(mode: str, epoch: int, k: int, nbatches: int, speed: float,
               cur_speed: float, stats: Dict[str, float]) -> str:
    """The original's per-batch line (T-P-1), without a newline."""
    return (f"{mode}: epoch {epoch:02d}: {k:3d}/{nbatches:3d}: {speed:.1f} ({cur_speed:.1f}) Hz"
            + _stat_text(stats))


def _bar_line(mode, epoch, k, nbatches, speed, cur_speed, stats) -> str:
    frac = k / nbatches if nbatches else 1.0
    full = int(round(_BAR * frac))
    return (f"{mode}: epoch {epoch:02d}: {k:3d}/{nbatches:3d} [{'#' * full}{'-' * (_BAR - full)}]"
            f" {100 * frac:3.0f}% {speed:.1f} ({cur_speed:.1f}) Hz" + _stat_text(stats))


def summary(epoch: int, train: Optional[Dict], val: Optional[Dict]) -> str:
    """``epoch 03: train objective 0.1234 top1err 0.0321 ... (5000 im, 4.1 s); val ...``"""
    parts = []
    for mode, s in (("train", train), ("val", val)):
        if s and s.get("num"):
            keys = sorted(k for k in s if k not in ("num", "time"))
            parts.append(f"{mode} " + " ".join(f"{k} {s[k]:.4f}" for k in keys)
                         + f" ({s['num']} im, {s['time']:.1f} s)")
    return f"epoch {epoch:02d}: " + ("; ".join(parts) if parts else "no images")


class Progress:
    """Writes the trainers' console output to ``stream`` (``sys.stdout`` when None, looked up
    when the object is made)."""

    def __init__(self, verbose: int, who: str, stream: Optional[TextIO] = None,
                 min_interval: float = 0.1):
        self.verbose = int(verbose)
        self.who = who
        self.stream = sys.stdout if stream is None else stream
        self.terminal = _is_terminal(self.stream)
        self.min_interval = float(min_interval)
        self._open = 0          # length of an unfinished bar line (0: none)
        self._last_draw = -math.inf

    # -- per batch
    def batch(self, mode: str, epoch: int, k: int, nbatches: int, speed: float,
              cur_speed: float, stats: Dict[str, float]) -> None:
        if self.verbose <= 0:
            return
        if self.terminal:
            self._draw_bar(mode, epoch, k, nbatches, speed, cur_speed, stats)
            return
        every = 1 if self.verbose >= 2 else max(1, math.ceil(nbatches / 4))
        if k == nbatches or k % every == 0:
            self._write(batch_line(mode, epoch, k, nbatches, speed, cur_speed, stats) + "\n")

    def _draw_bar(self, mode, epoch, k, nbatches, speed, cur_speed, stats):
        now = time.perf_counter()
        last = k >= nbatches
        if not (last or k == 1 or now - self._last_draw >= self.min_interval):
            return
        self._last_draw = now
        line = _bar_line(mode, epoch, k, nbatches, speed, cur_speed, stats)
        line = line[:max(_columns(self.stream) - 1, 20)]   # a wrapped line defeats the \r
        pad = " " * max(self._open - len(line), 0)          # erase a longer previous draw
        self._write("\r" + line + pad + ("\n" if last else ""))
        self._open = 0 if last else len(line)

    # -- other messages
    def close_bar(self) -> None:
        """End an unfinished bar line (before other output, or when a phase stops early)."""
        if self._open:
            self._write("\n")
            self._open = 0

    def say(self, text: str) -> None:
        """``<who>: <text>`` on its own line (T-P-2)."""
        if self.verbose > 0:
            self.close_bar()
            self._write(f"{self.who}: {text}\n")

    def text(self, text: str) -> None:
        """Free text (the network table printed at the start)."""
        if self.verbose > 0:
            self.close_bar()
            text = str(text)
            self._write(text if text.endswith("\n") else text + "\n")

    def _write(self, s: str) -> None:
        self.stream.write(s)
        self.stream.flush()
