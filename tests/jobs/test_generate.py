"""Generating children in a workspace file: the same children as the library gives, written after their
parent without losing a line, queued, and nothing written on bad input or over a file saved meanwhile."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from remapdsl.jobs import generate as gen
from remapdsl.jobs.files import read_text
from remapdsl.jobs.generate import (
    Ablation,
    GenerateError,
    Handcrafted,
    Variation,
    check_child_text,
    edit_draft,
    generate,
    new_draft,
    propose,
    with_layer_ops,
)
from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse
from remapdsl.search.ablation import ablate
from remapdsl.search.children import Parent, block_text, parent_of
from remapdsl.search.spawn import Operation, spawn
from remapdsl.search.variation import vary
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

TEXT = """# the workspace's models
data digits
train epochs=2 batch=64 seed=0
budget params <= 100k

model base:  # the baseline
    conv2d 16
    relu
    maxpool 2
    flatten
    dense 64  @allow(reparameterize)
    relu
    dense 10

# a comment between two models
model other:
    flatten
    dense 10
"""


def workspace(tmp_path: Path, text: str = TEXT) -> Path:
    path = tmp_path / "w.remap"
    path.write_text(text, newline="")
    return path


def parent(text: str, base: Path, name: str = "base") -> Parent:
    result = parse(text)
    return parent_of(analyze(result.document, result.diagnostics, base), name)


def lines_kept(before: str, after: str) -> bool:
    """Every line of `before` is in `after`, in order."""
    rest = iter(after.splitlines())
    return all(any(line == other for other in rest) for line in before.splitlines())


def test_an_ablation_gives_the_librarys_children_and_the_language_servers_text(tmp_path: Path) -> None:
    p = parent(TEXT, tmp_path)
    proposal = propose(TEXT, tmp_path, Ablation("base", (0, 2)))
    library = ablate(p.model, p.dataset, [0, 2], p.budget, existing_names=p.names, existing_hashes=p.hashes)
    assert [c.model for c in proposal.children] == [c.model for c in library.children]
    assert [c.changes for c in proposal.children] == [c.describe() for c in library.children]
    result = parse(TEXT)
    spawned = spawn(TEXT, analyze(result.document, result.diagnostics, tmp_path), Operation("ablate", "base", (0, 2)))
    assert [c.text for c in proposal.children] == [block_text(m) for m in spawned.children]
    assert not any(c.over_budget for c in proposal.children)


def test_variations_give_the_librarys_children(tmp_path: Path) -> None:
    p = parent(TEXT, tmp_path)
    request = Variation("base", n=4, max_changes=2, ops=("remove", "reparameterize", "prepend"), seed=7)
    proposal = propose(TEXT, tmp_path, request)
    library = vary(p.model, p.dataset, 4, max_changes=2, ops=("remove", "reparameterize", "prepend"), seed=7,
                   budget=p.budget, existing_hashes=p.hashes, existing_names=p.names)
    assert [(c.name, c.text, c.changes) for c in proposal.children] == [
        (c.model.name, block_text(c.model), c.describe()) for c in library.children]


def test_per_layer_operators_constrain_variations_as_annotations_do(tmp_path: Path) -> None:
    p = parent(TEXT, tmp_path)
    same = tuple(tuple(sorted(gen.allowed_ops(layer))) for layer in p.model.layers)
    assert with_layer_ops(p.model, same) == p.model  # the annotations' own toggles change nothing
    # only the dense layer's units may change
    only = tuple(("reparameterize",) if i == 4 else () for i in range(len(p.model.layers)))
    proposal = propose(TEXT, tmp_path, Variation("base", n=3, layer_ops=only, seed=1))
    library = vary(with_layer_ops(p.model, only), p.dataset, 3, seed=1, budget=p.budget,
                   existing_hashes=p.hashes, existing_names=p.names)
    assert [c.model for c in proposal.children] == [c.model for c in library.children]
    assert proposal.children and all(c.changes.startswith("units at 4 from 64 to ") for c in proposal.children)


@pytest.mark.slow  # loads the digits to queue
def test_children_are_written_after_their_parent_and_queued(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    with Store(tmp_path / "remap.db") as store:
        done = generate(path, Ablation("base", (0, 1)), store, device="cpu")
        assert done.written == ("base_abl0", "base_abl1") and done.plan is not None
        assert [j.model_name for j in Queue(store).queued()] == ["base_abl0", "base_abl1"]
        assert {m.origin for m in done.plan.registered} == {"ablation"}
    after = path.read_text()
    assert lines_kept(TEXT, after)
    result = parse(after)
    assert result.diagnostics == ()
    assert [m.name for m in result.document.models] == ["base", "base_abl0", "base_abl1", "other"]
    assert "# ablation: Removed conv2d at index 0\nmodel base_abl0 from base:" in after
    # a second ablation goes after the first children, and repeats none of them
    again = generate(path, Ablation("base", (0, 2)))
    assert again.written == ("base_abl2",)
    assert [m.name for m in parse(path.read_text()).document.models] == [
        "base", "base_abl0", "base_abl1", "base_abl2", "other"]


def test_a_child_repeating_a_known_model_is_named_and_skipped(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    done = generate(path, Ablation("base", (3,)))  # without flatten, the repair puts it back: the parent
    assert done.written == () and path.read_text() == TEXT
    assert "same architecture as the parent 'base'" in done.message()


@pytest.mark.slow  # loads the digits to queue
def test_a_child_over_the_budget_is_marked_and_written_only_when_confirmed(tmp_path: Path) -> None:
    text = TEXT.replace("budget params <= 100k", "budget params <= 50k")
    path = workspace(tmp_path, text)
    proposal = propose(text, tmp_path, Ablation("base", (1, 2)))
    marked = {c.name: c.over_budget for c in proposal.children}
    assert marked == {"base_abl1": False, "base_abl2": True}  # without the pooling, dense 64 gets 4x the inputs
    with Store(tmp_path / "remap.db") as store:
        done = generate(path, Ablation("base", (1, 2)), store, device="cpu")
        assert done.written == ("base_abl1",) and done.held_back == ("base_abl2",)
        assert "held back until confirmed: base_abl2" in done.message()
        confirmed = generate(path, Ablation("base", (1, 2)), store, confirm_over_budget=True, device="cpu")
        assert confirmed.written == ("base_abl2",)
        assert [j.model_name for j in Queue(store).queued()] == ["base_abl1", "base_abl2"]
    assert "model base_abl2 from base:" in path.read_text()


def test_an_edit_saved_meanwhile_is_kept_and_the_children_derived_again(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = workspace(tmp_path)
    saved = TEXT + "\nmodel base_abl0:  # the editor took this name\n    flatten\n    dense 32\n    dense 10\n"
    calls = []
    real = gen.propose

    def propose_while_saving(text: str, base: Path, request: gen.Request) -> gen.Proposal:
        calls.append(text)
        if len(calls) == 1:
            path.write_text(saved)  # an editor saves after the file was read
        return real(text, base, request)

    monkeypatch.setattr(gen, "propose", propose_while_saving)
    done = generate(path, Ablation("base", (0,)))
    assert done.retried and calls == [TEXT, saved]
    assert done.written == ("base_abl0_2",)  # named against the file as saved
    assert lines_kept(saved, path.read_text())


def test_a_file_changing_on_every_read_is_left_as_its_last_writer_made_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = workspace(tmp_path)
    real = gen.propose
    count = [0]

    def busy(text: str, base: Path, request: gen.Request) -> gen.Proposal:
        count[0] += 1
        path.write_text(text + f"\n# save {count[0]}\n")
        return real(text, base, request)

    monkeypatch.setattr(gen, "propose", busy)
    with pytest.raises(GenerateError, match=r"changed on disk since it was read, twice .* nothing was written"):
        generate(path, Ablation("base", (0,)))
    assert path.read_text().endswith("# save 2\n") and "base_abl0" not in path.read_text()


@pytest.mark.parametrize(("request_", "message"), [
    (Variation("base", n=0), "the number of variations must be from 1 to 100; found 0"),
    (Variation("base", n=10_000), "the number of variations must be from 1 to 100; found 10,000"),
    (Variation("base", max_changes=0), "the number of changes per child must be from 1 to 10; found 0"),
    (Variation("base", ops=("twist",)), "unknown operator 'twist'"),
    (Ablation("base", ()), "choose at least one layer to ablate"),
    (Ablation("base", (9,)), "layer index 9 is out of range; model 'base' has layers 0 to 6"),
    (Ablation("nothere"), "there is no model 'nothere'"),
    (Handcrafted("base", "model other from base:\n    flatten\n    dense 10\n"),
     "line 1, column 7: model 'other' is already defined at line 16 of the file"),
    (Handcrafted("base", "model mine from base:\n    flatten\n    dense 10 units=3\n"), "line 3"),
])
def test_bad_requests_say_why_and_write_nothing(tmp_path: Path, request_: gen.Request, message: str) -> None:
    path = workspace(tmp_path)
    with pytest.raises(GenerateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate(path, request_)
    assert path.read_text() == TEXT


def test_a_read_only_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        with pytest.raises(GenerateError, match=r"w\.remap is read-only; nothing was written"):
            generate(path, Ablation("base", (0,)))
        assert path.read_text() == TEXT
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_handcrafted_child_is_checked_at_its_own_lines_then_written(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    draft = new_draft(TEXT, tmp_path, "base")
    assert draft.startswith("# handcrafted: no change\nmodel base_edit from base:\n")
    with_dropout = edit_draft(TEXT, tmp_path, "base", draft, "insert", 3, layer="dropout 0.25")
    assert with_dropout.startswith("# handcrafted: Added dropout 0.25 at index 3\n")
    broken = with_dropout.replace("dropout 0.25", "dropout 1.5")
    check = check_child_text(TEXT, tmp_path, "base", broken)
    assert [(p.line, p.column) for p in check.errors] == [(6, 13)]
    assert "rate" in check.errors[0].message and check.why_not() is not None
    check = check_child_text(TEXT, tmp_path, "base", with_dropout)
    assert check.problems == () and check.why_not() is None and check.info is not None
    assert check.info.param_count == 17258 and check.info.layers[3].output_shape == (16, 4, 4)
    done = generate(path, Handcrafted("base", with_dropout))
    assert done.written == ("base_edit",)
    after = path.read_text()
    assert "\n# handcrafted: Added dropout 0.25 at index 3\nmodel base_edit from base:\n" in after
    assert parse(after).diagnostics == () and lines_kept(TEXT, after)


def test_a_handcrafted_text_without_its_parent_or_a_model_says_so(tmp_path: Path) -> None:
    check = check_child_text(TEXT, tmp_path, "base", "model mine from other:\n    flatten\n    dense 10\n")
    assert any("is written `model mine from base:`" in p.message for p in check.errors)
    check = check_child_text(TEXT, tmp_path, "base", "# only a comment\n")
    assert check.why_not() and "expected one model" in check.errors[0].message


def test_a_reparameterization_outside_the_catalogs_range_is_refused(tmp_path: Path) -> None:
    draft = new_draft(TEXT, tmp_path, "base")
    with pytest.raises(GenerateError, match="filters"):
        edit_draft(TEXT, tmp_path, "base", draft, "reparameterize", 0, param="filters", value=0)
    with pytest.raises(GenerateError, match="expected an index from 0 to 6"):
        edit_draft(TEXT, tmp_path, "base", draft, "remove", 7)


def test_line_endings_and_the_byte_order_mark_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "w.remap"
    path.write_bytes(b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode())
    generate(path, Ablation("base", (0,)))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\n" not in raw.replace(b"\r\n", b"")
    assert "model base_abl0 from base:" in read_text(path).text


def test_a_stored_model_is_appended_under_a_free_name_unless_the_file_has_it(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    stored = "model base:\n    flatten\n    dense 32\n    relu\n    dense 10\n"
    assert gen.append_model(path, stored, "base") == "base_2"
    after = path.read_text()
    assert after.startswith(TEXT.rstrip()) and after.endswith("\nmodel base_2:\n    flatten\n    dense 32\n"
                                                              "    relu\n    dense 10\n")
    with pytest.raises(GenerateError, match="has this architecture already, as 'base_2'; nothing was written"):
        gen.append_model(path, stored, "again")
    assert path.read_text() == after
