"""Residual blocks in the search: the sampler's optional residual state, ablation of a block or the layers in
it, variation's wrap and unwrap under annotations, and handcrafted blocks."""

from __future__ import annotations

import hashlib

import pytest

from remapdsl.language.analysis import analyze_model
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_model
from remapdsl.search.ablation import ablate
from remapdsl.search.changes import Change, renumber
from remapdsl.search.edits import insert_block, insert_layer, remove_layer, unwrap_block
from remapdsl.search.sampler import sample_models
from remapdsl.search.variation import vary
from tests.samples import DIGITS, model

RES = """\
model res:
    conv2d 16
    relu
    residual:
        conv2d 16
        batchnorm
        relu
    maxpool 2
    flatten
    dense 10
"""
SEQ = RES.replace("model res:", "model seq:").replace("    residual:\n", "").replace("        ", "    ")


def spans(m) -> list[tuple[int, int]]:
    return [(b.start, b.stop) for b in m.blocks]


# --- the sampler -------------------------------------------------------------------------------------

# The hashes of `sample_models(30, digits, seed=11)` as REMAP's chain drew them before blocks existed.
REMAP_POPULATION = "73ae69692ac35376"


def test_without_residual_the_population_of_a_seed_is_unchanged():
    models = sample_models(30, DIGITS, seed=11)
    assert hashlib.sha256("".join(architecture_hash(m) for m in models).encode()).hexdigest()[:16] == REMAP_POPULATION
    assert sample_models(30, DIGITS, seed=11, residual=0.0) == models
    assert not any(m.blocks for m in models)


def test_with_residual_the_sampler_wraps_runs_that_fit():
    models = sample_models(40, DIGITS, seed=2, residual=1.0, max_params=200_000)
    assert sum(1 for m in models if m.blocks) >= 30
    for m in models:
        info = analyze_model(m, DIGITS)
        assert info.valid, (format_model(m), info.diagnostics)
        assert info.param_count <= 200_000
        assert parse(format_model(m)).document.models == (m,)
    assert sample_models(40, DIGITS, seed=2, residual=1.0, max_params=200_000) == models


def test_a_residual_probability_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match="from 0 to 1"):
        sample_models(3, DIGITS, residual=1.5)


# --- ablation ----------------------------------------------------------------------------------------


def test_ablation_removes_a_whole_block_as_one_child_and_layers_inside_it_one_by_one():
    parent = model(RES)
    result = ablate(parent, DIGITS)
    by_name = {c.model.name: c for c in result.children}
    whole = by_name["res_ablblock0"]
    assert [layer.kind for layer in whole.model.layers] == ["conv2d", "relu", "maxpool", "flatten", "dense"]
    assert whole.model.blocks == () and whole.describe() == "Removed the residual block over layers 2–4 with its layers"
    inner = by_name["res_abl3"]  # the batchnorm inside the block
    assert spans(inner.model) == [(2, 4)]
    assert all(c.info.valid for c in result.children)


def test_a_kept_block_is_not_ablated_unless_selected():
    parent = model(RES.replace("residual:", "residual:  @keep"))
    result = ablate(parent, DIGITS)
    assert not any(c.model.name.startswith("res_ablblock") for c in result.children)
    assert any("residual block over layers 2–4: its annotations keep it" in note for note in result.notes)
    chosen = ablate(parent, DIGITS, layers=[], blocks=[0])
    assert [c.model.name for c in chosen.children] == ["res_ablblock0"]
    with pytest.raises(ValueError, match="block 3 is out of range"):
        ablate(parent, DIGITS, blocks=[3])


# --- variation ---------------------------------------------------------------------------------------


def test_wrap_puts_a_run_of_layers_in_a_block_and_unwrap_takes_one_away():
    wrapped = vary(model(SEQ), DIGITS, 4, ops=("wrap",), seed=1)
    assert len(wrapped.children) == 4
    for child in wrapped.children:
        assert len(child.model.blocks) == 1 and child.info.valid
        assert child.changes[0].op == "wrap" and child.describe().startswith("Wrapped layer")
        assert child.model.layers == model(SEQ).layers
    unwrapped = vary(model(RES), DIGITS, 1, ops=("unwrap",))
    (child,) = unwrapped.children
    assert child.model.blocks == () and architecture_hash(child.model) == architecture_hash(model(SEQ))
    assert child.describe() == "Unwrapped the residual block over layers 2–4"


