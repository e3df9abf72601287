"""Training samples for the localiser, synthesised on the fly from the left-hand atlas.

The atlas holds only single left hands with fingers up. The node sees right hands, two
hands side by side, turned hands and things that are not hands; the samples here make
those from the atlas: mirroring (a mirrored left hand is a right hand seen PA), pairs of
different radiographs side by side (patient's right hand on the image's left, as in a
PA view of both hands), random rotation, scale and shift, exposure changes, and empty
or noise images with no hand at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from skimage.draw import polygon as fill_polygon

from blsgan_core.crops import apply_affine, crop, similarity, warp
from blsgan_core.intensity import normalise_intensity
from blsgan_core.joints.anatomy import (
    AXIS_INDICES,
    MCP_INDICES,
    METACARPAL_BASE_INDICES,
    mcp2_mcp3_distance,
)
from blsgan_core.joints.heatmaps import render_gaussians, render_max_gaussians
from blsgan_core.joints.locate import patch_geometries
from blsgan_core.joints.model import LocaliserConfig
from trainer.frontend.hand_data import HandImage

LANDMARK_TARGETS = MCP_INDICES + AXIS_INDICES


@dataclass(frozen=True)
class Scene:
    """An image with any number of hands, each 37 landmarks ``(x, y)`` in its pixels."""

    image: np.ndarray
    hands: tuple[np.ndarray, ...]


def hand_centre(points: np.ndarray) -> np.ndarray:
    """Middle of the metacarpus: mean of the MCP points and metacarpal bases."""
    return points[list(MCP_INDICES + METACARPAL_BASE_INDICES)].mean(axis=0)


def hand_size(points: np.ndarray) -> float:
    """MCP2-MCP3 distance of one hand's 37 landmarks."""
    return mcp2_mcp3_distance(points[list(MCP_INDICES)])


