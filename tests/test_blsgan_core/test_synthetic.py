"""Synthetic overlaps: Eq. 1 reproduces them, zero shift reproduces the input, seeded."""

import numpy as np
import pytest
import torch

from blsgan_core.data import JointRecord, load_sample
from blsgan_core.reconstruction import reconstruct
from blsgan_core.synthetic import (
    Shifts,
    SyntheticConfig,
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
