"""Variants of annotated radiographs: names, and landmarks that move with the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from trainer.evaluation.hand_variants import Variant, make_scene, parse_variant, resize_and_turn
from trainer.frontend.localiser_samples import Scene


def test_names_parse_back_and_bad_parts_are_named() -> None:
    assert parse_variant("as-is") == Variant()
    assert parse_variant("mirrored") == Variant(mirrored=True)
    variant = parse_variant("two-hands, scale=0.5,rotation=90")
    assert variant == Variant(two_hands=True, scale=0.5, rotation_deg=90.0)
    assert variant.name == "two-hands,scale=0.5,rotation=90"
    assert parse_variant(variant.name) == variant
    assert Variant(rotation_deg=360.0).name == "as-is"
    with pytest.raises(ValueError, match="rotation needs a number"):
        parse_variant("rotation=left")
    with pytest.raises(ValueError, match="unknown variant part 'tilted'"):
        parse_variant("mirrored,tilted")
    with pytest.raises(ValueError, match="scale must be within"):
        parse_variant("scale=0")


def _dotted_scene() -> Scene:
    """A 300 x 200 image with a bright dot under each of three 'landmarks'."""
    points = np.array([[40.0, 50.0], [150.0, 220.0], [170.0, 30.0]])
    image = np.zeros((300, 200), np.float32)
    for x, y in points:
        image[round(y), round(x)] = 1.0
    return Scene(ndimage.gaussian_filter(image, 3.0) * 50.0, (points,))


def _peak_near(image: np.ndarray, point: np.ndarray, radius: int = 6) -> np.ndarray:
    x, y = np.round(point).astype(int)
    window = image[y - radius : y + radius + 1, x - radius : x + radius + 1]
    row, col = np.unravel_index(int(np.argmax(window)), window.shape)
    return np.array([x - radius + col, y - radius + row], float)


@pytest.mark.parametrize(
    ("scale", "rotation", "shape"),
    [
        (1.0, 90.0, (200, 300)),
        (0.5, 180.0, (150, 100)),
        (2.0, 270.0, (400, 600)),
        (1.0, 30.0, None),
    ],
)
def test_landmarks_follow_the_resized_and_turned_image(
    scale: float, rotation: float, shape: tuple[int, int] | None
) -> None:
    scene = _dotted_scene()
    moved = resize_and_turn(scene, scale, rotation)
    if shape is not None:
        assert moved.image.shape == shape
    for point in moved.hands[0]:
        np.testing.assert_allclose(_peak_near(moved.image, point), point, atol=1.0)


def test_rotation_is_clockwise_on_screen() -> None:
    scene = _dotted_scene()
    top, bottom = 2, 1  # the dots at y = 30 and y = 220
    assert scene.hands[0][top][1] < scene.hands[0][bottom][1]
    turned = resize_and_turn(scene, 1.0, 90.0).hands[0]
    # Clockwise by 90: what was up (small y) is now right (large x).
    assert turned[top][0] > turned[bottom][0] + 150


def test_two_hands_and_mirror_compose() -> None:
    first, partner = _dotted_scene(), _dotted_scene()
    pair = make_scene(first, partner, Variant(two_hands=True))
    assert len(pair.hands) == 2 and pair.image.shape[1] > 2 * first.image.shape[1]
    flipped = make_scene(first, partner, Variant(two_hands=True, mirrored=True))
    width = pair.image.shape[1]
    np.testing.assert_allclose(flipped.hands[0][:, 0], width - 1 - pair.hands[0][:, 0])
