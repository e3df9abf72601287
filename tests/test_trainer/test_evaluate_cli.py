"""``blsnode evaluate --task localization|segmentation`` on small real subsets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from blsgan_core.checkpoint import load_checkpoint
from blsgan_core.mask_thresholds import SEPARATION_CONTACT_PX, SEPARATION_THRESHOLD
from blsgan_core.shipped import shipped_weights
from blsnode.cli.evaluate_separation import repeats_lines
from blsnode.cli.main import cli
from trainer.evaluation.realism import paired_difference, repeats_summary
from trainer.evaluation.separation import PSNR_CAP_DB
from trainer.frontend.hand_data import read_landmarks_csv, select_split
from trainer.frontend.joint_data import read_manifest
from trainer.frontend.joint_data import select_split as select_joint_split
from trainer.model_card import recorded_split


def test_split_matches_the_one_the_shipped_weights_were_chosen_on(
    hand_radiographs_dir: Path, mcp_joints_dir: Path
) -> None:
    hands = select_split(read_landmarks_csv(hand_radiographs_dir / "landmarks.csv"), "val")
    localiser = load_checkpoint(shipped_weights("localiser.pt"))
    assert sorted(r.id for r in hands) == recorded_split(localiser.metadata)["val_ids"]
    joints = select_joint_split(read_manifest(mcp_joints_dir / "manifest.json"), "val")
    segmenter = load_checkpoint(shipped_weights("segmenter.pt"))
    assert sorted({r.case for r in joints}) == recorded_split(segmenter.metadata)["val_cases"]


def test_localization_report(tmp_path: Path, hand_radiographs_dir: Path) -> None:
    source = hand_radiographs_dir / "landmarks.csv"
    val_ids = {r.id for r in select_split(read_landmarks_csv(source), "val")}
    with open(source, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["id"] in val_ids][:2]
    for row in rows:  # absolute paths: the CSV lives elsewhere now
        row["file"] = str(hand_radiographs_dir / row["file"])
    subset = tmp_path / "subset.csv"
    with open(subset, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    args = ["evaluate", "--task", "localization", "--landmarks", str(subset), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_hands"] == 2 and report["n_joints"] == 10
    assert report["n_detected"] == 10
    assert 0.0 < report["mre_rel"] < 0.15 and report["mre_px"] > 0
    assert report["within_10pct"] <= report["within_20pct"] <= 1.0
    # The do-nothing mean hand answers the same images, worse...
    assert report["baseline_mean_hand"]["n_hands"] == 2
    assert report["baseline_mean_hand"]["mre_rel"] > 2 * report["mre_rel"]
    pairs = CliRunner().invoke(cli, [*args, "--variant", "two-hands"])
    assert pairs.exit_code == 0, pairs.output
    assert json.loads(pairs.stdout)["n_hands"] == 4
    # Generated from the same CSV: half size, turned a quarter clockwise.
    turned = CliRunner().invoke(cli, [*args, "--variant", "scale=0.5, rotation=90"])
    assert turned.exit_code == 0, turned.output
    report = json.loads(turned.stdout)
    assert report["variant"] == "scale=0.5,rotation=90"
    assert report["n_detected"] == 10 and report["mre_rel"] < 0.15
    assert report["baseline_mean_hand"]["n_detected"] == 0  # ...but not turned
    bad = CliRunner().invoke(cli, [*args, "--variant", "rotation=left"])
    assert bad.exit_code == 1 and "rotation needs a number" in bad.output


def test_no_hand_variant_counts_refusals() -> None:
    args = ["evaluate", "--task", "localization", "--variant", "no-hand", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_images"] == 40 and report["n_rejected"] == 40


def test_segmentation_report_excludes_invalid_records(tmp_path: Path, mcp_joints_dir: Path) -> None:
    entries = json.loads((mcp_joints_dir / "manifest.json").read_text())
    val_cases = {
        r.case for r in select_joint_split(read_manifest(mcp_joints_dir / "manifest.json"), "val")
    }
    chosen = [e for e in entries if e["case"] in val_cases][:6]
    # One of the README's annotation errors: both masks drawn on the same bone.
    chosen[5] = {**chosen[5], "upper": chosen[5]["lower"]}
    del chosen[5]["overlap_px"]  # the stated overlap was that of the true masks
    for entry in chosen:
        for key in ("image", "upper", "lower", "background"):
            if entry.get(key):
                entry[key] = str(mcp_joints_dir / entry[key])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(chosen))
    result = CliRunner().invoke(
        cli, ["evaluate", "--task", "segmentation", "--manifest", str(manifest), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_images"] == 5 and report["n_excluded_invalid"] == 1
    assert report["dice_upper"] > 0.9 and report["dice_lower"] > 0.9
    assert "dice_overlap" in report and "overlap_area_ratio_median" in report
    bins = report["by_overlap_size"]
    assert [b["annotated_px"] for b in bins] == ["20-100", "100-400", "400-1000", ">=1000"]
    assert sum(b["n_images"] for b in bins) == report["n_overlapping"]
    baseline = report["baseline_constant_mask"]
    assert baseline["dice_upper"] < report["dice_upper"]


def test_evaluate_usage_errors(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["evaluate", "--task", "localization", "--json"])
    assert missing.exit_code == 2 and "--landmarks" in missing.output
    absent = CliRunner().invoke(
        cli, ["evaluate", "--task", "segmentation", "--manifest", str(tmp_path / "x.json")]
    )
    assert absent.exit_code == 1 and "does not exist" in absent.output


def test_separation_report_with_baselines_realism_and_figures(
    tmp_path: Path, small_manifest: Path
) -> None:
    """The shipped model on a few joints: both baselines, two shift ranges, the Turing test."""
    plots = tmp_path / "plots"
    args = ["evaluate", "--task", "separation", "--manifest", str(small_manifest),
            "--split", "val", "--validation-fraction", "0.5", "--max-images", "3",
            "--realism-steps", "5", "--realism-seed", "3", "--plots", str(plots)]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--realism-repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["masks"] == "annotated" and report["separators"] == [
        "model",
        "trivial",
        "identity",
    ]
    assert list(report["synthetic"]) == ["shifts 1-8 px", "shifts 9-16 px"]
    real = report["real"]
    assert real["n_images"] == 3 and real["trivial"]["overlap_psnr"]["mean"] > 40
    realism = report["realism"]
    assert {"model", "trivial", "identity", "config", "figure"} <= set(realism)
    assert realism["config"]["steps"] == 5 and 0 <= realism["model"]["auc"] <= 1
    assert realism["config"]["seed"] == 3  # a repeat of the test with other draws
    # And without the population confound: the same separators on synthetic overlaps.
    assert set(realism["on_synthetic"]) == {"model", "trivial", "identity"}
    assert all(0 <= part["auc"] <= 1 for part in realism["on_synthetic"].values())
    # Repeated with the next seed: the first repeat is the report above.
    repeats = realism["repeats"]
    assert repeats["seeds"] == [3, 13]
    for part, first in (
        (repeats["real"]["model"], realism["model"]),
        (repeats["on_synthetic"]["identity"], realism["on_synthetic"]["identity"]),
        (repeats["population_floor"], realism["population_floor"]),
    ):
        assert part["per_seed"][0] == first["auc"] and len(part["per_seed"]) == 2
        assert part["min"] <= part["mean"] <= part["max"]
    for name in ("realism_patches.png", "separation_by_overlap.png", "examples.png"):
        assert (plots / name).stat().st_size > 1000
    text = CliRunner().invoke(cli, [*args, "--no-realism"])
    assert text.exit_code == 0, text.output
    assert "overlap psnr" in text.stdout and "realism: skipped" in text.stdout


def test_separation_compares_the_model_with_and_without_the_boundary_blend(
    small_manifest: Path,
) -> None:
    """``--boundary-blend compare``: the same shipped model with each seam step; each leaves
    no seam, the exchange, ``eq1-split`` and ``eq1-offset`` keep the reconstruction, and
    ``eq1-exchange`` reproduces the input inside the overlap."""
    args = ["evaluate", "--task", "separation", "--manifest", str(small_manifest),
            "--split", "val", "--validation-fraction", "0.5", "--max-images", "3",
            "--no-realism", "--boundary-blend", "compare", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["separators"] == [
        "model", "model+poisson", "model+exchange", "model+eq1-exchange", "model+eq1-split",
        "model+eq1-offset", "trivial", "identity"
    ]  # fmt: skip
    synthetic = report["synthetic"]["shifts 1-8 px"]
    plain = synthetic["model"]["seam_ratio"]
    identity = synthetic["identity"]["seam_ratio"]["mean"]
    steps = ("poisson", "exchange", "eq1-exchange", "eq1-split", "eq1-offset")
    for mode in (f"model+{step}" for step in steps):
        blended = synthetic[mode]["seam_ratio"]
        # Each step leaves about the true gradient on the boundary (the identity
        # layers' step is 4x it); the shipped model's own seam may be near 1 already.
        assert blended["n"] == plain["n"] > 0 and 0.8 < blended["mean"] < 1.25 < identity
    real = report["real"]
    kept = real["model+exchange"]["overlap_psnr"]["mean"]
    assert kept == pytest.approx(real["model"]["overlap_psnr"]["mean"], abs=0.05)
    for step in ("eq1-split", "eq1-offset"):
        split = real[f"model+{step}"]["overlap_psnr"]["mean"]
        assert split == pytest.approx(real["model"]["overlap_psnr"]["mean"], abs=0.05)
    assert real["model+eq1-exchange"]["overlap_psnr"]["mean"] > max(kept + 10, 60)


def test_separation_measures_several_named_steps_in_one_run(small_manifest: Path) -> None:
    """``--boundary-blend`` given twice: the model without and with that step only; a
    step mixed with ``compare`` is refused with a clear error."""
    args = ["evaluate", "--task", "separation", "--manifest", str(small_manifest),
            "--split", "val", "--validation-fraction", "0.5", "--max-images", "2",
            "--no-realism", "--json"]  # fmt: skip
    steps = ["--boundary-blend", "off", "--boundary-blend", "eq1-offset"]
    result = CliRunner().invoke(cli, [*args, *steps])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["separators"] == ["model", "model+eq1-offset", "trivial", "identity"]
    mixed = CliRunner().invoke(cli, [*args, "--boundary-blend", "compare", *steps[:2]])
    assert mixed.exit_code != 0 and "several seam steps" in mixed.output


def test_separation_on_the_nodes_path_reports_what_the_predicted_masks_cost(
    small_manifest: Path,
) -> None:
    """``--masks predicted``: the separators get the shipped segmenter's masks as the node
    widens them (the report says how; ``--separation-threshold`` and
    ``--separation-contact-px`` measure another widening); the report adds their overlap
    Dice and the layer PSNR where either overlap is, in JSON and text."""
    args = ["evaluate", "--task", "separation", "--manifest", str(small_manifest),
            "--split", "val", "--validation-fraction", "0.5", "--max-images", "2",
            "--no-realism", "--shift-range", "1", "8", "--masks", "predicted"]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["masks"] == "predicted"
    assert report["separation_masks"] == {
        "threshold": SEPARATION_THRESHOLD,
        "contact_px": SEPARATION_CONTACT_PX,
    }
    outlines = CliRunner().invoke(
        cli, [*args, "--json", "--separation-threshold", "0.5", "--separation-contact-px", "0"]
    )
    assert outlines.exit_code == 0, outlines.output
    assert json.loads(outlines.stdout)["separation_masks"] == {"threshold": 0.5, "contact_px": 0}
    for name in ("model", "identity"):
        part = report["synthetic"]["shifts 1-8 px"][name]
        assert 0 < part["overlap_dice"]["mean"] <= 1
        assert 0 < part["either_overlap_layer_psnr"]["mean"] <= PSNR_CAP_DB
    assert "either_overlap_layer_psnr" not in report["real"]["model"]  # no truth there
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0 and "layer psnr in the true or given overlap" in text.stdout


def test_separation_on_synthetic_overlaps_with_soft_hidden_edges(small_manifest: Path) -> None:
    """``--synthetic-hidden-edge-sigma``: the same synthetic joints composed with a soft
    hidden outline; the identity layers (the composed image) then differ from the hard
    composition's, the report says which was used, and real joints do not change."""
    args = ["evaluate", "--task", "separation", "--manifest", str(small_manifest),
            "--split", "val", "--validation-fraction", "0.5", "--max-images", "3",
            "--no-realism", "--shift-range", "1", "8", "--json"]  # fmt: skip
    reports = []
    for sigma in ("0", "2"):
        result = CliRunner().invoke(cli, [*args, "--synthetic-hidden-edge-sigma", sigma])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    hard, soft = reports
    assert (hard["synthetic_hidden_edge_sigma"], soft["synthetic_hidden_edge_sigma"]) == (0, 2)
    identity = [r["synthetic"]["shifts 1-8 px"]["identity"]["layer_psnr"]["mean"] for r in reports]
    assert identity[0] != pytest.approx(identity[1], abs=1e-3)
    assert hard["real"] == soft["real"]


