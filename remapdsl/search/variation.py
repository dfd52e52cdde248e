"""Variation: children of a model, each a few random atomic changes away from it.

The changes are REMAP's four operators: prepend (a freshly sampled layer before a layer), remove, replace
(by another type of the same role, relu↔tanh↔sigmoid or maxpool↔avgpool, otherwise by a freshly sampled
layer that fits) and reparameterize (another grid value of one parameter); and two on residual blocks: wrap
(a run of layers whose input and output join, into a new block) and unwrap (a block's layers kept, the block
gone). Wrap is drawn only when asked for by name, so that a sequential model varies as it always has; unwrap
only touches a model with blocks. Per-layer annotations
(`@keep`, `@allow`, `@deny`) and the `ops` argument say which operators may touch which layer; the head is
never removed, replaced or resized, and flatten, which follows from the layers around it, is never removed
or replaced. Candidates that are invalid, over the budget or repeat a known architecture are drawn again,
a bounded number of times; when fewer than `n` children turn up, a note says how many and why.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from remapdsl.language.analysis import analyze_model
from remapdsl.language.annotations import DEFAULT_OPS, REMAP_OPS, VARIATION_OPS, allowed_ops
from remapdsl.language.catalog import LAYER_TYPES, Shape, is_spatial
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Block, Budget, Layer, ModelSpec, Value
from remapdsl.language.printer import budget_limit_text
from remapdsl.search.changes import Change, Child, check_parent, derive, over_budget, renumber
from remapdsl.search.edits import Edit, insert, remove, replace_at, set_param, unwrap, wrap
from remapdsl.search.residual import wrappable_runs
from remapdsl.search.sampler import (
    HEAD,
    REFERENCE_TABLE,
    SPATIAL_STATES,
    START,
    STEP_TRIES,
    TransitionTable,
    draw_layer,
    output_of,
)

ORIGIN = "variation"
# Candidates drawn per wanted child before giving up.
ATTEMPTS_PER_CHILD = 50


@dataclass(frozen=True)
class VariationResult:
    parent: ModelSpec
    children: tuple[Child, ...]
    notes: tuple[str, ...]


def vary(model: ModelSpec, dataset: DatasetInfo, n: int, *, max_changes: int = 1,
         ops: Sequence[str] = DEFAULT_OPS, seed: int = 0, budget: Budget | None = None,
         existing_hashes: Collection[str] = (), existing_names: Collection[str] = (),
         table: TransitionTable = REFERENCE_TABLE) -> VariationResult:
    """Up to `n` distinct valid children of `model`, each with 1..`max_changes` changes drawn from `ops`.

    Children are named `<parent>_v1`, `_v2`, ... skipping `existing_names`; none repeats the parent, a sibling
    or one of `existing_hashes`. The same seed gives the same children. Raises ValueError for bad arguments
    or a parent with errors.
    """
    if n < 1:
        raise ValueError(f"the number of variations must be at least 1; found {n}")
    if max_changes < 1:
        raise ValueError(f"the number of changes must be at least 1; found {max_changes}")
    unknown = [op for op in ops if op not in VARIATION_OPS]
    if unknown or not ops:
        raise ValueError(f"unknown operator '{unknown[0]}'; expected {', '.join(VARIATION_OPS)}" if unknown
                         else f"no operators given; expected some of {', '.join(VARIATION_OPS)}")
    check_parent(model, dataset)
    chosen = frozenset(ops)
    if not _moves(model.layers, chosen) and not _block_moves(model.layers, model.blocks, chosen, (), dataset)[0]:
        return VariationResult(model, (), (f"no layer of '{model.name}' can be changed by "
                                           f"{', '.join(o for o in VARIATION_OPS if o in chosen)} "
                                           "(annotations and the head's rules leave nothing to vary)",))
    rng = random.Random(seed)
    seen = {architecture_hash(model), *existing_hashes}
    taken = {*existing_names, model.name}
    children: list[Child] = []
    counts = {"invalid": 0, "budget": 0, "duplicate": 0}
    attempts = 0
    number = 0
    while len(children) < n and attempts < ATTEMPTS_PER_CHILD * n:
        attempts += 1
        drawn = _candidate(rng, model.layers, dataset, rng.randint(1, max_changes), chosen, table, model.blocks)
        if drawn is None:
            counts["invalid"] += 1
            continue
        layers, changes, blocks = drawn
        candidate = ModelSpec("candidate", layers, blocks=blocks)
        key = architecture_hash(candidate)
        if key in seen:
            counts["duplicate"] += 1
            continue
        info = analyze_model(candidate, dataset, budget)
        if not info.valid:
            counts["budget" if over_budget(info) else "invalid"] += 1
            continue
        number += 1
        while f"{model.name}_v{number}" in taken:
            number += 1
        child = derive(model, layers, changes, f"{model.name}_v{number}", ORIGIN, blocks=blocks)
        taken.add(child.name)
        seen.add(key)
        children.append(Child(child, tuple(changes), analyze_model(child, dataset, budget)))
    return VariationResult(model, tuple(children), tuple(_notes(n, len(children), attempts, counts, budget)))


def _notes(wanted: int, found: int, attempts: int, counts: dict[str, int], budget: Budget | None) -> list[str]:
    notes = []
    limit = f" of {budget_limit_text(budget)}" if budget is not None else ""
    if found < wanted:
        reasons = [f"{counts['invalid']} invalid", f"{counts['budget']} over the budget{limit}",
                   f"{counts['duplicate']} repeating a known architecture"]
        notes.append(f"found {found} of {wanted} distinct valid children in {attempts} attempts "
                     f"({', '.join(reasons)}); allow more changes or operators for more")
    elif counts["budget"]:
        many = counts["budget"] > 1
        notes.append(f"{counts['budget']} {'candidates' if many else 'candidate'} over the budget{limit} "
                     f"{'were' if many else 'was'} drawn again")
    return notes


def _moves(layers: tuple[Layer, ...], ops: frozenset[str], touched: Sequence[bool] = ()) -> dict[str, list[int]]:
    """For each operator, the indices it may change: annotations and `ops` allowing, head and flatten spared.

    A layer already changed (or added) by this candidate is not changed again, so no change undoes another.
    """
    head = len(layers) - 1
    moves: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        allowed = allowed_ops(layer) & ops
        if i == head or layer.kind == "flatten" or (i < len(touched) and touched[i]):
            allowed &= {"prepend"}
        if "reparameterize" in allowed and not _alternatives(layer):
            allowed -= {"reparameterize"}
        for op in REMAP_OPS:  # the block operators' moves are `_block_moves`
            if op in allowed:
                moves.setdefault(op, []).append(i)
    return moves


def _block_moves(layers: tuple[Layer, ...], blocks: tuple[Block, ...], ops: frozenset[str], touched: Sequence[bool],
                 dataset: DatasetInfo) -> tuple[dict[str, list[int]], list[tuple[int, int, str]]]:
    """Wrap and unwrap moves: for wrap, indices into the runs returned beside them (each of the run's layers
    allowing wrap and untouched); for unwrap, the blocks whose annotations allow it."""
    moves: dict[str, list[int]] = {}
    runs: list[tuple[int, int, str]] = []
    if "wrap" in ops:
        info = analyze_model(ModelSpec("candidate", layers, blocks=blocks), dataset)
        runs = [(start, stop, kind) for start, stop, kind in wrappable_runs(info)
                if all("wrap" in allowed_ops(layers[i]) and not (i < len(touched) and touched[i])
                       for i in range(start, stop))]
        if runs:
            moves["wrap"] = list(range(len(runs)))
    if "unwrap" in ops:
        unwrappable = [b for b, block in enumerate(blocks) if "unwrap" in allowed_ops(block)]
        if unwrappable:
            moves["unwrap"] = unwrappable
    return moves, runs


def _candidate(rng: random.Random, layers: tuple[Layer, ...], dataset: DatasetInfo, count: int,
               ops: frozenset[str], table: TransitionTable, blocks: tuple[Block, ...] = (),
               ) -> tuple[tuple[Layer, ...], list[Change], tuple[Block, ...]] | None:
    """`count` changes applied one after the other; None when one of them cannot be drawn."""
    changes: list[Change] = []
    touched = [False] * len(layers)
    for _ in range(count):
        moves = _moves(layers, ops, touched)
        block_moves, runs = _block_moves(layers, blocks, ops, touched, dataset) if ops & {"wrap", "unwrap"} \
            else ({}, [])
        moves.update(block_moves)
        if not moves:
            return None
        op = rng.choice(sorted(moves, key=VARIATION_OPS.index))
        index = rng.choice(moves[op])
        if op == "wrap":
            start, stop, kind = runs[index]
            edit: Edit | None = wrap(layers, blocks, start, stop, kind)
            for i in range(start, stop):
                touched[i] = True
        elif op == "unwrap":
            edit = unwrap(layers, blocks, index)
        else:
            edit = _apply(rng, op, layers, index, dataset, table, blocks)
            if edit is None:
                return None
            if op == "prepend":
                touched.insert(index, True)
            elif op == "remove":
                del touched[index]
            else:
                touched[index] = True
        assert edit is not None
        layers = edit.layers
        blocks = edit.blocks_from(blocks)
        changes.append(edit.change)
    # numbered as the diff SNAC numbers them: parent layers by the parent's index, new layers by the child's
    return layers, list(renumber(changes)), blocks


def _apply(rng: random.Random, op: str, layers: tuple[Layer, ...], index: int, dataset: DatasetInfo,
           table: TransitionTable, blocks: tuple[Block, ...] = ()) -> Edit | None:
    if op == "remove":
        return remove(layers, index, blocks)
    if op == "reparameterize":
        param, values = rng.choice(_alternatives(layers[index]))
        return set_param(layers, index, param, rng.choice(values))
    shape = _input_shape(layers, index, dataset, blocks)
    if shape is None:
        return None
    if op == "prepend":
        fresh = _fresh_layer(rng, layers, index, shape, table, exclude="")
        return None if fresh is None else insert(layers, index, fresh, blocks)
    old = layers[index]
    siblings = _same_role(old.kind)
    if siblings:
        # same role, same parameters: the change reads "Replaced relu with tanh"
        edit = replace_at(layers, index, Layer(rng.choice(siblings), old.args))
        return Edit(edit.layers, replace(edit.change, layer=edit.layers[index].kind))
    fresh = _fresh_layer(rng, layers, index, shape, table, exclude=old.kind)
    return None if fresh is None else replace_at(layers, index, fresh)


def _alternatives(layer: Layer) -> list[tuple[str, list[Value]]]:
    """Each gridded parameter of `layer` with the grid values it does not have now."""
    ltype = LAYER_TYPES.get(layer.kind)
    if ltype is None:
        return []
    current = ltype.resolve(layer.written())
    out: list[tuple[str, list[Value]]] = []
    for spec in ltype.params:
        others = [v for v in spec.grid if v != current.get(spec.name)]
        if others:
            out.append((spec.name, others))
    return out


def _same_role(kind: str) -> list[str]:
    """Other layer types that take the same parameters in the same role (relu/tanh/sigmoid, maxpool/avgpool)."""
    ltype = LAYER_TYPES[kind]
    names = [p.name for p in ltype.params]
    return [t.name for t in LAYER_TYPES.values() if t.name != kind and t.category == ltype.category
            and t.sampler_state is not None and [p.name for p in t.params] == names]


def _input_shape(layers: tuple[Layer, ...], index: int, dataset: DatasetInfo,
                 blocks: tuple[Block, ...] = ()) -> Shape | None:
    info = analyze_model(ModelSpec("candidate", layers, blocks=blocks), dataset)
    return info.layers[index].input_shape if index < len(info.layers) else info.output_shape


def _fresh_layer(rng: random.Random, layers: tuple[Layer, ...], index: int, shape: Shape, table: TransitionTable,
                 exclude: str) -> Layer | None:
    """A layer drawn as the sampler would after the layer before `index`, fitting `shape`, not of kind `exclude`.

    Before a spatial layer only spatial-friendly states qualify (a dense layer there would flatten what follows).
    """
    spatial = is_spatial(shape)
    prev = LAYER_TYPES[layers[index - 1].kind].sampler_state if index > 0 else START
    rows = table.spatial if spatial else table.flat
    row = rows.get(prev or "") or rows.get(START if spatial else "dense") or {}
    states = [s for s, w in row.items() if w > 0 and s != HEAD and (s != "dense" or not spatial)
              and (spatial or s not in SPATIAL_STATES)]
    if not states:
        return None
    for _ in range(STEP_TRIES):
        state = rng.choices(states, weights=[row[s] for s in states])[0]
        layer = draw_layer(rng, state)
        if layer.kind != exclude and output_of(layer, shape) is not None:
            return layer
    return None
