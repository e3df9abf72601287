"""Mask shapes in DICOM pixel coordinates: GSPS outlines and the SR's convex regions."""

from __future__ import annotations

import numpy as np

from dicom_node.derived.outlines import bounding_box, convex_region, mask_outlines


def test_mask_outlines_are_closed_pixel_coordinates_around_the_mask() -> None:
    mask = np.zeros((40, 60), bool)
    mask[10:20, 5:25] = True  # rows 10-19, columns 5-24
    (outline,) = mask_outlines(mask)
    np.testing.assert_array_equal(outline[0], outline[-1])
    # (column, row) with pixel centres at index + 0.5: the box's border band.
    assert 5.0 <= outline[:, 0].min() <= 5.5 and 24.5 <= outline[:, 0].max() <= 25.0
    assert 10.0 <= outline[:, 1].min() <= 10.5 and 19.5 <= outline[:, 1].max() <= 20.0
    assert mask_outlines(np.zeros((40, 60), bool)) == []
    edge = np.zeros((10, 10), bool)
    edge[0:5, 0:5] = True  # touches the border: still one closed outline
    (closed,) = mask_outlines(edge)
    np.testing.assert_array_equal(closed[0], closed[-1])


def test_convex_region_encloses_both_masks_by_their_pixel_centres() -> None:
    upper = np.zeros((40, 60), bool)
    upper[5:10, 20:30] = True  # rows 5-9, columns 20-29
    lower = np.zeros((40, 60), bool)
    lower[15, 40] = True  # one pixel away from the first: the hull spans the gap
    polygon = convex_region(upper, lower)
    assert polygon is not None and polygon.dtype == np.float32
    np.testing.assert_array_equal(polygon[0], polygon[-1])
    # The box's corner (29.5, 9.5) lies inside the triangle towards the lone pixel.
    corners = {tuple(point) for point in polygon[:-1].tolist()}
    assert corners == {(20.5, 5.5), (29.5, 5.5), (40.5, 15.5), (20.5, 9.5)}
    assert len(polygon) == 5
    assert convex_region(np.zeros((5, 5), bool)) is None
    line = np.zeros((5, 5), bool)
    line[2, 1:4] = True  # no area
    assert convex_region(line) is None


def test_a_window_around_the_pixels_gives_the_same_shapes_in_grid_coordinates() -> None:
    upper = np.zeros((40, 60), bool)
    upper[5:10, 20:30] = True
    lower = np.zeros((40, 60), bool)
    lower[8:16, 25:41] = True
    window = (slice(4, 20), slice(18, 45))
    assert bounding_box(upper, window) == bounding_box(upper) == (5, 9, 20, 29)
    for found, whole in zip(mask_outlines(lower, window), mask_outlines(lower), strict=True):
        np.testing.assert_array_equal(found, whole)
    np.testing.assert_array_equal(
        convex_region(upper, lower, window=window), convex_region(upper, lower)
    )
    assert bounding_box(upper, (slice(0, 0), slice(0, 0))) is None
