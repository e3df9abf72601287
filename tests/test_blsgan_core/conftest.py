"""Fixtures of the science tests: the real manifest read once, and a few real joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blsgan_core.data import JointRecord, ManifestContents, load_sample, read_manifests
from blsgan_core.model import BLSGANConfig
from blsgan_core.networks.generator import GeneratorConfig
from blsgan_core.networks.reconstructor import ReconstructorConfig
from blsgan_core.networks.supervisor import SupervisorConfig


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


@pytest.fixture
def tiny_config() -> BLSGANConfig:
    """A BLS-GAN config small enough for fast tests on 256 x 256 joints."""
    unet = {"base_channels": 8, "depth": 3}
    return BLSGANConfig(
        generator=GeneratorConfig(backbone_options=unet),
        reconstructor=ReconstructorConfig(channels=(8, 8, 16), convs_per_stage=(1, 1, 1)),
        supervisor=SupervisorConfig(backbone_options=unet, scale=2),
    )


@pytest.fixture(scope="session")
def overlapping_batch(overlapping_joints: list[JointRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(3, 256, 256)`` and masks ``(3, 2, 256, 256)`` of the overlapping joints."""
    samples = [load_sample(record) for record in overlapping_joints]
    return np.stack([s.image for s in samples]), np.stack([s.masks for s in samples])
