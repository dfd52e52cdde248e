"""Training on PyTorch: the data sets, the torch modules built from the layer catalog, the training loop.

Names are loaded on first use, so that `import remapdsl.train`, and the data modules, which read files
without torch, never import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remapdsl.faces import lazy_names

if TYPE_CHECKING:
    from remapdsl.train.data import Dataset, load_dataset
    from remapdsl.train.torch_model import ModelBuildError, build_model
    from remapdsl.train.trainer import Checkpoint, EpochResult, TrainResult, resolve_device, train

# Each public name and the module that defines it.
_HOMES = {
    "Dataset": "data",
    "load_dataset": "data",
    "ModelBuildError": "torch_model",
    "build_model": "torch_model",
    "Checkpoint": "trainer",
    "EpochResult": "trainer",
    "TrainResult": "trainer",
    "resolve_device": "trainer",
    "train": "trainer",
}

__all__ = [
    "Checkpoint",
    "Dataset",
    "EpochResult",
    "ModelBuildError",
    "TrainResult",
    "build_model",
    "load_dataset",
    "resolve_device",
    "train",
]

__getattr__ = lazy_names(__name__, _HOMES)