def region_box(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Bounding box ``(x0, y0, x1, y1)`` of the hand region (landmarks grown by the margin)."""
    grow = margin * hand_size(points)
    (x0, y0), (x1, y1) = points.min(axis=0) - grow, points.max(axis=0) + grow
    return float(x0), float(y0), float(x1), float(y1)


def mirror(scene: Scene) -> Scene:
    """Left-right flip: a left hand becomes a right hand; landmark identities are kept."""
    width = scene.image.shape[1]
    flipped = []
    for points in scene.hands:
        moved = points.copy()
        moved[:, 0] = width - 1 - moved[:, 0]
        flipped.append(moved)
    return Scene(np.ascontiguousarray(scene.image[:, ::-1]), tuple(flipped))


def single_scene(rng: np.random.Generator, pool: list[HandImage]) -> Scene:
    """One atlas hand, mirrored half of the time."""
    hand = pool[rng.integers(len(pool))]
    scene = Scene(hand.image, (hand.points,))
    return mirror(scene) if rng.random() < 0.5 else scene


def side_by_side(
    left: Scene, right: Scene, height_ratio: float = 1.0, gap_fraction: float = 0.05
) -> Scene:
    """Two scenes on one canvas: ``right`` resized to ``height_ratio`` of ``left``'s height.

    The gap (a fraction of the left scene's width, negative values clipped to 0) and the
    right scene's padding take the left scene's median grey, like a shared detector.
    """
    if not height_ratio > 0:
        raise ValueError(f"height_ratio must be positive, got {height_ratio!r}")
    height = left.image.shape[0]
    scale = right.image.shape[0] / (height * height_ratio)
    width = round(right.image.shape[1] / scale)
    background = float(np.median(left.image))
    matrix = similarity((0.0, 0.0), (0.5 * scale - 0.5, 0.5 * scale - 0.5), scale, 0.0)
    resized = warp(right.image, matrix, (height, width), fill=background)
    gap = max(0, round(gap_fraction * left.image.shape[1]))
    offset = left.image.shape[1] + gap
    canvas = np.full((height, offset + width), background, np.float32)
    canvas[:, : left.image.shape[1]] = left.image
    canvas[:, offset:] = resized
    moved = tuple(
        apply_affine(np.linalg.inv(matrix), p) + np.array([offset, 0.0]) for p in right.hands
    )
    return Scene(canvas, left.hands + moved)


def pair_scene(rng: np.random.Generator, pool: list[HandImage]) -> Scene:
    """Two different radiographs side by side: a mirrored one (right hand) on the left."""
    first, second = rng.choice(len(pool), size=2, replace=False)
    right_hand = mirror(Scene(pool[first].image, (pool[first].points,)))
    left_hand = Scene(pool[second].image, (pool[second].points,))
    return side_by_side(right_hand, left_hand, rng.uniform(0.9, 1.1), rng.uniform(-0.02, 0.15))


def negative_scene(rng: np.random.Generator, size: int) -> Scene:
    """An image with no hand: flat, noise, smooth blobs or a gradient."""
    kind = rng.integers(4)
    shape = (size, int(size * rng.uniform(0.6, 1.4)))
    if kind == 0:
        image = np.full(shape, rng.uniform(0, 1), np.float32)
    elif kind == 1:
        image = rng.random(shape).astype(np.float32)
    elif kind == 2:
        image = ndimage.gaussian_filter(rng.random(shape), sigma=rng.uniform(2, 12))
        image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    else:
        ys, xs = np.mgrid[: shape[0], : shape[1]]
        angle = rng.uniform(0, 2 * np.pi)
        image = np.cos(angle) * xs + np.sin(angle) * ys
        image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return Scene(np.asarray(image, np.float32), ())


def augment_intensity(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Exposure and detector variation: gamma, contrast, offset, blur, noise."""
    out = np.clip(image, 0.0, 1.0) ** rng.uniform(0.6, 1.6)
    out = out * rng.uniform(0.7, 1.2) + rng.uniform(-0.15, 0.15)
    if rng.random() < 0.3:
        out = ndimage.gaussian_filter(out, rng.uniform(0.3, 1.2))
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.04), out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def region_mask(
    hands: list[np.ndarray], to_canvas: np.ndarray, size: int, margin: float
) -> np.ndarray:
    """Union of the hand regions on the canvas: landmark hulls grown by the margin."""
    mask = np.zeros((size, size), bool)
    for points in hands:
        canvas_points = apply_affine(to_canvas, points)
        hull = canvas_points[ConvexHull(canvas_points).vertices]
        rows, cols = fill_polygon(hull[:, 1], hull[:, 0], shape=(size, size))
        inside = np.zeros((size, size), bool)
        inside[rows, cols] = True
        grow = margin * hand_size(canvas_points)
        mask |= ndimage.distance_transform_edt(~inside) <= grow
    return mask


def detector_sample(
    rng: np.random.Generator, pool: list[HandImage], config: LocaliserConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(S, S)`` and target ``(2, S, S)``: hand centres and hand regions."""
    size = config.detector_size
    draw = rng.random()
    if draw < 0.1:
        scene = negative_scene(rng, size * 3)
    elif draw < 0.55:
        scene = single_scene(rng, pool)
    else:
        scene = pair_scene(rng, pool)
    height, width = scene.image.shape
    middle = (size - 1) / 2.0
    fit = max(height, width) / size
    zoom = fit * rng.uniform(0.85, 1.35)
    shift = rng.uniform(-0.1, 0.1, 2) * size * zoom
    to_scene = similarity(
        (middle, middle),
        ((width - 1) / 2 + shift[0], (height - 1) / 2 + shift[1]),
        zoom,
        rng.uniform(-20, 20),
    )
    fill = 0.0 if rng.random() < 0.5 else float(np.median(scene.image))
    image = augment_intensity(rng, warp(scene.image, to_scene, (size, size), fill=fill))
    to_canvas = np.linalg.inv(to_scene)
    hands = list(scene.hands)
    centres = np.array([apply_affine(to_canvas, hand_centre(p)) for p in hands]).reshape(-1, 2)
    target = np.stack(
        [
            render_max_gaussians(centres, (size, size), config.centre_sigma),
            region_mask(hands, to_canvas, size, config.region_margin).astype(np.float32),
        ]
    )
    return image, target


def landmark_sample(
    rng: np.random.Generator, pool: list[HandImage], config: LocaliserConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(S, S)`` and target ``(10, S, S)``: one left hand's square box, turned, jittered.

    Only left hands (the atlas' own orientation): inference shows the network each box
    as is and mirrored and keeps the better answer, so the network never has to tell
    the thumb's side itself, which makes finger identities much easier to learn. The
    box is the one inference cuts from the detector's hand region; a third of the
    samples come from pairs, so the neighbouring (mirrored, right) hand's thumb at the
    box edge is seen too.
    """
    size = config.landmark_size
    if rng.random() < 0.3:
        scene = pair_scene(rng, pool)
        points = scene.hands[1]  # the unmirrored left hand on the image's right
    else:
        hand = pool[rng.integers(len(pool))]
        scene, points = Scene(hand.image, (hand.points,)), hand.points
    x0, y0, x1, y1 = region_box(points, config.region_margin)
    side = max(x1 - x0, y1 - y0) * config.hand_box_scale * rng.uniform(0.9, 1.15)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + rng.uniform(-0.06, 0.06, 2) * side
    middle = (size - 1) / 2.0
    to_scene = similarity((middle, middle), centre, side / size, rng.uniform(-30, 30))
    fill = 0.0 if rng.random() < 0.5 else float(np.median(scene.image))
    image = augment_intensity(rng, warp(scene.image, to_scene, (size, size), fill=fill))
    targets = apply_affine(np.linalg.inv(to_scene), points[list(LANDMARK_TARGETS)])
    return image, render_gaussians(targets, (size, size), config.landmark_sigma)


def refiner_sample(
    rng: np.random.Generator, pool: list[HandImage], config: LocaliserConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(P, P)`` and target ``(1, P, P)``: one MCP point in a patch cut like stage 3's.

    The patch comes from ``patch_geometries`` fed with landmarks disturbed the way stage
    2 errs (MCP points by about 0.08, axis points by about 0.15 of the MCP2-MCP3
    distance), so patch position, turn and size vary as they will at inference. Hands
    are mirrored half of the time: patches of right hands are not mirrored at inference.
    """
    hand = pool[rng.integers(len(pool))]
    scene = Scene(hand.image, (hand.points,))
    if rng.random() < 0.5:
        scene = mirror(scene)
    points = scene.hands[0]
    mcp, tips = points[list(MCP_INDICES)], points[list(AXIS_INDICES)]
    size = hand_size(points)
    noisy_mcp = mcp + np.clip(rng.normal(0.0, 0.08 * size, mcp.shape), -0.25 * size, 0.25 * size)
    noisy_tips = tips + rng.normal(0.0, 0.15 * size, tips.shape)
    joint = int(rng.integers(len(MCP_INDICES)))
    geometry = patch_geometries(noisy_mcp, noisy_tips, config)[joint]
    image = augment_intensity(rng, normalise_intensity(crop(scene.image, geometry)))
    target = geometry.to_crop(mcp[joint])
    return image, render_gaussians(target, (config.patch_size,) * 2, config.patch_sigma)
