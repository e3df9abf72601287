"""The overlay drawing on generated masks: each part outlined in its colour, overlaps on top."""

from __future__ import annotations

import numpy as np

from dicom_node.derived.segmentation import DISPLAY_COLOURS, BonePart
from dicom_node.web.images import Segment, joint_region, outline, overlay


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2


def test_outline_is_the_border_band_only() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    edge = outline(mask, width=2)
    assert edge[5, 5] and edge[6, 10] and not edge[7, 7] and not edge[0, 0]
    assert edge.sum() == 100 - 36


def test_overlay_draws_each_part_in_its_colour_and_the_overlap_last() -> None:
    shape = (200, 160)
    upper, lower = _disc(shape, (70, 80), 40), _disc(shape, (130, 80), 40)
    segments = [
        Segment("MCP2 L upper", BonePart.UPPER, upper),
        Segment("MCP2 L lower", BonePart.LOWER, lower),
        Segment("MCP2 L overlap", BonePart.OVERLAP, upper & lower),
    ]
    grey = np.full(shape, 100, np.uint8)
    picture = overlay(grey, segments, size=1000)
    assert picture.shape == (*shape, 3)
    for part in BonePart:
        assert (picture == DISPLAY_COLOURS[part]).all(axis=2).sum() > 20, part
    # Where the overlap's outline runs, it is drawn over the bones' outlines.
    overlap_edge = outline(upper & lower)
    assert (picture[overlap_edge] == DISPLAY_COLOURS[BonePart.OVERLAP]).all()
    # Do-nothing baseline: no segment, no colour.
    assert (overlay(grey, [], size=1000) == 100).all()
    # Scaled down for the page, the outlines stay.
    small = overlay(grey, segments, size=100)
    assert max(small.shape[:2]) == 100
    assert (small == DISPLAY_COLOURS[BonePart.UPPER]).all(axis=2).any()


def test_joint_region_is_the_box_of_its_two_bones_with_a_margin() -> None:
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    mask = np.zeros((100, 100), bool)
    mask[40:60, 30:50] = True
    segments = [Segment("MCP3 R upper", BonePart.UPPER, mask)]
    region = joint_region(grey, segments, "MCP3 R", margin=0.25)
    assert region is not None and region.shape == (30, 30)
    assert joint_region(grey, segments, "MCP4 R") is None
