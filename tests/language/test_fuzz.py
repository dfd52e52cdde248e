"""Fuzzing the front end: any text gives diagnostics, never an exception.

Valid files are mutated (characters deleted, inserted, swapped; lines cut, doubled, shuffled; tokens of
the language, block lines and indentation dropped in at random), random bytes are decoded with errors="replace",
and hostile headers are generated: data paths too long to probe, naming devices, a loop of links or data bombs
beside the file, lists and huge numbers where one number is expected. Ten thousand inputs go through parse and
analysis, with relative paths resolved in a folder holding those files; the diagnostics must point inside the
text, and text without syntax errors must format to a fixed point. One model in four that comes out, however
broken, is hashed and drawn: as SVG at every chip size (valid XML), with and without plates, and as text.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from remapdsl.language.analysis import ModelInfo, analyze
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.hashing import HASH_LENGTH, architecture_hash
from remapdsl.language.header import TRAIN_OPTIONS
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document, format_text
from remapdsl.snac.svg import SIZE_NAMES, render_svg
from remapdsl.snac.text import render_text
from tests.bombs import npz_bomb
from tests.paths import EXAMPLES

EXAMPLES = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.remap"))]
SEEDS = [
    *EXAMPLES,
    "data digits val=0.1 seed=2\ntrain epochs=1 lr=1e-3 optimizer=sgd momentum=0.9\nbudget params < 50k\n"
    "budget latency <= 250us\nbudget size <= 1.5MiB\n\nmodel m from n:  # c\n    conv2d 8 kernel=5 stride=2 "
    "padding=valid  @allow(remove, replace)\n    batchnorm\n    tanh\n    avgpool 3 stride=1  @deny(prepend)\n"
    "    flatten\n    dropout 0.125\n    dense 64\n    sigmoid\n    dense 10  @keep\n",
    'data npz "~/nowhere/d.npz" channels=1 size=8 classes=3\nmodel m:\n    dense 3\n',
    # unknown kinds with values, strings that XML cannot hold, a repeated stretch for plates
    'model odd:\n    conv3d 16 depth=3 note="\x01<&>\'"\n    conv2d 8 padding="\x00" kernel=1e308\n    relu 2\n'
    "    conv2d 8\n    relu\n    conv2d 8\n    relu\n    flatten\n    dense 10\n",
    # residual blocks: nested, projecting, annotated, one as the last line
    "model res:\n    conv2d 8\n    relu\n    residual:  @keep\n        conv2d 8\n        batchnorm\n"
    "        residual shortcut=conv:\n            conv2d 16 stride=2  @deny(remove)\n            relu\n"
    "        conv2d 16\n    flatten\n    residual shortcut=dense:\n        dense 32\n        relu\n    dense 10\n"
    "    residual:\n",
    # a space: choices, a shorthand, skip, a model that names it as its parent
    "data digits\nbudget params <= 20k\n\nspace s:  # c\n    choice:\n        conv2d 16 kernel=3\n        # w\n"
    "        conv2d 32 kernel=5\n    relu\n    choice:\n        maxpool 2\n        skip\n"
    "    conv2d 8|16 kernel=3|5 padding=same\n    flatten\n    dense 10\n\nmodel m from space s:\n    dense 10\n",
]
TOKENS = ["model", "data", "train", "budget", "from", ":", "=", ",", "@keep", "@allow(", ")", "(", "#", '"', "\\",
          "<=", "<", "100k", "1e999", "-1", ".5", "0.5ms", "16.0", "conv2d", "dense", "flatten", "kernel=", "\t",
          "conv3d 16", "relu 2", "padding=", '"\x00"', '"<&>"', "9" * 400,
          "residual:", "residual shortcut=conv:", "space s:", "choice:", "skip", "|", "8|16", "from space",
          "shortcut=", "        ", "  ", "\n    residual:\n",
          "\r", "\n", "\r\n", "    ", "\x00", "é", "\ufeff", "\u2028", "𝕏", "1" * 40, "params", "size", "latency"]
PRINTABLE = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r", "é", "\x00", "\ufffd"]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(9)
        i = rng.randint(0, len(text))
        if op == 0 and text:
            text = text[:i] + text[i + rng.randint(1, 8):]
        elif op == 1:
            text = text[:i] + rng.choice(PRINTABLE) + text[i:]
        elif op == 2 and len(text) > 1:
            j = rng.randrange(len(text))
            i = min(i, len(text) - 1)
            chars = list(text)
            chars[i], chars[j] = chars[j], chars[i]
            text = "".join(chars)
        elif op == 3:
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif op == 4:
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            lines[k] = lines[k][: rng.randint(0, len(lines[k]))]
            text = "\n".join(lines)
        elif op == 5:
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[rng.randrange(len(lines))])
            text = "\n".join(lines)
        elif op == 6:
            lines = text.split("\n")
            rng.shuffle(lines)
            text = "\n".join(lines)
        elif op == 7:
            text = text[:i]
        else:
            text = text.replace(rng.choice(TOKENS[:20]), rng.choice(TOKENS), 1)
    return text


HOSTILE_PATHS = ["a" * 300, "a" * 300 + "/d.npz", "sub/" + "b" * 256, "/dev/zero", "/dev/stdin", "/proc/self/fd/0",
                 "loop/x", "loop", "bomb.npz", "liar.npz", "ok.npz", "sub", "~nobody-here/x", "x\x00y", ".", "/",
                 "sub/../bomb.npz", "/dev/null"]
HOSTILE_VALUES = ["1e12", "4,5", "1,2,3", "-1", "0", "1e300", "1e999", "0.5", "cat,dog", '"4,5"', "9" * 400, "same",
                  "1_000", "+3", ".5e-3"]
HEADS = ["", "flatten\n    ", "conv2d 4 kernel=3,3\n    flatten\n    ", "maxpool 1e12\n    flatten\n    "]


def hostile(rng: random.Random) -> str:
    """A header a careless user or an attacker might write, and one model."""
    kind = rng.choice([*DATASET_KINDS, "digits", "npz", "folder"])
    options = [p.name for p in DATASET_KINDS[kind].options] if kind in DATASET_KINDS else ["classes"]
    line = f'data {kind} "{rng.choice(HOSTILE_PATHS)}"' if rng.random() < 0.9 else f"data {kind}"
    for _ in range(rng.randint(0, 3)):
        line += f" {rng.choice(options)}={rng.choice(HOSTILE_VALUES)}"
    train = " ".join(f"{rng.choice(list(TRAIN_OPTIONS))}={rng.choice(HOSTILE_VALUES)}"
                     for _ in range(rng.randint(0, 3)))
    text = f"{line}\n" + (f"train {train}\n" if train else "") + (
        f"budget params <= {rng.choice(HOSTILE_VALUES)}\n" if rng.random() < 0.3 else "")
    text += f"model m:\n    {rng.choice(HEADS)}dense {rng.choice(['3', '10', *HOSTILE_VALUES])}\n"
    return mutate(text, rng) if rng.random() < 0.4 else text


def inputs(count: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for n in range(count):
        kind = n % 10
        if kind < 6:
            yield mutate(rng.choice(SEEDS), rng)
        elif kind < 8:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))).decode("utf-8", errors="replace")
        elif kind < 9:
            yield "".join(rng.choice(TOKENS + [" "] * 10) for _ in range(rng.randint(0, 60)))
        else:
            yield hostile(rng)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the fuzzed files lie in: data bombs, a loop of links, a folder of odd names."""
    root = tmp_path_factory.mktemp("fuzz")
    npz_bomb(root / "bomb.npz", (2 << 30) // 64)
    npz_bomb(root / "liar.npz", 10, declared_x=1 << 31)
    npz_bomb(root / "ok.npz", 12)
    (root / "sub").mkdir()
    (root / "loop").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop")
    return root


def check(text: str, turn: int = 0, base_dir: Path | None = None) -> None:
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics, base_dir)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for d in analysis.diagnostics:
        assert d.message
        assert d.range.start <= d.range.end
        assert 0 <= d.range.start.line < len(lines), (d, text)
    if turn % 4 == 0:
        for info in (*analysis.models.values(), *analysis.duplicates):
            draw(info, turn // 4)
    if not result.diagnostics:
        formatted = format_document(result.document)
        assert format_text(formatted) == formatted, text
        assert parse(formatted).document == result.document, text


def draw(info: ModelInfo, turn: int) -> None:
    """Hash and draw one model: the SVG parses as XML, the text chip has one symbol per layer.

    Each input drawn is drawn at one chip size, with or without plates, taking turns (`turn`), so that every
    size sees hundreds of inputs and the test stays fast.
    """
    assert len(architecture_hash(info.model)) == HASH_LENGTH
    size = SIZE_NAMES[turn % len(SIZE_NAMES)]
    ET.fromstring(render_svg(info, size, plates=turn // len(SIZE_NAMES) % 2 == 1, legend=turn % 16 == 0))
    symbols = render_text(info, header=False).splitlines()[-1] if info.layers else ""
    assert len(symbols.split()) == len(info.layers)


@pytest.mark.parametrize("seed", range(10))
def test_mutated_random_and_hostile_text_gives_diagnostics_never_exceptions(seed, data_dir):
    for turn, text in enumerate(inputs(1000, seed)):
        try:
            check(text, turn, data_dir)
        except AssertionError:
            raise
        except Exception as e:  # report the input that broke the front end
            raise AssertionError(f"{type(e).__name__}: {e} on input {text!r}") from e
