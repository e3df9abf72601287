"""Both front-end trainers run, resume and export with tiny networks on real data.

Marked slow (training); the tiny networks and few images keep each under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blsgan_core.checkpoint import load_checkpoint
from blsgan_core.data import JointRecord
from blsgan_core.segment import segment_masks
from blsgan_core.segment.model import Segmenter
from blsgan_core.shipped import shipped_weights
from trainer.frontend import train_localiser, train_segmenter
from trainer.frontend.joint_data import read_manifest, valid_split
from trainer.state import STATE_FILE, load_training_state


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_localiser_training_resumes_and_exports(tmp_path: Path, hand_radiographs_dir: Path) -> None:
    out = tmp_path / "run"
    common = [
        "--data",
        str(hand_radiographs_dir),
        "--out",
        str(out),
        "--tiny",
        "--limit-images",
        "3",
        "--steps-per-epoch",
        "1",
        "--detector-batch",
        "2",
        "--landmark-batch",
        "2",
        "--eval-every",
        "1",
        "--long-side",
        "256",
    ]
    runner = CliRunner()
    first = runner.invoke(train_localiser.main, [*common, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(train_localiser.main, [*common, "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in _log(out)] == [1, 2]  # epoch 1 was not repeated
    assert load_training_state(out / STATE_FILE).completed_epochs == 2
    assert "val" in _log(out)[-1] and _log(out)[-1]["val"]["n_hands"] == 2
    shipped = tmp_path / "localiser.pt"
    exported = runner.invoke(train_localiser.main, [*common, "--export", str(shipped)])
    assert exported.exit_code == 0, exported.output
    checkpoint = load_checkpoint(shipped, expected_kind="localiser")
    assert all(
        t.dtype == torch.float16
        for t in checkpoint.state["landmarks"].values()
        if t.is_floating_point()
    )
    assert len(checkpoint.metadata["data"]["digest"]) == 64
    assert checkpoint.metadata["data"]["split"]["n_val"] == 20
    assert checkpoint.metadata["precision"] == "fp16"
    card = shipped.with_suffix(".md").read_text()
    assert "two-hands" in card and checkpoint.metadata["data"]["digest"] in card


@pytest.mark.slow
def test_segmenter_training_resumes_and_exports(tmp_path: Path, mcp_joints_dir: Path) -> None:
    out = tmp_path / "run"
    common = [
        "--data",
        str(mcp_joints_dir),
        "--out",
        str(out),
        "--tiny",
        "--limit-images",
        "8",
        "--batch-size",
        "4",
        "--eval-every",
        "1",
    ]
    runner = CliRunner()
    assert runner.invoke(train_segmenter.main, [*common, "--epochs", "1"]).exit_code == 0
    result = runner.invoke(train_segmenter.main, [*common, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    log = _log(out)
    assert [r["epoch"] for r in log] == [1, 2]
    assert 0.0 <= log[-1]["val"]["dice_upper"] <= 1.0
    shipped = tmp_path / "segmenter.pt"
    exported = runner.invoke(train_segmenter.main, [*common, "--export", str(shipped)])
    assert exported.exit_code == 0, exported.output
    checkpoint = load_checkpoint(shipped, expected_kind="segmenter")
    assert len(checkpoint.metadata["data"]["rejected"]) == 4  # the README's annotation errors
    card = shipped.with_suffix(".md").read_text()
    assert "dice_overlap" in card and "overlap area ratio" in card
    assert "chosen by: mean of min(per-bone Dice) and overlap Dice" in card
    # A run can start from another segmenter's weights, of the same architecture only.
    started = runner.invoke(
        train_segmenter.main,
        [*common, "--out", str(tmp_path / "b"), "--epochs", "1", "--init", str(out / "best.pt")],
    )
    assert started.exit_code == 0, started.output
    meta = load_checkpoint(tmp_path / "b" / "best.pt").metadata
    assert meta["training"]["initialised_from"].startswith(f"{out / 'best.pt'} (segmenter-e")
    other = runner.invoke(
        train_segmenter.main,
        [
            *common,
            "--out",
            str(tmp_path / "c"),
            "--epochs",
            "1",
            "--init",
            str(shipped_weights("segmenter.pt")),
        ],
    )
    assert other.exit_code == 2 and "another architecture" in other.output


def _apart(mcp_joints_dir: Path, limit: int) -> list[JointRecord]:
    """The training joints without overlap among the first ``limit`` (``--limit-images``)."""
    train = valid_split(read_manifest(mcp_joints_dir / "manifest.json"))[0][:limit]
    return [record for record in train if record.overlap_px == 0]


@pytest.mark.parametrize("head", ["sigmoid", "regions"])
def test_segmenter_size_width_and_head_options(
    tmp_path: Path, mcp_joints_dir: Path, head: str
) -> None:
    out = tmp_path / "run"
    arguments = ["--data", str(mcp_joints_dir), "--out", str(out), "--limit-images", "4"]
    arguments += ["--batch-size", "4", "--epochs", "1", "--input-size", "32", "--head", head]
    arguments += ["--synthetic-overlaps", "2", "--name", "segmenter-syn"]
    arguments += ["--synthetic-hidden-edge-sigma", "2"]
    result = CliRunner().invoke(train_segmenter.main, [*arguments, "--base-channels", "8"])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(out / "best.pt")
    assert checkpoint.version == "segmenter-syn-e1"
    data = checkpoint.metadata["data"]
    assert data["n_synthetic_overlaps"] == 2 * sum(1 for _ in _apart(mcp_joints_dir, 4))
    model = Segmenter.from_checkpoint(checkpoint)
    config = model.config
    assert (config.input_size, config.unet.base_channels, config.unet.depth) == (32, 8, 4)
    assert (config.head, config.unet.out_channels) == (head, 2 if head == "sigmoid" else 4)
    # The node's path gives two amodal masks whatever the head.
    crops = np.random.default_rng(0).random((2, 256, 256)).astype(np.float32)
    assert segment_masks(crops, model).shape == (2, 2, 256, 256)
    assert 0.0 <= _log(out)[-1]["val"]["dice_upper"] <= 1.0
