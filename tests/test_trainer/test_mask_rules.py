"""Mask rules chosen on training joints and reported on validation joints."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.segment import load_segmenter
from trainer.evaluation.mask_rules import NODE_RULE, RULES, choose_rule, rules_table
from trainer.evaluation.segmentation import evaluate_segmentation
from trainer.frontend.joint_data import read_manifest, valid_split
from trainer.frontend.train_segmenter import selection_score


def overlapping_first(records: list, count: int) -> list:
    return sorted(records, key=lambda r: -r.overlap_px)[:count]


@pytest.fixture(scope="module")
def report(mcp_joints_dir: Path) -> dict:
    train, val, _ = valid_split(read_manifest(mcp_joints_dir / "manifest.json"))
    return choose_rule(load_segmenter(), overlapping_first(train, 2), overlapping_first(val, 2))


def test_every_rule_on_both_sides_and_the_choice_uses_train_only(report: dict) -> None:
    names = {rule.name for rule in RULES}
    assert set(report["train"]["rules"]) == names == set(report["val"]["rules"])
    scores = {name: selection_score(r) for name, r in report["train"]["rules"].items()}
    assert scores[report["chosen_on_train"]] == min(scores.values())
    # Thresholds really differ: the overlap shrinks as the threshold rises.
    ratios = [report["val"]["rules"][rule.name]["overlap_area_ratio_pooled"] for rule in RULES[:4]]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] > ratios[-1]
    assert report["val"]["baseline_constant_mask"]["dice_overlap"] is not None
    assert "(node)" in rules_table(report)


def test_node_rule_is_what_the_evaluation_measures(report: dict, mcp_joints_dir: Path) -> None:
    val = overlapping_first(valid_split(read_manifest(mcp_joints_dir / "manifest.json"))[1], 2)
    measured = evaluate_segmentation(val, load_segmenter())
    node = report["val"]["rules"][NODE_RULE.name]
    for key in ("dice_upper", "dice_lower", "dice_overlap", "overlap_area_ratio_median"):
        assert node[key] == pytest.approx(measured[key]), key
