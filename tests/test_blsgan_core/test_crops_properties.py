"""Crop geometry at every scale and angle: crop, un-crop and compare (property tests).

Scales are source pixels per crop pixel, 0.2 (a crop enlarged five times) to 5 (a crop
of a large radiograph shrunk five times); angles cover the whole turn. Each property
is checked on examples that hypothesis draws, and on the reductions between 1.5x and
2x that once divided by zero.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from blsgan_core.crops import (
    MIN_ANTIALIAS_SCALE,
    CropGeometry,
    affine_scale,
    antialias_sigma,
    block_factor,
    crop,
    uncrop,
    uncrop_mask,
    warp,
)

SIZE = 48
SOURCE_SHAPE = (420, 460)
SCALES = st.floats(min_value=0.2, max_value=5.0)
ANGLES = st.floats(min_value=0.0, max_value=360.0)
OFFSETS = st.floats(min_value=-20.0, max_value=20.0)
# Crop pixels from the centre: a spot of up to 5 crop pixels' sigma stays inside.
SPOT_OFFSETS = st.floats(min_value=-6.0, max_value=6.0)
PROPERTY = settings(max_examples=40, deadline=None)


def _geometry(scale: float, angle: float, dx: float = 0.0, dy: float = 0.0) -> CropGeometry:
    """A crop in the middle of the source (its corners stay inside at every angle)."""
    return CropGeometry(230.0 + dx, 210.0 + dy, scale * SIZE, angle, SIZE)


def _blob(centre: np.ndarray, sigma: float) -> np.ndarray:
    rows, cols = np.mgrid[: SOURCE_SHAPE[0], : SOURCE_SHAPE[1]]
    squared = (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2
    return np.exp(-squared / (2 * sigma**2)).astype(np.float32)


def _centroid(image: np.ndarray) -> np.ndarray:
    weights = np.clip(image - 0.05 * image.max(), 0.0, None)
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()


@pytest.fixture(scope="module")
def smooth_source() -> np.ndarray:
    """Texture smooth enough that bilinear sampling at 5x loses little of it."""
    field = ndimage.gaussian_filter(np.random.default_rng(11).random(SOURCE_SHAPE), 14.0)
    return ((field - field.min()) / np.ptp(field)).astype(np.float32)


@PROPERTY
@given(scale=SCALES, angle=ANGLES, dx=OFFSETS, dy=OFFSETS)
@example(scale=1.7, angle=0.0, dx=0.0, dy=0.0)
def test_points_go_to_the_crop_and_back(scale: float, angle: float, dx: float, dy: float) -> None:
    geometry = _geometry(scale, angle, dx, dy)
    points = np.array([[0.0, 0.0], [SIZE - 1.0, 3.5], [11.25, 40.0], [-5.0, 60.0]])
    np.testing.assert_allclose(geometry.to_crop(geometry.to_source(points)), points, atol=1e-9)
    middle = (SIZE - 1) / 2.0
    np.testing.assert_allclose(geometry.to_source(np.array([middle, middle])), [230 + dx, 210 + dy])
    left, right = geometry.to_source(np.array([[0.0, middle], [float(SIZE), middle]]))
    assert np.linalg.norm(right - left) == pytest.approx(scale * SIZE)
    # The source bearing ``angle`` points up in the crop (towards row 0).
    up = geometry.to_crop(geometry.to_source(np.array([middle, middle])) + _bearing(angle))
    np.testing.assert_allclose(up - middle, [0.0, -1.0 / scale], atol=1e-9)


def _bearing(angle: float) -> np.ndarray:
    radians = math.radians(angle)
    return np.array([math.sin(radians), -math.cos(radians)])


@PROPERTY
@given(scale=SCALES, angle=ANGLES, dx=SPOT_OFFSETS, dy=SPOT_OFFSETS)
@example(scale=1.5001, angle=90.0, dx=0.0, dy=0.0)
@example(scale=1.99, angle=270.0, dx=3.0, dy=-5.0)
def test_a_bright_spot_lands_where_the_geometry_says_and_comes_back(
    scale: float, angle: float, dx: float, dy: float
) -> None:
    geometry = _geometry(scale, angle)
    middle = (SIZE - 1) / 2.0
    in_crop = np.array([middle + dx, middle + dy])
    spot = geometry.to_source(in_crop)
    # At least a source pixel and 1.5 crop pixels wide, so sampling cannot bias its centre.
    sigma = max(1.0, 1.5 * scale)
    cut = crop(_blob(spot, sigma), geometry)
    np.testing.assert_allclose(_centroid(cut), in_crop, atol=0.15)
    back = uncrop(cut, geometry, SOURCE_SHAPE)
    np.testing.assert_allclose(_centroid(back), spot, atol=0.15 * max(1.0, scale))


@PROPERTY
@given(scale=SCALES, angle=ANGLES)
@example(scale=1.6, angle=33.0)
@example(scale=0.2, angle=359.9)
def test_uncrop_of_a_crop_returns_the_source_under_the_footprint(
    smooth_source: np.ndarray, scale: float, angle: float
) -> None:
    geometry = _geometry(scale, angle)
    back = uncrop(crop(smooth_source, geometry), geometry, SOURCE_SHAPE, fill=np.nan)
    inner = CropGeometry(geometry.centre_x, geometry.centre_y, geometry.side_px * 0.8, angle, SIZE)
    inside = uncrop_mask(np.ones((SIZE, SIZE), np.float32), inner, SOURCE_SHAPE)
    assert inside.sum() > 0.5 * (0.8 * scale * SIZE) ** 2
    # What the crop can hold: the source blurred by the anti-aliasing of its reduction.
    sigma = antialias_sigma(scale) if scale > 1.5 else 0.0
    reference = ndimage.gaussian_filter(smooth_source, sigma) if sigma else smooth_source
    error = np.abs(back - reference)[inside]
    assert np.isfinite(error).all()
    assert error.max() < 0.02 + 0.01 * scale


@PROPERTY
@given(scale=SCALES, angle=ANGLES)
@example(scale=1.75, angle=180.0)
def test_a_mask_survives_crop_and_uncrop_up_to_its_border(scale: float, angle: float) -> None:
    geometry = _geometry(scale, angle)
    centre = np.array([geometry.centre_x, geometry.centre_y])
    radius = 0.3 * geometry.side_px
    rows, cols = np.mgrid[: SOURCE_SHAPE[0], : SOURCE_SHAPE[1]]
    # An ellipse, turned, so that a wrong angle or a mirrored axis shows.
    local = np.stack([cols - centre[0], rows - centre[1]])
    turn = math.radians(angle + 25.0)
    u = math.cos(turn) * local[0] + math.sin(turn) * local[1]
    v = -math.sin(turn) * local[0] + math.cos(turn) * local[1]
    mask = (u / radius) ** 2 + (v / (0.5 * radius)) ** 2 <= 1.0
    cut = crop(mask.astype(np.float32), geometry) >= 0.5
    restored = uncrop_mask(cut, geometry, SOURCE_SHAPE)
    border = ndimage.distance_transform_edt(mask) <= 1.0 + scale
    border |= ndimage.distance_transform_edt(~mask) <= 1.0 + scale
    assert not np.any((restored != mask) & ~border)
    assert restored.sum() == pytest.approx(mask.sum(), rel=0.05 + 0.02 * scale)


@PROPERTY
@given(scale=SCALES, angle=ANGLES)
@example(scale=1.5001, angle=0.0)
@example(scale=1.5, angle=1.0)
@example(scale=1.999, angle=45.0)
@example(scale=4.0, angle=0.0)
def test_antialiasing_is_a_gaussian_that_follows_the_scale(
    smooth_source: np.ndarray, scale: float, angle: float
) -> None:
    assert block_factor(scale) >= 1
    assert antialias_sigma(scale) == pytest.approx((scale - 1.0) / 2.0) or scale < 1.0
    noisy = (smooth_source + np.random.default_rng(2).normal(0, 0.2, SOURCE_SHAPE)).astype(
        np.float32
    )
    geometry = _geometry(scale, angle)
    # The crop decides on the scale its matrix has, which a turn may move off the nominal
    # one by a rounding error: at exactly 1.5x the two decide alike only this way.
    actual = affine_scale(geometry.matrix)
    sigma = antialias_sigma(actual) if actual > MIN_ANTIALIAS_SCALE else 0.0
    fast = crop(noisy, geometry)
    blurred = ndimage.gaussian_filter(noisy, sigma) if sigma else noisy
    reference = warp(blurred, geometry.matrix, (SIZE, SIZE), antialias=False)
    # Below a 4x reduction the Gaussian alone blurs (the same numbers up to rounding);
    # from 4x, k x k block means do most of it (close, not equal).
    tolerance = 1e-4 if block_factor(scale) == 1 else 0.01
    assert np.abs(fast - reference).mean() < tolerance


def test_every_reduction_between_1_5x_and_2x_crops_a_whole_hand() -> None:
    image = np.random.default_rng(0).random((900, 700)).astype(np.float32)
    for scale in np.linspace(1.5001, 1.9999, 9):
        out = warp(image, np.diag([scale, scale, 1.0]), (200, 200))
        assert out.shape == (200, 200) and np.isfinite(out).all()
