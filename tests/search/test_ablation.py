"""Ablation: one child per removed layer, the head never removed, every skip and repair noted."""

from __future__ import annotations

import pytest

from remapdsl.language.analysis import analyze_model
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Budget
from remapdsl.search.ablation import ablate
from tests.samples import DEEP, DIGITS, model


def test_every_layer_of_a_deep_model_is_ablated_except_the_head():
    parent = model(DEEP)
    result = ablate(parent, DIGITS)
    removed = {c.changes[0].index for c in result.children}
    # flatten sits right before the first dense: putting it back gives the parent again
    assert removed == set(range(14)) - {8}
    for child in result.children:
        i = child.changes[0].index
        assert child.model.name == f"deep_abl{i}" and child.model.parent == "deep"
        assert child.model.comments.leading == (f"ablation: Removed {parent.layers[i].kind} at index {i}",)
        assert child.model.layers == parent.layers[:i] + parent.layers[i + 1:]
        assert analyze_model(child.model, DIGITS).valid and child.info.valid
    assert [c.model.name for c in result.children][-4:] == ["deep_abl10", "deep_abl11", "deep_abl12", "deep_abl13"]
    assert result.notes == ("layer 8 (flatten): skipped, the child (after added flatten at index 8) has the same "
                            "architecture as the parent 'deep'",)


def test_the_head_is_never_ablated_even_when_selected():
    result = ablate(model(DEEP), DIGITS, layers=[14, 10])
    assert [c.model.name for c in result.children] == ["deep_abl10"]
    assert result.notes == ("layer 14 (dense): the classifier head is never ablated",)


def test_keep_is_skipped_by_default_with_a_note_but_ablated_when_selected():
    parent = model("model k:\n    conv2d 16  @keep\n    relu  @deny(remove)\n    tanh\n    flatten\n    dense 10\n")
    result = ablate(parent, DIGITS)
    assert [c.model.name for c in result.children] == ["k_abl2"]
    assert "layer 0 (conv2d): marked @keep, so not ablated" in result.notes[0]
    assert "layer 1 (relu): its annotations forbid remove" in result.notes[1]
    chosen = ablate(parent, DIGITS, layers=[0, 1])
    assert [c.model.name for c in chosen.children] == ["k_abl0", "k_abl1"]
    assert chosen.notes == ()


def test_a_lost_flatten_is_put_back_before_the_first_dense_and_noted():
    parent = model("model f:\n    conv2d 16\n    flatten\n    dropout 0.5\n    dense 10\n")
    result = ablate(parent, DIGITS, layers=[1])
    [child] = result.children
    assert [lay.kind for lay in child.model.layers] == ["conv2d", "dropout", "flatten", "dense"]
    assert child.model.comments.leading == ("ablation: Removed flatten at index 1; Added flatten at index 2",)
    assert result.notes == ("layer 1 (flatten): repaired, added flatten at index 2 so that dense gets a flat input",)


def test_children_that_no_longer_fit_are_left_out_with_the_reason():
    # without the padding conv the 8x8 input shrinks to 2x2 after the first pool, too small for the second
    parent = model("model p:\n    conv2d 16 kernel=1 padding=2\n    maxpool 5\n    maxpool 3\n"
                   "    flatten\n    dense 10\n")
    result = ablate(parent, DIGITS, layers=[0, 1])
    assert [c.model.name for c in result.children] == ["p_abl1"]
    [note] = result.notes
    assert note.startswith("layer 0 (conv2d): skipped, removing it leaves an invalid model (maxpool: pool size 3 "
                           "does not fit the 2x2 input")


def test_children_over_the_budget_are_left_out_with_a_note():
    parent = model("model b:\n    conv2d 16\n    maxpool 2\n    flatten\n    dense 10\n")
    result = ablate(parent, DIGITS, layers=[0, 1], budget=Budget("params", 5000, "k"))
    assert [c.model.name for c in result.children] == ["b_abl0"]
    assert result.notes == ("layer 1 (maxpool): skipped, without it the model has 10,410 parameters, over the "
                            "budget of 5k",)


def test_duplicates_of_a_sibling_or_a_known_model_are_skipped_with_a_note():
    parent = model("model d:\n    relu\n    relu\n    tanh\n    flatten\n    dense 10\n")
    result = ablate(parent, DIGITS, layers=[0, 1, 2])
    assert [c.model.name for c in result.children] == ["d_abl0", "d_abl2"]
    assert result.notes == ("layer 1 (relu): skipped, the child has the same architecture as sibling 'd_abl0'",)
    known = architecture_hash(result.children[1].model)
    again = ablate(parent, DIGITS, layers=[2], existing_hashes={known})
    assert again.children == () and "a model already in the document" in again.notes[0]


def test_names_are_unique_against_existing_ones():
    parent = model("model n:\n    relu\n    flatten\n    dense 10\n")
    result = ablate(parent, DIGITS, existing_names={"n_abl0", "n_abl0_2"})
    assert [c.model.name for c in result.children] == ["n_abl0_3"]


def test_bad_requests_raise():
    parent = model(DEEP)
    with pytest.raises(ValueError, match="layer index 15 is out of range; model 'deep' has layers 0 to 14"):
        ablate(parent, DIGITS, layers=[15])
    with pytest.raises(ValueError, match="layer index -1 is out of range"):
        ablate(parent, DIGITS, layers=[-1])
    broken = model("model x:\n    conv2d 16\n    dense 10\n")
    with pytest.raises(ValueError, match="model 'x' has errors \\(dense needs a flat input"):
        ablate(broken, DIGITS)
