"""Bone segmentation measured against annotated masks: Dice per bone and for the overlap.

Records whose two masks lie on the same bone (annotation errors, see
``trainer.frontend.joint_data``) are excluded and counted. The overlap region is where
both masks are set; its Dice is averaged over the images that overlap (at least
``OVERLAP_MIN_PX`` annotated pixels, the authors' definition) and also pooled over all
images (sum of intersections over sum of sizes), which weights large overlaps more.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blsgan_core.segment import Segmenter, segment_masks
from trainer.frontend.joint_data import JointRecord, load_joint, partition_valid

OVERLAP_MIN_PX = 20
BATCH = 16


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1.0 when both are empty."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * float(np.logical_and(prediction, truth).sum()) / total


def evaluate_segmentation(records: list[JointRecord], model: Segmenter) -> dict[str, Any]:
    """Dice of the model's masks against the annotation on ``records``."""
    valid, invalid = partition_valid(records)
    if not valid:
        raise ValueError("no valid records to evaluate")
    per_bone: list[list[float]] = [[], []]
    overlap_dice: list[float] = []
    pooled = np.zeros(2)  # intersection, size sum of the overlap regions
    for start in range(0, len(valid), BATCH):
        loaded = [load_joint(r) for r in valid[start : start + BATCH]]
        predicted = segment_masks(np.stack([image for image, _ in loaded]), model)
        for (_, truth), masks in zip(loaded, predicted, strict=True):
            for channel in range(2):
                per_bone[channel].append(dice(masks[channel], truth[channel]))
            true_overlap = truth[0] & truth[1]
            predicted_overlap = masks[0] & masks[1]
            pooled += (
                2 * (true_overlap & predicted_overlap).sum(),
                true_overlap.sum() + predicted_overlap.sum(),
            )
            if true_overlap.sum() >= OVERLAP_MIN_PX:
                overlap_dice.append(dice(predicted_overlap, true_overlap))
    return {
        "task": "segmentation",
        "n_images": len(valid),
        "n_cases": len({r.case for r in valid}),
        "n_excluded_invalid": len(invalid),
        "excluded": [str(r.image.name) for r, _ in invalid],
        "dice_upper": float(np.mean(per_bone[0])),
        "dice_lower": float(np.mean(per_bone[1])),
        "dice_upper_min": float(np.min(per_bone[0])),
        "dice_lower_min": float(np.min(per_bone[1])),
        "n_overlapping": len(overlap_dice),
        "dice_overlap": float(np.mean(overlap_dice)) if overlap_dice else None,
        "dice_overlap_pooled": float(pooled[0] / pooled[1]) if pooled[1] else None,
    }
