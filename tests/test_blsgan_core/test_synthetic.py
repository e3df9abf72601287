"""Synthetic overlaps: Eq. 1 reproduces them, zero shift reproduces the input, seeded."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from blsgan_core.data import JointRecord, load_sample
from blsgan_core.reconstruction import reconstruct
from blsgan_core.synthetic import (
    Shifts,
    SyntheticConfig,
    compose_soft_hidden_edges,
    draw_shifts,
    shift_array,
    synthesize_overlap,
    synthesize_with_shifts,
)


def test_eq1_with_the_true_layers_and_k_reproduces_the_image(
    separate_joints: list[JointRecord],
) -> None:
    rng = np.random.default_rng(7)
    for record in separate_joints:
        sample = load_sample(record)
        synthetic = synthesize_overlap(
            sample.image, sample.upper, sample.lower, rng, background=sample.background
        )
        assert synthetic.overlap_px > 0
        assert 0.5 < synthetic.k < 0.95
        masks = torch.from_numpy(synthetic.masks.astype(np.float32))[None]
        composed = reconstruct(torch.from_numpy(synthetic.layers)[None], masks, synthetic.k)
        union = synthetic.upper | synthetic.lower
        assert np.abs(composed[0, 0].numpy() - synthetic.image)[union].max() < 1e-6
        # The layers are the moved source bones, zero outside their masks.
        assert np.all(synthetic.layers[0][~synthetic.upper] == 0)
        # k is the transmittance of the background over the new overlap.
        overlap = synthetic.upper & synthetic.lower
        assert sample.background is not None
        assert synthetic.k == pytest.approx(1 - sample.background[overlap].mean(), abs=1e-6)
        # Outside the moved bones: the soft-tissue background.
        assert np.array_equal(synthetic.image[~union], sample.background[~union])


def test_zero_shift_reproduces_the_input_inside_the_masks(
    separate_joints: list[JointRecord],
) -> None:
    sample = load_sample(separate_joints[0])
    synthetic = synthesize_with_shifts(
        sample.image, sample.upper, sample.lower, Shifts(0, 0), sample.background
    )
    bones = sample.upper | sample.lower
    assert np.array_equal(synthetic.upper, sample.upper)
    assert np.abs(synthetic.image - sample.image)[bones].max() < 1e-6
    assert synthetic.overlap_px == 0


def test_laplace_background_is_computed_when_not_given(
    separate_joints: list[JointRecord],
) -> None:
    sample = load_sample(separate_joints[1])
    given = synthesize_with_shifts(
        sample.image, sample.upper, sample.lower, Shifts(4, 4), sample.background
    )
    computed = synthesize_with_shifts(sample.image, sample.upper, sample.lower, Shifts(4, 4))
    assert computed.k == pytest.approx(given.k, abs=0.02)


def test_source_intersection_is_taken_from_the_upper_mask() -> None:
    image = np.full((16, 8), 0.6, dtype=np.float32)
    upper = np.zeros((16, 8), dtype=bool)
    lower = np.zeros((16, 8), dtype=bool)
    upper[:9, 2:6], lower[8:, 2:6] = True, True  # row 8 in both
    synthetic = synthesize_with_shifts(image, upper, lower, Shifts(0, 0), np.zeros_like(image))
    assert not synthetic.upper[8].any() and synthetic.lower[8, 2:6].all()
    assert np.allclose(synthetic.image[upper | lower], 0.6)


def test_shift_array_repeats_edge_rows_and_zeros_the_sides() -> None:
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    down = shift_array(array, 1, 0)
    assert down[:2].tolist() == [[0, 1, 2], [0, 1, 2]] and down[3].tolist() == [6, 7, 8]
    up_right = shift_array(array, -1, 1)
    assert up_right.tolist() == [[0, 3, 4], [0, 6, 7], [0, 9, 10], [0, 9, 10]]
    with pytest.raises(ValueError, match="larger than the image"):
        shift_array(array, 4, 0)


def test_draws_are_seeded_and_inside_the_configured_ranges() -> None:
    config = SyntheticConfig(min_shift=2, max_shift=5, lateral_jitter=1)
    first = [draw_shifts(np.random.default_rng(3), config) for _ in range(2)]
    assert first[0] == first[1]
    rng = np.random.default_rng(0)
    draws = [draw_shifts(rng, config) for _ in range(200)]
    assert {d.upper_down for d in draws} == {2, 3, 4, 5}
    assert {d.lower_right for d in draws} == {-1, 0, 1}
    with pytest.raises(ValueError, match="min_shift"):
        SyntheticConfig(min_shift=3, max_shift=2)
    with pytest.raises(ValueError, match="lateral_jitter"):
        SyntheticConfig(lateral_jitter=-1)


def _discrete_gaussian_step(sigma: float, rows_inside: np.ndarray) -> np.ndarray:
    """scipy's sampled Gaussian (radius int(4 sigma + 0.5)) summed over a half-plane mask."""
    radius = int(4 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    # Row r of the blurred half-plane "rows >= edge" sums the taps that land at rows >= edge.
    return np.array([kernel[taps >= -depth].sum() for depth in rows_inside])


def test_soft_hidden_edges_on_a_hand_made_overlap() -> None:
    # Upper bone: rows 0-39, lower bone: rows 30-63, full width; both layers 0.5, k 0.75.
    size, sigma, k = 64, 1.5, 0.75
    upper = np.zeros((size, size), dtype=bool)
    upper[:40] = True
    lower = np.zeros((size, size), dtype=bool)
    lower[30:] = True
    layers = np.stack([np.where(upper, 0.5, 0.0), np.where(lower, 0.5, 0.0)]).astype(np.float32)
    composed = compose_soft_hidden_edges(layers, np.stack([upper, lower]), k, sigma)
    # Opacity a = 1 - (1 - 0.5) / 0.75 = 1/3 for both, so J = 1 - 0.75 * (1 - w_u / 3)(1 - w_l / 3).
    rows = np.arange(20, 50)
    depth_lower = rows - 30  # >= 0 inside the lower bone
    depth_upper = 39 - rows  # >= 0 inside the upper bone
    w_lower = np.where(upper[rows, 0], _discrete_gaussian_step(sigma, depth_lower), lower[rows, 0])
    w_upper = np.where(lower[rows, 0], _discrete_gaussian_step(sigma, depth_upper), upper[rows, 0])
    expected = 1 - k * (1 - w_upper / 3) * (1 - w_lower / 3)
    np.testing.assert_allclose(composed[rows, 32], expected, atol=1e-5)
    # Far from the hidden outlines: the layer alone, and Eq. 1's 1 - 0.25 / 0.75 deep inside.
    assert composed[5, 32] == pytest.approx(0.5, abs=1e-6)
    assert composed[60, 32] == pytest.approx(0.5, abs=1e-6)
    assert composed[35, 32] == pytest.approx(1 - 0.25 / 0.75, abs=2e-3)
    # The step across the lower bone's hidden outline is a ramp, not one jump of 0.167.
    assert composed[30, 32] - composed[29, 32] < 0.1
    assert composed[29, 32] > 0.5 + 0.01  # the lower bone's skirt reaches outside its mask


def test_hidden_edge_sigma_keeps_layers_masks_and_k(separate_joints: list[JointRecord]) -> None:
    sample = load_sample(separate_joints[0])
    shifts = Shifts(6, 5, 1, -1)
    sharp = synthesize_with_shifts(
        sample.image, sample.upper, sample.lower, shifts, sample.background
    )
    soft = synthesize_with_shifts(
        sample.image, sample.upper, sample.lower, shifts, sample.background, hidden_edge_sigma=1.5
    )
    np.testing.assert_array_equal(soft.layers, sharp.layers)
    np.testing.assert_array_equal(soft.masks, sharp.masks)
    assert soft.k == sharp.k
    overlap = soft.upper & soft.lower
    # Only near the hidden outlines does the image change, and it gets darker inside the overlap.
    assert soft.image[overlap].mean() < sharp.image[overlap].mean() - 0.01
    union = soft.upper | soft.lower
    far = union & (ndimage.distance_transform_edt(~overlap) > 8)
    np.testing.assert_allclose(soft.image[far], sharp.image[far], atol=1e-5)
    np.testing.assert_array_equal(soft.image[~union], sharp.image[~union])


def test_config_passes_hidden_edge_sigma_and_validates_it(
    separate_joints: list[JointRecord],
) -> None:
    sample = load_sample(separate_joints[1])
    made = [
        synthesize_overlap(
            sample.image,
            sample.upper,
            sample.lower,
            np.random.default_rng(3),
            background=sample.background,
            config=SyntheticConfig(hidden_edge_sigma=sigma),
        )
        for sigma in (0.0, 2.0)
    ]
    assert made[0].shifts == made[1].shifts
    assert not np.allclose(made[0].image, made[1].image)
    with pytest.raises(ValueError, match="hidden_edge_sigma"):
        SyntheticConfig(hidden_edge_sigma=-1.0)


def test_hard_edge_fraction_mixes_both_compositions(separate_joints: list[JointRecord]) -> None:
    """Per overlap, the hard edge with probability ``hard_edge_fraction``; 0 keeps the soft
    config's overlaps exactly, 1 gives the hard composition's images with the same shifts."""
    sample = load_sample(separate_joints[1])

    def made(config: SyntheticConfig, seed: int) -> np.ndarray:
        return synthesize_overlap(
            sample.image,
            sample.upper,
            sample.lower,
            np.random.default_rng(seed),
            background=sample.background,
            config=config,
        ).image

    hard, soft = SyntheticConfig(), SyntheticConfig(hidden_edge_sigma=2.0)
    always = SyntheticConfig(hidden_edge_sigma=2.0, hard_edge_fraction=1.0)
    never = SyntheticConfig(hidden_edge_sigma=2.0, hard_edge_fraction=0.0)
    half = SyntheticConfig(hidden_edge_sigma=2.0, hard_edge_fraction=0.5)
    kinds = []
    for seed in range(12):
        np.testing.assert_array_equal(made(always, seed), made(hard, seed))
        np.testing.assert_array_equal(made(never, seed), made(soft, seed))
        kinds.append(np.array_equal(made(half, seed), made(hard, seed)))
    assert 0 < sum(kinds) < len(kinds)  # both compositions drawn
    with pytest.raises(ValueError, match="hard_edge_fraction"):
        SyntheticConfig(hidden_edge_sigma=2.0, hard_edge_fraction=1.5)
