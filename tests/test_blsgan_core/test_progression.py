"""JSW change by registering each bone's layer: a known move of the metacarpal is found."""

import numpy as np
import pytest
from scipy import ndimage

from blsgan_core.data import JointRecord, load_sample
from blsgan_core.jsw import NoJointSpaceError
from blsgan_core.progression import _zoomed, registered_width_change


def _joint(record: JointRecord) -> tuple[np.ndarray, np.ndarray]:
    sample = load_sample(record)
    masks = np.stack([sample.upper, sample.lower])
    return (sample.image[None] * masks).astype(np.float32), masks


def _follow_up(
    layers: np.ndarray, masks: np.ndarray, lower_down: float, zoom: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The joint at ``zoom`` times the pixel size, metacarpal moved down by ``lower_down``."""
    moved_layers = np.stack([_zoomed(layer, zoom, order=3) for layer in layers])
    moved_masks = np.stack([_zoomed(m.astype(np.float32), zoom, order=1) for m in masks])
    moved_layers[1] = ndimage.shift(moved_layers[1], (lower_down, 0), order=3)
    moved_masks[1] = ndimage.shift(moved_masks[1], (lower_down, 0), order=1)
    return moved_layers, moved_masks >= 0.5


@pytest.mark.parametrize(("lower_down", "zoom"), [(-2.5, 1.0), (1.6, 1.0), (-3.0, 1.12)])
def test_a_known_move_of_the_metacarpal_is_the_change(
    separate_joints: list[JointRecord], lower_down: float, zoom: float
) -> None:
    layers, masks = _joint(separate_joints[1])
    later_layers, later_masks = _follow_up(layers, masks, lower_down, zoom)
    found = registered_width_change(layers, masks, later_layers, later_masks, zoom=zoom)
    # Mask outlines move by whole pixels while the bone moved by a fraction: the outline
    # pulls the registration by up to about 0.3 px (the rest of the error is < 0.05 px).
    assert found.change_px == pytest.approx(lower_down, abs=0.35)
    # The phalanx stayed (up to the zoom about the centre, which the registration undoes).
    assert abs(found.upper.angle_deg) < 0.3


def test_no_change_without_motion(separate_joints: list[JointRecord]) -> None:
    layers, masks = _joint(separate_joints[0])
    assert registered_width_change(layers, masks, layers, masks).change_px == pytest.approx(
        0.0, abs=0.05
    )


def test_unusable_joints_are_refused(separate_joints: list[JointRecord]) -> None:
    layers, masks = _joint(separate_joints[0])
    apart = masks.copy()
    apart[0, :, 128:], apart[1, :, :128] = False, False
    with pytest.raises(NoJointSpaceError):
        registered_width_change(layers, masks, layers * apart, apart)
    with pytest.raises(ValueError, match="zoom"):
        registered_width_change(layers, masks, layers, masks, zoom=0.0)
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        registered_width_change(layers[:1], masks[:1], layers[:1], masks[:1])
