"""The hand as the localiser sees it: landmark indices, joint centres, finger axes, side.

The training landmarks (Payer et al.'s 37 points of the Digital Hand Atlas) put each MCP
point on the base of the proximal phalanx; the joint centre, where a joint crop is
centred, lies a little further towards the wrist. Everything here is plain geometry on
``(x, y)`` pixel coordinates (x right, y down) and bearings (0 = up, clockwise).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from blsgan_core.crops import bearing_deg

N_LANDMARKS = 37
JOINT_NAMES = ("MCP1", "MCP2", "MCP3", "MCP4", "MCP5")
# Landmark index of each MCP point, thumb to little finger.
MCP_INDICES = (18, 21, 25, 29, 33)
# The next joint along each finger (thumb IP, then PIP of index..little): the axis target.
AXIS_INDICES = (19, 22, 26, 30, 34)
# Metacarpal bases, thumb to little finger: with the MCPs they frame the metacarpus.
METACARPAL_BASE_INDICES = (17, 16, 15, 14, 13)
# How far the joint centre lies from the MCP landmark towards the wrist, as a fraction of
# the MCP2-MCP3 distance. The data README gives 0.1-0.2; measured on crops of the atlas,
# the joint space lies about 0.07 below the landmark, and in the published joint crops
# the joint space sits 4 px (of 256) below the crop centre, so 0.1 centres crops the way
# the published ones are centred (docs/frontend.md shows them side by side).
JOINT_CENTRE_OFFSET = 0.1

Side = Literal["L", "R"]


def mcp2_mcp3_distance(mcp: np.ndarray) -> float:
    """Hand size: distance between the index and middle MCP points (rows 1 and 2)."""
    mcp = _points(mcp, len(JOINT_NAMES), "mcp")
    return float(np.linalg.norm(mcp[2] - mcp[1]))


def joint_axes(mcp: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """Unit vectors from each MCP point towards the next joint of its finger, shape (5, 2)."""
    mcp = _points(mcp, len(JOINT_NAMES), "mcp")
    tips = _points(tips, len(JOINT_NAMES), "tips")
    vectors = tips - mcp
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(lengths == 0):
        raise ValueError("an axis point coincides with its MCP point; the axis is undefined")
    return vectors / lengths


def joint_centres(
    mcp: np.ndarray, tips: np.ndarray, offset: float = JOINT_CENTRE_OFFSET
) -> np.ndarray:
    """Joint centres: each MCP point moved ``offset`` x MCP2-MCP3 towards the wrist."""
    axes = joint_axes(mcp, tips)
    return np.asarray(mcp, float) - offset * mcp2_mcp3_distance(mcp) * axes


def axis_bearings(mcp: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """Bearing in degrees of each finger axis (joint -> finger tip)."""
    return np.array([bearing_deg(dx, dy) for dx, dy in joint_axes(mcp, tips)])


def hand_side(mcp: np.ndarray, tips: np.ndarray) -> Side:
    """Left or right hand of a PA view, from where the thumb lies relative to the little finger.

    Looking along the fingers (mean axis), the thumb of a left hand seen PA lies to the
    right of the little finger on the image; of a right hand, to the left. Using the
    finger axis makes this independent of how the hand is turned in the image.
    """
    mcp = _points(mcp, len(JOINT_NAMES), "mcp")
    up = joint_axes(mcp, tips)[1:].mean(axis=0)
    right = np.array([-up[1], up[0]])  # "up" turned 90 degrees clockwise on screen
    return "L" if float((mcp[0] - mcp[4]) @ right) > 0 else "R"


def _points(points: np.ndarray, count: int, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.shape != (count, 2):
        raise ValueError(f"{name} must have shape ({count}, 2), got {array.shape}")
    return array


# Generous bounds on hand proportions, relative to the MCP2-MCP3 distance. On the 112
# atlas hands: MCP3-4 and MCP4-5 0.78-1.09, MCP1-2 1.55-2.54, MCP to next joint 1.0-2.3.
# The margins leave room for adult and RA hands (subluxation, flexion shortening the
# projected phalanx) while rejecting landmark sets that noise or non-hand images yield.
SPACING_RANGE = (0.45, 1.8)
THUMB_RANGE = (0.8, 4.0)
FINGER_RANGE = (0.5, 3.5)


def implausibility(mcp: np.ndarray, tips: np.ndarray) -> str | None:
    """Why these landmarks cannot be one hand, or ``None`` if they can."""
    mcp = _points(mcp, len(JOINT_NAMES), "mcp")
    tips = _points(tips, len(JOINT_NAMES), "tips")
    size = mcp2_mcp3_distance(mcp)
    if size <= 0:
        return "MCP2 and MCP3 coincide"
    for a, b in ((2, 3), (3, 4)):
        ratio = float(np.linalg.norm(mcp[b] - mcp[a])) / size
        if not SPACING_RANGE[0] <= ratio <= SPACING_RANGE[1]:
            return f"MCP{a + 1}-MCP{b + 1} spacing {ratio:.2f} x MCP2-MCP3"
    thumb = float(np.linalg.norm(mcp[0] - mcp[1])) / size
    if not THUMB_RANGE[0] <= thumb <= THUMB_RANGE[1]:
        return f"MCP1-MCP2 distance {thumb:.2f} x MCP2-MCP3"
    lengths = np.linalg.norm(tips - mcp, axis=1) / size
    for index, length in enumerate(lengths):
        if not FINGER_RANGE[0] <= length <= FINGER_RANGE[1]:
            return f"finger {index + 1} axis length {length:.2f} x MCP2-MCP3"
    return None
