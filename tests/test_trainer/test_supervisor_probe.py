"""The supervisor probe trains a copy of D alone and reports its held-out AUC."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from blsgan_core.checkpoint import load_checkpoint, save_checkpoint
from trainer.evaluation.supervisor_probe import main, probe
from trainer.loop import RunResult


def test_probe_updates_only_the_supervisor_and_reports_every_few_updates(
    tiny_run: RunResult, small_manifest: Path
) -> None:
    checkpoint = load_checkpoint(tiny_run.out / "best.pt", expected_kind="blsgan")
    generator_before = {k: v.clone() for k, v in checkpoint.state["generator"].items()}
    report = probe(checkpoint, [small_manifest], steps=3, every=2, max_images=4)
    assert [row["updates"] for row in report["rows"]] == [0, 2, 3]
    for row in report["rows"]:
        auc = row["val_supervisor_auc"]
        assert auc is not None and 0.0 <= auc <= 1.0
    assert report["held_out_synthetic_joints"] >= 1
    for name, value in checkpoint.state["generator"].items():
        assert torch.equal(value, generator_before[name])


def test_probe_cli_refuses_a_checkpoint_without_a_supervisor(
    tiny_run: RunResult, small_manifest: Path, tmp_path: Path
) -> None:
    checkpoint = load_checkpoint(tiny_run.out / "best.pt", expected_kind="blsgan")
    stripped = tmp_path / "no-supervisor.pt"
    state = {name: value for name, value in checkpoint.state.items() if name != "supervisor"}
    save_checkpoint(stripped, replace(checkpoint, state=state))
    result = CliRunner().invoke(
        main, ["--model", str(stripped), "--manifest", str(small_manifest), "--steps", "1"]
    )
    assert result.exit_code != 0
    assert "no supervisor" in result.output


def test_probe_cli_prints_json(tiny_run: RunResult, small_manifest: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--model", str(tiny_run.out / "best.pt"), "--manifest", str(small_manifest),
         "--steps", "1", "--max-images", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [row["updates"] for row in report["rows"]] == [0, 1]


def test_probe_needs_the_training_config(tiny_run: RunResult, small_manifest: Path) -> None:
    checkpoint = load_checkpoint(tiny_run.out / "best.pt", expected_kind="blsgan")
    checkpoint.metadata.pop("training")
    with pytest.raises(ValueError, match="does not say how it was trained"):
        probe(checkpoint, [small_manifest], steps=1, every=1, max_images=2)
