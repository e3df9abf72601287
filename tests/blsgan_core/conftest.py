"""Fixtures of the science tests: the real manifest read once, and a few real joints."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.data import JointRecord, ManifestContents, read_manifests


@pytest.fixture(scope="session")
def joint_manifest(mcp_joints_dir: Path) -> ManifestContents:
    """Every record of the real manifest, validated (about 3 s, done once)."""
    return read_manifests(mcp_joints_dir / "manifest.json")


@pytest.fixture(scope="session")
def overlapping_joints(joint_manifest: ManifestContents) -> list[JointRecord]:
    """Three real joints whose bones overlap by at least 100 px (different cases)."""
    chosen: dict[str, JointRecord] = {}
    for record in joint_manifest.records:
        if record.overlap_px >= 100 and record.case not in chosen:
            chosen[record.case] = record
        if len(chosen) == 3:
            break
    return list(chosen.values())


@pytest.fixture(scope="session")
def separate_joints(joint_manifest: ManifestContents) -> list[JointRecord]:
    """Three real joints whose masks do not intersect (different cases)."""
    chosen: dict[str, JointRecord] = {}
    for record in joint_manifest.records:
        if record.overlap_px == 0 and record.case not in chosen:
            chosen[record.case] = record
        if len(chosen) == 3:
            break
    return list(chosen.values())
