"""The node's masks and layers do not depend on the source's grey scale (real crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blsgan_core.model import load_model
from blsgan_core.registry import SHIPPED_WEIGHTS_DIR, ModelRegistry
from blsgan_core.segment import load_segmenter
from trainer.evaluation.grey_sweep import TRANSFORMS, grey_sweep
from trainer.frontend.joint_data import load_joint, read_manifest, valid_split

# Tolerances against the unmodified crop (the whole validation split is in docs/frontend.md).
MIN_MASK_AGREEMENT = 0.98  # Dice of the masks with those of the unmodified crop
MAX_DICE_LOSS = 0.015  # per-bone Dice against the annotation
MAX_LAYER_MAD = 0.005  # mean |layer difference| inside the bones, grey range 1


def test_windows_gammas_and_inversion_change_little(mcp_joints_dir: Path) -> None:
    records = valid_split(read_manifest(mcp_joints_dir / "manifest.json"))[1]
    overlapping = sorted(records, key=lambda r: -r.overlap_px)[:2]
    loaded = [load_joint(r) for r in overlapping]
    blsgan = ModelRegistry(SHIPPED_WEIGHTS_DIR, None).promoted("blsgan")
    assert blsgan is not None
    report = grey_sweep(
        np.stack([image for image, _ in loaded]),
        np.stack([masks for _, masks in loaded]),
        load_segmenter(),
        load_model(blsgan.path),
        with_baseline=False,
    )
    rows = report["transforms"]["harmonised"]
    assert set(rows) == {"unmodified", *TRANSFORMS}
    plain = rows.pop("unmodified")
    for name, row in rows.items():
        assert row["mask_agreement"] >= MIN_MASK_AGREEMENT, name
        assert row["layer_mad"] <= MAX_LAYER_MAD, name
        for bone in ("dice_upper", "dice_lower"):
            assert row[bone] >= plain[bone] - MAX_DICE_LOSS, (name, bone)
