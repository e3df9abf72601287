"""Joint-space centre and bone widths of a crop, on masks whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluation.framing import (
    joint_space_centre,
    measure_crop,
    summarise_framing,
    widest_row,
)


def _bones(gap_top: int, gap_bottom: int, size: int = 64) -> np.ndarray:
    """Upper bone rows [0, gap_top], lower bone rows [gap_bottom, size) over columns 16-47."""
    masks = np.zeros((2, size, size), bool)
    masks[0, : gap_top + 1, 16:48] = True
    masks[1, gap_bottom:, 16:48] = True
    return masks


def test_centre_lies_in_the_gap_or_the_overlap_band() -> None:
    apart = _bones(25, 35)
    assert joint_space_centre(*apart) == pytest.approx((31.5, 30.0))
    overlapping = _bones(40, 30)  # the upper bone reaches below the lower bone's rim
    assert joint_space_centre(*overlapping) == pytest.approx((31.5, 35.0))
    disjoint = np.zeros((2, 64, 64), bool)
    disjoint[0, :20, :10] = True
    disjoint[1, 40:, 50:] = True
    assert joint_space_centre(*disjoint) is None and measure_crop(disjoint) is None
    with pytest.raises(ValueError, match="one shape"):
        joint_space_centre(np.zeros((4, 4), bool), np.zeros((5, 4), bool))


def test_offsets_and_widths_relative_to_the_side() -> None:
    measured = measure_crop(_bones(25, 35))
    assert measured is not None
    assert measured["dy"] == pytest.approx((30.0 - 31.5) / 64)
    assert measured["dx"] == pytest.approx(0.0)
    assert measured["lower_width"] == pytest.approx(32 / 64)
    assert widest_row(np.zeros((3, 3), bool)) == 0
    report = summarise_framing([_bones(25, 35), _bones(5, 9)], "test")
    assert report["n_measured"] == 2
    assert report["centred_fraction"] == pytest.approx(0.5)  # the second sits 24 px high
