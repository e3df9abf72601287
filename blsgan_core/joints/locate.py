"""Find the hands and their MCP joints in a radiograph (arrays in, ``Hand`` objects out)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from blsgan_core.crops import CropGeometry, apply_affine, crop, similarity, warp
from blsgan_core.joints.anatomy import (
    JOINT_NAMES,
    axis_bearings,
    hand_side,
    joint_centres,
    mcp2_mcp3_distance,
)
from blsgan_core.joints.heatmaps import argmax_peak, find_peaks
from blsgan_core.joints.model import (
    CENTRE_CHANNEL,
    REGION_CHANNEL,
    Localiser,
    LocaliserConfig,
    heatmaps,
)
from blsgan_core.joints.preprocess import fit_square, normalise_intensity
from blsgan_core.joints.types import Hand, Joint, NoHandFoundError

logger = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 64
# A radiograph shows one or two hands; more candidates than this are noise, strongest kept.
MAX_HANDS = 4
# A hand centre must reach this detector response; a hand's mean MCP peak this value.
MIN_HAND_SCORE = 0.3
MIN_JOINT_SCORE = 0.2
# Below this refiner peak a joint keeps the landmark network's point.
MIN_REFINE_SCORE = 0.1


@dataclass(frozen=True)
class HandBox:
    """A detected hand: centre response and the square the landmark stage looks at."""

    score: float
    to_source: np.ndarray  # landmark-input pixel -> source pixel


def detect_hands(
    image: np.ndarray, model: Localiser, min_score: float = MIN_HAND_SCORE
) -> list[HandBox]:
    """Stage 1 on an intensity-normalised image: one box per hand centre found."""
    config = model.config
    size = config.detector_size
    canvas_to_source = fit_square(image.shape, size)
    canvas = warp(image, canvas_to_source, (size, size))
    maps = heatmaps(model.detector, torch.from_numpy(canvas)[None, None])[0].numpy()
    centres = find_peaks(maps[CENTRE_CHANNEL], min_score, min_distance=max(2, size // 10))
    centres = centres[:MAX_HANDS]
    if not centres:
        raise NoHandFoundError(
            f"no hand found: the strongest hand response is {maps[CENTRE_CHANNEL].max():.2f}, "
            f"below {min_score}"
        )
    region = maps[REGION_CHANNEL] >= 0.5
    # Split the region between the centres (nearest centre wins), then keep for each
    # centre the connected part that holds it or lies nearest to it.
    rows, cols = np.mgrid[:size, :size]
    distances = np.stack([np.hypot(cols - x, rows - y) for x, y, _ in centres])
    owner = np.argmin(distances, axis=0)
    boxes = []
    for index, (x, y, score) in enumerate(centres):
        labels, count = ndimage.label(region & (owner == index))
        if count == 0:
            logger.info("hand centre at (%.0f, %.0f) has no hand region; skipped", x, y)
            continue
        nearest = np.where(labels > 0, distances[index], np.inf)
        label = labels.flat[int(np.argmin(nearest))]
        ys, xs = np.nonzero(labels == label)
        side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) * config.hand_box_scale
        middle = (config.landmark_size - 1) / 2.0
        centre = ((xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0)
        box_to_canvas = similarity((middle, middle), centre, side / config.landmark_size, 0.0)
        boxes.append(HandBox(score, canvas_to_source @ box_to_canvas))
    if not boxes:
        raise NoHandFoundError("no hand found: hand centres were detected but no hand region")
    return boxes


def _mirror(size: int) -> np.ndarray:
    """Affine of a left-right flip of a ``size``-pixel square."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _best_view(peaks: np.ndarray) -> int:
    """Index of the view (as is, mirrored) whose answer to trust.

    The network knows left hands only: a view is plausible when its thumb lies on the
    left-hand side of its little finger; among plausible views (or all, if none is) the
    one with the higher mean peak wins.
    """
    scores = peaks[:, :, 2].mean(axis=1)
    plausible = [
        hand_side(view[:5, :2], view[5:, :2]) == "L"
        if not np.any(np.all(np.isclose(view[:5, :2], view[5:, :2]), axis=1))
        else False
        for view in peaks
    ]
    candidates = [i for i in range(len(peaks)) if plausible[i]] or list(range(len(peaks)))
    return max(candidates, key=lambda i: scores[i])


@dataclass(frozen=True)
class CoarseHand:
    """Stage 2's answer for one box, in source pixels."""

    box_score: float
    mcp: np.ndarray  # (5, 2) MCP points, thumb to little
    tips: np.ndarray  # (5, 2) axis points
    scores: np.ndarray  # (5,) MCP peak values


def landmarks_in_boxes(
    image: np.ndarray, boxes: list[HandBox], model: Localiser
) -> list[CoarseHand]:
    """Stage 2: ten landmarks per box, both views of all boxes in one forward pass."""
    size = model.config.landmark_size
    views = [m for box in boxes for m in (box.to_source, box.to_source @ _mirror(size))]
    crops = np.stack([warp(image, view, (size, size)) for view in views])
    maps = heatmaps(model.landmarks, torch.from_numpy(crops)[:, None]).numpy()
    peaks = np.array([[argmax_peak(channel) for channel in view] for view in maps])
    hands = []
    for index, box in enumerate(boxes):
        pair = peaks[2 * index : 2 * index + 2]
        chosen = _best_view(pair)
        points = apply_affine(views[2 * index + chosen], pair[chosen, :, :2])
        hands.append(CoarseHand(box.score, points[:5], points[5:], pair[chosen, :5, 2]))
    return hands


