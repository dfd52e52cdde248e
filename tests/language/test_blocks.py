"""Residual blocks in the language: parsing, printing, analysis, hashing and broken block structures."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings

from remapdsl.language.analysis import analyze, analyze_model
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import ModelSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document, format_model, format_text
from tests.paths import EXAMPLES
from tests.samples import DIGITS, model
from tests.strategies import residual_models

RES_SMALL = """\
model res_small:
    conv2d 16 kernel=3
    relu
    residual:
        conv2d 16 kernel=3
        batchnorm
        relu
        conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""

PROJECTED = """\
model down:
    conv2d 16
    relu
    residual shortcut=conv:
        conv2d 32 stride=2
        relu
    flatten
    dense 10
"""


def spans(m: ModelSpec) -> list[tuple[int, int]]:
    return [(b.start, b.stop) for b in m.blocks]


def test_a_block_holds_the_layers_indented_below_it():
    m = model(RES_SMALL)
    assert [layer.kind for layer in m.layers] == ["conv2d", "relu", "conv2d", "batchnorm", "relu", "conv2d",
                                                   "relu", "maxpool", "flatten", "dense"]
    assert spans(m) == [(2, 6)]
    (block,) = m.blocks
    assert block.kind == "residual" and block.range.start.line == 3 and block.kind_range.end.character == 12


def test_blocks_nest_outer_first_and_close_at_the_dedent():
    m = model("model n:\n    residual:\n        relu\n        residual:\n            tanh\n            sigmoid\n"
              "        relu\n    residual:\n        relu\n    dense 10\n")
    assert spans(m) == [(0, 4), (1, 3), (4, 5)]


def test_block_lines_take_options_annotations_and_comments():
    m = model("model a:\n    # before\n    residual shortcut=conv:  @deny(unwrap)  # after\n        conv2d 8\n"
              "    dense 10\n")
    (b,) = m.blocks
    assert b.written() == {"shortcut": "conv"}
    assert [(a.name, a.args) for a in b.annotations] == [("deny", ("unwrap",))]
    assert (b.comments.leading, b.comments.trailing) == (("before",), "after")


def test_annotations_on_layers_inside_a_block_stay_with_the_layers():
    m = model("model a:\n    residual:\n        conv2d 8  @keep\n        relu  @allow(remove)\n    dense 10\n")
    assert [a.name for a in m.layers[0].annotations] == ["keep"]
    assert [a.args for a in m.layers[1].annotations] == [("remove",)]


def test_canonical_text_round_trips_with_comments_and_nesting():
    text = ("model a:  # top\n    conv2d 8\n    # a block\n    residual:  @keep  # trailing\n        conv2d 8\n"
            "        # inside\n        residual shortcut=conv:\n            conv2d 16 stride=2\n    # after\n"
            "    flatten\n    dense 10\n    # the end\n")
    assert format_text(text) == text
    doc = parse(text).document
    assert parse(format_document(doc)).document == doc


