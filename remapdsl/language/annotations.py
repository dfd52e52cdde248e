"""Per-layer annotations: which variation operators may touch a layer.

`@keep` freezes a layer, `@allow(op, ...)` permits only the named operators, `@deny(op, ...)` forbids them.
"""

from __future__ import annotations

from remapdsl.language.model import Layer

VARIATION_OPS = ("prepend", "remove", "replace", "reparameterize")
ANNOTATIONS = {"keep": "no variation changes this layer", "allow": "only these operators may change this layer",
               "deny": "these operators never change this layer"}


def allowed_ops(layer: Layer) -> frozenset[str]:
    ops = set(VARIATION_OPS)
    for a in layer.annotations:
        if a.name == "keep":
            return frozenset()
        if a.name == "allow":
            ops &= set(a.args)
        elif a.name == "deny":
            ops -= set(a.args)
    return frozenset(ops)
