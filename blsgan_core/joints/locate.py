"""Find the hands and their MCP joints in a radiograph (arrays in, ``Hand`` objects out)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from blsgan_core.crops import (
    CropGeometry,
    affine_scale,
    apply_affine,
    bearing_deg,
    crop,
    similarity,
    warp,
)
from blsgan_core.joints.anatomy import (
    JOINT_NAMES,
    axis_bearings,
    hand_side,
    implausibility,
    joint_axes,
    joint_centres,
    mcp2_mcp3_distance,
)
from blsgan_core.joints.heatmaps import argmax_peak, distribution_peak, find_peaks
from blsgan_core.joints.model import (
    CENTRE_CHANNEL,
    REGION_CHANNEL,
    Localiser,
    LocaliserConfig,
    heatmaps,
    landmark_maps,
)
from blsgan_core.joints.preprocess import fit_square, normalise_intensity
from blsgan_core.joints.types import Hand, Joint, NoHandFoundError

logger = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 64
# A radiograph shows one or two hands; more candidates than this per view are noise,
# strongest kept.
MAX_HANDS = 4
# A hand centre must reach this detector response; each MCP map at least this mass at
# its peak, and their mean the next. Validation hands: every MCP mass 0.6-0.9.
MIN_HAND_SCORE = 0.3
MIN_JOINT_SCORE = 0.3
MIN_MEAN_JOINT_SCORE = 0.45
# Of the boxes the detector's turns put on one hand, those within this fraction of the
# strongest are read by the landmark network (a turn 90 or 180 degrees off often
# responds at 0.5-0.9 of the right one); the others only if none of these is usable.
CANDIDATE_RATIO = 0.75
# The landmark box of an upright left hand relative to its MCP points, in units of the
# MCP2-MCP3 distance: centre this far from the MCP points' mean towards the fingers and
# towards the thumb, side this long. Measured on the 92 training hands of the atlas
# boxed the way training boxes them (landmarks grown by region_margin, x hand_box_scale):
# 0.15 +- 0.12, 0.22 +- 0.23 and 10.3 +- 0.7.
ALIGNED_BOX_TOWARDS_FINGERS = 0.15
ALIGNED_BOX_TOWARDS_THUMB = 0.22
ALIGNED_BOX_SIDE = 10.3
# A realigned reading agrees with the first when no MCP point moved further than this
# fraction of the MCP2-MCP3 distance (validation hands: stage 2 errs by about 0.05).
AGREE_WITHIN = 0.5
# A single usable reading is realigned only if its view showed the hand further than
# this from upright (degrees) or its size further than this from the training box's.
UPRIGHT_WITHIN = 15.0
SCALE_WITHIN = 0.2
# Detections whose box centre lies within this fraction of a found hand's aligned box
# (along and across its fingers, from its MCP points' mean) are that hand again: the
# detector's wrong turns put their centres (and small boxes at the wrist) up to about
# 0.4 box sides off; a second hand beside it lies more than half a box side away.
COVERS_WITHIN = 0.4
# Boxes of two detector views belong to one hand candidate when their centres are
# closer than this fraction of the larger box's side.
SAME_HAND_DISTANCE = 0.35
# Below this refiner peak a joint keeps the landmark network's point.
MIN_REFINE_SCORE = 0.1
# The detector sees the image in these quarter turns (0, 90, 180, 270 degrees): it and
# the landmark network were trained on hands within 20-30 degrees of upright, so four
# views leave no hand more than 45 degrees off the one its answer comes from.
QUARTER_TURNS = 4
# A hand-region part that no centre peak claimed is read as a hand candidate when it is
# at least this fraction of the largest claimed part (``_unclaimed_regions``).
UNCLAIMED_MIN_AREA = 0.5


@dataclass(frozen=True)
class HandBox:
    """A detected hand: centre response and the square the landmark stage looks at."""

    score: float
    to_source: np.ndarray  # landmark-input pixel -> source pixel

    def centre_and_side(self, size: int) -> tuple[np.ndarray, float]:
        """The box's centre and side in source pixels (``size``: landmark input pixels)."""
        middle = (size - 1) / 2.0
        return apply_affine(self.to_source, np.array([middle, middle])), affine_scale(
            self.to_source
        ) * size


