"""The localiser's view geometry: quarter turns of the detector canvas, realigned boxes."""

from __future__ import annotations

import numpy as np
import pytest

from blsgan_core.crops import apply_affine, similarity
from blsgan_core.joints.anatomy import hand_side, joint_axes, mcp2_mcp3_distance
from blsgan_core.joints.locate import (
    ALIGNED_BOX_SIDE,
    UNCLAIMED_MIN_AREA,
    _unclaimed_regions,
    aligned_view,
    quarter_turn,
)

# An upright left hand (thumb on the image's right), MCP2-MCP3 = 40 px.
MCP = np.array([[330.0, 420.0], [280.0, 330.0], [240.0, 325.0], [205.0, 335.0], [172.0, 352.0]])
TIPS = MCP + np.array([[40.0, -50.0], [5.0, -80.0], [0.0, -85.0], [-5.0, -80.0], [-12.0, -65.0]])


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
def test_quarter_turn_maps_rot90_pixels_onto_the_canvas(turns: int) -> None:
    canvas = np.arange(7 * 7, dtype=float).reshape(7, 7)
    view = np.rot90(canvas, turns)
    matrix = quarter_turn(7, turns)
    for row, col in [(0, 0), (0, 6), (2, 5), (6, 1)]:
        x, y = apply_affine(matrix, np.array([col, row], float))
        assert view[row, col] == canvas[round(y), round(x)]


@pytest.mark.parametrize("turn", [0.0, 37.0, 90.0, 180.0, -120.0])
@pytest.mark.parametrize("mirrored", [False, True])
def test_aligned_view_shows_a_left_hand_upright_at_the_training_size(
    turn: float, mirrored: bool
) -> None:
    flip = np.diag([-1.0, 1.0, 1.0]) if mirrored else np.eye(3)
    move = similarity((250.0, 350.0), (900.0, 700.0), 1.7, turn) @ flip
    to_image = np.linalg.inv(move)  # hand -> image: turned, scaled 1/1.7, maybe mirrored
    mcp, tips = apply_affine(to_image, MCP), apply_affine(to_image, TIPS)
    assert hand_side(mcp, tips) == ("R" if mirrored else "L")
    size = 128
    to_view = np.linalg.inv(aligned_view(mcp, tips, size))
    in_view_mcp, in_view_tips = apply_affine(to_view, mcp), apply_affine(to_view, tips)
    assert hand_side(in_view_mcp, in_view_tips) == "L"  # what the network was trained on
    up = joint_axes(in_view_mcp, in_view_tips)[1:].mean(axis=0)
    assert up[1] < 0 and abs(up[0]) < 1e-6 * np.linalg.norm(up)  # fingers straight up
    assert mcp2_mcp3_distance(in_view_mcp) == pytest.approx(size / ALIGNED_BOX_SIDE)
    assert np.all((in_view_mcp > 0) & (in_view_mcp < size))


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(rows - centre[0], cols - centre[1]) <= radius


def test_an_unclaimed_hand_region_becomes_a_candidate_with_its_centre_response() -> None:
    shape = (64, 64)
    first, second, speck = (
        _disc(shape, (32, 16), 10),
        _disc(shape, (32, 48), 9),
        _disc(shape, (5, 5), 2),
    )
    region = first | second | speck
    centre_map = np.zeros(shape, np.float32)
    centre_map[32, 48] = 0.18
    found = _unclaimed_regions(region & ~first, int(first.sum()), centre_map)
    # The second disc (0.81 of the claimed one's area) is a candidate; the speck is not.
    assert len(found) == 1
    part, score = found[0]
    assert np.array_equal(part, second)
    assert score == pytest.approx(0.18)
    assert UNCLAIMED_MIN_AREA * first.sum() > speck.sum()


def test_no_unclaimed_candidates_without_a_claimed_hand() -> None:
    """Images where no centre reached the threshold stay refused (no-hand images)."""
    region = _disc((64, 64), (32, 32), 12)
    assert _unclaimed_regions(region, 0, np.ones((64, 64))) == []
