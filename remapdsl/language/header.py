"""The header lines of a document: training settings and budgets."""

from __future__ import annotations

from remapdsl.language.catalog import ParamSpec

TRAIN_OPTIONS: dict[str, ParamSpec] = {
    p.name: p
    for p in (
        ParamSpec("epochs", int, 10, 1, 100000, doc="passes over the training set"),
        ParamSpec("batch", int, 128, 1, 1 << 20, doc="examples per step"),
        ParamSpec("lr", float, 0.001, 0, 10, open_low=True, doc="learning rate"),
        ParamSpec("optimizer", str, "adam", words=("adam", "adamw", "sgd"), doc="optimizer"),
        ParamSpec("momentum", float, 0.9, 0, 1, open_high=True, doc="momentum (sgd)"),
        ParamSpec("weight_decay", float, 0.0, 0, 1, doc="L2 penalty"),
        ParamSpec("seed", int, 0, 0, 2**31 - 1, doc="seed of weights and batch order"),
        ParamSpec("patience", int, 0, 0, 100000,
                  doc="stop after this many epochs without a better validation loss (0: never)"),
    )
}

# Units each budget metric accepts, with their factor to the metric's base unit
# (parameters, milliseconds, bytes). The first unit is the one written when none was.
BUDGET_UNITS: dict[str, dict[str, float]] = {
    "params": {"": 1, "k": 1e3, "K": 1e3, "M": 1e6},
    "latency": {"ms": 1, "us": 1e-3, "µs": 1e-3, "s": 1e3},
    "size": {"B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "KiB": 1024, "MiB": 1024**2},
}
