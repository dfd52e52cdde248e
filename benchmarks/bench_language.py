"""How fast the language front end is on a big file: parse + analysis of 1,000 models (~10,000 lines).

    python benchmarks/bench_language.py [--models 1000] [--runs 7] [--residual]

Prints the median of several runs for: a cold parse (line caches cleared), a warm parse (the file seen
before), analysis alone, and re-validating one edited model, alone (analysis.analyze_model) and as a whole
parse + analysis after a one-line edit. Targets: whole file under 200 ms, one edited model under 20 ms.
`--residual` gives every model a residual block (half of them a projection shortcut) after its first
convolution. `--baseline REV` also runs the language package of git revision REV in the same process (a copy
under another name), turn about with this one, and prints each step's ratio to it: on a machine others share,
only figures taken side by side compare. `--against-sequential` does the same for the residual population
against the sequential one.
"""

from __future__ import annotations

import argparse
import importlib
import io
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from remapdsl.language.analysis import analyze, analyze_model
from remapdsl.language.datasets import describe
from remapdsl.language.parser import clear_caches, parse

HEADER = """\
# A large population, as the sampler writes it: 1,000 models on the 8x8 digits.
data digits
train epochs=10 batch=128 lr=0.001 optimizer=adam seed=0
budget params <= 2M
"""


def sampled_model(index: int, rng: random.Random, residual: bool = False) -> list[str]:
    """One conv/pool stack and a dense head, in the style of the sampler's output."""
    lines = [f"# sampled, generation {index // 100}", f"model m{index:04d}:" if index % 7 or not index else
             f"model m{index:04d} from m{index - 1:04d}:  # filters at 0 from 16 to 32"]
    size = 8
    for block in range(rng.randint(1, 2)):
        filters = rng.choice((16, 32, 64, 128))
        kernel = rng.choice((1, 3, 5))
        annotation = rng.choice(("", "", "", "  @keep", "  @allow(reparameterize, remove)"))
        lines.append(f"    conv2d {filters} kernel={kernel} padding=same{annotation}")
        lines.append(f"    {rng.choice(('relu', 'relu', 'tanh', 'sigmoid'))}")
        if residual and block == 0:
            wider = index % 2 == 1 and filters < 128  # a projection to twice the filters, within the budget
            lines.append("    residual shortcut=conv:" if wider else "    residual:")
            lines.append(f"        conv2d {filters * 2 if wider else filters} kernel=3")
            lines.append("        batchnorm")
            lines.append("        relu")
        if size >= 4 and rng.random() < 0.8:
            lines.append(f"    {rng.choice(('maxpool', 'avgpool'))} 2")
            size //= 2
        if rng.random() < 0.3:
            lines.append(f"    dropout {rng.choice((0.125, 0.25, 0.5))}  # block {block}")
    lines.append("    flatten")
    if rng.random() < 0.6:
        lines.append(f"    dense {rng.choice((16, 64, 128))}")
        lines.append("    relu")
    lines.append("    dense 10")
    return lines


def population(models: int, seed: int = 0, residual: bool = False) -> str:
    rng = random.Random(seed)
    blocks = ["\n".join(sampled_model(i, rng, residual)) for i in range(models)]
    return HEADER + "\n" + "\n\n".join(blocks) + "\n"


def median_ms(fn: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None,
              clock: Callable[[], float] = time.perf_counter) -> float:
    times = []
    for _ in range(runs):
        before()
        start = clock()
        fn()
        times.append((clock() - start) * 1000)
    return statistics.median(times)


def parse_and_analyze(text: str) -> None:
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.valid, analysis.diagnostics[:3]


