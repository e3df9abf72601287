"""Bone segmentation measured against annotated masks: Dice per bone and for the overlap.

Records whose two masks lie on the same bone (annotation errors, see
``trainer.frontend.joint_data``) are excluded and counted. The overlap region is where
both masks are set; its Dice is averaged over the images that overlap (at least
``OVERLAP_MIN_PX`` annotated pixels, the authors' definition) and also pooled over all
images (sum of intersections over sum of sizes), which weights large overlaps more.
The overlap area ratio (predicted / annotated pixels) says whether the predicted overlap
is too thin (< 1) or too thick (> 1); both are also given per overlap-size bin.

Baseline in the same run: the constant answer, one fixed mask per bone (the pixel-wise
majority of the evaluated images' own annotations, so it is an optimistic constant);
it shows what Dice a segmenter that ignores the image gets here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from blsgan_core.segment import Segmenter, segment_masks
from trainer.frontend.joint_data import JointRecord, load_joint, partition_valid

OVERLAP_MIN_PX = 20
BATCH = 16
# Bins of the annotated overlap area in pixels (of a 256 x 256 crop): [low, high).
OVERLAP_BINS = ((OVERLAP_MIN_PX, 100), (100, 400), (400, 1000), (1000, None))


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1.0 when both are empty."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * float(np.logical_and(prediction, truth).sum()) / total


@dataclass
class Tally:
    """Per-image scores of one answer (the model's or the constant baseline's)."""

    per_bone: list[list[float]] = field(default_factory=lambda: [[], []])
    overlap_dice: list[float] = field(default_factory=list)
    overlap_ratio: list[float] = field(default_factory=list)
    true_area: list[int] = field(default_factory=list)
    pooled: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def add(self, masks: np.ndarray, truth: np.ndarray) -> None:
        for channel in range(2):
            self.per_bone[channel].append(dice(masks[channel], truth[channel]))
        true_overlap = truth[0] & truth[1]
        predicted_overlap = masks[0] & masks[1]
        true_px, predicted_px = int(true_overlap.sum()), int(predicted_overlap.sum())
        # intersection x 2, size sum, predicted px, annotated px (overlapping images only)
        self.pooled[:2] += (2 * (true_overlap & predicted_overlap).sum(), true_px + predicted_px)
        if true_px >= OVERLAP_MIN_PX:
            self.overlap_dice.append(dice(predicted_overlap, true_overlap))
            self.overlap_ratio.append(predicted_px / true_px)
            self.true_area.append(true_px)
            self.pooled[2:] += (predicted_px, true_px)

    def summary(self) -> dict[str, Any]:
        overlap = np.asarray(self.overlap_dice)
        ratio = np.asarray(self.overlap_ratio)
        area = np.asarray(self.true_area)
        bins = []
        for low, high in OVERLAP_BINS:
            inside = (area >= low) & (area < (high if high is not None else np.inf))
            bins.append(
                {
                    "annotated_px": f"{low}-{high}" if high is not None else f">={low}",
                    "n_images": int(inside.sum()),
                    "dice_overlap": float(overlap[inside].mean()) if inside.any() else None,
                    "area_ratio_median": float(np.median(ratio[inside])) if inside.any() else None,
                    "n_no_overlap_predicted": int((ratio[inside] == 0).sum()),
                }
            )
        return {
            "dice_upper": float(np.mean(self.per_bone[0])),
            "dice_lower": float(np.mean(self.per_bone[1])),
            "dice_upper_min": float(np.min(self.per_bone[0])),
            "dice_lower_min": float(np.min(self.per_bone[1])),
            "n_overlapping": len(overlap),
            "dice_overlap": float(overlap.mean()) if len(overlap) else None,
            "dice_overlap_pooled": (
                float(self.pooled[0] / self.pooled[1]) if self.pooled[1] else None
            ),
            "overlap_area_ratio_median": float(np.median(ratio)) if len(ratio) else None,
            "overlap_area_ratio_pooled": (
                float(self.pooled[2] / self.pooled[3]) if self.pooled[3] else None
            ),
            "n_no_overlap_predicted": int((ratio == 0).sum()),
            "overlap_annotated_px_median": float(np.median(area)) if len(area) else None,
            "by_overlap_size": bins,
        }


def _turn(array: np.ndarray, degrees: float, order: int) -> np.ndarray:
    """``array`` (image, or masks stacked on the first axis) turned about the crop centre."""
    turned = ndimage.rotate(
        array.astype(np.float32), degrees, axes=(-1, -2), reshape=False, order=order, mode="nearest"
    )
    return turned > 0.5 if array.dtype == bool else turned


# How a crop (and its annotation) may reach the segmenter: (image, masks) -> (image, masks).
VARIANTS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "as-is": lambda image, masks: (image, masks),
    "turned +15 deg": lambda image, masks: (_turn(image, 15, 1), _turn(masks, 15, 0)),
    "turned -15 deg": lambda image, masks: (_turn(image, -15, 1), _turn(masks, -15, 0)),
    "mirrored": lambda image, masks: (image[:, ::-1], masks[:, :, ::-1]),
    "inverted": lambda image, masks: (1.0 - image, masks),
}


def evaluate_segmentation(
    records: list[JointRecord], model: Segmenter, variant: str = "as-is"
) -> dict[str, Any]:
    """Dice of the model's masks against the annotation on ``records``, and the baseline.

    ``variant`` (a key of ``VARIANTS``) changes every crop, and its annotation alike,
    before segmentation: turned by 15 degrees, mirrored, inverted grey values.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    change = VARIANTS[variant]
    valid, invalid = partition_valid(records)
    if not valid:
        raise ValueError("no valid records to evaluate")
    model_tally, truths = Tally(), []
    for start in range(0, len(valid), BATCH):
        loaded = [change(*load_joint(r)) for r in valid[start : start + BATCH]]
        predicted = segment_masks(np.stack([image for image, _ in loaded]), model)
        for (_, truth), masks in zip(loaded, predicted, strict=True):
            model_tally.add(masks, truth)
            truths.append(truth)
    return {
        "task": "segmentation",
        "variant": variant,
        "n_images": len(valid),
        "n_cases": len({r.case for r in valid}),
        "n_excluded_invalid": len(invalid),
        "excluded": [str(r.image.name) for r, _ in invalid],
        **model_tally.summary(),
        "baseline_constant_mask": constant_baseline(truths),
    }


