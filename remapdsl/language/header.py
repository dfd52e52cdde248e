"""The header lines of a document: training settings and budgets."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from remapdsl.language.catalog import ParamSpec
from remapdsl.language.model import Document

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


@dataclass(frozen=True)
class TrainSettings:
    """The settings of a training run, one field per `train` option, each checked against its `TRAIN_OPTIONS`
    entry."""

    epochs: int = 10
    batch: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    patience: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            spec = TRAIN_OPTIONS[f.name]
            value = getattr(self, f.name)
            if (msg := spec.check(value)) is not None:
                raise ValueError(f"train {msg}")
            object.__setattr__(self, f.name, spec.type(value))

    @classmethod
    def from_document(cls, doc: Document, **overrides: Any) -> TrainSettings:
        """The document's `train` line over the defaults, with `overrides` (None values ignored) on top."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown training setting(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}")
        values: dict[str, Any] = {a.name: a.value for a in (doc.train.args if doc.train else ()) if a.name in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def key(self) -> str:
        """Canonical text of the settings that change a run, for the store's dedupe key."""
        parts = [f"{f.name}={_canonical(getattr(self, f.name))}" for f in fields(self)
                 if f.name != "momentum" or self.optimizer == "sgd"]
        return "|".join(parts)


def _canonical(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# Units each budget metric accepts, with their factor to the metric's base unit
# (parameters, milliseconds, bytes). The first unit is the one written when none was.
BUDGET_UNITS: dict[str, dict[str, float]] = {
    "params": {"": 1, "k": 1e3, "K": 1e3, "M": 1e6},
    "latency": {"ms": 1, "us": 1e-3, "µs": 1e-3, "s": 1e3},
    "size": {"B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "KiB": 1024, "MiB": 1024**2},
}