def test_realism_repeats_are_summarised_by_their_mean_and_range() -> None:
    def report(model: float, floor: float, synthetic: float) -> dict:
        return {
            "method": "...",
            "config": {"seed": 0},
            "model": {"auc": model},
            "population_floor": {"auc": floor},
            "on_synthetic": {"model": {"auc": synthetic}},
        }

    reports = [report(0.7, 0.72, 0.5), report(0.8, 0.74, 0.7)]
    summary = repeats_summary(reports, [5, 6], ["model"])
    assert summary["seeds"] == [5, 6] and list(summary["real"]) == ["model"]
    assert summary["real"]["model"]["mean"] == pytest.approx(0.75)
    assert summary["population_floor"]["max"] == 0.74
    assert summary["on_synthetic"]["model"] == {
        "mean": pytest.approx(0.6), "min": 0.5, "max": 0.7, "per_seed": [0.5, 0.7]
    }  # fmt: skip
    lines = repeats_lines(summary)
    assert lines[0] == (
        "realism over seeds [5, 6], mean (range): model 0.750 (0.700-0.800); "
        "floor 0.730 (0.720-0.740)"
    )
    assert lines[1] == "  on synthetic overlaps: model 0.600 (0.500-0.700)"
    with pytest.raises(ValueError, match="one realism report per seed"):
        repeats_summary([report(0.7, 0.72, 0.5)], [1, 2], ["model"])
    assert "paired" not in summary  # one separator: nothing to pair


