"""Language server latency on a 1,000-model file, through a real client over stdio.

    python benchmarks/bench_lsp.py [--models 1000] [--runs 60]

The file is a population drawn by `remapdsl.search.sampler` (as `remap sample 1000` writes it, about 10,000 lines),
with a store in which a fifth of the models have a finished training run, so that hovers read accuracy,
curves and classes as they do in use. Measured from the client, so JSON-RPC and the pipe are included:
hover on model names (SNAC chip image; trained and untrained models) and on layers, the full diagnostics
after an edit (from didChange to publishDiagnostics of the new version, debounce set to 0 for the
measurement; editors add their own quiet time), both for a change inside a line (typing) and for a line
added (Enter, which moves every model below it), and the code action list at a model and at a layer.
Targets on 2 cores: hover p95 under 50 ms, diagnostics after an edit under 200 ms, code action list under
100 ms. The same requests on a 10-model file show what the file size costs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from remapdsl.cli.sample import TRAIN_HEADER
from remapdsl.language.analysis import analyze
from remapdsl.language.datasets import describe
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Arg, DataSpec, Document, TrainSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document, format_model
from remapdsl.search.sampler import sample_models
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import data_line

TRAINED_SHARE = 0.2


def population(models: int, seed: int = 0) -> str:
    """`models` models drawn by the sampler for the bundled digits, with the training header."""
    data = DataSpec("digits")
    drawn = sample_models(models, describe(data), seed)
    return format_document(Document(models=tuple(drawn), data=data, train=TrainSpec(tuple(
        Arg(k, v) for k, v in TRAIN_HEADER))))


def record_runs(store_file: Path, text: str, share: float, seed: int = 0) -> None:
    """A finished ten-epoch run, as a worker records one, for `share` of the models."""
    rng = random.Random(seed)
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    data_text = data_line(result.document)
    with Store(store_file) as store:
        for name, info in analysis.models.items():
            if rng.random() >= share:
                continue
            model_hash = architecture_hash(info.model)
            store.add_model(model_hash, format_model(info.model), params=info.param_count, flops=info.flops)
            run = store.add_run(model_hash, name, data_key="digits", data_text=data_text, settings_key="bench",
                                settings={}, params=info.param_count, flops=info.flops)
            store.start_run(run, n_train=1437, params=info.param_count, flops=info.flops)
            accuracy = rng.uniform(0.3, 0.6)
            for epoch in range(1, 11):
                accuracy += (0.98 - accuracy) * rng.uniform(0.1, 0.4)
                store.record_epoch(run, EpochRow(run, epoch, 1 - accuracy, accuracy, 1 - accuracy, accuracy, 0.5))
            per_class = np.clip(accuracy + np.array([rng.uniform(-0.1, 0.05) for _ in range(10)]), 0, 1)
            store.finish_run(run, "done", used_device="cpu", confusion=np.eye(10, dtype=np.int64) * 36,
                             per_class=per_class)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95 + 0.5) - 1)]


class Session:
    def __init__(self, client: LanguageClient, uri: str, text: str) -> None:
        self.client, self.uri, self.text, self.version = client, uri, text, 1
        self.published = asyncio.Event()
        self.published_version: int | None = None

    async def timed(self, request) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        await request
        return (time.perf_counter() - start) * 1000

    async def hover(self, line: int, character: int) -> float:
        return await self.timed(self.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(self.uri), types.Position(line, character))))

    async def actions(self, line: int) -> float:
        return await self.timed(self.client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(self.uri), types.Range(types.Position(line, 4), types.Position(line, 4)),
            types.CodeActionContext(diagnostics=[]))))

    async def edit(self, start: types.Position, end: types.Position, new_text: str) -> float:
        """Replace a range as an editor sends it; the time until the diagnostics of the new version arrive."""
        lines = self.text.split("\n")
        before = "\n".join([*lines[:start.line], lines[start.line][:start.character]])
        after = "\n".join([lines[end.line][end.character:], *lines[end.line + 1:]])
        self.text = before + new_text + after
        self.version += 1
        self.published.clear()
        began = time.perf_counter()
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=self.version, uri=self.uri),
            [types.TextDocumentContentChangePartial(types.Range(start, end), new_text)]))
        while self.published_version != self.version:
            await asyncio.wait_for(self.published.wait(), 30)
            self.published.clear()
        return (time.perf_counter() - began) * 1000


async def measure(models: int, runs: int, capabilities: types.ClientCapabilities) -> dict[str, list[float]]:
    text = population(models)
    folder = Path(tempfile.mkdtemp())
    store = folder / ".remap" / "remap.db"
    record_runs(store, text, TRAINED_SHARE)
    path = folder / "space.remap"
    path.write_text(text)
    client = LanguageClient("bench", "1")
    session = Session(client, path.as_uri(), text)

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: types.PublishDiagnosticsParams) -> None:
        session.published_version = params.version
        session.published.set()

    await client.start_io(sys.executable, "-m", "remapdsl", "lsp")
    await client.initialize_async(types.InitializeParams(
        capabilities=capabilities, root_uri=folder.as_uri(),
        initialization_options={"autoTrain": False, "debounceMs": 0}))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(session.uri, "remap", 1, text)))
    while session.published_version != 1:
        await asyncio.wait_for(session.published.wait(), 60)
        session.published.clear()

    def lines_where(test) -> list[int]:  # type: ignore[no-untyped-def]
        return [i for i, line in enumerate(session.text.split("\n")) if test(line)]

    rng = random.Random(0)
    out: dict[str, list[float]] = {name: [] for name in (
        "hover model", "hover layer", "diagnostics, edit in a line", "diagnostics, line added",
        "code actions (model)", "code actions (layer)")}
    for _ in range(3):  # warm-up: imports and first drawings
        await session.hover(lines_where(lambda s: s.startswith("model "))[0], 7)
        await session.actions(lines_where(lambda s: s.startswith("model "))[0])
    for run in range(runs):
        model_lines = lines_where(lambda s: s.startswith("model "))
        layer_lines = lines_where(lambda s: s.startswith("    ") and s.strip())
        out["hover model"].append(await session.hover(rng.choice(model_lines), 7))
        out["hover layer"].append(await session.hover(rng.choice(layer_lines), 6))
        out["code actions (model)"].append(await session.actions(rng.choice(model_lines)))
        out["code actions (layer)"].append(await session.actions(rng.choice(layer_lines)))
        if run < max(10, runs // 3):
            line = rng.choice(layer_lines)  # a parameter typed at the end of a layer line
            end = len(session.text.split("\n")[line])
            out["diagnostics, edit in a line"].append(await session.edit(
                types.Position(line, end), types.Position(line, end), " "))
            line = rng.choice(layer_lines)  # Enter at the end of a layer line: every model below moves
            end = len(session.text.split("\n")[line])
            out["diagnostics, line added"].append(await session.edit(
                types.Position(line, end), types.Position(line, end), "\n"))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
            code_action=types.CodeActionClientCapabilities(
                data_support=True, resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]))))
    results = {n: asyncio.run(measure(n, args.runs, capabilities)) for n in (10, args.models)}
    print(f"{'request':<30} {'10 models p50':>14} {'p95':>8} {f'{args.models} models p50':>17} {'p95':>8}  ms")
    for name in results[args.models]:
        small, big = results[10][name], results[args.models][name]
        print(f"{name:<30} {statistics.median(small):14.1f} {p95(small):8.1f} {statistics.median(big):17.1f} "
              f"{p95(big):8.1f}")


if __name__ == "__main__":
    main()
