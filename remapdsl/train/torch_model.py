"""Build the torch module of a model from the torch builders of its layer types.

The module is an `nn.Sequential` with one child per layer of the model, in order, so a state dict's keys
(`0.weight`, `3.bias`) name layers by their position in the text. A residual block is one child instead, a
`Residual` holding its body (a Sequential, built the same way) and its shortcut. The parameter count equals
the one the language core reports, because both follow the same shape inference, from the same analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from remapdsl.language.analysis import BlockInfo, ModelInfo, analyze_model
from remapdsl.language.catalog import describe_shape
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.diagnostics import Severity
from remapdsl.language.model import ModelSpec

if TYPE_CHECKING:
    from torch import nn


class ModelBuildError(ValueError):
    """A model cannot be built for the given input; the message lists the problems."""


def build_model(model: ModelSpec, input_shape: Sequence[int], num_classes: int | None = None) -> nn.Sequential:
    """The model as a freshly initialised `nn.Sequential` (weights from torch's current random state).

    With `num_classes`, the classifier head is checked to have one unit per class.
    """
    return build_module(checked_info(model, input_shape, num_classes))


def build_module(info: ModelInfo) -> nn.Sequential:
    """The module of an analysed model that `check_buildable` accepts, freshly initialised."""
    from torch import nn

    modules, _ = _modules(info, 0, len(info.layers), 0)
    return nn.Sequential(*modules)


def _modules(info: ModelInfo, start: int, stop: int, next_block: int) -> tuple[list[nn.Module], int]:
    """The children for layers `start` up to `stop`: a layer's module, or a `Residual` for each block that
    starts there (blocks in the order of `info.blocks`, from `next_block`). Returns them and the next block."""
    from torch import nn

    from remapdsl.train.torch_layers import TORCH_BUILDERS, Residual

    modules: list[nn.Module] = []
    index = start
    while index < stop:
        if next_block < len(info.blocks) and info.blocks[next_block].block.start == index:
            bi = info.blocks[next_block]
            body, next_block = _modules(info, index, bi.block.stop, next_block + 1)
            modules.append(Residual(nn.Sequential(*body), _shortcut(info, bi)))
            index = bi.block.stop
            continue
        li = info.layers[index]
        if li.type is None or li.input_shape is None:
            raise ModelBuildError(f"model '{info.model.name}' has a layer of unknown type or shape; check it first")
        modules.append(TORCH_BUILDERS[li.type.name](li.input_shape, li.params))
        index += 1
    return modules, next_block


def _shortcut(info: ModelInfo, bi: BlockInfo) -> nn.Module | None:
    from remapdsl.train.torch_layers import SHORTCUT_BUILDERS

    if bi.shortcut is None or bi.input_shape is None or bi.output_shape is None:
        raise ModelBuildError(f"model '{info.model.name}' has a block whose shapes are unknown; check it first")
    if bi.shortcut.kind == "identity":
        return None
    return SHORTCUT_BUILDERS[bi.shortcut.kind](bi.input_shape, bi.output_shape, bi.shortcut.stride)


def checked_info(model: ModelSpec, input_shape: Sequence[int], num_classes: int | None = None) -> ModelInfo:
    """The analysis of `model` for this input; ModelBuildError when it has errors."""
    classes = num_classes if num_classes is not None else 0
    shape = tuple(int(d) for d in input_shape)
    info = analyze_model(model, DatasetInfo("input", shape, classes, tuple(str(i) for i in range(classes))))
    check_buildable(info, num_classes)
    return info


def check_buildable(info: ModelInfo, num_classes: int | None = None) -> None:
    """ModelBuildError when the analysed model has errors or a layer whose shape is unknown.

    Without a number of classes the head's width is unknown, so its check is left out.
    """
    problems = [d.message for d in info.diagnostics
                if d.severity == Severity.ERROR and (num_classes is not None or d.code != "head")]
    if problems or any(li.type is None or li.output_shape is None for li in info.layers) \
            or any(bi.shortcut is None for bi in info.blocks):
        shape = describe_shape(info.input_shape) if info.input_shape is not None else "unknown"
        raise ModelBuildError(f"model '{info.model.name}' cannot be built for a {shape} input: "
                              + ("; ".join(problems) or "a layer's shape could not be inferred"))
