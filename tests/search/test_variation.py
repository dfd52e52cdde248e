"""Variation: distinct valid children, a few allowed atomic changes away from their parent."""

from __future__ import annotations

import dataclasses

import pytest

from remapdsl.language.analysis import analyze_model
from remapdsl.language.annotations import allowed_ops
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Budget, ModelSpec
from remapdsl.language.printer import layer_text
from remapdsl.search.changes import describe_changes, renumber
from remapdsl.search.edits import insert, remove, set_param
from remapdsl.search.variation import vary
from remapdsl.snac.diff import SAME, diff_models
from tests.samples import DEEP, DIGITS, model

SMALL = "model small:\n    conv2d 16\n    relu\n    maxpool 2\n    flatten\n    dense 10\n"


def test_children_are_distinct_valid_and_recorded():
    parent = model(SMALL)
    result = vary(parent, DIGITS, 10, max_changes=3, seed=1)
    assert [c.model.name for c in result.children] == [f"small_v{i}" for i in range(1, 11)]
    hashes = {architecture_hash(c.model) for c in result.children}
    assert len(hashes) == 10 and architecture_hash(parent) not in hashes
    for child in result.children:
        assert 1 <= len(child.changes) <= 3
        assert child.model.parent == "small"
        assert child.model.comments.leading == ("variation: " + "; ".join(c.describe() for c in child.changes),)
        assert analyze_model(child.model, DIGITS).valid
        assert child.model.layers[-1] == parent.layers[-1]  # the head stays, and stays dense 10
    assert result.notes == ()


def test_same_seed_same_children_other_seed_other_children():
    parent = model(DEEP)
    a = vary(parent, DIGITS, 8, max_changes=2, seed=5)
    assert vary(parent, DIGITS, 8, max_changes=2, seed=5) == a
    assert vary(parent, DIGITS, 8, max_changes=2, seed=6).children != a.children


def test_changes_say_exactly_what_happened_at_every_index():
    parent = model(DEEP)
    result = vary(parent, DIGITS, 40, seed=2)
    assert len(result.children) == 40
    assert any(c.changes[0].index >= 10 for c in result.children)
    for child in result.children:
        [change] = child.changes
        i, layers = change.index, child.model.layers
        assert change.kind == (layers[i].kind if change.op == "prepend" else parent.layers[i].kind)
        if change.op == "remove":
            assert layers == parent.layers[:i] + parent.layers[i + 1:]
        elif change.op == "prepend":
            assert layer_text(layers[i]) == change.layer and layers[i + 1:] == parent.layers[i:]
        elif change.op == "replace":
            assert layers[i].kind == change.layer.split()[0] != parent.layers[i].kind
            assert layers[:i] + layers[i + 1:] == parent.layers[:i] + parent.layers[i + 1:]
        else:
            assert layers[i].written()[change.param] == change.new != change.old
        assert change.describe().endswith(f"at index {i}") or change.describe().startswith(
            f"{change.param} at {i} from")


def test_every_change_is_allowed_by_the_layer_annotations():
    parent = model("""
model a:
    conv2d 16  @keep
    relu  @allow(replace)
    conv2d 32  @deny(remove, prepend)
    maxpool 2  @allow(reparameterize)
    flatten
    dense 10
""")
    result = vary(parent, DIGITS, 25, seed=3)
    assert result.children
    for child in result.children:
        [change] = child.changes
        slot = parent.layers[change.index]
        assert change.op in allowed_ops(slot), (change, slot)
        assert child.model.layers[0] == parent.layers[0]  # @keep


def test_only_allowed_children_exist_and_a_short_result_says_why():
    parent = model("""
model a:
    conv2d 16  @allow(reparameterize)
    relu  @keep
    flatten  @keep
    dense 10  @keep
""")
    result = vary(parent, DIGITS, 10, seed=0)
    # filters 32/64/128 or kernel 1/5: five children exist, no more
    assert len(result.children) == 5
    assert {c.changes[0].op for c in result.children} == {"reparameterize"}
    [note] = result.notes
    assert note.startswith("found 5 of 10 distinct valid children in 500 attempts")
    assert "repeating a known architecture" in note


def test_the_ops_argument_restricts_operators():
    result = vary(model(DEEP), DIGITS, 12, max_changes=2, ops=("remove",), seed=4)
    assert len(result.children) == 12
    assert {c.op for child in result.children for c in child.changes} == {"remove"}


def test_the_head_is_never_removed_replaced_or_resized():
    parent = model("model h:\n    relu\n    flatten\n    dense 10\n")
    result = vary(parent, DIGITS, 30, max_changes=3, ops=("remove", "replace", "reparameterize"), seed=0)
    for child in result.children:
        assert child.model.layers[-1] == parent.layers[-1]
        assert all(c.index < len(parent.layers) - 1 for c in child.changes if c.op != "prepend")


def test_nothing_to_vary_gives_a_note_not_an_error():
    parent = model("model f:\n    relu  @keep\n    flatten\n    dense 10\n")
    result = vary(parent, DIGITS, 3, ops=("remove", "reparameterize"))
    assert result.children == ()
    assert result.notes == ("no layer of 'f' can be changed by remove, reparameterize (annotations and the head's "
                            "rules leave nothing to vary)",)


