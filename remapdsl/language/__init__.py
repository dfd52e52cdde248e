"""The REMAP language: the document model, the layer catalog, the header lines, parsing, printing, analysis
and hashing.

It imports nothing heavy (Lark only) and nothing above it, so every other part of the toolkit stands on it.
"""

from __future__ import annotations

from remapdsl.language.analysis import (
    Analysis,
    BlockInfo,
    LayerInfo,
    ModelInfo,
    analyze,
    analyze_model,
    did_you_mean,
)
from remapdsl.language.annotations import ANNOTATIONS, DEFAULT_OPS, VARIATION_OPS, allowed_ops
from remapdsl.language.blocks import BLOCK_KINDS, SHORTCUTS, Shortcut
from remapdsl.language.catalog import (
    LAYER_TYPES,
    OTMANN_MISMATCH,
    LayerType,
    Params,
    ParamSpec,
    Shape,
    ShapeError,
    SnacStyle,
    conv_padding,
    describe_shape,
    is_spatial,
    numel,
)
from remapdsl.language.datasets import (
    CIFAR10_CLASSES,
    DATASET_KINDS,
    DIGITS_CLASSES,
    IMAGE_SUFFIXES,
    QUICKDRAW_PREFIX,
    DataError,
    DatasetInfo,
    DatasetKind,
    check_labels,
    describe,
    image_shape,
    quickdraw_files,
)
from remapdsl.language.diagnostics import Diagnostic, Severity, TextEdit
from remapdsl.language.gcpause import collection_paused
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS, TrainSettings
from remapdsl.language.model import (
    Arg,
    Block,
    Budget,
    Comments,
    DataSpec,
    Document,
    Layer,
    ModelSpec,
    Position,
    Range,
    TrainSpec,
    Value,
)
from remapdsl.language.parser import KEYWORDS, NAME_RE, ParseResult, clear_caches, parse, split_lines
from remapdsl.language.printer import (
    budget_limit_text,
    format_document,
    format_model,
    format_text,
    layer_text,
    value_text,
)
from remapdsl.language.reanalysis import reanalyze

__all__ = [
    "ANNOTATIONS",
    "BLOCK_KINDS",
    "BUDGET_UNITS",
    "CIFAR10_CLASSES",
    "DATASET_KINDS",
    "DEFAULT_OPS",
    "DIGITS_CLASSES",
    "IMAGE_SUFFIXES",
    "KEYWORDS",
    "LAYER_TYPES",
    "NAME_RE",
    "OTMANN_MISMATCH",
    "QUICKDRAW_PREFIX",
    "SHORTCUTS",
    "TRAIN_OPTIONS",
    "VARIATION_OPS",
    "Analysis",
    "Arg",
    "Block",
    "BlockInfo",
    "Budget",
    "Comments",
    "DataError",
    "DataSpec",
    "DatasetInfo",
    "DatasetKind",
    "Diagnostic",
    "Document",
    "Layer",
    "LayerInfo",
    "LayerType",
    "ModelInfo",
    "ModelSpec",
    "ParamSpec",
    "Params",
    "ParseResult",
    "Position",
    "Range",
    "Severity",
    "Shape",
    "ShapeError",
    "Shortcut",
    "SnacStyle",
    "TextEdit",
    "TrainSettings",
    "TrainSpec",
    "Value",
    "allowed_ops",
    "analyze",
    "analyze_model",
    "architecture_hash",
    "budget_limit_text",
    "check_labels",
    "clear_caches",
    "collection_paused",
    "conv_padding",
    "describe",
    "describe_shape",
    "did_you_mean",
    "format_document",
    "format_model",
    "format_text",
    "image_shape",
    "is_spatial",
    "layer_text",
    "numel",
    "parse",
    "quickdraw_files",
    "reanalyze",
    "split_lines",
    "value_text",
]
