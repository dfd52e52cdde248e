"""The canonical hash of an architecture: what a model computes, not how it was written.

Two models hash alike when they have the same layer kinds with the same resolved parameters (catalog
defaults filled in, 16 and 16.0 alike, spellings of one meaning alike: conv2d's `padding=1` with kernel 3
is `padding=same`, `padding=0` is `padding=valid`), whatever their names, comments, annotations, parents,
formatting or whether defaults were written out. The store keys models and finds earlier runs by this hash
alone, so that an architecture is never trained twice by accident.

A sequential model hashes its list of layer signatures, as it always has (the store keeps its keys). A model
with blocks hashes an object of its layers and its blocks (kind, span over the layers, resolved shortcut), so
that wrapping layers in a block, or moving a block's edge, makes another architecture.
"""

from __future__ import annotations

import hashlib
import json

from remapdsl.language.blocks import BLOCK_KINDS
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.model import Block, Layer, ModelSpec, Value

# Hex digits kept: 64 bits, plenty for the thousands of models of one workspace.
HASH_LENGTH = 16


def architecture_hash(model: ModelSpec) -> str:
    """Hex digest (16 characters) of the model's layer kinds and resolved parameters."""
    layers = [layer_signature(layer) for layer in model.layers]
    structure: object = layers
    if model.blocks:
        structure = {"layers": layers, "blocks": [block_signature(b) for b in model.blocks]}
    payload = json.dumps(structure, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:HASH_LENGTH]


def layer_signature(layer: Layer) -> list[object]:
    """`[kind, [[param, value], ...]]` with defaults filled in; unknown kinds keep their written args."""
    written = layer.written()
    ltype = LAYER_TYPES.get(layer.kind)
    resolved = ltype.canonical(ltype.resolve(written)) if ltype else {}
    # names the catalog does not know (and every arg of an unknown kind) count as written, in name order
    extra = sorted((name, value) for name, value in written.items() if name not in resolved)
    return [layer.kind, [[name, _normal(value)] for name, value in [*resolved.items(), *extra]]]


def block_signature(block: Block) -> list[object]:
    """`[kind, start, stop, [[option, value], ...]]` with defaults filled in."""
    written = block.written()
    resolved: dict[str, Value] = {p.name: p.default for p in BLOCK_KINDS.get(block.kind, ()) if p.default is not None}
    resolved.update(written)
    options = sorted((name, value) for name, value in resolved.items())
    return [block.kind, block.start, block.stop, [[name, _normal(value)] for name, value in options]]


def _normal(value: Value) -> object:
    """Whole floats as ints (16.0 → 16), tuples as lists."""
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