def patch_geometries(
    mcp: np.ndarray, tips: np.ndarray, config: LocaliserConfig
) -> list[CropGeometry]:
    """Stage 3's patches: around each MCP point, finger axis up, side by hand size."""
    side = config.patch_scale * mcp2_mcp3_distance(mcp)
    bearings = axis_bearings(mcp, tips)
    return [
        CropGeometry(float(x), float(y), side, float(angle), config.patch_size)
        for (x, y), angle in zip(mcp, bearings, strict=True)
    ]


def refine(
    image: np.ndarray, hands: list[CoarseHand], model: Localiser
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stage 3: refined MCP points and refiner peaks per hand, all patches in one pass.

    A patch whose peak stays below ``MIN_REFINE_SCORE`` keeps stage 2's point.
    """
    if not hands:
        return []
    geometries = [patch_geometries(h.mcp, h.tips, model.config) for h in hands]
    flat = [g for hand in geometries for g in hand]
    # Each patch stretched to its own grey range: the joint's contrast, not the hand's.
    patches = np.stack([normalise_intensity(crop(image, g)) for g in flat])
    maps = heatmaps(model.refiner, torch.from_numpy(patches)[:, None]).numpy()[:, 0]
    peaks = [argmax_peak(m) for m in maps]
    results = []
    for index, hand in enumerate(hands):
        points, scores = hand.mcp.copy(), np.zeros(5)
        for joint in range(5):
            x, y, value = peaks[5 * index + joint]
            scores[joint] = value
            if value >= MIN_REFINE_SCORE:
                points[joint] = geometries[index][joint].to_source(np.array([x, y]))
        results.append((points, scores))
    return results


def locate_in_boxes(
    image: np.ndarray,
    boxes: list[HandBox],
    model: Localiser,
    min_joint_score: float = MIN_JOINT_SCORE,
) -> list[Hand]:
    """Stages 2 and 3: the five MCP joints of each detected box."""
    coarse = [h for h in landmarks_in_boxes(image, boxes, model) if _usable(h, min_joint_score)]
    hands = []
    for hand, (mcp, refine_scores) in zip(coarse, refine(image, coarse, model), strict=True):
        tips = hand.tips
        centres = joint_centres(mcp, tips)
        bearings = axis_bearings(mcp, tips)
        scores = np.sqrt(hand.scores * refine_scores)
        joints = tuple(
            Joint(name, float(cx), float(cy), float(angle), float(score))
            for name, (cx, cy), angle, score in zip(
                JOINT_NAMES, centres, bearings, scores, strict=True
            )
        )
        hands.append(Hand(hand_side(mcp, tips), joints, hand.box_score))
    return hands


def _usable(hand: CoarseHand, min_joint_score: float) -> bool:
    """Confident enough, and with a defined finger axis and hand size."""
    if hand.scores.mean() < min_joint_score:
        logger.info("hand with mean MCP response %.2f rejected", hand.scores.mean())
        return False
    if np.any(np.all(np.isclose(hand.mcp, hand.tips), axis=1)) or np.allclose(
        hand.mcp[1], hand.mcp[2]
    ):
        logger.info("hand with coinciding landmarks rejected")
        return False
    return True


def drop_duplicates(hands: list[Hand]) -> list[Hand]:
    """Keep one hand where two detections found the same joints (middle MCPs within the
    hand's MCP2-MCP3 distance); the more confident one wins."""
    kept: list[Hand] = []
    for hand in sorted(hands, key=lambda h: -h.score):
        middle = np.array([hand.joints[2].x, hand.joints[2].y])
        if all(
            np.hypot(*(middle - (other.joints[2].x, other.joints[2].y))) > other.mcp2_mcp3_px
            for other in kept
        ):
            kept.append(hand)
    return kept


def locate(
    image: np.ndarray,
    model: Localiser,
    *,
    min_hand_score: float = MIN_HAND_SCORE,
    min_joint_score: float = MIN_JOINT_SCORE,
) -> list[Hand]:
    """Every hand in a radiograph, left to right in the image, with its five MCP joints.

    Parameters
    ----------
    image
        2-D greyscale, bright = bone (MONOCHROME2 sense), any range and dtype.
    model
        The localiser (``load_localiser()`` for the shipped weights).

    Raises
    ------
    NoHandFoundError
        If no hand reaches the confidence thresholds (blank, noise, not a hand).
    ValueError
        If the image is not a usable 2-D array.
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image, got shape {array.shape}")
    if min(array.shape) < MIN_IMAGE_SIDE:
        raise ValueError(f"image of shape {array.shape} is too small for a hand radiograph")
    normalised = normalise_intensity(array)
    if float(normalised.max()) == 0.0:
        raise NoHandFoundError("no hand found: the image has no contrast")
    boxes = detect_hands(normalised, model, min_hand_score)
    hands = drop_duplicates(locate_in_boxes(normalised, boxes, model, min_joint_score))
    if not hands:
        raise NoHandFoundError("no hand found: no detected hand had confident MCP joints")
    return sorted(hands, key=lambda hand: float(np.mean([j.x for j in hand.joints])))
