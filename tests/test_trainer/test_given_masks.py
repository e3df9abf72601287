"""Masks with moved outlines for training (``given_mask_noise_px``)."""

import numpy as np
import pytest
from scipy import ndimage

from trainer.given_masks import layers_for_given_masks, perturb_outlines, signed_distance


def _disks() -> np.ndarray:
    rows, cols = np.mgrid[:128, :128]
    upper = (rows - 50) ** 2 + (cols - 64) ** 2 < 30**2
    lower = (rows - 90) ** 2 + (cols - 64) ** 2 < 25**2
    return np.stack([upper, lower])


def test_signed_distance_is_positive_inside_and_negative_outside() -> None:
    mask = _disks()[0]
    distance = signed_distance(mask)
    assert distance[mask].min() >= 1 and distance[~mask].max() <= -1
    assert distance[50, 64] == pytest.approx(30, abs=1)


def test_zero_amplitude_returns_the_masks_unchanged() -> None:
    masks = _disks()
    assert np.array_equal(perturb_outlines(masks, 0.0, np.random.default_rng(0)), masks)


def test_outlines_move_by_about_the_amplitude_and_only_near_the_outline() -> None:
    masks = _disks()
    moved = perturb_outlines(masks, 2.0, np.random.default_rng(3))
    again = perturb_outlines(masks, 2.0, np.random.default_rng(3))
    assert np.array_equal(moved, again)  # seeded
    for before, after in zip(masks, moved, strict=True):
        changed = before ^ after
        outline = before ^ ndimage.binary_erosion(before)
        # Mean displacement of a unit-sd field times 2 px: about 1.6 px along the outline.
        assert 0.8 < changed.sum() / outline.sum() < 2.5
        assert np.abs(signed_distance(before)[changed]).max() <= 10
    # The two bones move independently.
    shift_upper = (moved[0] ^ masks[0]).sum() / masks[0].sum()
    shift_lower = (moved[1] ^ masks[1]).sum() / masks[1].sum()
    assert shift_upper != shift_lower


def test_a_mask_the_noise_would_empty_is_kept_and_negative_amplitudes_fail() -> None:
    tiny = np.zeros((1, 32, 32), dtype=bool)
    tiny[0, 16, 16] = True
    # Without the guard about 40 of these 100 draws would empty the one-pixel bone.
    moved = [perturb_outlines(tiny, 3.0, np.random.default_rng(seed)) for seed in range(100)]
    assert all(mask.any() for mask in moved)
    assert sum(np.array_equal(mask, tiny) for mask in moved) >= 20
    with pytest.raises(ValueError, match="amplitude"):
        perturb_outlines(tiny, -1.0, np.random.default_rng(0))


def test_a_given_mask_without_its_bone_expects_the_soft_tissue() -> None:
    true_masks = np.array([[[1, 1, 0, 0]], [[0, 1, 1, 0]]], dtype=bool)
    given = np.array([[[1, 1, 1, 0]], [[0, 0, 1, 1]]], dtype=bool)
    layers = np.array([[[0.6, 0.7, 0, 0]], [[0, 0.8, 0.9, 0]]], dtype=np.float32)
    background = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    expected = np.array([[[0.6, 0.7, 0.3, 0]], [[0, 0.8, 0.9, 0.4]]], dtype=np.float32)
    result = layers_for_given_masks(layers, true_masks, given, background)
    # The upper mask wrongly reaches pixel 2, the lower pixel 3: soft tissue there; the
    # lower bone's pixel 1, left out of its given mask, keeps its true value.
    assert np.array_equal(result, expected)
