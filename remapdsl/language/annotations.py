"""Per-layer annotations: which variation operators may touch a layer, or a block.

`@keep` freezes a layer, `@allow(op, ...)` permits only the named operators, `@deny(op, ...)` forbids them.
On a block line they say whether the block may be unwrapped (`unwrap`) or ablated whole (`remove`); on a
layer, `wrap` says whether it may be wrapped into a new residual block.
"""

from __future__ import annotations

from remapdsl.language.model import Block, Layer

# REMAP's four operators, then the two on residual blocks.
REMAP_OPS = ("prepend", "remove", "replace", "reparameterize")
BLOCK_OPS = ("wrap", "unwrap")
VARIATION_OPS = REMAP_OPS + BLOCK_OPS
# What a variation draws from unless told otherwise: REMAP's operators, and unwrap, which only a model with
# blocks offers, so that a sequential model varies as it always has; wrap is asked for by name.
DEFAULT_OPS = (*REMAP_OPS, "unwrap")
ANNOTATIONS = {"keep": "no variation changes this layer", "allow": "only these operators may change this layer",
               "deny": "these operators never change this layer"}


def allowed_ops(layer: Layer | Block) -> frozenset[str]:
    ops = set(VARIATION_OPS)
    for a in layer.annotations:
        if a.name == "keep":
            return frozenset()
        if a.name == "allow":
            ops &= set(a.args)
        elif a.name == "deny":
            ops -= set(a.args)
    return frozenset(ops)
