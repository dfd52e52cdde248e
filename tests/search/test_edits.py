"""Change records and the handcrafted edit operators."""

from __future__ import annotations

import pytest

from remapdsl.language.model import Annotation, Arg, Comments, Layer, ModelSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_model
from remapdsl.search.changes import Change, describe_changes, renumber, unique_name
from remapdsl.search.edits import insert_layer, remove_layer, reparameterize, replace_layer

PARENT_TEXT = """# sampled, seed 0
model base:
    maxpool 2
    conv2d 32 kernel=3  @keep
    relu
    dense 64
    dense 10
"""
PARENT = parse(PARENT_TEXT).document.models[0]


def layer(kind: str, *positional: object, **named: object) -> Layer:
    args = [Arg(("units" if kind == "dense" else "rate" if kind == "dropout" else "filters"), v, True)
            for v in positional]
    return Layer(kind, (*args, *(Arg(k, v) for k, v in named.items())))


@pytest.mark.parametrize("index", range(13))
def test_change_text_is_right_for_every_index(index):
    assert Change("remove", index, "maxpool").describe() == f"Removed maxpool at index {index}"
    assert Change("prepend", index, "dropout", layer="dropout 0.25").describe() == \
        f"Added dropout 0.25 at index {index}"
    assert Change("replace", index, "relu", layer="tanh").describe() == f"Replaced relu with tanh at index {index}"
    assert Change("reparameterize", index, "conv2d", param="filters", old=32, new=128).describe() == \
        f"filters at {index} from 32 to 128"


def test_renumbering_names_parent_layers_by_the_parent_and_new_layers_by_the_child():
    def at(*changes: Change) -> list[int]:
        return [c.index for c in renumber(changes)]

    rm = lambda i: Change("remove", i, "relu")  # noqa: E731
    add = lambda i: Change("prepend", i, "relu", layer="relu")  # noqa: E731
    param = lambda i: Change("reparameterize", i, "conv2d", param="filters", old=16, new=32)  # noqa: E731
    assert at(rm(2), param(10)) == [2, 11]  # the parent's layer 11 was layer 10 once layer 2 had gone
    assert at(param(10), rm(2)) == [10, 2]
    assert at(add(3), rm(0)) == [2, 0]  # the new layer ends up at 2 in the child
    assert at(add(12), add(12)) == [13, 12]  # the second insertion pushes the first one on
    assert at(add(0), param(11), Change("replace", 13, "relu", layer="tanh")) == [0, 10, 12]
    assert at(rm(11), rm(10), add(10)) == [11, 10, 10]
    assert at(param(4)) == [4] and at() == []
    with pytest.raises(ValueError, match="change 2 removes the layer that change 1 added"):
        renumber([add(3), rm(3)])


def test_changes_join_in_order_and_unknown_ops_are_refused():
    changes = [Change("remove", 11, "relu"), Change("reparameterize", 10, "dropout", param="rate", old=0.5, new=0.125)]
    assert describe_changes(changes) == "Removed relu at index 11; rate at 10 from 0.5 to 0.125"
    with pytest.raises(ValueError, match="unknown change 'grow'"):
        Change("grow", 0, "relu").describe()


def test_reparameterize_records_the_change_above_the_child():
    child = reparameterize(PARENT, 1, "filters", 128, name="wide")
    assert format_model(child) == (
        "# filters at 1 from 32 to 128\n"
        "model wide from base:\n"
        "    maxpool 2\n"
        "    conv2d 128 kernel=3  @keep\n"
        "    relu\n"
        "    dense 64\n"
        "    dense 10\n"
    )
    assert PARENT.layers[1].arg("filters").value == 32  # the parent is untouched


def test_reparameterize_a_default_parameter_writes_it():
    child = reparameterize(PARENT, 0, "stride", 3)
    assert child.name == "base_edit" and child.parent == "base"
    assert child.layers[0].written() == {"size": 2, "stride": 3}
    assert child.comments == Comments(("stride at 0 from 2 to 3",))


def test_insert_remove_replace():
    added = insert_layer(PARENT, 3, layer("dropout", 0.25), name="a")
    assert [lay.kind for lay in added.layers] == ["maxpool", "conv2d", "relu", "dropout", "dense", "dense"]
    assert added.comments.leading == ("Added dropout 0.25 at index 3",)
    appended = insert_layer(PARENT, 5, layer("relu"))
    assert appended.layers[-1].kind == "relu"

    removed = remove_layer(PARENT, 0, name="r")
    assert removed.layers == PARENT.layers[1:]
    assert removed.comments.leading == ("Removed maxpool at index 0",)

    replaced = replace_layer(PARENT, 2, layer("tanh"), name="t")
    assert replaced.layers[2].kind == "tanh" and replaced.comments.leading == ("Replaced relu with tanh at index 2",)
    # a replacement without annotations of its own keeps the slot's
    frozen = replace_layer(PARENT, 1, layer("conv2d", 16, kernel=5))
    assert frozen.layers[1].annotations == (Annotation("keep"),)
    assert frozen.comments.leading == ("Replaced conv2d with conv2d 16 kernel=5 at index 1",)


def test_edits_work_past_index_ten():
    model = ModelSpec("deep", (*(layer("relu") for _ in range(12)), layer("dense", 10)))
    for i in (10, 11, 12):
        assert remove_layer(model, i).comments.leading == (f"Removed {model.layers[i].kind} at index {i}",)
        assert len(insert_layer(model, i, layer("tanh")).layers) == 14
    assert reparameterize(model, 12, "units", 16).comments.leading == ("units at 12 from 10 to 16",)
    assert replace_layer(model, 11, layer("sigmoid")).layers[11].kind == "sigmoid"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda: remove_layer(PARENT, 5), "cannot remove index 5: expected an index from 0 to 4"),
    (lambda: remove_layer(PARENT, -1), "cannot remove index -1"),
    (lambda: insert_layer(PARENT, 6, layer("relu")), "cannot insert at index 6: expected an index from 0 to 5"),
    (lambda: replace_layer(PARENT, 9, layer("relu")), "cannot replace index 9"),
    (lambda: reparameterize(PARENT, 7, "filters", 16), "cannot reparameterize index 7"),
    (lambda: reparameterize(PARENT, 1, "filterz", 16), r"conv2d at index 1 has no parameter 'filterz' \(parameters: "
                                                       "filters, kernel, stride, padding\\)"),
    (lambda: reparameterize(PARENT, 2, "rate", 0.5), r"relu at index 2 has no parameter 'rate' \(it takes no"),
    (lambda: reparameterize(PARENT, 1, "kernel", 0), "kernel must be an integer in"),
    (lambda: reparameterize(PARENT, 1, "filters", 32), "filters of conv2d at index 1 is already 32"),
    (lambda: insert_layer(PARENT, 0, layer("lstm")), "unknown layer 'lstm'"),
    (lambda: insert_layer(PARENT, 0, Layer("dense")), "dense needs units"),
    (lambda: insert_layer(PARENT, 0, layer("dropout", 1.5)), "rate must be a number in"),
    (lambda: remove_layer(ModelSpec("empty", ()), 0), "the model has no layers"),
])
def test_bad_edits_say_what_is_wrong(edit, message):
    with pytest.raises(ValueError, match=message):
        edit()


def test_unique_names():
    assert unique_name("m_abl1", {"m"}) == "m_abl1"
    assert unique_name("m_abl1", {"m_abl1", "m_abl1_2"}) == "m_abl1_3"
