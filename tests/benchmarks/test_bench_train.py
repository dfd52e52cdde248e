"""The GPU training benchmark's code, run small on the CPU (`--dry-run`): it cannot be measured here, but every
part of it other than CUDA itself runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.slow


def test_the_gpu_benchmark_runs_dry_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--dry-run",
                           "--skip-reference", "--json", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["models"] == 2 and figures["epochs"] == 1 and figures["device"] == "cpu"
    assert figures["executions"] == {"CUDA graphs need a CUDA device; this run trains on cpu": 2}
    assert figures["utilisation_percent"] == {"ours": None, "reference": None}
    assert figures["training_flops"] > 0 and figures["peak_gflops"] > 0
    rows = figures["where_time_goes"]
    assert sum(r["models"] for r in rows) == 2
    assert all(r["launch_bound"] + r["arithmetic_bound"] == r["models"] for r in rows)
    assert "model-epochs per CPU-minute" in done.stdout and "where the time goes" in done.stdout