def quarter_turn(size: int, turns: int) -> np.ndarray:
    """Affine from ``np.rot90(canvas, turns)`` pixels to ``canvas`` pixels (square canvas)."""
    one = np.array([[0.0, -1.0, size - 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return np.linalg.matrix_power(one, turns % 4)


def detect_hands(
    image: np.ndarray, model: Localiser, min_score: float = MIN_HAND_SCORE
) -> list[HandBox]:
    """Stage 1 on an intensity-normalised image: boxes of hand centres, strongest first.

    The detector looks at the image in ``QUARTER_TURNS`` turns (one batch); each turn
    gives its own boxes, upright in that turn, so a hand read sideways or upside down
    gets a box in which it stands within 45 degrees of upright. One hand usually gets
    boxes in several turns; the landmark stage decides which to trust.
    """
    size = model.config.detector_size
    canvas_to_source = fit_square(image.shape, size)
    canvas = warp(image, canvas_to_source, (size, size))
    views = np.stack([np.rot90(canvas, turns) for turns in range(QUARTER_TURNS)])
    maps = heatmaps(model.detector, torch.from_numpy(np.ascontiguousarray(views))[:, None])
    boxes = []
    for turns, view_maps in enumerate(maps.numpy()):
        view_to_source = canvas_to_source @ quarter_turn(size, turns)
        boxes.extend(_boxes_in_view(view_maps, view_to_source, model.config, min_score))
    if not boxes:
        strongest = float(maps[:, CENTRE_CHANNEL].max())
        raise NoHandFoundError(
            f"no hand found: the strongest hand response is {strongest:.2f}, below {min_score}"
        )
    return sorted(boxes, key=lambda box: -box.score)


def _boxes_in_view(
    maps: np.ndarray, view_to_source: np.ndarray, config: LocaliserConfig, min_score: float
) -> list[HandBox]:
    """Boxes of one detector view: each centre peak with its part of the hand region, then
    each sizeable region part that no centre claimed (``_unclaimed_regions``)."""
    size = config.detector_size
    centres = find_peaks(maps[CENTRE_CHANNEL], min_score, min_distance=max(2, size // 10))
    centres = centres[:MAX_HANDS]
    region = maps[REGION_CHANNEL] >= 0.5
    # Split the region between the centres (nearest centre wins), then keep for each
    # centre the connected part that holds it or lies nearest to it.
    rows, cols = np.mgrid[:size, :size]
    distances = np.stack([np.hypot(cols - x, rows - y) for x, y, _ in centres] or [rows])
    owner = np.argmin(distances, axis=0)
    boxes = []
    claimed = np.zeros_like(region)
    largest_claimed = 0
    for index, (x, y, score) in enumerate(centres):
        labels, count = ndimage.label(region & (owner == index))
        if count == 0:
            logger.info("hand centre at (%.0f, %.0f) has no hand region; skipped", x, y)
            continue
        nearest = np.where(labels > 0, distances[index], np.inf)
        part = labels == labels.flat[int(np.argmin(nearest))]
        claimed |= part
        largest_claimed = max(largest_claimed, int(part.sum()))
        boxes.append(HandBox(score, view_to_source @ _region_box(part, config)))
    unclaimed = _unclaimed_regions(region & ~claimed, largest_claimed, maps[CENTRE_CHANNEL])
    for part, score in unclaimed:
        boxes.append(HandBox(score, view_to_source @ _region_box(part, config)))
    return boxes


def _region_box(part: np.ndarray, config: LocaliserConfig) -> np.ndarray:
    """Affine landmark input pixel -> view pixel of the square around a region part."""
    ys, xs = np.nonzero(part)
    side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) * config.hand_box_scale
    middle = (config.landmark_size - 1) / 2.0
    centre = ((xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0)
    return similarity((middle, middle), centre, side / config.landmark_size, 0.0)


def _unclaimed_regions(
    unclaimed: np.ndarray, largest_claimed: int, centre_map: np.ndarray
) -> list[tuple[np.ndarray, float]]:
    """Connected parts of the hand region that no centre peak claimed, with their
    strongest centre response, if at least ``UNCLAIMED_MIN_AREA`` of the largest claimed
    part (``largest_claimed`` pixels).

    A second hand in the image can have a clear region while its centre response stays
    below ``MIN_HAND_SCORE`` (two hands side by side, each at half the detector's
    training size: one of 40 validation pairs, centre 0.18, region whole). Such parts
    are read like any box; the landmark stage rejects what is not a hand. Without a
    claimed part (no centre reached the threshold) nothing is added, so images without
    a hand are refused as before.
    """
    if largest_claimed == 0:
        return []
    labels, count = ndimage.label(unclaimed)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    found = []
    for label in range(1, count + 1):
        if areas[label] >= UNCLAIMED_MIN_AREA * largest_claimed:
            part = labels == label
            found.append((part, float(centre_map[part].max())))
    return found


def _mirror(size: int) -> np.ndarray:
    """Affine of a left-right flip of a ``size``-pixel square."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _best_view(peaks: np.ndarray) -> int:
    """Index of the view (as is, mirrored) whose answer to trust.

    The network knows left hands only: a view is plausible when its thumb lies on the
    left-hand side of its little finger; among plausible views (or all, if none is) the
    one with the more concentrated maps (higher mean mass at the peaks) wins.
    """
    scores = peaks[:, :, 2].mean(axis=1)

    def plausible(view: np.ndarray) -> bool:
        mcp, tips = view[:5, :2], view[5:, :2]
        defined = not np.any(np.all(np.isclose(mcp, tips), axis=1))
        return defined and hand_side(mcp, tips) == "L"

    candidates = [i for i, view in enumerate(peaks) if plausible(view)] or list(range(len(peaks)))
    return max(candidates, key=lambda i: scores[i])


@dataclass(frozen=True)
class CoarseHand:
    """Stage 2's answer for one box, in source pixels."""

    box_score: float
    mcp: np.ndarray  # (5, 2) MCP points, thumb to little
    tips: np.ndarray  # (5, 2) axis points
    scores: np.ndarray  # (5,) probability mass at each MCP peak
    view: np.ndarray  # the landmark input it was read from: input pixel -> source pixel

    def as_trained(self, size: int) -> bool:
        """Read from a view that showed the hand as training did: fingers within
        ``UPRIGHT_WITHIN`` of up and its size within ``SCALE_WITHIN`` of the training box."""
        to_view = np.linalg.inv(self.view)
        mcp, tips = apply_affine(to_view, self.mcp), apply_affine(to_view, self.tips)
        up = joint_axes(mcp, tips)[1:].mean(axis=0)
        if not np.any(up) or abs(bearing_deg(*up)) > UPRIGHT_WITHIN:
            return False
        trained = size / ALIGNED_BOX_SIDE
        return abs(mcp2_mcp3_distance(mcp) / trained - 1.0) <= SCALE_WITHIN

    def covers(self, point: np.ndarray) -> bool:
        """Whether ``point`` (source) lies in the middle of this hand, where a second
        detection would be the same hand again (``COVERS_WITHIN`` of the aligned box)."""
        hand = mcp2_mcp3_distance(self.mcp)
        up = joint_axes(self.mcp, self.tips)[1:].mean(axis=0)
        up = up / np.linalg.norm(up)
        offset = np.asarray(point, float) - self.mcp.mean(axis=0)
        reach = COVERS_WITHIN * ALIGNED_BOX_SIDE * hand
        return bool(abs(offset @ up) <= reach and abs(offset @ np.array([-up[1], up[0]])) <= reach)


def read_landmarks(
    image: np.ndarray, views: list[np.ndarray], model: Localiser
) -> tuple[np.ndarray, np.ndarray]:
    """The landmark network on ``views`` (input pixel -> source), one batch.

    Returns the ten points of every view in source pixels ``(V, 10, 2)`` and their
    peaks in the views' own pixels with the mass at each ``(V, 10, 3)``.
    """
    size = model.config.landmark_size
    crops = np.stack([warp(image, view, (size, size)) for view in views])
    maps = landmark_maps(model.landmarks, torch.from_numpy(crops)[:, None]).numpy()
    peaks = np.array([[distribution_peak(channel) for channel in view] for view in maps])
    points = np.stack([apply_affine(view, p[:, :2]) for view, p in zip(views, peaks, strict=True)])
    return points, peaks


def landmarks_in_boxes_once(
    image: np.ndarray, boxes: list[HandBox], model: Localiser
) -> list[CoarseHand]:
    """Ten landmarks per box, from the box as is or mirrored (all views in one batch)."""
    if not boxes:
        return []
    mirror = _mirror(model.config.landmark_size)
    views = [m for box in boxes for m in (box.to_source, box.to_source @ mirror)]
    points, peaks = read_landmarks(image, views, model)
    hands = []
    for index, box in enumerate(boxes):
        chosen = 2 * index + _best_view(peaks[2 * index : 2 * index + 2])
        hands.append(
            CoarseHand(
                box.score,
                points[chosen, :5],
                points[chosen, 5:],
                peaks[chosen, :5, 2],
                views[chosen],
            )
        )
    return hands


def aligned_view(mcp: np.ndarray, tips: np.ndarray, size: int) -> np.ndarray:
    """The landmark box of a found hand, re-cut upright and at the training scale.

    From the hand's own points: its fingers (mean axis of fingers 2-5) turned up, its
    size (MCP2-MCP3) setting the box (``ALIGNED_BOX_*``), and a right hand mirrored so
    that the network sees the left hand it was trained on. Returns the affine landmark
    input pixel -> source pixel.
    """
    hand = mcp2_mcp3_distance(mcp)
    up = joint_axes(mcp, tips)[1:].mean(axis=0)
    up = up / np.linalg.norm(up)
    right = np.array([-up[1], up[0]])  # up turned 90 degrees clockwise on screen
    left_hand = hand_side(mcp, tips) == "L"
    thumb = right if left_hand else -right
    centre = np.asarray(mcp, float).mean(axis=0) + hand * (
        ALIGNED_BOX_TOWARDS_FINGERS * up + ALIGNED_BOX_TOWARDS_THUMB * thumb
    )
    middle = (size - 1) / 2.0
    view = similarity((middle, middle), centre, ALIGNED_BOX_SIDE * hand / size, bearing_deg(*up))
    return view if left_hand else view @ _mirror(size)


def realign(image: np.ndarray, hands: list[CoarseHand], model: Localiser) -> list[CoarseHand]:
    """Stage 2 again on each hand's ``aligned_view`` (one batch): upright, at its scale.

    A hand found turned by up to 45 degrees, or at another size than the detector's box
    suggested, is read again the way the network was trained; an answer that came from
    a wrong turn of the image does not survive this (its realigned maps spread out).
    """
    if not hands:
        return []
    size = model.config.landmark_size
    views = [aligned_view(h.mcp, h.tips, size) for h in hands]
    points, peaks = read_landmarks(image, views, model)
    return [
        CoarseHand(hand.box_score, p[:5], p[5:], view_peaks[:5, 2], view)
        for hand, p, view_peaks, view in zip(hands, points, peaks, views, strict=True)
    ]


def _agree(first: CoarseHand, again: CoarseHand) -> bool:
    """The realigned reading names the same hand: same side, every MCP point within
    ``AGREE_WITHIN`` of the MCP2-MCP3 distance of the first reading."""
    if hand_side(first.mcp, first.tips) != hand_side(again.mcp, again.tips):
        return False
    moved = np.linalg.norm(again.mcp - first.mcp, axis=1).max()
    return bool(moved <= AGREE_WITHIN * mcp2_mcp3_distance(first.mcp))


def same_hand_groups(boxes: list[HandBox], size: int) -> list[list[HandBox]]:
    """Boxes grouped by where they are (``SAME_HAND_DISTANCE``), each group strongest first.

    ``boxes`` must come strongest first (as ``detect_hands`` returns them); a box joins
    the first group whose strongest box is near it.
    """
    groups: list[list[HandBox]] = []
    for box in boxes:
        centre, side = box.centre_and_side(size)
        for group in groups:
            other, other_side = group[0].centre_and_side(size)
            if np.hypot(*(centre - other)) < SAME_HAND_DISTANCE * max(side, other_side):
                group.append(box)
                break
        else:
            groups.append([box])
    return groups


def landmarks_in_boxes(
    image: np.ndarray,
    boxes: list[HandBox],
    model: Localiser,
    min_joint_score: float = MIN_JOINT_SCORE,
) -> list[CoarseHand]:
    """Stage 2: one usable landmark set per place the detector marked, if it has one.

    Of the boxes at one place (one per detector turn that saw a hand there) the
    strongest is read first; a usable answer from a view that showed the hand as
    training did (``CoarseHand.as_trained``) stands. Otherwise the boxes near the
    strongest (``CANDIDATE_RATIO``) are read too, the others only if none of these gives
    a usable answer. A single usable answer read as trained stands; otherwise every
    usable answer is read again upright (``realign``) and the realigned answer that
    agrees with its first reading and has the most concentrated maps wins (where none
    does, the best first reading stands).
    A place in the middle of a hand already found is skipped: the same hand again.
    """
    size = model.config.landmark_size
    hands: list[CoarseHand] = []
    for group in same_hand_groups(boxes, size):
        centre, _ = group[0].centre_and_side(size)
        if any(hand.covers(centre) for hand in hands):
            continue
        hand = _read_group(image, group, model, min_joint_score)
        if hand is not None:
            hands.append(hand)
    return hands


def _read_group(
    image: np.ndarray, group: list[HandBox], model: Localiser, min_joint_score: float
) -> CoarseHand | None:
    """The landmark reading of one place (see ``landmarks_in_boxes``), or None."""

    def usable(boxes: list[HandBox]) -> list[CoarseHand]:
        readings = landmarks_in_boxes_once(image, boxes, model)
        return [h for h in readings if _usable(h, min_joint_score)]

    size = model.config.landmark_size
    first = usable(group[:1])
    if first and first[0].as_trained(size):
        return first[0]
    strong = [b for b in group[1:] if b.score >= CANDIDATE_RATIO * group[0].score]
    found = first + usable(strong)
    if not found:
        found = usable(group[1 + len(strong) :])
    if not found:
        return None
    if len(found) == 1 and found[0].as_trained(size):
        return found[0]
    realigned = [
        again
        for first, again in zip(found, realign(image, found, model), strict=True)
        if _usable(again, min_joint_score) and _agree(first, again)
    ]
    return max(realigned or found, key=lambda h: float(h.scores.mean()))


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
    coarse = landmarks_in_boxes(image, boxes, model, min_joint_score)
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
    """Every MCP confidently found, and landmarks in the proportions of a hand.

    Noise and non-hand images make the detector fire now and then; the landmark maps of
    such boxes are spread out (low mass) or their points do not form a hand.
    """
    if hand.scores.min() < min_joint_score or hand.scores.mean() < MIN_MEAN_JOINT_SCORE:
        logger.info("hand candidate rejected: MCP confidences %s", np.round(hand.scores, 2))
        return False
    reason = implausibility(hand.mcp, hand.tips)
    if reason is not None:
        logger.info("hand candidate rejected: %s", reason)
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
