"""Masks widened by a margin: hand-computed on a single pixel and a strip."""

import pytest
import torch

from blsgan_core.mask_margin import disk, widen_masks


def test_the_disk_of_radius_one_is_the_cross_and_of_two_leaves_out_the_corners() -> None:
    assert torch.equal(disk(0), torch.ones(1, 1))
    assert torch.equal(disk(1), torch.tensor([[0.0, 1, 0], [1, 1, 1], [0, 1, 0]]))
    two = disk(2)
    assert int(two.sum()) == 13  # distance <= 2: 1 + 4 + 4 + 4
    assert two[0, 0] == 0 and two[0, 2] == 1 and two[1, 1] == 1
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="radius_px"):
            disk(bad)  # type: ignore[arg-type]


def test_each_mask_grows_by_the_margin_on_its_own() -> None:
    masks = torch.zeros(1, 2, 5, 7, dtype=torch.bool)
    masks[0, 0, 2, 3] = True  # one pixel
    masks[0, 1, :, 6] = True  # the last column
    wide = widen_masks(masks, 1)
    expected_upper = torch.zeros(5, 7)
    expected_upper[2, 2:5], expected_upper[1:4, 3] = 1, 1
    assert torch.equal(wide[0, 0], expected_upper)
    expected_lower = torch.zeros(5, 7)
    expected_lower[:, 5:] = 1  # the image edge stops it
    assert torch.equal(wide[0, 1], expected_lower)
    assert wide.dtype == torch.float32
    assert torch.equal(widen_masks(masks, 0), masks.float())
    with pytest.raises(ValueError, match="B, n, H, W"):
        widen_masks(masks[0], 1)
