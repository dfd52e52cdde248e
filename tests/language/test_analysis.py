"""Static analysis: shapes, parameter counts and semantic diagnostics, with ranges and fixes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from remapdsl.language.analysis import analyze
from remapdsl.language.diagnostics import Severity
from remapdsl.language.parser import parse


def analysed(text: str):
    result = parse(text)
    return analyze(result.document, result.diagnostics)


def messages(text: str) -> list[str]:
    return [d.message for d in analysed(text).diagnostics]


SMALL = """\
data digits
model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""


def test_shapes_and_parameter_counts_of_a_small_model():
    info = analysed(SMALL).models["small"]
    assert [li.output_shape for li in info.layers] == [(16, 8, 8), (16, 8, 8), (16, 4, 4), (256,), (10,)]
    # conv: 16 * (1*3*3 + 1); dense: 10 * (256 + 1)
    assert [li.param_count for li in info.layers] == [160, 0, 0, 0, 2570]
    assert info.param_count == 2730
    assert info.valid


def test_shapes_follow_strides_padding_and_pool_strides():
    text = """\
data cifar10 "/nonexistent/cifar"
model m:
    conv2d 8 kernel=5 stride=2
    conv2d 8 kernel=3 padding=valid
    maxpool 3
    avgpool 2 stride=1
    flatten
    dense 10
"""
    info = analysed(text).models["m"]
    assert [li.output_shape for li in info.layers][:4] == [(8, 16, 16), (8, 14, 14), (8, 6, 6), (8, 5, 5)]
    assert info.valid


def test_batchnorm_counts_two_parameters_per_channel_or_feature():
    text = "model m:\n    conv2d 4\n    batchnorm\n    flatten\n    batchnorm\n    dense 10\n"
    info = analysed(text).models["m"]
    assert info.layers[1].param_count == 8
    assert info.layers[3].param_count == 2 * 4 * 8 * 8


def test_unknown_layer_says_what_was_expected_and_suggests():
    text = "model m:\n    conv3d 16\n    flatten\n    dense 10\n"
    (d,) = [d for d in analysed(text).diagnostics if d.code == "unknown-layer"]
    assert d.message == "expected a layer such as conv2d, dense, maxpool; found 'conv3d'; did you mean 'conv2d'?"
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (1, 4, 10)


def test_unknown_parameter_and_out_of_range_value_have_exact_ranges():
    text = "model m:\n    conv2d 16 kernal=3\n    dropout 1.5\n    flatten\n    dense 10\n"
    ds = analysed(text).diagnostics
    unknown = next(d for d in ds if d.code == "unknown-param")
    assert "did you mean 'kernel'" in unknown.message
    assert (unknown.range.start.line, unknown.range.start.character) == (1, 14)
    rate = next(d for d in ds if d.code == "value")
    assert "rate must be a number in (0, 1)" in rate.message
    assert (rate.range.start.line, rate.range.start.character, rate.range.end.character) == (2, 12, 15)


def test_missing_required_value():
    text = "model m:\n    conv2d kernel=3\n    flatten\n    dense 10\n"
    assert any("conv2d needs filters" in m for m in messages(text))


def test_spatial_collapse_is_an_error():
    text = "model m:\n    maxpool 5\n    maxpool 5\n    flatten\n    dense 10\n"
    ds = [d for d in analysed(text).diagnostics if d.code == "collapse"]
    assert len(ds) == 1 and ds[0].range.start.line == 2
    assert "does not fit the 2x2 input" in ds[0].message


def test_conv_after_flatten_or_dense_is_an_error():
    text = "model m:\n    flatten\n    dense 32\n    conv2d 8\n    dense 10\n"
    (d,) = [d for d in analysed(text).diagnostics if d.code == "after-flat"]
    assert d.range.start.line == 3


def test_dense_on_an_image_offers_to_insert_flatten_and_checks_on():
    text = "model m:\n    conv2d 8\n    dense 12\n"
    ds = analysed(text).diagnostics
    flat = next(d for d in ds if d.code == "needs-flatten")
    assert flat.fix is not None and flat.fix.edits[0].new_text == "    flatten\n"
    assert flat.fix.edits[0].range.start.line == 2
    head = next(d for d in ds if d.code == "head")
    assert head.fix is not None and head.fix.edits[0].new_text == "10"


def test_model_must_end_with_the_head():
    text = "model m:\n    conv2d 8\n    relu\n"
    head = next(d for d in analysed(text).diagnostics if d.code == "head")
    assert head.fix is not None and head.fix.edits[0].new_text == "    flatten\n    dense 10\n"


def test_head_width_follows_the_data_set():
    text = 'data quickdraw "/q" classes=cat,bird\nmodel m:\n    flatten\n    dense 10\n'
    assert any("must have 2 units" in m for m in messages(text))


