"""The training loop: both phases end to end, files every epoch, exact resume after a stop."""

import csv
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from blsgan_core.checkpoint import load_checkpoint
from blsgan_core.model import BLSGANModel, model_from_checkpoint
from trainer.config import TrainConfig, with_ablations
from trainer.loop import RunResult, train
from trainer.model_card import card_markdown
from trainer.separation_measures import outside_shortfall
from trainer.state import STATE_FILE, load_training_state, named_networks

TIMING = {"time", "seconds", "images_per_s"}  # columns that depend on the machine's load


def test_a_tiny_run_trains_both_phases_and_writes_its_files(tiny_run: RunResult) -> None:
    out = tiny_run.out
    assert tiny_run.completed_epochs == tiny_run.total_epochs == 3
    with open(out / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["phase"] for row in rows] == ["1", "1", "2"]
    assert all(float(row["images_per_s"]) > 0 for row in rows)
    assert all(float(row["val_synthetic_layer_psnr"]) > 0 for row in rows)
    assert "ground_truth_layers" in rows[0] and rows[2]["ground_truth_layers"] == ""
    assert "supervisor_true_layers" in rows[0] and rows[2]["supervisor_true_layers"] == ""
    for key in (
        "val_supervisor_auc",
        "val_synthetic_seam_ratio",
        "val_synthetic_detail_psnr",
        "val_wide_layer_psnr",
        "val_real_overlap_psnr",
        "val_real_outside_psnr",
    ):
        assert all(float(row[key]) >= 0 for row in rows if row[key] != ""), key
    # Before the deduction for the bone beside the overlap (which a tiny model may earn),
    # the selection score is not negative.
    for row in rows:
        outside = {"val_real_outside_psnr": float(row["val_real_outside_psnr"])}
        assert float(row["val_selection"]) + outside_shortfall(outside) >= 0
    assert all(0 <= float(row["val_supervisor_auc"]) <= 1 for row in rows)
    for name in ("losses.png", "metrics_by_overlap.png", "examples.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = load_checkpoint(out / "last.pt", expected_kind="blsgan")
    assert checkpoint.metadata["data"]["digest"] == tiny_run.data_digest
    assert checkpoint.metadata["data"]["n_rejected"] == 1
    assert checkpoint.metadata["training"]["epochs"] == 3
    assert "val_real_psnr" in checkpoint.metadata["metrics"]
    identity = checkpoint.metadata["metrics_identity_baseline"]
    assert identity["val_real_psnr"] > 30 > identity["val_synthetic_layer_psnr"]
    model = model_from_checkpoint(checkpoint, with_supervisor=True)  # from the file alone
    assert model.config.correction is True
    # k is read at inference from a window of the size the run trained on.
    crop = checkpoint.metadata["training"]["config"]["data"]["crop_size"]
    assert model.config.reconstructor_window == crop
    best = load_checkpoint(out / "best.pt", expected_kind="blsgan")
    assert best.metadata["training"]["epochs"] == tiny_run.best["epoch"]
    assert best.metadata["training"]["phase"] == tiny_run.best["phase"]
    assert "selection score" in best.metadata["training"]["selection"]
    # The card says why: each phase's best epoch up to then, with its score.
    standing = checkpoint.metadata["training"]["selection_standing"]
    assert set(standing) == {"phase 1", "phase 2"}
    scores = [float(row["val_selection"]) for row in rows if row["phase"] == "1"]
    assert standing["phase 1"]["score"] == pytest.approx(max(scores))
    assert standing["phase 2"]["phase_epoch"] == 1
    card = card_markdown({"name": "x", "kind": "blsgan", "metadata": best.metadata})
    assert f"phase {tiny_run.best['phase']}, epoch" in card
    assert "best of phase 1 up to this checkpoint: epoch" in card


def test_training_changes_the_weights_and_the_layer_loss_falls(
    tiny_run: RunResult, tiny_config: TrainConfig
) -> None:
    state = load_training_state(tiny_run.out / STATE_FILE)
    assert state.completed_epochs == 3
    torch.manual_seed(tiny_config.seed)
    fresh = BLSGANModel(tiny_config.model.blsgan_config(), with_supervisor=True)
    for network, module in named_networks(fresh).items():
        trained = state.networks[network]
        assert any(
            not torch.equal(trained[key], value) for key, value in module.state_dict().items()
        )
    first, second = tiny_run.history[:2]
    assert second["ground_truth_layers"] < first["ground_truth_layers"]


def test_resume_after_a_stop_gives_the_same_weights_as_an_uninterrupted_run(
    tmp_path: Path, small_manifest: Path, tiny_config: TrainConfig, tiny_run: RunResult
) -> None:
    out = tmp_path / "stopped"
    train(
        tiny_config, [small_manifest], out, device="cpu", show_progress=False,
        stop_after_epochs=1,
    )  # fmt: skip
    for stop in (2, None):  # within phase 1, then on across the start of phase 2
        resumed = train(
            tiny_config, [small_manifest], out, device="cpu", show_progress=False,
            stop_after_epochs=stop, resume=True,
        )  # fmt: skip
    a = load_training_state(tiny_run.out / STATE_FILE)
    b = load_training_state(out / STATE_FILE)
    assert a.completed_epochs == b.completed_epochs == 3
    for network in a.networks:
        for key, tensor in a.networks[network].items():
            assert torch.equal(tensor, b.networks[network][key]), (network, key)
    for name in a.optimizers:
        assert a.optimizers[name]["state"][0]["step"] == b.optimizers[name]["state"][0]["step"]
    # The same history, validation and best epoch included, but for the clock.
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert _untimed(resumed.history) == _untimed(tiny_run.history)
    assert resumed.best == tiny_run.best
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_config, [small_manifest], tiny_run.out, show_progress=False)


