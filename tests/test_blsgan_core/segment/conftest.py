"""Fixtures of the segmenter's tests: the shipped weights and validation joints."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.segment import Segmenter, load_segmenter
from trainer.frontend.joint_data import JointRecord, partition_valid, read_manifest, select_split


@pytest.fixture(scope="session")
def segmenter() -> Segmenter:
    """The shipped segmenter."""
    return load_segmenter()


@pytest.fixture(scope="session")
def validation_joints(mcp_joints_dir: Path) -> list[JointRecord]:
    """Eight valid joint images of the segmenter's validation split, overlapping ones first."""
    records = select_split(read_manifest(mcp_joints_dir / "manifest.json"), "val")
    valid, _ = partition_valid(sorted(records, key=lambda r: -r.overlap_px)[:12])
    return valid[:8]