def test_duplicate_names_unknown_and_cyclic_parents():
    text = (
        "model a from c:\n    flatten\n    dense 10\n"
        "model a:\n    flatten\n    dense 10\n"
        "model b from missing:\n    flatten\n    dense 10\n"
        "model c from a:\n    flatten\n    dense 10\n"
    )
    ms = messages(text)
    assert any("model 'a' is already defined at line 1" in m for m in ms)
    assert any("unknown parent model 'missing'" in m for m in ms)
    assert any("cycle" in m for m in ms)


def test_budget_violation_names_the_model_and_the_bound():
    text = "budget params <= 2k\n" + SMALL.replace("data digits\n", "")
    (d,) = [d for d in analysed(text).diagnostics if d.code == "budget"]
    assert d.message == "model 'small' has 2,730 parameters, over the budget of 2k"


def test_one_broken_model_does_not_hide_the_others():
    text = SMALL + "model broken:\n    conv2d 16 kernel=\n    dense 10\nmodel other:\n    flatten\n    dense 11\n"
    a = analysed(text)
    assert a.models["small"].valid
    assert any(d.model == "other" and d.code == "head" for d in a.diagnostics)
    assert any(d.range.start.line == 8 for d in a.diagnostics)


def test_flatten_twice_is_a_warning_with_a_fix():
    text = "model m:\n    flatten\n    flatten\n    dense 10\n"
    (d,) = analysed(text).diagnostics
    assert d.severity == Severity.WARNING and d.fix is not None


@pytest.mark.parametrize("annotation, message", [
    ("@frozen", "unknown annotation '@frozen'"),
    ("@allow(shrink)", "unknown operator 'shrink' in @allow"),
    ("@keep(remove)", "@keep takes no operators"),
])
def test_bad_annotations(annotation, message):
    assert any(message in m for m in messages(f"model m:\n    flatten {annotation}\n    dense 10\n"))


def test_header_options_are_checked():
    ms = messages("data digits val=2 foo=1\ntrain epochs=0 optimiser=adam\n" + SMALL.replace("data digits\n", ""))
    assert any("val must be a number in (0, 1)" in m for m in ms)
    assert any("data digits has no option 'foo'" in m for m in ms)
    assert any("epochs must be an integer in [1, 100000]" in m for m in ms)
    assert any("did you mean 'optimizer'" in m for m in ms)


def test_data_needing_a_path_and_unknown_data():
    assert any("data cifar10 needs a path" in m for m in messages("data cifar10\n"))
    assert any("unknown data set 'cifar100'" in m for m in messages("data cifar100\n"))


def test_npz_shape_is_read_from_the_file(tmp_path):
    import numpy as np

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((6, 12, 12, 3), np.uint8), y=np.array([0, 1, 2, 0, 1, 2]))
    text = f'data npz "{path}"\nmodel m:\n    conv2d 4\n    flatten\n    dense 3\n'
    a = analysed(text)
    assert a.valid and a.models["m"].layers[0].input_shape == (3, 12, 12)


# Analysed in a process limited to 1 GiB of address space: a declared size is checked before it sizes anything.
BOUNDED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse
analysis = analyze(parse(sys.stdin.read()).document)
print("\\n".join(d.message for d in analysis.diagnostics))
"""


@pytest.mark.parametrize(("declared", "message"), [
    ("classes=1e12", "classes must be"),
    ("classes=4,5", "classes must be"),
    ("size=100000000", "size must be"),
])
def test_a_huge_or_listed_declared_size_is_a_diagnostic_in_bounded_memory(declared, message):
    text = f'data npz "x.npz" channels=1 size=8 {declared}\n\nmodel m:\n    flatten\n    dense 10\n'
    done = subprocess.run([sys.executable, "-c", BOUNDED], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert message in done.stdout and "shapes of models cannot be checked" in done.stdout


def test_unreadable_data_file_is_one_clear_diagnostic(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    (d,) = analysed(f'data npz "{path}"\n').diagnostics
    assert str(path) in d.message and "cannot read" in d.message


def test_a_relative_data_path_resolves_against_the_file_folder(tmp_path, monkeypatch):
    import numpy as np

    from remapdsl.language.parser import parse

    folder = tmp_path / "project"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.random((40, 1, 6, 6), dtype=np.float32), y=np.arange(40) % 4)
    text = 'data npz "data.npz"\n\nmodel m:\n    flatten\n    dense 4\n'
    monkeypatch.chdir(tmp_path)
    result = parse(text)
    assert not analyze(result.document, result.diagnostics, folder).diagnostics
    elsewhere = analyze(result.document, result.diagnostics, tmp_path)
    assert any("does not exist" in d.message for d in elsewhere.diagnostics)


def test_quickdraw_classes_may_be_one_quoted_list():
    from remapdsl.language.parser import parse

    quoted = parse('data quickdraw "/nowhere" classes="cat, dog,fish"\n').document
    listed = parse('data quickdraw "/nowhere" classes=cat,dog,fish\n').document
    for document in (quoted, listed):
        analysis = analyze(document)
        assert analysis.dataset is not None and analysis.dataset.class_names == ("cat", "dog", "fish")


def test_a_second_definition_of_a_name_reports_its_own_errors_too():
    text = ("model a:\n    flatten\n    dense 10\n"
            "model a:\n    conv3d 16\n    dropout 1.5\n    flatten\n    dense 12\n")
    a = analysed(text)
    assert [d.code for d in a.diagnostics] == ["duplicate-model", "unknown-layer", "value", "head"]
    assert all(d.range.start.line >= 3 and d.model == "a" for d in a.diagnostics)
    # the name means the first definition; the second one's analysis is kept apart
    assert a.models["a"].valid and a.models["a"].model.range.start.line == 0
    (second,) = a.duplicates
    assert second.model.range.start.line == 3 and not second.valid
    assert [li.layer.kind for li in second.layers] == ["conv3d", "dropout", "flatten", "dense"]


def test_huge_numbers_give_short_messages_and_fixes_not_exceptions():
    nines = "9" * 400
    a = analysed(f"model m:\n    conv2d {nines}\n    flatten\n    dense 1e308\n")
    assert [d.message for d in a.diagnostics] == [
        "filters must be an integer in [1, 4096]; found 1e+400",
        "units must be an integer in [1, 65536]; found 1e+308",
        "the classifier head must have 10 units, one per class; found 1e+308",
    ]
    assert a.diagnostics[0].fix is not None and a.diagnostics[0].fix.title == "Set filters to 128"


# --- quick fixes ----------------------------------------------------------------------------------


def apply_fix(text: str, fix) -> str:
    """`text` with the fix's edits made (edits do not overlap; applied from the last)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for edit in sorted(fix.edits, key=lambda e: e.range, reverse=True):
        begin = starts[edit.range.start.line] + edit.range.start.character
        end = starts[edit.range.end.line] + edit.range.end.character
        text = text[:begin] + edit.new_text + text[end:]
    return text