def _untimed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def test_ablations_run_without_phase_one_and_with_k_fixed_to_one(
    tmp_path: Path, small_manifest: Path, tiny_config: TrainConfig
) -> None:
    config = with_ablations(tiny_config, no_pretrain=True, no_correction=True)
    result = train(config, [small_manifest], tmp_path / "ablation", show_progress=False)
    assert [row["phase"] for row in result.history] == [2]
    assert result.history[0]["k_mean"] == 1.0
    checkpoint = load_checkpoint(tmp_path / "ablation" / "last.pt")
    assert checkpoint.config["correction"] is False


def test_fine_tuning_starts_from_a_checkpoint_and_skips_pre_training(
    tmp_path: Path, small_manifest: Path, tiny_config: TrainConfig, tiny_run: RunResult, caplog
) -> None:
    initial = load_checkpoint(tiny_run.last_checkpoint)
    other = tiny_config.with_overrides(model={"generator_options": {"depth": 3}})
    caplog.set_level(logging.WARNING, logger="trainer.loop")
    result = train(
        other, [small_manifest], tmp_path / "finetune", initial=initial, show_progress=False
    )
    # The preset's other generator is not built, and the log says so.
    assert f"fine-tuning keeps the networks of {initial.version}" in caplog.text
    ignored = next(r.message for r in caplog.records if "fine-tuning keeps" in r.message)
    assert ignored.endswith("is not used") and ignored.count("generator_options") == 1
    assert "'depth': 3" in ignored and "(checkpoint: {" in ignored and "'depth': 2" in ignored
    assert [row["phase"] for row in result.history] == [2]
    assert result.total_epochs == tiny_config.optim.finetune_epochs
    tuned = load_checkpoint(tmp_path / "finetune" / "last.pt")
    assert tuned.config["generator"] == initial.config["generator"]  # the checkpoint's shape
    assert tuned.metadata["training"]["initialised_from"] == initial.version


def test_loader_workers_do_not_change_the_result(
    tmp_path: Path, small_manifest: Path, tiny_config: TrainConfig
) -> None:
    for workers in (0, 2):
        train(
            tiny_config.with_overrides(num_workers=workers), [small_manifest],
            tmp_path / str(workers), show_progress=False, stop_after_epochs=1,
        )  # fmt: skip
    a = load_training_state(tmp_path / "0" / STATE_FILE).networks
    b = load_training_state(tmp_path / "2" / STATE_FILE).networks
    assert all(torch.equal(a[name][key], b[name][key]) for name in a for key in a[name])


def test_the_stored_config_spells_out_every_backbone_option(tiny_run: RunResult) -> None:
    stored = load_training_state(tiny_run.out / STATE_FILE).config["model"]
    assert stored["generator_options"]["base_channels"] == 8  # unet_small's default
    assert stored["generator_options"]["depth"] == 2  # the tiny preset's override
    assert "k_min" in stored["reconstructor"]


def test_fine_tuning_an_inference_checkpoint_starts_a_fresh_supervisor(
    tmp_path: Path, small_manifest: Path, tiny_config: TrainConfig, tiny_run: RunResult
) -> None:
    full = load_checkpoint(tiny_run.last_checkpoint)
    inference_only = replace(full, state={k: v for k, v in full.state.items() if k != "supervisor"})
    result = train(
        tiny_config, [small_manifest], tmp_path / "ft", initial=inference_only,
        show_progress=False,
    )  # fmt: skip
    tuned = load_training_state(tmp_path / "ft" / STATE_FILE).networks
    assert result.completed_epochs == 1
    assert any(
        not torch.equal(tuned["generator"][key], value)
        for key, value in full.state["generator"].items()
    )
