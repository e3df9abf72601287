"""The shipped segmenter on real validation joints (never trained on)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blsgan_core.segment import Segmenter, segment, segment_masks
from blsgan_core.segment.predict import largest_component, masks_from_probabilities
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


def test_each_bone_is_one_solid_region(
    segmenter: Segmenter, validation_joints: list[JointRecord]
) -> None:
    images = np.stack([load_joint(r)[0] for r in validation_joints])
    for masks in segment_masks(images, segmenter):
        for bone in masks:
            assert ndimage.label(bone, structure=np.ones((3, 3)))[1] == 1
            assert np.array_equal(ndimage.binary_fill_holes(bone), bone)


def test_largest_component_drops_specks_and_fills_holes() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:25, 5:25] = True
    mask[12:15, 12:15] = False  # a hole
    mask[30:33, 30:33] = True  # a speck
    cleaned = largest_component(mask)
    expected = np.zeros_like(mask)
    expected[5:25, 5:25] = True
    assert np.array_equal(cleaned, expected)
    assert not largest_component(np.zeros((8, 8), dtype=bool)).any()
    with pytest.raises(ValueError, match="2-D"):
        largest_component(np.zeros((2, 8, 8), dtype=bool))


def test_masks_from_probabilities_is_the_node_rule(
    segmenter: Segmenter, validation_joints: list[JointRecord]
) -> None:
    images = np.stack([load_joint(r)[0] for r in validation_joints[:3]])
    probabilities = segment(images, segmenter)
    for threshold in (0.5, 0.7):
        assert np.array_equal(
            masks_from_probabilities(probabilities, threshold),
            segment_masks(images, segmenter, threshold),
        )
    loose, strict = (masks_from_probabilities(probabilities, t, False) for t in (0.4, 0.7))
    assert not (strict & ~loose).any() and strict.sum() < loose.sum()
    with pytest.raises(ValueError, match="threshold"):
        masks_from_probabilities(probabilities, 1.0)
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        masks_from_probabilities(probabilities[:, :1], 0.5)