def test_the_formatter_indents_blocks_four_spaces_a_level():
    messy = "model a:\n  residual:\n\t\trelu\n\t\tresidual:\n\t\t      tanh\n  dense 10\n"
    assert format_text(messy) == ("model a:\n    residual:\n        relu\n        residual:\n            tanh\n"
                                  "    dense 10\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_models())
def test_sampled_residual_models_parse_print_canonically_and_hash_stably(m):
    text = format_model(m)
    result = parse(text)
    assert result.diagnostics == ()
    (back,) = result.document.models
    assert back == m
    assert format_model(back) == text
    assert architecture_hash(back) == architecture_hash(m)
    info = analyze_model(back, DIGITS)
    assert info.valid, info.diagnostics
    assert info.param_count == sum(li.param_count for li in info.layers) + sum(b.param_count for b in info.blocks)


# --- analysis ----------------------------------------------------------------------------------------


def test_shapes_params_and_flops_count_the_addition():
    info = analyze_model(model(RES_SMALL), DIGITS)
    assert info.valid, info.diagnostics
    (b,) = info.blocks
    assert (b.input_shape, b.output_shape, b.shortcut.kind, b.param_count) == ((16, 8, 8), (16, 8, 8), "identity", 0)
    assert b.flops == 16 * 8 * 8  # one addition per output element
    sequential = analyze_model(model(RES_SMALL.replace("    residual:\n", "").replace("        ", "    ")), DIGITS)
    assert info.param_count == sequential.param_count
    assert info.flops == sequential.flops + 16 * 8 * 8


def test_a_projection_shortcut_is_a_1x1_convolution_with_the_stride_that_matches():
    info = analyze_model(model(PROJECTED), DIGITS)
    assert info.valid, info.diagnostics
    (b,) = info.blocks
    assert (b.input_shape, b.output_shape) == ((16, 8, 8), (32, 4, 4))
    assert (b.shortcut.kind, b.shortcut.stride) == ("conv", 2)
    assert b.param_count == 32 * (16 + 1)
    assert b.flops == 2 * 16 * 32 * 4 * 4 + 32 * 4 * 4
    assert info.body_param_count(b) == sum(li.param_count for li in info.layers[2:4])


def test_a_dense_projection_joins_flat_tensors():
    info = analyze_model(model("model d:\n    flatten\n    residual shortcut=dense:\n        dense 32\n        relu\n"
                               "    dense 10\n"), DIGITS)
    assert info.valid, info.diagnostics
    assert info.blocks[0].param_count == 32 * (64 + 1)


def test_shapes_that_differ_without_a_shortcut_are_reported_with_both_shapes_and_a_fix():
    text = PROJECTED.replace(" shortcut=conv", "")
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    (d,) = analysis.diagnostics
    assert d.range.start.line == 3 and d.code == "residual-shape"
    assert "16x8x8 in, 32x4x4 out" in d.message and "shortcut=conv" in d.message
    (edit,) = d.fix.edits
    lines = text.split("\n")
    line = lines[3]
    at = edit.range.start.character
    lines[3] = line[:at] + edit.new_text + line[at:]
    fixed = parse("\n".join(lines))
    assert analyze(fixed.document, fixed.diagnostics).valid


def test_a_shortcut_that_cannot_join_the_shapes_is_reported():
    cases = {
        "model a:\n    conv2d 8\n    residual:\n        flatten\n        dense 10\n": "flattens",
        "model a:\n    conv2d 8\n    residual shortcut=dense:\n        conv2d 16\n    flatten\n    dense 10\n":
            "shortcut=dense needs flat tensors",
        "model a:\n    flatten\n    residual shortcut=conv:\n        dense 16\n    dense 10\n":
            "shortcut=conv needs images",
        "model a:\n    conv2d 8\n    residual shortcut=conv:\n        conv2d 8 padding=valid\n    flatten\n"
        "    dense 10\n": "no 1x1 convolution turns",  # 8x8 to 6x6: no stride does that
    }
    for text, message in cases.items():
        result = parse(text)
        analysis = analyze(result.document, result.diagnostics)
        assert any(message in d.message for d in analysis.diagnostics), (text, analysis.diagnostics)


def test_block_options_are_checked_with_suggestions():
    result = parse("model a:\n    residual shortcut=cnv:\n        relu\n    residual shortcu=conv:\n        relu\n"
                   "    residual 3:  @kep\n        relu\n    dense 10\n")
    ds = analyze(result.document, result.diagnostics).diagnostics
    messages = [d.message for d in ds]
    assert any("did you mean 'conv'" in m for m in messages)
    assert any("no option 'shortcu'; did you mean 'shortcut'" in m for m in messages)
    assert any("takes no unnamed value" in m for m in messages)
    assert any("unknown annotation '@kep'" in m for m in messages)


def test_budgets_count_the_shortcut():
    text = "budget params <= 1k\n" + PROJECTED
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    (d,) = [d for d in analysis.diagnostics if d.code == "budget"]
    assert f"{analysis.models['down'].param_count:,}" in d.message


# --- hashing -----------------------------------------------------------------------------------------

# The hashes of the examples' sequential models as the store keys them: they must never change.
STORED_HASHES = {
    "cifar10.remap": {"compact": "84228e49f7f1ed89", "strided": "2583d8174d335b37"},
    "digits.remap": {"small": "b78ff1dd65555308", "small_wide": "8dcdf4e7339bac2d", "deeper": "3e6ada28b3315e38",
                     "mlp": "110611a11bd2e68e"},
    "quickdraw.remap": {"baseline": "7401c29fee9e8134", "shallow": "19a55de3365ea094", "tiny": "0c0511959b9de087"},
}


def test_sequential_models_keep_their_stored_hashes():
    for name, hashes in STORED_HASHES.items():
        doc = parse((EXAMPLES / name).read_text(encoding="utf-8")).document
        for model_name, expected in hashes.items():
            m = doc.model(model_name)
            assert m is not None and not m.blocks
            assert architecture_hash(m) == expected, (name, model_name)


def test_a_residual_models_hash_covers_the_block_structure():
    base = model(RES_SMALL)
    flat = model(RES_SMALL.replace("    residual:\n", "").replace("        ", "    "))
    renamed = model(RES_SMALL.replace("res_small", "other").replace("residual:", "residual:  @keep  # note"))
    moved = model(RES_SMALL.replace("    residual:\n        conv2d 16 kernel=3\n",
                                    "    conv2d 16 kernel=3\n    residual:\n"))
    explicit = model(RES_SMALL.replace("residual:", "residual shortcut=identity:"))
    projected = model(RES_SMALL.replace("residual:", "residual shortcut=conv:"))
    h = architecture_hash(base)
    assert architecture_hash(renamed) == architecture_hash(explicit) == h
    assert len({h, architecture_hash(flat), architecture_hash(moved), architecture_hash(projected)}) == 4


# --- broken block structures -------------------------------------------------------------------------


def diagnostics(text: str) -> list[tuple[int, str, str]]:
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    return [(d.range.start.line, d.code, d.message) for d in analysis.diagnostics]


def test_indentation_errors_are_reported_in_words_at_their_line():
    ds = diagnostics("model a:\n    residual:\n        relu\n          tanh\n      sigmoid\n    flatten\n"
                     "    dense 10\n")
    assert [(line, code) for line, code, _ in ds] == [(3, "indentation"), (4, "indentation")]
    assert "unexpected indentation: the block at line 2 holds its layers at 8 spaces, this line is at 10" in ds[0][2]
    assert "indentation (6 spaces) matches no block" in ds[1][2]


def test_an_empty_block_and_a_block_as_the_last_line_are_reported():
    ds = diagnostics("model a:\n    residual:\n    flatten\n    dense 10\n    residual:\n")
    assert [(line, code) for line, code, _ in ds] == [(1, "empty-block"), (4, "empty-block")]
    assert "empty" in ds[0][2]


def test_a_mistyped_or_misplaced_block_line_is_reported():
    ds = diagnostics("residual:\nmodel a:\n    residul:\n        relu\n    dense 10\n")
    assert ds[0][:2] == (0, "syntax") and "inside a model" in ds[0][2]
    assert ds[1][0] == 2 and "did you mean 'residual'" in ds[1][2]


def test_a_broken_block_never_hides_the_diagnostics_of_other_models():
    text = ("model a:\n    residual shortcut=:\n        relu\n          tanh\n    residual:\nmodel b:\n    conv2d 8\n"
            "    dense 3x3\nmodel c:\n    residual:\n        conv2d 32\n    flatten\n    dense 10\n")
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    lines = {d.range.start.line for d in analysis.diagnostics}
    assert {1, 3, 4, 7, 9} <= lines
    assert set(analysis.models) == {"a", "b", "c"}


def test_deep_nesting_is_read_without_recursion_limits():
    depth = 300
    lines = ["model deep:"] + ["    " * (i + 1) + "residual:" for i in range(depth)]
    lines += ["    " * (depth + 1) + "relu", "    dense 10"]
    m = model("\n".join(lines) + "\n")
    assert len(m.blocks) == depth and all(b.stop == 1 for b in m.blocks)
    assert format_text("\n".join(lines) + "\n") is not None
    analyze_model(m, DIGITS)


def test_fuzzed_block_structures_give_diagnostics_never_exceptions():
    rng = random.Random(7)
    pieces = ["residual:", "residual shortcut=conv:", "conv2d 8", "relu", "dense 10", "flatten", "", "# c",
              "residual @keep:", "residual:  @deny(unwrap)", "model x:", "residual", ":"]
    for _ in range(400):
        lines = ["model a:"]
        for _ in range(rng.randint(0, 12)):
            lines.append(" " * rng.choice((0, 1, 2, 4, 6, 8, 12, 16)) + "\t" * rng.randint(0, 1) * (rng.random() < 0.1)
                         + rng.choice(pieces))
        text = "\n".join(lines) + rng.choice(("", "\n"))
        result = parse(text)
        analysis = analyze(result.document, result.diagnostics)
        n = len(text.split("\n"))
        for d in analysis.diagnostics:
            assert d.message and 0 <= d.range.start.line < n
        for m in result.document.models:
            architecture_hash(m)
            for b in m.blocks:
                assert 0 <= b.start < b.stop <= len(m.layers)
        if not result.diagnostics:
            formatted = format_document(result.document)
            assert parse(formatted).document == result.document


def test_reanalysis_after_an_edit_elsewhere_keeps_the_blocks_analysis():
    from remapdsl.language.reanalysis import reanalyze

    text = "data digits\n\n" + PROJECTED + "\n" + RES_SMALL
    before = parse(text)
    previous = analyze(before.document, before.diagnostics)
    edited = text.replace("data digits\n", "data digits\n# a new line\n")
    result = parse(edited)
    again = reanalyze(previous, text, edited, result)
    fresh = analyze(result.document, result.diagnostics)
    for name in ("down", "res_small"):
        assert again.models[name].blocks == fresh.models[name].blocks
        assert again.models[name].blocks[0].block.range.start.line == \
            previous.models[name].blocks[0].block.range.start.line + 1
        assert again.models[name].param_count == fresh.models[name].param_count


def test_a_block_line_without_its_colon_or_with_a_layer_after_it_says_what_to_write():
    text = "model m:\n    conv2d 8\n    residual shortcut=conv\n        conv2d 16\n    flatten\n    dense 10\n"
    ds = diagnostics(text)
    (d,) = [d for d in ds if d[0] == 2]
    assert d[1] == "block-colon" and "end the line with ':'" in d[2]
    result = parse(text)
    fix = next(x.fix for x in analyze(result.document, result.diagnostics).diagnostics if x.code == "block-colon")
    (edit,) = fix.edits
    lines = text.split("\n")
    at = edit.range.start.character
    lines[2] = lines[2][:at] + edit.new_text + lines[2][at:]
    fixed = parse("\n".join(lines))
    assert analyze(fixed.document, fixed.diagnostics).valid
    ds = diagnostics("model m:\n    residual: relu\n        relu\n    flatten\n    dense 10\n")
    assert ds[0][:2] == (1, "syntax") and "on its own line, indented below it" in ds[0][2]
