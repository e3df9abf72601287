"""``blsnode evaluate --task jsn``: follow-up pairs registered with and without separation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from blsgan_core.data import JointSample, ManifestContents, load_sample
from blsgan_core.registration import RigidRegistration
from blsnode.cli.evaluate_jsn import render_jsn
from blsnode.cli.main import cli
from trainer.evaluation.jsn import bone_mse, evaluate_jsn, follow_up_pairs


def _identity(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return (images[:, None] * masks).astype(np.float32)


def test_pairs_are_consecutive_images_of_one_joint(full_manifest: ManifestContents) -> None:
    pairs = follow_up_pairs(full_manifest.records)
    images = Counter(record.case for record in full_manifest.records)
    assert len(pairs) == sum(count - 1 for count in images.values())
    # The README's 823 pairs count every record; the loader drops a few annotation errors.
    assert 800 <= len(pairs) <= 823
    assert all(a.case == b.case and a.image != b.image for a, b in pairs)


def test_identity_layers_equal_no_separation(full_manifest: ManifestContents) -> None:
    """The do-nothing separator (layers = J * M_i) must give exactly the raw registration."""
    report = evaluate_jsn(full_manifest.records, _identity, limit=2)
    assert report["n_pairs"] == 2
    for kind in ("mse", "bone_mse"):
        assert report["with_separation"][kind] == report["without_separation"][kind]
        # Smoothed identity layers are the smoothing control itself.
        assert report["with_separation_smoothed"][kind] == report["controls"]["smoothed"][kind]
    assert report["p_value"] is None and report["lower_with_separation"] == 0
    assert report["bone_mse_tests"]["separated_vs_raw"]["p_value"] is None
    assert report["bone_mse_tests"]["separated_smoothed_vs_smoothed"]["p_value"] is None


def _moved(sample: JointSample, dx: float, dy: float) -> JointSample:
    """The whole joint shifted by (dx, dy) px: a follow-up with a known motion."""

    def shift(array: np.ndarray, order: int) -> np.ndarray:
        return ndimage.shift(array.astype(np.float32), (dy, dx), order=order)

    return JointSample(
        image=shift(sample.image, 3),
        upper=shift(sample.upper, 0) > 0.5,
        lower=shift(sample.lower, 0) > 0.5,
        background=None,
        overlap_px=sample.overlap_px,
    )


def test_bone_mse_judges_the_motion_on_the_raw_image(full_manifest: ManifestContents) -> None:
    """The right motion scores far below no motion and a wrong one, whatever was registered."""
    record = next(r for r in full_manifest.records if r.overlap_px >= 100)
    baseline = load_sample(record)
    follow_up = _moved(baseline, 3.0, -2.0)

    def error(dx: float, dy: float) -> float:
        motion = RigidRegistration(dx, dy, 0.0, (128.0, 128.0), float("nan"), float("nan"))
        return bone_mse(motion, baseline, follow_up, channel=1)

    right = error(3.0, -2.0)
    assert right < error(0.0, 0.0) / 10
    assert right < error(4.0, -2.0) / 3


def test_interrupted_runs_resume_from_the_pairs_file(
    full_manifest: ManifestContents, tmp_path: Path
) -> None:
    pairs_file = tmp_path / "pairs.jsonl"
    first = evaluate_jsn(full_manifest.records, _identity, limit=1, resume_file=pairs_file)

    def refuse(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        raise AssertionError("a resumed pair must not be separated again")

    again = evaluate_jsn(full_manifest.records, refuse, limit=1, resume_file=pairs_file)
    assert again["resumed_pairs"] == 1 and len(pairs_file.read_text().splitlines()) == 1
    assert again["pairs"] == first["pairs"]
    with pytest.raises(AssertionError, match="resumed"):
        evaluate_jsn(full_manifest.records, refuse, limit=2, resume_file=pairs_file)


def test_cli_reports_both_conditions_controls_and_the_paired_tests(mcp_joints_dir: Path) -> None:
    args = ["evaluate", "--task", "jsn", "--manifest", str(mcp_joints_dir / "manifest.json")]
    result = CliRunner().invoke(cli, [*args, "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_pairs"] == 2 and len(report["pairs"]) == 2
    for part in (report["with_separation"], report["without_separation"]):
        # Registration must beat leaving the baseline where it is, on both errors.
        assert 0 < part["mse"]["mean"] < part["mse_unregistered"]["mean"]
        assert 0 < part["bone_mse"]["mean"] < report["controls"]["no_motion"]["bone_mse"]["mean"]
    assert report["with_separation"]["mse"] != report["without_separation"]["mse"]
    assert 0.0 < report["p_value"] <= 1.0
    assert set(report["bone_mse_tests"]) == {
        "separated_vs_raw",
        "separated_vs_smoothed",
        "separated_vs_overlap_excluded",
        "separated_vs_no_motion",
        "separated_smoothed_vs_smoothed",
    }
    assert set(report["mse_tests"]) == {
        "separated_vs_raw",
        "separated_vs_smoothed",
        "separated_vs_overlap_excluded",
        "separated_smoothed_vs_smoothed",
    }
    assert report["controls"]["smoothed"]["mse"]["n"] == 2
    assert sum(b["n_pairs"] for b in report["by_overlap"]) == 2
    assert report["model"]["version"]
    assert render_jsn(report).count("bone_mse with") == 1 + len(report["by_overlap"])


def test_resume_runs_again_pairs_recorded_without_a_newer_condition(
    full_manifest: ManifestContents, tmp_path: Path
) -> None:
    """A pairs file from before ``separated_smoothed`` existed is completed, not misread."""
    pairs_file = tmp_path / "pairs.jsonl"
    evaluate_jsn(full_manifest.records, _identity, limit=1, resume_file=pairs_file)
    line = json.loads(pairs_file.read_text())
    for kind in ("mse", "mse_unregistered", "bone_mse"):
        del line[kind]["separated_smoothed"]
    pairs_file.write_text(json.dumps(line) + "\n")
    again = evaluate_jsn(full_manifest.records, _identity, limit=1, resume_file=pairs_file)
    assert again["resumed_pairs"] == 0
    assert again["with_separation_smoothed"]["mse"]["n"] == 1