def test_a_step_is_paired_seed_by_seed_against_the_model_without_it() -> None:
    def report(model: float, step: float) -> dict:
        return {
            "model": {"auc": model},
            "model+eq1-offset": {"auc": step},
            "identity": {"auc": 0.97},
            "population_floor": {"auc": 0.72},
            "on_synthetic": {n: {"auc": 0.5} for n in ("model", "model+eq1-offset", "identity")},
        }

    reports = [report(0.70, 0.72), report(0.80, 0.81), report(0.75, 0.79)]
    names = ["model", "model+eq1-offset", "identity"]
    summary = repeats_summary(reports, [0, 10, 20], names)
    real = summary["paired"]["real"]
    assert list(real) == ["model+eq1-offset"]  # only the model with a step is paired
    # d = 0.02, 0.01, 0.04: mean 0.02333, sd 0.015275, t(0.95, 2) = 2.919986
    assert real["model+eq1-offset"]["mean"] == pytest.approx(0.023333, abs=1e-6)
    assert real["model+eq1-offset"]["std"] == pytest.approx(0.015275, abs=1e-6)
    assert real["model+eq1-offset"]["upper_95"] == pytest.approx(0.049085, abs=1e-6)
    assert summary["paired"]["on_synthetic"]["model+eq1-offset"]["upper_95"] == 0.0
    lines = repeats_lines(summary)
    assert lines[2] == (
        "  paired against model, real joints: model+eq1-offset +0.0233 "
        "(sd 0.0153, one-sided 95 % bound +0.0491)"
    )
    with pytest.raises(ValueError, match="at least two seeds"):
        paired_difference([0.7], [0.6])
