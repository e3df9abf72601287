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
    # one hand: SEG, overview + 3 per joint, SR, GSPS
    assert cold["outputs"] == 1 + (1 + 5 * 3) + 1 + 1
    stages = ("store", "queue", "pipeline", "dispatch")
    assert all(cold[stage] > 0 for stage in stages)
    assert cold["total"] == pytest.approx(sum(cold[stage] for stage in stages), abs=0.05)
    assert report["warm_median"]["total"] == cold["total"]  # one radiograph: cold is all


def test_dispatch_benchmark_compares_both_ways_of_sending(tmp_path: Path) -> None:
    from bench_dispatch import measure as measure_dispatch

    report = measure_dispatch(tmp_path, scale=0.5, preset="tiny", repeats=1)
    assert report["objects"] == 19
    for destination in ("orthanc", "storescp"):
        row = report[destination]
        assert row["baseline_s"] > 0 and row["ours_s"] > 0 and row["storescu_s"] > 0
        assert row["baseline_over_ours"] == pytest.approx(row["baseline_s"] / row["ours_s"])
