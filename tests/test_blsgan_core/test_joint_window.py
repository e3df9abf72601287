import numpy as np
import pytest

from blsgan_core.joint_window import joint_space_centre, joint_window, window_around


def _joint() -> np.ndarray:
    masks = np.zeros((2, 64, 64), dtype=bool)
    masks[0, 5:30, 10:50] = True  # upper bone
    masks[1, 36:60, 10:50] = True  # lower bone: the gap is rows 30-35
    return masks


def test_the_joint_space_is_the_gap_or_the_overlap() -> None:
    masks = _joint()
    row, col = joint_space_centre(masks)
    assert 30 <= row <= 35 and 25 <= col <= 35
    masks[1, 28:36, 20:30] = True  # now they overlap in rows 28-29, columns 20-29
    row, col = joint_space_centre(masks)
    assert 28 <= row <= 29 and 20 <= col <= 29


def test_an_empty_mask_has_no_joint_space() -> None:
    masks = _joint()
    masks[1] = False
    with pytest.raises(ValueError, match="non-empty"):
        joint_space_centre(masks)


def test_windows_stay_inside_the_image() -> None:
    assert window_around((32.0, 32.0), 16, (64, 64)) == (slice(24, 40), slice(24, 40))
    assert window_around((2.0, 62.0), 16, (64, 64)) == (slice(0, 16), slice(48, 64))
    assert window_around((32.0, 32.0), 16, (64, 64), (-30, 5)) == (slice(0, 16), slice(29, 45))
    assert window_around((5.0, 5.0), 64, (64, 48)) == (slice(0, 64), slice(0, 48))


def test_the_joint_window_centres_the_joint_space_or_the_image() -> None:
    masks = _joint()
    rows, _ = joint_window(masks, 32)
    assert rows.start <= 30 and rows.stop >= 35 and rows.stop - rows.start == 32
    masks[0] = False
    assert joint_window(masks, 32) == (slice(16, 48), slice(16, 48))
