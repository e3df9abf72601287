"""Segmentation measured on turned, mirrored and inverted crops (annotation changed alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.segment import load_segmenter
from trainer.evaluation.segmentation import VARIANTS, evaluate_segmentation
from trainer.frontend.joint_data import read_manifest, valid_split


def test_variants_keep_the_annotation_aligned(mcp_joints_dir: Path) -> None:
    records = valid_split(read_manifest(mcp_joints_dir / "manifest.json"))[1][:3]
    model = load_segmenter()
    for variant in VARIANTS:
        report = evaluate_segmentation(records, model, variant)
        assert report["variant"] == variant
        # Masks turned with the image: a misaligned annotation would fall far below.
        assert report["dice_upper"] > 0.93 and report["dice_lower"] > 0.93, variant
    with pytest.raises(ValueError, match="variant"):
        evaluate_segmentation(records, model, "upside down")