def test_annotations_allow_and_deny_wrap_and_unwrap():
    denied = vary(model(RES.replace("residual:", "residual:  @deny(unwrap)")), DIGITS, 1, ops=("unwrap",))
    assert denied.children == () and "nothing to vary" in denied.notes[0]
    free = vary(model(SEQ), DIGITS, 10, ops=("wrap",), seed=3)
    assert {(b.start, b.stop) for c in free.children for b in c.model.blocks} >= {(0, 2), (2, 4), (2, 6)}
    # a run is wrapped only when all its layers allow it: the first convolution may no longer be wrapped
    first_kept = SEQ.replace("model seq:\n    conv2d 16\n", "model seq:\n    conv2d 16  @deny(wrap)\n")
    result = vary(model(first_kept), DIGITS, 10, ops=("wrap",), seed=3)
    assert result.children and all(b.start >= 2 for c in result.children for b in c.model.blocks)
    only_allowed = SEQ.replace("    conv2d 16\n    batchnorm", "    conv2d 16  @allow(remove)\n    batchnorm")
    result = vary(model(only_allowed), DIGITS, 10, ops=("wrap",), seed=3)
    assert all(b.start == 0 and b.stop <= 2 for c in result.children for b in c.model.blocks)


def test_the_default_operators_leave_a_sequential_model_varying_as_before():
    a = vary(model(SEQ), DIGITS, 5, seed=4)
    b = vary(model(SEQ), DIGITS, 5, seed=4, ops=("prepend", "remove", "replace", "reparameterize"))
    assert [c.model for c in a.children] == [c.model for c in b.children]


def test_layer_changes_inside_a_block_move_it():
    parent = model(RES)
    children = vary(parent, DIGITS, 8, ops=("remove", "prepend"), seed=0).children
    assert children
    for child in children:
        assert child.info.valid
        assert parse(format_model(child.model)).document.models == (child.model,)


def test_renumbering_moves_a_wrapped_span_with_its_first_layer():
    changes = renumber([Change("remove", 0, "relu"), Change("wrap", 1, "residual", stop=3)])
    assert (changes[1].index, changes[1].stop) == (2, 4)


# --- handcrafted -------------------------------------------------------------------------------------


def test_a_handcrafted_edit_inserts_a_block():
    child = insert_block(model(SEQ), 2, 5, name="seq_res")
    assert spans(child) == [(2, 5)] and child.parent == "seq"
    assert architecture_hash(child) == architecture_hash(model(RES))
    assert child.comments.leading == ("Wrapped layers 2–4 in a residual block",)
    projected = insert_block(model(SEQ), 0, 2, "conv")
    assert analyze_model(projected, DIGITS).valid
    with pytest.raises(ValueError, match="cross the residual block"):
        insert_block(model(RES), 1, 3)
    with pytest.raises(ValueError, match="unknown shortcut"):
        insert_block(model(SEQ), 0, 2, "pool")
    assert unwrap_block(model(RES), 0).blocks == ()


def test_inserting_or_removing_layers_keeps_blocks_around_the_right_layers():
    parent = model(RES)
    assert spans(insert_layer(parent, 2, parse("model x:\n    dropout 0.5\n").document.models[0].layers[0])) \
        == [(2, 6)]
    assert spans(insert_layer(parent, 5, parse("model x:\n    dropout 0.5\n").document.models[0].layers[0])) \
        == [(2, 5)]
    assert spans(remove_layer(parent, 0)) == [(1, 4)]
    one = remove_layer(remove_layer(model(RES.replace("        batchnorm\n        relu\n", "")), 2), 0)
    assert one.blocks == ()


def test_a_duplicate_keeps_the_blocks_and_the_store_hashes_them():
    from remapdsl.search.spawn import Operation
    from remapdsl.store.status import model_hashes
    from tests.search.test_spawn import applied

    new_text, analysis, names = applied("data digits\n\n" + RES, Operation("duplicate", "res"))
    assert names == ("res_copy",) and analysis.valid
    copy = analysis.models["res_copy"].model
    assert spans(copy) == [(2, 5)]
    hashes = model_hashes(parse(new_text).document.models)
    assert hashes["res_copy"] == hashes["res"] == architecture_hash(model(RES)) != architecture_hash(model(SEQ))
