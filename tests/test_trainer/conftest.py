"""Fixtures of the trainer tests: a small manifest of real joints and one tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blsgan_core.data import ManifestContents, read_manifests
from trainer.config import TrainConfig, load_preset
from trainer.loop import RunResult, train

N_SEPARATE = 10  # joints without overlap: synthetic sources
N_OVERLAPPING = 8  # joints overlapping by >= 20 px: real phase-2 and evaluation joints


@pytest.fixture(scope="session")
def full_manifest(mcp_joints_dir: Path) -> ManifestContents:
    """Every record of the real manifest, validated once (about 3 s)."""
    return read_manifests(mcp_joints_dir / "manifest.json")


@pytest.fixture(scope="session")
def small_manifest(
    tmp_path_factory: pytest.TempPathFactory, mcp_joints_dir: Path, full_manifest: ManifestContents
) -> Path:
    """A manifest of a few real joints (absolute paths), one per case, plus one bad record.

    The bad record is a known annotation error of the shared set (upper mask drawn on the
    lower bone), so every run over this manifest must report and leave it out.
    """
    separate, overlapping, seen = [], [], set()
    for record in full_manifest.records:
        if record.case in seen:
            continue
        if record.overlap_px == 0 and len(separate) < N_SEPARATE:
            separate.append(record)
            seen.add(record.case)
        elif record.overlap_px >= 20 and len(overlapping) < N_OVERLAPPING:
            overlapping.append(record)
            seen.add(record.case)
    raw = json.loads((mcp_joints_dir / "manifest.json").read_text())
    bad_image = full_manifest.rejected[0].image
    bad = next(item for item in raw if item["image"] == bad_image)
    entries = [
        {
            "case": record.case,
            "image": str(record.image),
            "upper": str(record.upper),
            "lower": str(record.lower),
            "background": str(record.background),
            "overlap_px": record.overlap_px,
        }
        for record in [*separate, *overlapping]
    ]
    entries.append(
        {
            key: str(mcp_joints_dir / value)
            if key in {"image", "upper", "lower", "background"}
            else value
            for key, value in bad.items()
        }
    )
    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    """The CI preset."""
    return load_preset("tiny")


@pytest.fixture(scope="session")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, small_manifest: Path, tiny_config: TrainConfig
) -> RunResult:
    """One complete tiny training (both phases) on the small manifest."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return train(tiny_config, [small_manifest], out, device="cpu", show_progress=False)
