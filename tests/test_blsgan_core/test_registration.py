"""Rigid bone registration recovers a known sub-pixel motion of a real bone."""

import numpy as np
import pytest
from scipy import ndimage

from blsgan_core.data import JointRecord, load_sample
from blsgan_core.registration import register_bone


def _moved(image: np.ndarray, dx: float, dy: float, angle_deg: float, centre: tuple[float, float]):
    """``image`` rotated clockwise by ``angle_deg`` about ``centre`` (x, y), then shifted."""
    angle = np.radians(angle_deg)
    inverse = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    c = np.asarray(centre)
    offset = c - inverse @ (c + np.array([dx, dy]))
    return ndimage.affine_transform(image, inverse[::-1, ::-1], offset[::-1], order=3)


@pytest.mark.parametrize("motion", [(2.3, -1.7, 0.0), (-4.6, 3.2, 2.5)])
def test_known_motion_is_recovered_to_a_tenth_of_a_pixel(
    separate_joints: list[JointRecord], motion: tuple[float, float, float]
) -> None:
    sample = load_sample(separate_joints[0])
    bone = np.where(sample.lower, sample.image, 0.0).astype(np.float32)
    rows, cols = np.nonzero(sample.lower)
    centre = (float(cols.mean()), float(rows.mean()))
    follow_up = _moved(bone, *motion, centre)
    follow_up_mask = _moved(sample.lower.astype(np.float32), *motion, centre) >= 0.5
    found = register_bone(bone, sample.lower, follow_up, follow_up_mask)
    assert found.dx == pytest.approx(motion[0], abs=0.1)
    assert found.dy == pytest.approx(motion[1], abs=0.1)
    assert found.angle_deg == pytest.approx(motion[2], abs=0.2)
    assert found.mse < found.mse_identity / 20


def test_unusable_inputs_are_refused(separate_joints: list[JointRecord]) -> None:
    sample = load_sample(separate_joints[0])
    with pytest.raises(ValueError, match="empty"):
        register_bone(sample.image, np.zeros_like(sample.lower), sample.image, sample.lower)
    with pytest.raises(ValueError, match="2-D alike"):
        register_bone(sample.image, sample.lower[:5], sample.image, sample.lower)