def baseline_language(rev: str, into: Path) -> tuple[ModuleType, ModuleType, ModuleType]:
    """The parser, analysis and datasets modules of revision `rev`, imported as package `remapdsl_baseline`."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", rev, "remapdsl/language", "remapdsl/__init__.py", "grammar"],
                             cwd=root, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "remapdsl_baseline"
    (into / "remapdsl").rename(package)
    (package / "grammar").symlink_to(into / "grammar")
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        source.write_text(re.sub(r"\bremapdsl\.", "remapdsl_baseline.", text), encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")  # the package face imports more than the language
    sys.path.insert(0, str(into))
    return tuple(importlib.import_module(f"remapdsl_baseline.language.{name}")  # type: ignore[return-value]
                 for name in ("parser", "analysis", "datasets"))


def compare(text: str, rev: str, rounds: int) -> None:
    """Parse + analyze, cold and warm, by this package and by revision `rev`'s, turn about; medians and ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        old_parser, old_analysis, _ = baseline_language(rev, Path(tmp))

        def old_run() -> None:
            result = old_parser.parse(text)
            assert old_analysis.analyze(result.document, result.diagnostics).valid

        turns = (("this", lambda: parse_and_analyze(text), clear_caches),
                 ("baseline", old_run, old_parser.clear_caches))
        report(f"parse + analyze against {rev}", turns, rounds)


def report(title: str, turns: tuple[tuple[str, Callable[[], None], Callable[[], None]], ...], rounds: int) -> None:
    """Each turn's run, cold (after its clear) and warm, taken in turn `rounds` times; CPU-time medians and the
    first turn's ratio to the second."""
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for who, run, clear in turns:
            # CPU time of this process: wall time on a shared machine swings by more than the difference
            runs.setdefault((who, "cold"), []).append(median_ms(run, 1, clear, time.process_time))
            runs.setdefault((who, "warm"), []).append(median_ms(run, 1, clock=time.process_time))
    (first, *_), (second, *_) = turns
    print(f"{title}, turn about, CPU time, median of {rounds} rounds")
    for cache in ("cold", "warm"):
        a, b = statistics.median(runs[(first, cache)]), statistics.median(runs[(second, cache)])
        print(f"{cache + ' line cache':20} {first} {a:8.2f} ms   {second} {b:8.2f} ms   ratio {a / b:5.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--residual", action="store_true", help="a population of models with residual blocks")
    ap.add_argument("--baseline", metavar="REV", help="compare parse + analyze with git revision REV")
    ap.add_argument("--against-sequential", action="store_true",
                    help="compare parse + analyze of the residual population with the sequential one")
    args = ap.parse_args()

    text = population(args.models, residual=args.residual)
    if args.baseline:
        compare(text, args.baseline, args.runs)
        return
    if args.against_sequential:
        residual, sequential = population(args.models, residual=True), population(args.models)
        report("parse + analyze, residual population against sequential",
               (("residual", lambda: parse_and_analyze(residual), clear_caches),
                ("sequential", lambda: parse_and_analyze(sequential), clear_caches)), args.runs)
        return
    lines = text.split("\n")
    document = parse(text).document
    dataset = describe(document.data)
    budget = document.budget("params")

    # one edit in the middle of the file: the first convolution of the middle model gets wider
    middle = document.models[len(document.models) // 2]
    edit_line = middle.layers[0].range.start.line
    edited_lines = list(lines)
    edited_lines[edit_line] = "    conv2d 48 kernel=3 padding=same"
    edited_text = "\n".join(edited_lines)
    edited_model = parse(edited_text).document.models[len(document.models) // 2]
    assert edited_model.layers[0].arg("filters").value == 48  # type: ignore[union-attr]

    rows = [
        ("parse, cold line cache", median_ms(lambda: parse(text), args.runs, clear_caches)),
        ("parse, warm", median_ms(lambda: parse(text), args.runs)),
        ("analyze", median_ms(lambda: analyze(document), args.runs)),
        ("parse + analyze, cold line cache", median_ms(lambda: parse_and_analyze(text), args.runs, clear_caches)),
        ("parse + analyze, warm", median_ms(lambda: parse_and_analyze(text), args.runs)),
        ("one edited model: analyze_model", median_ms(lambda: analyze_model(edited_model, dataset, budget),
                                                       max(args.runs, 50))),
    ]

    def edit_then_check() -> None:
        parse_and_analyze(edited_text)

    def restore() -> None:
        parse(text)  # the file as it was before the edit is what the caches hold

    rows.append(("one-line edit: parse + analyze", median_ms(edit_then_check, args.runs, restore)))

    print(f"{args.models} models, {len(lines):,} lines, {len(text):,} characters; median of {args.runs} runs")
    print(f"{'step':40} {'ms':>8}")
    for name, ms in rows:
        print(f"{name:40} {ms:8.2f}")


if __name__ == "__main__":
    main()
