"""``blsnode train``, ``blsnode models`` and the separation evaluation, end to end on the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from blsgan_core.data import read_manifests
from blsgan_core.inference import separate
from blsgan_core.model import load_model
from blsgan_core.registry import ModelRegistry
from blsnode.cli.main import cli
from trainer.datasets import SampleStore
from trainer.evaluation.realism import (
    RealismConfig,
    realism_report,
    synthetic_turing_test,
    turing_test,
)
from trainer.evaluation.separation import (
    identity_separator,
    real_joints,
    synthetic_joints,
    trivial_separator,
)
from trainer.evaluation.separation_report import evaluate_separation


def _json(args: list[str], data_dir: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # exactly one JSON object on stdout
    data: dict[str, Any] = json.loads(lines[0])
    return data


def test_train_resume_register_promote_show_and_fine_tune(
    tmp_path: Path, small_manifest: Path
) -> None:
    run = tmp_path / "run"
    common = ["train", "--preset", "tiny", "--threads", "1", "--json"]
    first = _json([*common, "--manifest", str(small_manifest), "--out", str(run),
                   "--stop-after", "1"], tmp_path)  # fmt: skip
    assert (first["completed_epochs"], first["finished"]) == (1, False)
    assert first["rejected_records"] == 1 and first["images_per_s"] > 0
    done = _json(["train", "--out", str(run), "--resume", "--json", "--register", "tiny-cli"],
                 tmp_path)  # fmt: skip
    assert (done["completed_epochs"], done["finished"]) == (3, True)
    assert done["registered"]["name"] == "tiny-cli"

    listed = _json(["models", "list", "--json"], tmp_path)
    assert [m["name"] for m in listed["models"] if not m["shipped"]] == ["tiny-cli"]
    assert listed["registry"] == str(tmp_path / "models")
    promoted = _json(["models", "promote", "tiny-cli", "--json"], tmp_path)
    assert promoted["promoted"] is True
    card = _json(["models", "show", "tiny-cli", "--json"], tmp_path)
    assert card["promoted"] is True
    training = card["metadata"]["training"]
    assert "--stop-after 1" in training["command"] and training["commit"]
    assert card["metadata"]["data"]["digest"] == done["data_digest"]
    assert "val_synthetic_layer_psnr" in card["metadata"]["metrics"]
    assert "data digest" in card["markdown"]

    tuned = _json([*common, "--manifest", str(small_manifest), "--out", str(tmp_path / "ft"),
                   "--from-promoted", "--finetune-epochs", "1"], tmp_path)  # fmt: skip
    assert tuned["completed_epochs"] == tuned["total_epochs"] == 1

    report_result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path), "evaluate", "--task", "separation",
         "--manifest", str(small_manifest), "--split", "val", "--seed", "0",
         "--validation-fraction", "0.25", "--shift-range", "1", "8", "--no-realism", "--json"],
    )  # fmt: skip
    assert report_result.exit_code == 0, report_result.output
    report = json.loads(report_result.stdout)
    assert report["task"] == "separation" and report["split"] == "val"
    assert report["model"]["path"] == str(tmp_path / "models" / "tiny-cli.pt")
    assert list(report["synthetic"]) == ["shifts 1-8 px"]
    synthetic = report["synthetic"]["shifts 1-8 px"]
    assert report["n_images"] == report["real"]["n_images"] + synthetic["n_images"]
    assert report["separators"] == ["model", "trivial", "identity"]
    assert synthetic["identity"]["layer_psnr"]["mean"] < 25
    assert report["n_rejected"] == 1 and "no patient id" in report["split_note"]
    assert report["realism"] == {"skipped": "not asked for (--no-realism)"}


def test_usage_errors_are_clear(tmp_path: Path, small_manifest: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "train", "--resume"])
    assert result.exit_code == 2 and "--out" in result.output
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "train", "--preset", "tiny"])
    assert result.exit_code == 1 and "no manifest" in result.output
    result = runner.invoke(
        cli,
        ["--data-dir", str(tmp_path), "train", "--from-promoted", "--out", str(tmp_path)],
        env={"BLSNODE_MODELS__USE_SHIPPED_WEIGHTS": "false"},
    )
    assert result.exit_code == 1 and "no BLS-GAN model is promoted" in result.output
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "models", "show", "nothing"])
    assert result.exit_code == 1 and "no model named" in result.output
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "train", "--resume", "--out",
                                 str(tmp_path / "none")])  # fmt: skip
    assert result.exit_code == 1 and "nothing to resume" in result.output
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "evaluate", "--task", "separation"])
    assert result.exit_code == 2 and "needs --manifest" in result.output
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "evaluate", "--task", "segmentation",
                                 "--manifest", str(small_manifest), "--manifest",
                                 str(small_manifest)])  # fmt: skip
    assert result.exit_code == 2 and "exactly one --manifest" in result.output


def test_export_writes_a_half_precision_shipped_model_with_its_evaluation(
    tmp_path: Path, tiny_run: Any, small_manifest: Path
) -> None:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    real, synthetic = real_joints(records, store)[:4], synthetic_joints(records, store, seed=0)
    separators = {"model": identity_separator, "trivial": trivial_separator}
    report = evaluate_separation(real[2:], {"shifts 1-8 px": synthetic[:2]}, separators)
    config = RealismConfig(steps=2)
    results = turing_test(separators, (real[:2], synthetic[2:4]), (real[2:], synthetic[:2]), config)
    (tmp_path / "figure.png").write_bytes(b"a PNG")  # export copies it, whatever it holds
    on_synthetic = synthetic_turing_test(separators, synthetic[2:4], synthetic[:2], config)
    report["realism"] = realism_report(
        results, tmp_path / "figure.png", config, on_synthetic=on_synthetic
    )
    (tmp_path / "report.json").write_text(json.dumps(report))
    target = tmp_path / "weights"
    data = _json(
        ["models", "export", str(tiny_run.best_checkpoint), "tiny-ship", "--to", str(target),
         "--evaluation", str(tmp_path / "report.json"), "--json"], tmp_path,
    )  # fmt: skip
    card = (target / "tiny-ship.md").read_text()
    assert "| trivial |" in card and "whole crop PSNR (dB, paper's protocol)" in card
    assert "Realism classifier AUC" in card and "](tiny-ship-realism.png)" in card
    assert "On synthetic overlaps of held-out joints" in card
    assert (target / "tiny-ship-realism.png").read_bytes() == b"a PNG"
    assert data["promoted"] is True
    assert data["bytes"] < 0.6 * tiny_run.best_checkpoint.stat().st_size
    entry = ModelRegistry(tmp_path / "empty", shipped_dir=target).promoted("blsgan")
    assert entry is not None and entry.name == "tiny-ship" and entry.shipped
    assert entry.card["metadata"]["precision"] == "fp16"
    image = torch.rand(1, 1, 64, 64)
    masks = torch.zeros(1, 2, 64, 64)
    masks[:, 0, :36], masks[:, 1, 28:] = 1, 1
    full = separate(image, masks, load_model(tiny_run.best_checkpoint))
    half = separate(image, masks, load_model(entry.path))
    assert torch.allclose(full.layers, half.layers, atol=1e-2)


def test_export_switches_the_boundary_blend_in_the_config(tmp_path: Path, tiny_run: Any) -> None:
    target = tmp_path / "weights"
    modes = (("as-is", [], "off"), ("poisson", ["--boundary-blend", "poisson"], "poisson"),
             ("exchange", ["--boundary-blend", "exchange"], "exchange"))  # fmt: skip
    for name, flag, expected in modes:
        _json(["models", "export", str(tiny_run.best_checkpoint), name, "--to", str(target),
               "--no-promote", *flag, "--json"], tmp_path)  # fmt: skip
        assert load_model(target / f"{name}.pt").config.boundary_blend == expected
    versions = {name: load_model(target / f"{name}.pt").version for name, _, _ in modes}
    assert versions["exchange"] == versions["as-is"] + "+exchange"
    assert versions["poisson"] == versions["as-is"] + "+poisson"
    calibration = ["--boundary-blend", "eq1-offset", "--offset-bias", "0.0153"]
    _json(["models", "export", str(tiny_run.best_checkpoint), "calibrated", "--to", str(target),
           "--no-promote", *calibration, "--json"], tmp_path)  # fmt: skip
    calibrated = load_model(target / "calibrated.pt")
    assert calibrated.config.offset_bias == pytest.approx(0.0153)
    assert calibrated.version == versions["as-is"] + "+eq1-offset+0.0153"
    refused = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "models", "export",
                                       str(tiny_run.best_checkpoint), "wrong", "--to", str(target),
                                       "--no-promote", "--offset-bias", "0.01"])  # fmt: skip
    assert refused.exit_code != 0 and "calibrates the eq1-offset step" in refused.output
    trained = load_model(target / "as-is.pt").config.reconstructor_window
    _json(["models", "export", str(tiny_run.best_checkpoint), "whole", "--to", str(target),
           "--no-promote", "--reconstructor-window", "0", "--json"], tmp_path)  # fmt: skip
    assert (trained, load_model(target / "whole.pt").config.reconstructor_window) == (64, 0)
    _json(["models", "export", str(tiny_run.best_checkpoint), "noted", "--to", str(target),
           "--no-promote", "--note", "phase 2, epoch 1: best selection score", "--json"],
          tmp_path)  # fmt: skip
    card = (target / "noted.md").read_text()
    assert "## Provenance note\n\nphase 2, epoch 1: best selection score" in card
