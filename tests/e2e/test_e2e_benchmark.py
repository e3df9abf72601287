"""``benchmarks/bench_e2e.py`` still runs: one small radiograph with a tiny BLS-GAN."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_e2e import measure

pytestmark = pytest.mark.e2e


def test_end_to_end_benchmark_times_each_stage(tmp_path: Path, shared_data: Path) -> None:
    report = measure(["3149"], tmp_path, scale=0.5, repeats=1, preset="tiny")
    cold = report["cold"]
    assert cold["outputs"] == 1 + (1 + 5 * 3) + 1  # one hand: SEG, overview + 3 per joint, SR
    stages = ("store", "queue", "pipeline", "dispatch")
    assert all(cold[stage] > 0 for stage in stages)
    assert cold["total"] == pytest.approx(sum(cold[stage] for stage in stages), abs=0.05)
    assert report["warm_median"]["total"] == cold["total"]  # one radiograph: cold is all
