"""The search over architectures from a document: sampling, ablation, variation, handcrafted edits and the
change records they leave, and spawning the children into the text."""

from __future__ import annotations

from remapdsl.search.ablation import ablate
from remapdsl.search.changes import Child, over_budget
from remapdsl.search.children import Parent, appended, blocking_errors, model_errors
from remapdsl.search.sampler import sample_models
from remapdsl.search.spawn import (
    DEFAULT_VARIATIONS,
    Offer,
    Operation,
    Spawn,
    layer_at,
    layer_offers,
    model_at,
    model_offers,
    selected_layers,
    spawn,
)
from remapdsl.search.variation import vary

__all__ = [
    "DEFAULT_VARIATIONS",
    "Child",
    "Offer",
    "Operation",
    "Parent",
    "Spawn",
    "ablate",
    "appended",
    "blocking_errors",
    "layer_at",
    "layer_offers",
    "model_at",
    "model_errors",
    "model_offers",
    "over_budget",
    "sample_models",
    "selected_layers",
    "spawn",
    "vary",
]
