"""Synthetic overlaps as segmenter samples: only joints without overlap, exact masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blsgan_core.data import load_sample
from blsgan_core.synthetic import SyntheticConfig
from trainer.frontend.joint_data import read_manifest
from trainer.frontend.synthetic_joints import synthetic_overlaps


def test_only_joints_without_overlap_are_moved_into_one(mcp_joints_dir: Path) -> None:
    records = read_manifest(mcp_joints_dir / "manifest.json")[:40]
    apart = [r for r in records if r.overlap_px == 0]
    assert 0 < len(apart) < len(records)  # both kinds among the first records
    config = SyntheticConfig(min_shift=6, max_shift=8, lateral_jitter=0)
    joints = synthetic_overlaps(records, 2, np.random.default_rng(0), config)
    assert len(joints) == 2 * len(apart)
    for (image, masks), record in zip(joints[::2], apart, strict=True):
        source = load_sample(record)
        assert image.dtype == np.float32 and image.shape == source.image.shape
        assert masks.dtype == np.bool_ and masks.shape == (2, *source.image.shape)
        # 12-16 px of closing: the moved bones overlap, each keeps its size but for
        # the rows it leaves at the crop's edge (continued there).
        assert np.count_nonzero(masks[0] & masks[1]) > 0
        assert not np.array_equal(masks, source.masks)
    again = synthetic_overlaps(records, 2, np.random.default_rng(0), config)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(joints, again, strict=True))


def test_no_synthetic_overlap_when_none_is_asked(mcp_joints_dir: Path) -> None:
    records = read_manifest(mcp_joints_dir / "manifest.json")[:10]
    assert synthetic_overlaps(records, 0, np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="per_joint"):
        synthetic_overlaps(records, -1, np.random.default_rng(0))
