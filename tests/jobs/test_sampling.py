"""Sampling from the overview: the sampler's models, appended under free names or written to a new file
beside the workspace's, within the file's budget; bad requests write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.jobs.generate import GenerateError
from remapdsl.jobs.sampling import sample_into
from remapdsl.language.analysis import analyze
from remapdsl.language.datasets import describe
from remapdsl.language.parser import parse
from remapdsl.search.sampler import sample_models
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

TEXT = """data digits  # the bundled digits
train epochs=1 batch=64 seed=0
budget params <= 20k

# kept as it is
model m000:
    flatten
    dense 10

model m007:
    flatten
    dense 16
    dense 10
"""


def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "w.remap"
    path.write_text(TEXT)
    return path


def test_appended_models_are_the_samplers_under_the_next_free_names(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    done = sample_into(path, 4, 3)
    expected = sample_models(4, describe(None), 3, max_params=20_000)
    assert done.names == ("m008", "m009", "m010", "m011")
    after = path.read_text()
    assert after.startswith(TEXT.rstrip())
    result = parse(after)
    assert result.diagnostics == ()
    models = result.document.models[2:]
    assert [m.layers for m in models] == [m.layers for m in expected]
    analysis = analyze(result.document, (), tmp_path)
    assert analysis.valid  # every sampled model is within the budget


def test_a_new_file_gets_the_header_and_is_never_written_over(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    done = sample_into(path, 2, 0, target="more.remap")
    assert done.path == tmp_path / "more.remap" and done.names == ("m000", "m001")
    text = (tmp_path / "more.remap").read_text()
    assert text.startswith("data digits  # the bundled digits\ntrain epochs=1 batch=64 seed=0\nbudget params <= 20k\n")
    assert path.read_text() == TEXT
    with pytest.raises(GenerateError, match=r"more\.remap exists already; choose another name"):
        sample_into(path, 2, 1, target="more.remap")
    assert (tmp_path / "more.remap").read_text() == text


@pytest.mark.parametrize(("n", "seed", "target", "message"), [
    (0, 0, None, "the number of models must be from 1 to 1,000; found 0"),
    (10_000, 0, None, "the number of models must be from 1 to 1,000; found 10,000"),
    (2, -1, None, "the seed must be from 0"),
    (2, 0, "../elsewhere.remap", "a new file goes beside w.remap"),
    (2, 0, "notes.txt", "a new file needs a name ending in .remap"),
])
def test_bad_requests_write_nothing(tmp_path: Path, n: int, seed: int, target: str | None, message: str) -> None:
    path = workspace(tmp_path)
    with pytest.raises(GenerateError, match=message):
        sample_into(path, n, seed, target=target)
    assert path.read_text() == TEXT and sorted(p.name for p in tmp_path.iterdir()) == ["w.remap"]


@pytest.mark.slow  # loads the digits to queue
def test_sampled_models_are_queued(tmp_path: Path) -> None:
    path = workspace(tmp_path)
    with Store(tmp_path / "remap.db") as store:
        done = sample_into(path, 3, 5, store=store, device="cpu")
        assert done.plan is not None and [j.model_name for j in Queue(store).queued()] == list(done.names)
        assert {m.origin for m in done.plan.registered} == {"sampled"}