def constant_baseline(truths: list[np.ndarray]) -> dict[str, Any]:
    """The constant answer's main numbers: one fixed mask per bone for every image.

    The fixed mask is the pixel-wise majority of ``truths`` themselves (an optimistic
    constant): the Dice a segmenter that ignores the image gets on these images.
    """
    constant = np.mean(truths, axis=0) >= 0.5
    baseline = Tally()
    for truth in truths:
        baseline.add(constant, truth)
    base = baseline.summary()
    return {
        key: base[key]
        for key in ("dice_upper", "dice_lower", "dice_overlap", "overlap_area_ratio_median")
    }


def number(value: float | None, digits: int = 3) -> str:
    """``value`` for a table: ``digits`` decimals, or "-" where there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def dice_cells(summary: dict[str, Any]) -> str:
    """Table cells of a :meth:`Tally.summary`: Dice upper, lower, overlap, pooled overlap,
    median overlap area ratio."""
    return (
        f"{number(summary['dice_upper'])} | {number(summary['dice_lower'])} | "
        f"{number(summary['dice_overlap'])} | {number(summary['dice_overlap_pooled'])} | "
        f"{number(summary['overlap_area_ratio_median'], 2)}"
    )


def segmentation_table(report: dict[str, Any]) -> str:
    """Markdown tables of a report: per-bone and overlap Dice, area ratio, overlap-size bins."""

    base = report["baseline_constant_mask"]
    lines = [
        "| answer | Dice upper | Dice lower | overlap Dice | overlap area ratio "
        "(pred./annot., median) |",
        "| --- | --- | --- | --- | --- |",
        f"| model | {number(report['dice_upper'])} | {number(report['dice_lower'])} | "
        f"{number(report['dice_overlap'])} | {number(report['overlap_area_ratio_median'], 2)} |",
        f"| constant mask (baseline) | {number(base['dice_upper'])} | "
        f"{number(base['dice_lower'])} | {number(base['dice_overlap'])} | "
        f"{number(base['overlap_area_ratio_median'], 2)} |",
        "",
        f"{report['n_images']} images of {report['n_cases']} joints; overlap Dice over the "
        f"{report['n_overlapping']} images with >= {OVERLAP_MIN_PX} annotated overlap pixels "
        f"(pooled over all images: {number(report['dice_overlap_pooled'])}; pooled area ratio "
        f"{number(report['overlap_area_ratio_pooled'], 2)}; no overlap predicted on "
        f"{report['n_no_overlap_predicted']}).",
        "",
        "| annotated overlap (px) | images | overlap Dice | area ratio (median) "
        "| no overlap predicted |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["by_overlap_size"]:
        lines.append(
            f"| {row['annotated_px']} | {row['n_images']} | {number(row['dice_overlap'])} | "
            f"{number(row['area_ratio_median'], 2)} | {row['n_no_overlap_predicted']} |"
        )
    return "\n".join(lines)
