"""MCP localisation measured against landmark annotations.

Each annotated hand's joint centres are derived from its landmarks with the same rule
the localiser applies (``blsgan_core.joints.anatomy.joint_centres``), then matched to
the predicted hand whose middle joint is nearest. Errors are reported in pixels and
relative to that hand's annotated MCP2-MCP3 distance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from blsgan_core.joints import Hand, Joint, Localiser, NoHandFoundError, locate
from blsgan_core.joints.anatomy import (
    AXIS_INDICES,
    JOINT_NAMES,
    MCP_INDICES,
    axis_bearings,
    hand_side,
    joint_centres,
    mcp2_mcp3_distance,
)
from trainer.evaluation.hand_variants import NAMED_VARIANTS, Variant, make_scene, parse_variant
from trainer.frontend.hand_data import LandmarkRecord, read_grey
from trainer.frontend.localiser_samples import Scene

# Measured for every exported model; any other ``hand_variants`` name works in evaluate.
VARIANTS = NAMED_VARIANTS
# The ``evaluate --variant`` that measures refusals on images without a hand.
NO_HAND = "no-hand"
# A joint counts as detected when it lies within this fraction of the MCP2-MCP3 distance.
DETECTED_WITHIN = 0.5


def scenes(records: list[LandmarkRecord], variant: Variant) -> Iterator[tuple[str, Scene]]:
    """The images to evaluate, each record changed as ``variant`` says.

    ``two-hands`` pairs record i (mirrored: a right hand, on the image's left) with
    record i + 1 (cyclically), so every annotated hand appears once as a right hand.
    """
    for index, record in enumerate(records):
        scene = Scene(read_grey(record.file), (record.points,))
        if variant.two_hands:
            partner = records[(index + 1) % len(records)]
            other = Scene(read_grey(partner.file), (partner.points,))
            yield f"{record.id}+{partner.id}", make_scene(scene, other, variant)
        else:
            yield record.id, make_scene(scene, scene, variant)


def _truth(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, str]:
    mcp, tips = points[list(MCP_INDICES)], points[list(AXIS_INDICES)]
    return (
        joint_centres(mcp, tips),
        axis_bearings(mcp, tips),
        mcp2_mcp3_distance(mcp),
        hand_side(mcp, tips),
    )


def score_scene(hands: list[Hand], scene: Scene) -> list[dict[str, Any]]:
    """Per annotated hand: matched or not, per-joint errors (px, relative), axis and side."""
    results = []
    for points in scene.hands:
        centres, bearings, size, side = _truth(points)
        result: dict[str, Any] = {"size_px": size, "matched": False}
        if hands:
            middles = np.array([[h.joints[2].x, h.joints[2].y] for h in hands])
            best = int(np.argmin(np.linalg.norm(middles - centres[2], axis=1)))
            if np.linalg.norm(middles[best] - centres[2]) < size:
                hand = hands[best]
                predicted = np.array([[j.x, j.y] for j in hand.joints])
                errors = np.linalg.norm(predicted - centres, axis=1)
                angle = np.array([j.axis_deg for j in hand.joints]) - bearings
                result.update(
                    matched=True,
                    errors_px=errors.tolist(),
                    errors_rel=(errors / size).tolist(),
                    axis_errors_deg=np.abs((angle + 180.0) % 360.0 - 180.0).tolist(),
                    side_correct=hand.side == side,
                )
        results.append(result)
    return results


@dataclass(frozen=True)
class MeanHand:
    """The do-nothing localiser: the training hands' mean joints, placed by the image's frame.

    Joint centres are kept as fractions of the image's width and height, so it answers
    every image with one upright left hand where an atlas hand usually is; it knows
    nothing of the pixels. What it scores is what needs no localiser at all.
    """

    centres: np.ndarray  # (5, 2): x / width, y / height
    bearings: np.ndarray  # (5,) degrees

    @classmethod
    def fit(cls, records: list[LandmarkRecord]) -> MeanHand:
        """The mean over ``records`` (image sizes read from the files' headers)."""
        if not records:
            raise ValueError("the mean hand needs at least one training record")
        centres, bearings = [], []
        for record in records:
            with Image.open(record.file) as image:
                width, height = image.size
            truth, axes, _, _ = _truth(record.points)
            centres.append(truth / np.array([width, height]))
            bearings.append(axes)
        return cls(np.mean(centres, axis=0), np.mean(bearings, axis=0))

    def predict(self, shape: tuple[int, ...]) -> list[Hand]:
        """One left hand in an image of ``shape`` (height, width)."""
        points = self.centres * np.array([shape[1], shape[0]])
        joints = tuple(
            Joint(name, float(x), float(y), float(angle), 0.0)
            for name, (x, y), angle in zip(JOINT_NAMES, points, self.bearings, strict=True)
        )
        return [Hand("L", joints, 0.0)]


def evaluate_localization(
    records: list[LandmarkRecord],
    model: Localiser,
    variant: str = "as-is",
    baseline: MeanHand | None = None,
) -> dict[str, Any]:
    """Summary over all annotated hands of ``records`` changed by ``variant``.

    ``variant`` is a ``hand_variants`` name such as ``"mirrored"`` or
    ``"scale=0.5,rotation=90"``; a bad name is a ``ValueError``. With ``baseline`` the
    same images are answered by it too, reported under ``"baseline_mean_hand"``.
    """
    parsed = parse_variant(variant)
    per_hand: list[dict[str, Any]] = []
    per_hand_baseline: list[dict[str, Any]] = []
    n_predicted = 0
    rejected = []
    for name, scene in scenes(records, parsed):
        try:
            hands = locate(scene.image, model)
        except NoHandFoundError:
            hands = []
            rejected.append(name)
        n_predicted += len(hands)
        per_hand.extend(score_scene(hands, scene))
        if baseline is not None:
            per_hand_baseline.extend(score_scene(baseline.predict(scene.image.shape), scene))
    report = summarise(per_hand, n_predicted, rejected, parsed.name)
    if baseline is not None:  # one hand per image, never a refusal
        report["baseline_mean_hand"] = summarise(per_hand_baseline, len(records), [], parsed.name)
    return report


def summarise(
    per_hand: list[dict[str, Any]], n_predicted: int, rejected: list[str], variant: str
) -> dict[str, Any]:
    """The report's numbers from ``score_scene`` results."""
    matched = [h for h in per_hand if h["matched"]]
    errors_px = np.array([e for h in matched for e in h["errors_px"]])
    errors_rel = np.array([e for h in matched for e in h["errors_rel"]])
    n_joints = 5 * len(per_hand)
    detected = int((errors_rel < DETECTED_WITHIN).sum())
    axis = np.array([e for h in matched for e in h["axis_errors_deg"]])

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if values.size else None

    return {
        "task": "localization",
        "variant": variant,
        "n_hands": len(per_hand),
        "n_hands_found": len(matched),
        "n_hands_predicted": n_predicted,
        "n_images_rejected": len(rejected),
        "n_joints": n_joints,
        "n_detected": detected,
        "mre_px": mean(errors_px),
        "mre_rel": mean(errors_rel),
        "max_rel": float(errors_rel.max()) if errors_rel.size else None,
        "within_10pct": float((errors_rel < 0.1).sum() / n_joints) if n_joints else None,
        "within_20pct": float((errors_rel < 0.2).sum() / n_joints) if n_joints else None,
        "axis_mae_deg": mean(axis),
        "side_accuracy": (sum(h["side_correct"] for h in matched) / len(matched))
        if matched
        else None,
    }


def no_hand_images(
    count: int, seed: int = 0, shape: tuple[int, int] = (900, 700)
) -> Iterator[np.ndarray]:
    """Images without a hand: flat, uniform noise, smooth blobs of several sizes, gradients."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        kind = index % 4
        if kind == 0:
            yield np.full(shape, rng.uniform(0, 1), np.float32)
        elif kind == 1:
            yield rng.random(shape).astype(np.float32)
        elif kind == 2:
            sigma = float(rng.choice([3.0, 8.0, 20.0, 40.0]))
            yield ndimage.gaussian_filter(rng.random(shape), sigma).astype(np.float32)
        else:
            angle = rng.uniform(0, 2 * np.pi)
            ys, xs = np.mgrid[: shape[0], : shape[1]]
            yield (np.cos(angle) * xs + np.sin(angle) * ys).astype(np.float32)


def evaluate_rejection(model: Localiser, count: int = 40, seed: int = 0) -> dict[str, Any]:
    """How many of ``count`` images without a hand ``locate`` refuses (it should: all)."""
    rejected = 0
    for image in no_hand_images(count, seed):
        try:
            locate(image, model)
        except NoHandFoundError:
            rejected += 1
    return {"task": "no-hand rejection", "n_images": count, "n_rejected": rejected}
