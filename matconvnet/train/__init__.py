"""Training (manual 3.3; FEATURES.md section 4): MatConvNet's ``cnn_train`` (SimpleNN) and
``cnn_train_dag`` (DagNN) example trainers and the solvers of ``examples/+solver``.

Floor 4 (DESIGN.md): this package may print progress (:mod:`.progress`) and write
checkpoints and plots (:mod:`.plots`, ``net-train.png``; matplotlib is optional).
"""
from .cnn_train import (cnn_train, cnn_train_dag, error_binary, error_multiclass, error_none,
                        find_last_checkpoint)
from .plots import plot_diagnostics, plot_statistics
from .progress import Progress
from .solvers import (SOLVERS, adadelta, adagrad, adam, average_update, get_solver, rmsprop,
                      sgd_update)

__all__ = ["cnn_train", "cnn_train_dag", "error_multiclass", "error_binary", "error_none",
           "find_last_checkpoint", "sgd_update", "average_update", "adam", "adagrad",
           "adadelta", "rmsprop", "SOLVERS", "get_solver", "plot_statistics",
           "plot_diagnostics", "Progress"]