def test_the_budget_is_respected_and_redraws_are_noted():
    parent = model(SMALL)  # 2,730 parameters
    budget = Budget("params", 3000)
    result = vary(parent, DIGITS, 6, seed=0, budget=budget)
    assert len(result.children) == 6
    assert all(analyze_model(c.model, DIGITS).param_count <= 3000 for c in result.children)
    assert any("over the budget of 3,000" in note for note in result.notes)


def test_known_architectures_and_names_are_avoided():
    parent = model(SMALL)
    first = vary(parent, DIGITS, 5, seed=9)
    known = {architecture_hash(c.model) for c in first.children}
    names = {c.model.name for c in first.children} | {"small_v7"}
    again = vary(parent, DIGITS, 5, seed=9, existing_hashes=known, existing_names=names)
    assert not known & {architecture_hash(c.model) for c in again.children}
    assert [c.model.name for c in again.children] == ["small_v6", "small_v8", "small_v9", "small_v10", "small_v11"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "at least 1; found 0"),
    ({"n": 2, "ops": ("grow",)}, "unknown operator 'grow'; expected prepend, remove, replace, reparameterize"),
    ({"n": 2, "ops": ()}, "no operators given"),
    ({"n": 2, "max_changes": 0}, "number of changes must be at least 1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vary(model(SMALL), DIGITS, **kwargs)


def test_a_parent_with_errors_is_refused():
    with pytest.raises(ValueError, match="model 'x' has errors"):
        vary(model("model x:\n    relu\n    dense 10\n"), DIGITS, 3)


def test_no_change_touches_a_layer_the_same_child_already_changed():
    result = vary(model(DEEP), DIGITS, 40, max_changes=3, seed=8)
    several = [c.changes for c in result.children if len(c.changes) >= 2]
    assert len(several) >= 10
    for changes in several:
        # indices of the parent's layers, and of the child's new ones: neither names a layer twice
        touched = [c.index for c in changes if c.op != "prepend"]
        added = [c.index for c in changes if c.op == "prepend"]
        assert len(set(touched)) == len(touched) and len(set(added)) == len(added), changes


def rebuilt(parent: ModelSpec, changes) -> tuple:  # type: ignore[no-untyped-def]
    """The child's layers from the parent's and the changes, read as README says: a layer the parent has by
    its index in the parent, a new layer by its index in the child."""
    layers = list(parent.layers)
    for c in changes:
        if c.op == "reparameterize":
            assert layers[c.index].kind == c.kind
            layers[c.index] = ("reparameterize", layers[c.index], c.param, c.new)
        elif c.op == "replace":
            assert layers[c.index].kind == c.kind
            layers[c.index] = ("replace", layers[c.index], c.layer)
    removed = {c.index for c in changes if c.op == "remove"}
    assert all(parent.layers[i].kind == c.kind for c in changes if c.op == "remove" for i in [c.index])
    kept = [slot for i, slot in enumerate(layers) if i not in removed]
    for c in sorted((c for c in changes if c.op == "prepend"), key=lambda c: c.index):
        kept.insert(c.index, ("prepend", None, c.layer))
    return tuple(kept)


def matches(slot, layer) -> bool:  # type: ignore[no-untyped-def]
    if not isinstance(slot, tuple):
        return slot == layer
    if slot[0] == "reparameterize":
        _, old, param, new = slot
        return layer.kind == old.kind and layer.written().get(param) == new
    _, old, text = slot
    if layer_text(dataclasses.replace(layer, annotations=())) == text:
        return True
    # a layer of the same role keeps the old one's parameters, and the change names its kind alone
    return old is not None and text == layer.kind and layer.args == old.args


@pytest.mark.parametrize("seed", range(3))
def test_the_changes_of_several_steps_rebuild_the_child_from_the_parent(seed):
    parent = model(DEEP)  # 15 layers: indices past 10 come up
    result = vary(parent, DIGITS, 30, max_changes=3, seed=seed)
    several = [c for c in result.children if len(c.changes) >= 2]
    assert len(several) >= 10 and any(ch.index >= 10 for c in several for ch in c.changes)
    for child in several:
        slots = rebuilt(parent, child.changes)
        assert len(slots) == len(child.model.layers), child.describe()
        assert all(matches(s, layer) for s, layer in zip(slots, child.model.layers, strict=True)), child.describe()


def test_the_changes_and_the_diff_snac_number_layers_alike():
    parent = model(DEEP)
    steps = [remove(parent.layers, 2)]  # the conv2d 32 at 2 goes
    steps.append(set_param(steps[-1].layers, 11, "units", 128))  # the dense 16, the parent's layer 12
    steps.append(insert(steps[-1].layers, 13, model("model x:\n    dropout 0.25\n").layers[0]))  # before the head
    changes = renumber([step.change for step in steps])
    assert describe_changes(changes) == ("Removed conv2d at index 2; units at 12 from 16 to 128; "
                                         "Added dropout 0.25 at index 13")
    child = ModelSpec("c", steps[-1].layers, parent="deep")
    diff = diff_models(analyze_model(parent, DIGITS), analyze_model(child, DIGITS))
    rows = [r.describe() for r in diff.rows if r.status != SAME]
    assert rows == ["− 2 conv2d filters=32 kernel=5 stride=1 padding=same", "Δ 12 dense: units 16 → 128",
                    "+ 13 dropout rate=0.25"]
