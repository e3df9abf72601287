"""Hand geometry without a network: side, joint centres, axes, heatmap peaks."""

from __future__ import annotations

import numpy as np
import pytest

from blsgan_core.crops import similarity
from blsgan_core.joints.anatomy import (
    JOINT_CENTRE_OFFSET,
    axis_bearings,
    hand_side,
    implausibility,
    joint_centres,
    mcp2_mcp3_distance,
)
from blsgan_core.joints.heatmaps import (
    argmax_peak,
    distribution_peak,
    find_peaks,
    render_gaussians,
)
from blsgan_core.joints.types import Hand, Joint

# A schematic left hand seen PA, fingers up: thumb (MCP1) on the image's right.
LEFT_MCP = np.array(
    [[700.0, 900.0], [560.0, 640.0], [460.0, 610.0], [370.0, 630.0], [290.0, 680.0]]
)
LEFT_TIPS = LEFT_MCP + np.array([[60.0, -200.0], [0, -250], [0, -260], [0, -250], [-20, -200]])


def _turn(points: np.ndarray, angle: float) -> np.ndarray:
    matrix = similarity((500.0, 700.0), (500.0, 700.0), 1.0, angle)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def test_side_from_thumb_position_survives_turning_and_flips_with_mirroring() -> None:
    for angle in (-60.0, -20.0, 0.0, 35.0, 80.0):
        assert hand_side(_turn(LEFT_MCP, angle), _turn(LEFT_TIPS, angle)) == "L"
    mirror = np.array([-1.0, 1.0])
    assert hand_side(LEFT_MCP * mirror, LEFT_TIPS * mirror) == "R"
    assert hand_side(_turn(LEFT_MCP * mirror, 40), _turn(LEFT_TIPS * mirror, 40)) == "R"


def test_joint_centres_lie_towards_the_wrist_along_the_axis() -> None:
    centres = joint_centres(LEFT_MCP, LEFT_TIPS)
    size = mcp2_mcp3_distance(LEFT_MCP)
    shift = centres - LEFT_MCP
    np.testing.assert_allclose(np.linalg.norm(shift, axis=1), JOINT_CENTRE_OFFSET * size)
    assert np.all(shift[1:4, 1] > 0) and np.allclose(shift[1:4, 0], 0)  # straight down
    np.testing.assert_allclose(axis_bearings(LEFT_MCP, LEFT_TIPS)[1:4], 0.0, atol=1e-9)
    assert axis_bearings(LEFT_MCP, LEFT_TIPS)[0] > 0  # thumb leans right
    with pytest.raises(ValueError, match="shape"):
        joint_centres(LEFT_MCP[:4], LEFT_TIPS[:4])


def test_heatmap_peaks_are_sub_pixel_and_separated() -> None:
    truth = np.array([[20.3, 30.7], [44.6, 12.2]])
    maps = render_gaussians(truth, (64, 64), sigma=2.0)
    for channel, (x, y) in zip(maps, truth, strict=True):
        px, py, value = argmax_peak(channel)
        assert abs(px - x) < 0.15 and abs(py - y) < 0.15 and value > 0.9
    both = maps.max(axis=0)
    peaks = find_peaks(both, threshold=0.5, min_distance=4)
    assert len(peaks) == 2
    assert find_peaks(np.zeros((16, 16)), threshold=0.5, min_distance=2) == []


def test_hand_requires_five_named_joints() -> None:
    joints = tuple(Joint(f"MCP{i + 1}", 10.0 * i, 0.0, 0.0, 0.9) for i in range(5))
    hand = Hand("L", joints, 0.8)
    assert hand.mcp2_mcp3_px == pytest.approx(10.0)
    assert hand.as_dict()["joints"][0]["name"] == "MCP1"
    with pytest.raises(ValueError, match="joints"):
        Hand("L", joints[:4], 0.8)
    with pytest.raises(ValueError, match="side"):
        Hand("X", joints, 0.8)  # type: ignore[arg-type]


def test_distribution_peak_mass_is_a_confidence() -> None:
    sharp = render_gaussians(np.array([[20.0, 12.0]]), (32, 32), sigma=1.0)[0]
    sharp /= sharp.sum()
    x, y, mass = distribution_peak(sharp)
    assert (x, y) == pytest.approx((20.0, 12.0), abs=0.05) and mass > 0.9
    spread = render_gaussians(np.array([[5.0, 5.0], [25.0, 25.0]]), (32, 32), 1.0).sum(axis=0)
    assert distribution_peak(spread / spread.sum())[2] < 0.55


def test_implausible_landmark_sets_are_named() -> None:
    assert implausibility(LEFT_MCP, LEFT_TIPS) is None
    squeezed = LEFT_MCP.copy()
    squeezed[4] = squeezed[3] + [-5.0, 0.0]  # little finger MCP on top of the ring's
    assert "MCP4-MCP5 spacing" in str(implausibility(squeezed, LEFT_TIPS))
    stubby = LEFT_TIPS.copy()
    stubby[2] = LEFT_MCP[2] + [0.0, -10.0]
    assert "finger 3 axis length" in str(implausibility(LEFT_MCP, stubby))
    far_thumb = LEFT_MCP.copy()
    far_thumb[0] = [2000.0, 2000.0]
    assert "MCP1-MCP2" in str(implausibility(far_thumb, LEFT_TIPS))
