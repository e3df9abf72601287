"""BLS-GAN and the front-end trainers share one stack: run files, state, provenance, cards.

Marked slow (two tiny trainings on real data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blsgan_core.checkpoint import Checkpoint, file_digest, load_checkpoint
from blsgan_core.data import read_manifests
from blsgan_core.registry import model_card
from trainer.frontend import train_segmenter
from trainer.frontend.joint_data import read_manifest, valid_split
from trainer.model_card import card_markdown
from trainer.provenance import source_commit
from trainer.retrain import TrainRequest, run_training
from trainer.run_files import BEST, LAST, LOG_CSV, LOG_JSONL
from trainer.state import STATE_FILE, load_training_state

RUN_FILES = {STATE_FILE, LAST, BEST, LOG_CSV, LOG_JSONL}


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, small_manifest: Path, mcp_joints_dir: Path
) -> dict[str, Path]:
    """One epoch of BLS-GAN (as ``blsnode train`` runs it) and two of the segmenter."""
    root = tmp_path_factory.mktemp("stack")
    request = TrainRequest(
        preset="tiny",
        manifests=(small_manifest,),
        out=root / "blsgan",
        stop_after_epochs=1,
        show_progress=False,
        command="blsnode train --preset tiny",
    )
    run_training(request)
    common = ["--data", str(mcp_joints_dir), "--out", str(root / "segmenter"), "--tiny"]
    common += ["--limit-images", "8", "--batch-size", "4", "--eval-every", "1"]
    for epochs in ("1", "2"):  # the second call resumes the first
        result = CliRunner().invoke(train_segmenter.main, [*common, "--epochs", epochs])
        assert result.exit_code == 0, result.output
    return {"blsgan": root / "blsgan", "segmenter": root / "segmenter"}


def _card(path: Path) -> str:
    checkpoint = load_checkpoint(path)
    return card_markdown(model_card(checkpoint, path.stem, file_digest(path)))


def _labels(card: str) -> list[str]:
    """The facts the card lists before its sections, and its first section, without values."""
    facts, first_section = card.split("\n## ")[:2]
    labels = [line.split(":")[0] for line in facts.splitlines() if line.startswith("- ")]
    return [*labels, first_section.splitlines()[0]]


@pytest.mark.slow
def test_every_trainer_writes_the_same_run_files_and_state(runs: dict[str, Path]) -> None:
    for out in runs.values():
        assert {path.name for path in out.iterdir()} >= RUN_FILES
        state = load_training_state(out / STATE_FILE)
        assert state.completed_epochs == len(state.history) >= 1
        assert state.networks and state.optimizers and state.best["epoch"] >= 1
        rows = [json.loads(line) for line in (out / LOG_JSONL).read_text().splitlines()]
        assert [row["epoch"] for row in rows] == list(range(1, state.completed_epochs + 1))
        assert (out / LOG_CSV).read_text().startswith("epoch,")


@pytest.mark.slow
def test_a_resumed_segmenter_run_continues_at_its_next_epoch(runs: dict[str, Path]) -> None:
    state = load_training_state(runs["segmenter"] / STATE_FILE)
    assert state.completed_epochs == 2 and [row["epoch"] for row in state.history] == [1, 2]
    assert state.history[1]["step"] == 2 * state.history[0]["step"]  # the schedule went on
    training = load_checkpoint(runs["segmenter"] / LAST).metadata["training"]
    assert training["epochs"] == 2 and len(training["resumed_by"]) == 1
    assert "--epochs 1" in training["command"] and "--epochs 2" in training["resumed_by"][0]


@pytest.mark.slow
def test_every_trainer_records_the_same_provenance_and_writes_the_same_card(
    runs: dict[str, Path],
) -> None:
    checkpoints: dict[str, Checkpoint] = {
        kind: load_checkpoint(out / BEST) for kind, out in runs.items()
    }
    shared: dict[str, set[str]] = {
        "training": {"command", "commit", "preset", "seed", "epochs", "selection"},
        "data": {"digest", "manifests", "n_train_images", "n_validation_images", "n_rejected"},
    }
    for checkpoint in checkpoints.values():
        metadata: dict[str, Any] = checkpoint.metadata
        assert {"training", "data", "metrics", "date"} <= set(metadata)
        for part, keys in shared.items():
            assert keys <= set(metadata[part]), (checkpoint.kind, part)
        assert metadata["training"]["commit"] == source_commit()  # one dirty marker
    cards = {kind: _card(out / BEST) for kind, out in runs.items()}
    assert _labels(cards["blsgan"]) == _labels(cards["segmenter"])
    assert "- command: `blsnode train --preset tiny`" in cards["blsgan"]
    assert "train_segmenter" in cards["segmenter"]


def test_the_segmenter_leaves_out_the_records_blsgan_rejects(small_manifest: Path) -> None:
    rejected = read_manifests(small_manifest).rejected
    train, validation, invalid = valid_split(read_manifest(small_manifest), val_fraction=0.25)
    assert [Path(r.image).name for r in rejected] == [r.image.name for r, _ in invalid]
    assert "same bone" in rejected[0].reason and invalid[0][1] >= 0.5
    assert len(train) + len(validation) == len(read_manifests(small_manifest).records)


def test_a_broken_record_stops_the_segmenter_with_its_reason(
    tmp_path: Path, small_manifest: Path
) -> None:
    entries = json.loads(small_manifest.read_text())
    entries[0]["upper"] = entries[1]["image"]  # a grey image is no binary mask
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"record 0 .*not binary"):
        read_manifest(broken)
