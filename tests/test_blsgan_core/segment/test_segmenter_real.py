"""The shipped segmenter on real validation joints (never trained on)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blsgan_core.mask_thresholds import SEPARATION_CONTACT_PX, SEPARATION_THRESHOLD
from blsgan_core.segment import Segmenter, node_masks, segment, segment_masks
from blsgan_core.segment.predict import (
    fill_holes,
    largest_component,
    masks_from_probabilities,
    separation_masks,
)
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


def test_fill_holes_is_scipys_fill_on_every_kind_of_region() -> None:
    """The fast filling must be ``binary_fill_holes`` exactly: nested rings, holes that
    touch the region's bounding box only diagonally, regions at the image border, noise."""
    rng = np.random.default_rng(23)
    regions = [np.zeros((16, 16), dtype=bool), np.ones((16, 16), dtype=bool)]
    ring = np.zeros((20, 20), dtype=bool)
    ring[2:18, 2:18], ring[5:15, 5:15], ring[8:12, 8:12] = True, False, True  # island in hole
    diagonal = np.zeros((9, 9), dtype=bool)
    diagonal[[0, 1, 1, 2], [1, 0, 2, 1]] = True  # a one-pixel hole closed 4-connected only
    regions += [ring, ring[2:, 2:], diagonal, np.pad(diagonal, 3)]
    for _ in range(60):
        regions.append(ndimage.binary_opening(rng.random((64, 48)) < rng.uniform(0.3, 0.8)))
    for region in regions:
        assert np.array_equal(fill_holes(region), ndimage.binary_fill_holes(region))
    assert sum(not np.array_equal(fill_holes(r), r) for r in regions) >= 10  # holes were there


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


def test_separation_masks_widen_only_towards_the_other_bone_by_hand() -> None:
    probabilities = np.zeros((1, 2, 40, 30), dtype=np.float32)
    probabilities[0, 0, 2:10, 2:28] = 0.9  # upper bone, sure
    probabilities[0, 0, 10:15, 2:28] = 0.05  # and unsure below it, across the whole width
    probabilities[0, 1, 12:38, 2:10] = 0.9  # lower bone, under the left part only
    outlines = masks_from_probabilities(probabilities, 0.5)
    widened = separation_masks(probabilities, outlines, threshold=0.02, contact_px=2)
    expected = outlines.copy()
    # Within 2 steps (4-connected) of the lower bone's outline (rows 12-37, columns 2-9).
    expected[0, 0, 10, 2:10] = True
    expected[0, 0, 11, 2:11] = True
    expected[0, 0, 12:15, 2:12] = True
    assert np.array_equal(widened, expected)
    # Over the other bone only: its unsure rows there (12-14) do not touch the upper
    # outline (rows 10-11 lie beside the lower bone), an island, so nothing is added.
    over = separation_masks(probabilities, outlines, threshold=0.02, contact_px=0)
    assert np.array_equal(over, outlines)
    # An island: unsure pixels of the upper bone next to the lower one, across a gap.
    island = probabilities.copy()
    island[0, 0, 10:15] = 0.0
    island[0, 0, 16:18, 2:12] = 0.05
    island_outlines = masks_from_probabilities(island, 0.5)
    assert np.array_equal(separation_masks(island, island_outlines, 0.02, 2), island_outlines)
    # A bone without an outline gets no mask, however sure the widening would be.
    no_upper = probabilities.copy()
    no_upper[0, 0] = np.where(no_upper[0, 0] > 0.5, 0.3, no_upper[0, 0])
    no_upper_outlines = masks_from_probabilities(no_upper, 0.5)
    assert not separation_masks(no_upper, no_upper_outlines, 0.02, 2)[0, 0].any()
    assert np.array_equal(separation_masks(probabilities, outlines, threshold=0.5), outlines)
    assert np.array_equal(separation_masks(probabilities, outlines, threshold=0.1), outlines)
    with pytest.raises(ValueError, match="contact_px"):
        separation_masks(probabilities, outlines, contact_px=-1)
    with pytest.raises(ValueError, match="must match"):
        separation_masks(probabilities, outlines[:, :, :20])


def test_the_node_separates_with_masks_widened_towards_the_other_bone(
    segmenter: Segmenter, validation_joints: list[JointRecord]
) -> None:
    images = np.stack([load_joint(r)[0] for r in validation_joints])
    probabilities = segment(images, segmenter)
    found = node_masks(images, segmenter)
    assert np.array_equal(found.outlines, segment_masks(images, segmenter))
    assert np.array_equal(
        found.for_separation,
        separation_masks(
            probabilities, found.outlines, SEPARATION_THRESHOLD, SEPARATION_CONTACT_PX
        ),
    )
    added = found.for_separation & ~found.outlines
    assert added.sum() > 0 and not (found.outlines & ~found.for_separation).any()
    assert not (added & ~masks_from_probabilities(probabilities, SEPARATION_THRESHOLD)).any()
    for image in range(len(images)):
        for bone in range(2):
            other = found.outlines[image, 1 - bone]
            steps = ndimage.distance_transform_cdt(~other, metric="taxicab")
            assert steps[added[image, bone]].max(initial=0) <= SEPARATION_CONTACT_PX
            regions = ndimage.label(found.for_separation[image, bone], np.ones((3, 3)))[1]
            assert regions == 1
    assert np.array_equal(node_masks(images, segmenter, 0.5).for_separation, found.outlines)
