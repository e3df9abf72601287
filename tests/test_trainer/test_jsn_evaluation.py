"""``blsnode evaluate --task jsn``: follow-up pairs registered with and without separation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from blsgan_core.data import ManifestContents
from blsnode.cli.evaluate_jsn import render_jsn
from blsnode.cli.main import cli
from trainer.evaluation.jsn import evaluate_jsn, follow_up_pairs


def test_pairs_are_consecutive_images_of_one_joint(full_manifest: ManifestContents) -> None:
    pairs = follow_up_pairs(full_manifest.records)
    images = Counter(record.case for record in full_manifest.records)
    assert len(pairs) == sum(count - 1 for count in images.values())
    # The README's 823 pairs count every record; the loader drops a few annotation errors.
    assert 800 <= len(pairs) <= 823
    assert all(a.case == b.case and a.image != b.image for a, b in pairs)


def test_identity_layers_equal_no_separation(full_manifest: ManifestContents) -> None:
    """The do-nothing separator (layers = J * M_i) must give exactly the raw registration."""

    def identity(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return (images[:, None] * masks).astype(np.float32)

    report = evaluate_jsn(full_manifest.records, identity, limit=2)
    assert report["n_pairs"] == 2
    assert report["with_separation"]["mse"] == report["without_separation"]["mse"]
    assert report["p_value"] is None and report["lower_with_separation"] == 0


def test_cli_reports_both_conditions_and_the_paired_test(mcp_joints_dir: Path) -> None:
    args = ["evaluate", "--task", "jsn", "--manifest", str(mcp_joints_dir / "manifest.json")]
    result = CliRunner().invoke(cli, [*args, "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_pairs"] == 2 and len(report["pairs"]) == 2
    for condition in ("with_separation", "without_separation"):
        registered = report[condition]["mse"]["mean"]
        # Registration must beat leaving the baseline where it is.
        assert 0 < registered < report[condition]["mse_unregistered"]["mean"]
    assert report["with_separation"]["mse"] != report["without_separation"]["mse"]
    assert 0.0 < report["p_value"] <= 1.0
    assert sum(b["n_pairs"] for b in report["by_overlap"]) == 2
    assert report["model"]["version"]
    assert render_jsn(report).count("mse with") == 1 + len(report["by_overlap"])
