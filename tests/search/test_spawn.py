"""Spawning children into a document: every operation's edit leaves a file that validates, children sit
right after their parent with `from PARENT`, and what cannot be made is left out with a note."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.datasets import describe
from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Document, Position
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document
from remapdsl.search.sampler import sample_models
from remapdsl.search.spawn import (
    Operation,
    layer_at,
    layer_offers,
    model_at,
    model_offers,
    neighbour_values,
    selected_layers,
    spawn,
)
from remapdsl.store.queue import model_origin

TEXT = """\
data digits
budget params <= 100k

# the baseline
model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model small_wide from small:  # filters at 0 from 16 to 32
    conv2d 32 kernel=3  @keep
    relu
    maxpool 2  @allow(reparameterize, remove)
    flatten
    dense 10

model mlp:
    flatten
    dense 128
    tanh  # squashes
    dropout 0.125
    dense 10
"""


# the parser's line ends
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def apply_edit(text: str, edit: TextEdit) -> str:
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    def offset(p: Position) -> int:
        return starts[p.line] + p.character

    return text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]


def analysed(text: str) -> Analysis:
    result = parse(text)
    return analyze(result.document, result.diagnostics)


def applied(text: str, operation: Operation) -> tuple[str, Analysis, tuple[str, ...]]:
    """The text after the operation's edit, its analysis (which must be clean) and the children's names."""
    result = spawn(text, analysed(text), operation)
    assert result.edit is not None, result.notes
    new = apply_edit(text, result.edit)
    analysis = analysed(new)
    assert analysis.valid, [d.message for d in analysis.diagnostics]
    for name in result.names:
        assert analysis.document.model(name).parent == operation.model
    return new, analysis, result.names


def order(analysis: Analysis) -> list[str]:
    return [m.name for m in analysis.document.models]


def test_ablating_all_layers_puts_the_children_after_the_parent_and_its_children():
    new, analysis, names = applied(TEXT, Operation("ablate", "small"))
    assert names == ("small_abl0", "small_abl1", "small_abl2")
    assert order(analysis) == ["small", "small_wide", *names, "mlp"]
    assert "\n    dense 10\n\n# ablation: Removed conv2d at index 0\nmodel small_abl0 from small:\n" in new
    # the block after the children is separated as before
    assert "    dense 10\n\nmodel mlp:\n" in new
    assert all(model_origin(analysis.document.model(n))[0] == "ablation" for n in names)


def test_ablating_the_selected_lines_ablates_only_the_layers_on_them():
    model = analysed(TEXT).document.model("small")
    first, last = model.layers[1].range.start.line, model.layers[2].range.start.line
    assert selected_layers(model, first, last) == (1, 2)
    _, analysis, names = applied(TEXT, Operation("ablate", "small", layers=(1, 2)))
    assert names == ("small_abl1", "small_abl2")
    assert [layer.kind for layer in analysis.document.model("small_abl1").layers] == ["conv2d", "maxpool", "flatten",
                                                                                         "dense"]


def test_variations_respect_keep_and_are_new_architectures():
    _, analysis, names = applied(TEXT, Operation("vary", "small_wide", n=5, seed=1))
    assert names == tuple(f"small_wide_v{i}" for i in range(1, 6))
    parent = analysis.document.model("small_wide")
    for name in names:
        assert analysis.document.model(name).layers[0] == parent.layers[0]
        assert model_origin(analysis.document.model(name))[0] == "variation"


def test_a_duplicate_is_a_handcrafted_copy():
    _, analysis, names = applied(TEXT, Operation("duplicate", "mlp"))
    copy = analysis.document.model("mlp_copy")
    assert names == ("mlp_copy",) and copy.layers == analysis.document.model("mlp").layers
    assert model_origin(copy) == ("handcrafted", "copy of mlp")
    # the layers keep their comments
    assert copy.layers[2].comments.trailing == "squashes"


@pytest.mark.parametrize(("operation", "kinds", "comment"), [
    (Operation("remove", "mlp", index=2), ["flatten", "dense", "dropout", "dense"], "Removed tanh at index 2"),
    (Operation("replace", "mlp", index=2, layer="relu"), ["flatten", "dense", "relu", "dropout", "dense"],
     "Replaced tanh with relu at index 2"),
    (Operation("reparameterize", "mlp", index=1, param="units", value=256),
     ["flatten", "dense", "tanh", "dropout", "dense"], "units at 1 from 128 to 256"),
    (Operation("insert", "mlp", index=4, layer="batchnorm"), ["flatten", "dense", "tanh", "dropout", "batchnorm",
                                                              "dense"], "Added batchnorm at index 4"),
])
def test_layer_edits_make_one_handcrafted_child(operation, kinds, comment):
    new, analysis, names = applied(TEXT, operation)
    child = analysis.document.model("mlp_edit")
    assert names == ("mlp_edit",) and [layer.kind for layer in child.layers] == kinds
    assert model_origin(child) == ("handcrafted", comment)
    assert new.split("    dense 10\n\n")[-1].startswith(f"# {comment}\nmodel mlp_edit from mlp:\n")


def test_a_second_spawn_takes_new_names_and_goes_after_the_first():
    once, _, _ = applied(TEXT, Operation("remove", "mlp", index=3))
    _, analysis, names = applied(once, Operation("remove", "mlp", index=2))
    assert names == ("mlp_edit_2",)
    assert order(analysis)[-3:] == ["mlp", "mlp_edit", "mlp_edit_2"]


def test_crlf_and_no_final_line_break_are_kept():
    text = TEXT.rstrip("\n").replace("\n", "\r\n")
    new, analysis, _ = applied(text, Operation("duplicate", "mlp"))
    assert "\n" not in new.replace("\r\n", "") and new.endswith("\r\n")
    assert new.startswith(text + "\r\n\r\n# handcrafted: copy of mlp\r\nmodel mlp_copy from mlp:\r\n")
    assert order(analysis)[-1] == "mlp_copy"


def test_a_file_of_carriage_returns_keeps_them():
    text = TEXT.replace("\n", "\r")
    new, _, _ = applied(text, Operation("remove", "small", index=1))
    assert "\n" not in new and "model small_edit from small:\r" in new


def test_a_child_that_would_not_validate_is_left_out_with_a_note():
    # the head's units are fixed by the data: 16 units give a model that no longer validates
    result = spawn(TEXT, analysed(TEXT), Operation("reparameterize", "mlp", index=4, param="units", value=16))
    assert result.edit is None and result.names == ()
    assert result.notes == ("mlp_edit left out: it would not validate (the classifier head must have 10 units, "
                            "one per class; found 16)",)


def test_an_oversized_child_is_left_out():
    result = spawn(TEXT, analysed(TEXT), Operation("reparameterize", "mlp", index=1, param="units", value=4096))
    assert result.edit is None and "over the budget" in result.notes[0]


@pytest.mark.parametrize(("text", "operation", "message"), [
    (TEXT, Operation("ablate", "nope"), "there is no model 'nope'"),
    (TEXT.replace("    relu\n    maxpool 2\n    flatten", "    relu\n    maxpool 2 =\n    flatten", 1),
     Operation("ablate", "small"), "model 'small' has errors; fix them first: line 8:15"),
    (TEXT, Operation("remove", "mlp", index=9), "cannot remove index 9"),
    (TEXT, Operation("insert", "mlp", index=1, layer="dense ="), "cannot read the layer 'dense ='"),
    (TEXT, Operation("ablate", "small", layers=(7,)), "layer index 7 is out of range"),
])
def test_operations_that_do_not_apply_raise_with_a_reason(text, operation, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        spawn(text, analysed(text), operation)


def test_stray_lines_after_a_descendant_are_never_handed_to_a_new_child():
    # a broken line below small_wide belongs to small_wide's block: children of small go before that block ends
    text = TEXT.replace("    dense 10\n\nmodel mlp", "    dense 10\n    dense =\n\nmodel mlp")
    result = spawn(text, analysed(text), Operation("duplicate", "small"))
    new = apply_edit(text, result.edit)
    assert new.index("model small_copy") < new.index("model small_wide")
    assert analysed(new).models["small_copy"].valid


def test_operations_travel_as_json():
    for operation in (Operation("ablate", "a", layers=(1, 3)), Operation("vary", "a", n=3, seed=7),
                      Operation("reparameterize", "a", index=2, param="rate", value=0.375),
                      Operation("insert", "a", index=0, layer="dropout 0.25")):
        assert Operation.from_json(operation.to_json()) == operation
    assert Operation("duplicate", "a").to_json() == {"op": "duplicate", "model": "a"}
    for junk in (None, [], {"op": "explode", "model": "a"}, {"op": "vary"}, {"op": "vary", "model": "a", "n": "5"},
                 {"op": "ablate", "model": "a", "layers": [True]}, {"op": "remove", "model": "a", "index": 1.5}):
        with pytest.raises(ValueError):
            Operation.from_json(junk)


def test_places_in_the_document():
    document = analysed(TEXT).document
    assert model_at(document, 4).name == "small" and model_at(document, 9).name == "small"
    assert model_at(document, 3) is None and model_at(document, 10) is None
    assert layer_at(document.model("small"), 6) == 1 and layer_at(document.model("small"), 4) is None


def test_model_offers():
    analysis = analysed(TEXT)
    titles = [o.title for o in model_offers(analysis, "small", (1, 4))]
    assert titles == ["Ablate all layers of small", "Ablate selected layers of small (relu at 1)",
                      "Generate 5 variations of small", "Duplicate small as a handcrafted child"]
    broken = TEXT.replace("    dense 128\n", "    dense 128 =\n")
    assert model_offers(analysed(broken), "mlp") == []


def test_reparameterization_offers_the_neighbouring_grid_values():
    info = analysed(TEXT).models["small"]
    assert neighbour_values(info.layers[0]) == [("filters", 16, 32), ("kernel", 3, 1), ("kernel", 3, 5)]
    assert neighbour_values(info.layers[2]) == [("size", 2, 3)]
    assert neighbour_values(analysed(TEXT).models["mlp"].layers[3]) == [("rate", 0.125, 0.25)]
    titles = [o.title for o in layer_offers(analysed(TEXT), "small", 0)]
    assert "Child of small: filters of conv2d at 0: 16 → 32" in titles
    assert "Child of small: remove conv2d at 0" in titles
    assert "Child of small: insert relu before conv2d at 0" in titles
    # the head: no offer changes its units or removes it
    head = [o.title for o in layer_offers(analysed(TEXT), "small", 4)]
    assert head and not any("remove" in t or "units" in t for t in head)


def _sampled_text(seed: int) -> str:
    models = sample_models(3, describe(None), seed=seed)
    return format_document(Document(models=tuple(models), data=None))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), pick=st.integers(0, 1_000))
def test_every_offer_on_sampled_models_leaves_a_valid_file(seed, pick):
    text = _sampled_text(seed)
    analysis = analysed(text)
    assert analysis.valid
    model = analysis.document.models[pick % len(analysis.document.models)]
    index = pick % len(model.layers)
    offers = [*model_offers(analysis, model.name, (index,)), *layer_offers(analysis, model.name, index)]
    assert offers
    for offer in offers:
        result = spawn(text, analysis, offer.operation)
        if result.edit is None:  # ablation and variation may find nothing new; they say why
            assert offer.operation.op in ("ablate", "vary") and result.notes
            continue
        new = apply_edit(text, result.edit)
        after = analysed(new)
        assert after.valid, (offer.title, [d.message for d in after.diagnostics])
        assert all(after.document.model(n).parent == model.name for n in result.names)
        assert len(after.document.models) == len(analysis.document.models) + len(result.names)


def test_children_go_after_the_comment_that_closes_their_parent():
    text = TEXT.replace("    dense 10\n\nmodel mlp:", "    dense 10\n    # try a wider head\n\nmodel mlp:")
    new, analysis, names = applied(text, Operation("duplicate", "small_wide"))
    assert analysis.document.model("small_wide").final_comments == ("try a wider head",)
    assert analysis.document.model(names[0]).final_comments == ()
    assert "    dense 10\n    # try a wider head\n\n# handcrafted: copy of small_wide\n" in new
