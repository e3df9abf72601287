"""The benchmark scripts still run (tiny settings) and the baseline has the published sizes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from baseline_models import BaselineSeparator, baseline_supervisor
from bench_separation import peak_memory, static_facts, time_round_robin
from bench_train_memory import training_steps


def _millions(module: object) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6  # type: ignore[attr-defined]


def test_baseline_is_built_at_the_published_sizes() -> None:
    separator = BaselineSeparator()
    assert _millions(separator.generator) == pytest.approx(67, abs=1)
    assert _millions(separator.reconstructor) == pytest.approx(43, abs=1)
    assert _millions(separator.reconstructor.mlp) == pytest.approx(34, abs=0.5)
    assert _millions(baseline_supervisor()) == pytest.approx(15, abs=0.5)


def test_separation_benchmark_measures_a_model() -> None:
    timing = time_round_robin(["unet_small"], batch=1, repeats=1)["unet_small"]
    assert 0 < timing["seconds"] <= timing["median_seconds"]
    facts = static_facts("unet_small")
    assert facts["gflop_per_joint"] > 1 and facts["parameters_m"] > facts["generator_parameters_m"]
    assert peak_memory("unet_small", 1)["peak_rss_mib"] > 0


def test_training_step_benchmark_runs_one_step() -> None:
    row = training_steps("ours", batch=1, steps=1, size=64)
    # In the test process the peak may predate the step (earlier tests), so only >= 0.
    assert row["peak_rss_mib"] >= row["training_mib"] >= 0
    assert row["seconds_per_step"] > 0
    assert row["parameters_m"] == pytest.approx(9.3, abs=0.5)
