"""The shipped segmenter on real validation joints (never trained on)."""

from __future__ import annotations

import numpy as np

from blsgan_core.segment import Segmenter, segment_masks
from trainer.evaluation.segmentation import dice
from trainer.frontend.joint_data import JointRecord, load_joint

# The validation mean is higher (docs/frontend.md); a bound for eight joints.
MIN_DICE = 0.9


def test_bone_masks_match_the_annotation(
    segmenter: Segmenter, validation_joints: list[JointRecord]
) -> None:
    loaded = [load_joint(r) for r in validation_joints]
    masks = segment_masks(np.stack([image for image, _ in loaded]), segmenter)
    upper = [dice(m[0], truth[0]) for m, (_, truth) in zip(masks, loaded, strict=True)]
    lower = [dice(m[1], truth[1]) for m, (_, truth) in zip(masks, loaded, strict=True)]
    assert np.mean(upper) > MIN_DICE and np.mean(lower) > MIN_DICE
    # Overlap is allowed and found where the annotation has it.
    assert any((m[0] & m[1]).sum() > 0 for m in masks)


def test_upper_bone_lies_above_lower_bone(
    segmenter: Segmenter, validation_joints: list[JointRecord]
) -> None:
    images = np.stack([load_joint(r)[0] for r in validation_joints])
    for masks in segment_masks(images, segmenter):
        upper_rows, lower_rows = np.nonzero(masks[0])[0], np.nonzero(masks[1])[0]
        assert upper_rows.size > 1000 and lower_rows.size > 1000
        assert upper_rows.mean() + 40 < lower_rows.mean()
