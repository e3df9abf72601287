"""Crop geometry: bearings, affine round trips, rotation sign, un-crop onto the source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage

from blsgan_core.crops import (
    CropGeometry,
    bearing_deg,
    bearing_vector,
    crop,
    crop_joints,
    crop_side,
    uncrop,
    uncrop_mask,
    warp,
)


def test_bearing_convention_up_is_zero_clockwise_positive() -> None:
    np.testing.assert_allclose(bearing_vector(0), [0, -1], atol=1e-12)
    np.testing.assert_allclose(bearing_vector(90), [1, 0], atol=1e-12)
    np.testing.assert_allclose(bearing_vector(180), [0, 1], atol=1e-12)
    assert bearing_deg(1, 0) == pytest.approx(90)
    assert bearing_deg(-1, 0) == pytest.approx(-90)
    for angle in (-170.0, -45.0, 0.0, 33.0, 120.0):
        assert bearing_deg(*bearing_vector(angle)) == pytest.approx(angle)
    with pytest.raises(ValueError, match="zero-length"):
        bearing_deg(0, 0)


def test_affine_round_trip_and_centre() -> None:
    geometry = CropGeometry(412.3, 733.9, 300.0, angle_deg=-37.0, size=256)
    points = np.array([[0.0, 0.0], [255.0, 0.0], [17.5, 200.25], [127.5, 127.5]])
    np.testing.assert_allclose(geometry.to_crop(geometry.to_source(points)), points, atol=1e-9)
    np.testing.assert_allclose(geometry.to_source(np.array([127.5, 127.5])), [412.3, 733.9])
    # The crop's width spans side_px source pixels.
    left, right = geometry.to_source(np.array([[0.0, 127.5], [256.0, 127.5]]))
    assert np.linalg.norm(right - left) == pytest.approx(300.0)
    assert np.allclose(np.array(geometry.as_dict()["matrix"]), geometry.matrix)


def test_corners_are_the_crop_square_on_the_source() -> None:
    geometry = CropGeometry(412.3, 733.9, 300.0, angle_deg=-37.0, size=256)
    corners = geometry.corners
    sides = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    np.testing.assert_allclose(sides, 300.0)  # a square of side_px, in order around it
    np.testing.assert_allclose(corners.mean(axis=0), [412.3, 733.9])
    upright = CropGeometry(100.0, 50.0, 20.0, size=20).corners
    np.testing.assert_allclose(upright, [[90, 40], [110, 40], [110, 60], [90, 60]], atol=1e-9)


def test_rotation_sign_turns_the_axis_up() -> None:
    # A bright bar from the centre along bearing 30 degrees (up and to the right).
    source = np.zeros((300, 300), np.float32)
    direction = bearing_vector(30.0)
    for t in np.linspace(0, 100, 400):
        x, y = np.array([150.0, 150.0]) + t * direction
        source[round(y), round(x)] = 1.0
    source = ndimage.gaussian_filter(source, 1.0)
    turned = crop(source, CropGeometry(150.0, 150.0, 256.0, angle_deg=30.0, size=256))
    rows, cols = np.nonzero(turned > 0.5 * turned.max())
    assert rows.mean() < 127.5 - 30  # the bar now points up from the centre...
    assert abs(cols.mean() - 127.5) < 2.0  # ...along the vertical centre line
    wrong = crop(source, CropGeometry(150.0, 150.0, 256.0, angle_deg=-30.0, size=256))
    assert abs(np.nonzero(wrong > 0.5 * wrong.max())[1].mean() - 127.5) > 20


def test_uncrop_mask_returns_it_within_one_pixel_at_the_border() -> None:
    rng = np.random.default_rng(3)
    shape = (500, 600)
    blob = ndimage.gaussian_filter(rng.random(shape), 12) > 0.5
    window = np.zeros(shape, bool)
    window[150:350, 200:420] = True
    mask = blob & window  # well inside the crop's footprint
    geometry = CropGeometry(310.0, 250.0, 262.0, angle_deg=23.0, size=256)
    cropped = crop(mask.astype(np.float32), geometry) >= 0.5
    restored = uncrop_mask(cropped, geometry, shape)
    wrong = restored != mask
    near_border = ndimage.distance_transform_edt(mask) <= 1.5
    near_border |= ndimage.distance_transform_edt(~mask) <= 1.5
    assert wrong.sum() > 0  # interpolation really happened
    assert not np.any(wrong & ~near_border)
    assert restored.sum() == pytest.approx(mask.sum(), rel=0.03)


def test_uncrop_outside_the_footprint_is_fill_and_off_image_is_empty() -> None:
    geometry = CropGeometry(50.0, 60.0, 40.0, angle_deg=10.0, size=32)
    out = uncrop(np.ones((32, 32), np.float32), geometry, (200, 200), fill=0.0)
    assert out[60, 50] == pytest.approx(1.0)
    assert out[150, 150] == 0.0 and out[0, 199] == 0.0
    far = CropGeometry(5000.0, 5000.0, 40.0, size=32)
    assert not uncrop(np.ones((32, 32), np.float32), far, (200, 200)).any()
    with pytest.raises(ValueError, match="does not match"):
        uncrop(np.ones((16, 16), np.float32), geometry, (200, 200))


def test_uncrop_mask_equals_thresholded_uncrop_even_across_the_image_edge() -> None:
    rng = np.random.default_rng(5)
    probabilities = ndimage.gaussian_filter(rng.random((64, 64)), 3).astype(np.float32)
    probabilities = (probabilities - probabilities.min()) / np.ptp(probabilities)
    # A bone's mask covers part of the crop; only the source under it (and one pixel
    # around) is sampled, with the same answer.
    bone = (probabilities > 0.7).astype(np.float32)
    assert 0 < bone.mean() < 0.3
    for geometry in (
        CropGeometry(120.0, 90.0, 80.0, angle_deg=-31.0, size=64),  # inside
        CropGeometry(8.0, 190.0, 90.0, angle_deg=47.0, size=64),  # over two edges
        CropGeometry(900.0, 900.0, 90.0, size=64),  # off the image
        CropGeometry(75.3, 100.1, 150.0, angle_deg=101.0, size=64),  # enlarged
    ):
        for array in (probabilities, bone):
            mask = uncrop_mask(array, geometry, (200, 150))
            assert mask.dtype == np.bool_ and mask.shape == (200, 150)
            expected = uncrop(array, geometry, (200, 150)) >= 0.5
            assert np.array_equal(mask, expected)
    assert not uncrop_mask(np.zeros((64, 64), np.float32), geometry, (200, 150)).any()
    assert uncrop_mask(probabilities, CropGeometry(60.0, 60.0, 80.0, size=64), (200, 150)).any()
    with pytest.raises(ValueError, match="does not match"):
        uncrop_mask(np.ones((16, 16), bool), geometry, (200, 150))


def test_warp_antialiases_when_shrinking() -> None:
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (64, 256))  # 1-px columns
    shrink = np.diag([8.0, 8.0, 1.0])
    smooth = warp(stripes, shrink, (8, 8))
    assert np.abs(smooth[2:-2, 2:-2] - 0.5).max() < 0.1  # the stripes' mean grey
    aliased = warp(stripes, shrink, (8, 8), antialias=False)
    assert np.abs(aliased[2:-2, 2:-2] - 0.5).min() > 0.4  # every sample hits one stripe


@dataclass(frozen=True)
class _Joint:
    x: float
    y: float
    axis_deg: float


def test_crop_joints_and_crop_side() -> None:
    image = np.random.default_rng(0).random((400, 400)).astype(np.float32)
    crops, geometries = crop_joints(image, [_Joint(100, 120, 5.0), _Joint(220, 180, -8.0)], 120)
    assert crops.shape == (2, 256, 256) and crops.dtype == np.float32
    assert [g.angle_deg for g in geometries] == [5.0, -8.0]
    assert crop_side(200.0) == pytest.approx(240.0)
    assert crop_side(200.0, multiple=1.5) == pytest.approx(300.0)
    assert crop_side(None, pixel_spacing_mm=0.15, side_mm=24.0) == pytest.approx(160.0)
    with pytest.raises(ValueError, match="pixel spacing"):
        crop_side(200.0, side_mm=24.0)
    with pytest.raises(ValueError, match="mcp2_mcp3_px"):
        crop_side(0.0)
    with pytest.raises(ValueError, match="side_px"):
        CropGeometry(0.0, 0.0, -1.0)


def test_antialiased_warp_of_a_window_equals_filtering_everything() -> None:
    rng = np.random.default_rng(5)
    image = ndimage.gaussian_filter(rng.random((400, 500)), 1.0).astype(np.float32)
    geometry = CropGeometry(260.0, 180.0, 120.0, angle_deg=17.0, size=32)  # scale 3.75
    windowed = crop(image, geometry)
    reference = warp(
        ndimage.gaussian_filter(image, (3.75 - 1) / 2), geometry.matrix, (32, 32), antialias=False
    )
    np.testing.assert_allclose(windowed, reference, atol=1e-4)
    outside = CropGeometry(5000.0, 5000.0, 120.0, size=32)
    assert not crop(image, outside, fill=0.0).any()


def test_block_averaged_overview_matches_gaussian_anti_aliasing() -> None:
    rng = np.random.default_rng(6)
    image = ndimage.gaussian_filter(rng.random((1200, 900)), 6.0).astype(np.float32)
    image = (image - image.min()) / np.ptp(image)
    overview = np.diag([10.0, 10.0, 1.0])  # 120 x 90 pixels of 10 x 10 source pixels
    overview[:2, 2] = 4.5
    fast = warp(image, overview, (120, 90))
    reference = warp(ndimage.gaussian_filter(image, 4.5), overview, (120, 90), antialias=False)
    assert np.abs(fast - reference)[2:-2, 2:-2].mean() < 0.01
