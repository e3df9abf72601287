"""BLS-GAN and the front-end trainers share one stack: epoch loop, run files, state,
provenance, cards.

Marked slow (three tiny trainings on real data).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blsgan_core.checkpoint import Checkpoint, file_digest, load_checkpoint
from blsgan_core.data import read_manifests
from blsgan_core.registry import model_card
from trainer import epochs
from trainer.epochs import Selection
from trainer.frontend import train_localiser, train_segmenter
from trainer.frontend.joint_data import read_manifest, valid_split
from trainer.model_card import card_markdown
from trainer.provenance import source_commit
from trainer.retrain import TrainRequest, run_training
from trainer.run_files import BEST, LAST, LOG_CSV, LOG_JSONL
from trainer.state import STATE_FILE, load_training_state

RUN_FILES = {STATE_FILE, LAST, BEST, LOG_CSV, LOG_JSONL}


@dataclass(frozen=True)
class Run:
    """A run folder and the epoch lines logged while it trained."""

    out: Path
    epoch_lines: list[logging.LogRecord]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _epoch_lines() -> Iterator[list[logging.LogRecord]]:
    """The records the epoch loop's logger emits meanwhile."""
    logger, handler = logging.getLogger(epochs.__name__), _Lines()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
    small_manifest: Path,
    mcp_joints_dir: Path,
    hand_radiographs_dir: Path,
) -> dict[str, Run]:
    """One epoch of BLS-GAN (as ``blsnode train`` runs it), two of the segmenter, one of
    the localiser."""
    root = tmp_path_factory.mktemp("stack")
    request = TrainRequest(
        preset="tiny",
        manifests=(small_manifest,),
        out=root / "blsgan",
        stop_after_epochs=1,
        show_progress=False,
        command="blsnode train --preset tiny",
    )
    with _epoch_lines() as blsgan_lines:
        run_training(request)
    common = ["--data", str(mcp_joints_dir), "--out", str(root / "segmenter"), "--tiny"]
    common += ["--limit-images", "8", "--batch-size", "4", "--eval-every", "1"]
    with _epoch_lines() as segmenter_lines:
        for epochs_so_far in ("1", "2"):  # the second call resumes the first
            result = CliRunner().invoke(train_segmenter.main, [*common, "--epochs", epochs_so_far])
            assert result.exit_code == 0, result.output
    localiser = ["--data", str(hand_radiographs_dir), "--out", str(root / "localiser"), "--tiny"]
    localiser += ["--limit-images", "3", "--steps-per-epoch", "1", "--detector-batch", "2"]
    localiser += ["--landmark-batch", "2", "--long-side", "256", "--epochs", "1"]
    with _epoch_lines() as localiser_lines:
        result = CliRunner().invoke(train_localiser.main, localiser)
        assert result.exit_code == 0, result.output
    return {
        "blsgan": Run(root / "blsgan", blsgan_lines),
        "segmenter": Run(root / "segmenter", segmenter_lines),
        "localiser": Run(root / "localiser", localiser_lines),
    }


def _card(path: Path) -> str:
    checkpoint = load_checkpoint(path)
    return card_markdown(model_card(checkpoint, path.stem, file_digest(path)))


def _labels(card: str) -> list[str]:
    """The facts the card lists before its sections, and its first section, without values."""
    facts, first_section = card.split("\n## ")[:2]
    labels = [line.split(":")[0] for line in facts.splitlines() if line.startswith("- ")]
    return [*labels, first_section.splitlines()[0]]


@pytest.mark.slow
def test_every_trainer_writes_the_same_run_files_and_state(runs: dict[str, Run]) -> None:
    for out in (run.out for run in runs.values()):
        assert {path.name for path in out.iterdir()} >= RUN_FILES
        state = load_training_state(out / STATE_FILE)
        assert state.completed_epochs == len(state.history) >= 1
        assert state.networks and state.optimizers and state.best["epoch"] >= 1
        rows = [json.loads(line) for line in (out / LOG_JSONL).read_text().splitlines()]
        assert [row["epoch"] for row in rows] == list(range(1, state.completed_epochs + 1))
        assert (out / LOG_CSV).read_text().startswith("epoch,")


@pytest.mark.slow
def test_a_resumed_segmenter_run_continues_at_its_next_epoch(runs: dict[str, Run]) -> None:
    state = load_training_state(runs["segmenter"].out / STATE_FILE)
    assert state.completed_epochs == 2 and [row["epoch"] for row in state.history] == [1, 2]
    assert state.history[1]["step"] == 2 * state.history[0]["step"]  # the schedule went on
    training = load_checkpoint(runs["segmenter"].out / LAST).metadata["training"]
    assert training["epochs"] == 2 and len(training["resumed_by"]) == 1
    assert "--epochs 1" in training["command"] and "--epochs 2" in training["resumed_by"][0]


@pytest.mark.slow
def test_every_trainer_records_the_same_provenance_and_writes_the_same_card(
    runs: dict[str, Run],
) -> None:
    checkpoints: dict[str, Checkpoint] = {
        kind: load_checkpoint(run.out / BEST) for kind, run in runs.items()
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
    cards = {kind: _card(run.out / BEST) for kind, run in runs.items()}
    assert _labels(cards["blsgan"]) == _labels(cards["segmenter"]) == _labels(cards["localiser"])
    assert "- command: `blsnode train --preset tiny`" in cards["blsgan"]
    assert "train_segmenter" in cards["segmenter"]


@pytest.mark.slow
def test_every_trainer_runs_its_epochs_through_the_one_loop(runs: dict[str, Run]) -> None:
    """Each epoch of each trainer is one pass of ``trainer.epochs.run_epochs``, which logs
    it: a trainer with a loop of its own would log no lines, or not from there."""
    for kind, run in runs.items():
        history = load_training_state(run.out / STATE_FILE).history
        lines = run.epoch_lines
        assert [line.funcName for line in lines] == ["run_epochs"] * len(history), kind
        assert [line.args[0] for line in lines] == [row["epoch"] for row in history], kind
        for row in history:  # the loop's columns lead every trainer's row
            assert list(row)[:3] == ["epoch", "time", "seconds"], kind
            assert row["seconds"] >= 0
    assert "loss_g=" in runs["blsgan"].epoch_lines[0].getMessage()
    assert "val.dice_upper=" in runs["segmenter"].epoch_lines[-1].getMessage()


@pytest.mark.parametrize(
    ("selection", "scores", "best_epochs"),
    [
        # Lower is better (front-end scores); the first validated epoch always counts.
        (Selection("score", higher_is_better=False), [3.0, 1.0, 2.0, 0.5], [1, 2, 2, 4]),
        (Selection("score", higher_is_better=False), [math.nan, 5.0, math.nan], [1, 2, 2]),
        # Higher is better (BLS-GAN's selection score); an unscored epoch never displaces
        # a scored one, and any score displaces an unscored best.
        (Selection("val_selection", higher_is_better=True), [None, 20.0, None, 19.0], [1, 2, 2, 2]),
        (Selection("val_selection", higher_is_better=True), [20.0, 21.0, 20.5], [1, 2, 2]),
    ],
)
def test_the_best_epoch_rule(
    selection: Selection, scores: list[float | None], best_epochs: list[int]
) -> None:
    best: dict[str, Any] = {}
    chosen = []
    for epoch, score in enumerate(scores, start=1):
        if selection.improves(score, best):
            best = selection.record({"epoch": epoch, "phase": 1}, score)
        chosen.append(best["epoch"])
    assert chosen == best_epochs


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
