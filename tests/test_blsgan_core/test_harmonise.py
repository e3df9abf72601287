"""Grey-value harmonisation: any increasing grey transform, or an inversion, is undone."""

from __future__ import annotations

import numpy as np
import pytest

from blsgan_core.harmonise import PERCENTILES, REFERENCE, bone_contrast, harmonise, harmonise_batch


def _joint_like(seed: int = 0) -> np.ndarray:
    """A bright vertical 'bone' on a darker, noisy background, finger up."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    bone = np.exp(-(((x - 0.5) / 0.15) ** 2))
    return np.clip(0.2 + 0.5 * bone + 0.05 * y + 0.02 * rng.standard_normal((64, 64)), 0, 1)


@pytest.mark.parametrize(
    "transform",
    [
        lambda x: x**0.6,
        lambda x: x**1.6,
        lambda x: 0.3 + 0.4 * x,  # a wide window
        lambda x: 1000.0 + 3000.0 * x,  # 12-bit stored values, no window
        lambda x: 1.0 / (1.0 + np.exp(-8.0 * (x - 0.5))),  # a sigmoid VOI LUT
    ],
)
def test_increasing_transforms_are_undone(transform) -> None:
    crop = _joint_like()
    difference = np.abs(harmonise(transform(crop)) - harmonise(crop))
    # Between the knots the map is linear, a curved transform leaves a small residue.
    assert difference.max() < 0.02 and difference.mean() < 0.005


def test_an_inverted_crop_is_turned_back() -> None:
    crop = _joint_like()
    assert bone_contrast(crop) > 0 > bone_contrast(1.0 - crop)
    assert np.abs(harmonise(1.0 - crop) - harmonise(crop)).max() < 0.01


def test_output_has_the_reference_statistics_and_is_stable() -> None:
    once = harmonise(_joint_like(1))
    assert once.dtype == np.float32 and once.min() >= 0.0 and once.max() <= 1.0
    assert np.allclose(np.percentile(once, PERCENTILES), REFERENCE, atol=0.01)
    # Harmonising twice (the worker harmonises, the segmenter's prepare again) changes nothing.
    assert np.abs(harmonise(once) - once).max() < 0.005


def test_flat_and_bad_crops() -> None:
    flat = harmonise(np.full((16, 16), 0.7))
    assert np.all(flat == np.float32(REFERENCE[len(REFERENCE) // 2]))
    with pytest.raises(ValueError, match="NaN"):
        harmonise(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        harmonise(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="too small"):
        harmonise(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        harmonise_batch(np.zeros((16, 16)))
    assert harmonise_batch(np.zeros((0, 16, 16))).shape == (0, 16, 16)