HEAD = "    flatten\n    dense 10\n"


@pytest.mark.parametrize("text, title, fixed", [
    ("model m:\n    conv2f 16\n" + HEAD, "Replace with 'conv2d'", "conv2d 16"),
    ("model m:\n    conv2d 16 kernal=5\n" + HEAD, "Replace with 'kernel'", "conv2d 16 kernel=5"),
    ("model m:\n    conv2d 16 padding=sme\n" + HEAD, "Replace with 'same'", "conv2d 16 padding=same"),
    ("model m:\n    conv2d 16 padding=Valid\n" + HEAD, "Replace with 'valid'", "conv2d 16 padding=valid"),
    ("model m:\n    relu @kep\n" + HEAD, "Replace with 'keep'", "relu @keep"),
    ("model m:\n    conv2d 16 kernel=4\n" + HEAD, "Set kernel to 5", "conv2d 16 kernel=5"),
    ("model m:\n    conv2d 16 kernel=2  @keep\n" + HEAD, "Set kernel to 3", "conv2d 16 kernel=3  @keep"),
    ("data digts\nmodel m:\n" + HEAD, "Replace with 'digits'", "data digits"),
    ("data digits vla=0.1\nmodel m:\n" + HEAD, "Replace with 'val'", "data digits val=0.1"),
    ("train optimizer=adan\nmodel m:\n" + HEAD, "Replace with 'adam'", "train optimizer=adam"),
    ("train optimiser=sgd\nmodel m:\n" + HEAD, "Replace with 'optimizer'", "train optimizer=sgd"),
    ("model small:\n" + HEAD + "model m from smal:\n" + HEAD, "Replace with 'small'", "model m from small:"),
])
def test_did_you_mean_and_obvious_values_come_with_a_quick_fix(text, title, fixed):
    [d] = [d for d in analysed(text).diagnostics if d.fix is not None]
    assert d.fix.title == title
    after = apply_fix(text, d.fix)
    assert fixed in [line.strip() for line in after.split("\n")]
    assert analysed(after).valid, [x.message for x in analysed(after).diagnostics]


def test_mistyped_value_words_say_what_was_meant():
    ms = messages("train optimizer=adan\nmodel m:\n    conv2d 16 padding=sme\n" + HEAD)
    assert "optimizer must be 'adam' or 'adamw' or 'sgd'; found 'adan'; did you mean 'adam'?" in ms
    assert "padding must be an integer in [0, 7] or 'same' or 'valid'; found 'sme'; did you mean 'same'?" in ms


def test_no_fix_when_nothing_is_close_and_never_the_model_itself_as_parent():
    text = "model m:\n    zzzz 16\n" + HEAD + "model mm from m2:\n" + HEAD
    found = {d.code: d for d in analysed(text).diagnostics}
    assert found["unknown-layer"].fix is None and "did you mean" not in found["unknown-layer"].message
    # 'mm' is closer to 'm2' than 'm' is, but a model cannot derive from itself
    assert found["parent"].fix is not None and found["parent"].fix.title == "Replace with 'm'"
