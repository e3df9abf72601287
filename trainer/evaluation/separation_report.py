"""The separation report: what a model adds over answers that separate nothing.

Every separator is scored on the same joints in the same run: the model, the **trivial
answer** (upper layer = the input, lower layer = the input outside the overlap and the
Laplace soft-tissue background inside it, k from that background: it reproduces the input
and separates nothing) and the **identity layers** (each layer = the input inside its
mask). A claim holds only where both baselines lose.

Real overlapping joints (no true layers): the Eq. 1 reconstruction against the input
inside the overlap ``M_cap`` and inside the bones ``M_union`` of the masks the separator
was given (not over the whole crop, where the pixels outside the bones are the input
itself; that protocol, the paper's Table 2, is kept under ``whole_crop`` to be reported,
never claimed from); the seam ratio of each layer against the input on the overlap
boundary; k against the Laplace k of the same masks (Pearson r over the joints).

Synthetic overlaps (true layers known), one set per shift range (the training range and
one well beyond it): layer PSNR inside the true overlap, detail PSNR there (a Gaussian
local mean of :data:`DETAIL_SIGMA` px removed from both, so that the brightness level a
non-separating answer gets right does not count), the seam ratio against the true layer
(:func:`blsgan_core.metrics.seam_ratio` on :func:`~blsgan_core.metrics.layer_seam_band`,
1 = no seam), the other bone's leak (:func:`other_bone_leak`: how much of the other
bone each layer keeps in the overlap, 0 for the true layers), and k against the true k,
which is the Laplace k of the overlap. With predicted masks (the node's path) also the
layer PSNR inside the true or the predicted overlap, which counts the pixels the node
splits where the bones do not overlap (a layer whose given mask holds no bone of its own
is scored there against the soft tissue).

Everything is also given per overlap-size bin with its count. The split is by joint; the
data carry no patient id, so joints of one patient may fall on both sides
(:data:`SPLIT_NOTE`, in every report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from blsgan_core.inference import SeparationResult
from blsgan_core.metrics import (
    detail_psnr,
    gradient_magnitude,
    image_metrics,
    layer_errors,
    layer_seam_band,
    psnr,
    seam_ratio,
)
from blsgan_core.reconstruction import transmittance_from_background
from trainer.datasets import REAL_OVERLAP_MIN_PX
from trainer.evaluation.separation import (
    OVERLAP_BINS,
    PAPER_TABLE2,
    EvalJoint,
    Separator,
    bin_label,
    capped_psnr,
    real_scores,
    run_separator,
    summary,
)
from trainer.given_masks import layers_for_given_masks

DETAIL_SIGMA = 3.0  # px: removes a bone's brightness level, keeps its trabecular texture
SPLIT_NOTE = (
    "split by joint (case), as in the paper; the data carry no patient id, so joints of "
    "one patient may fall on both sides of the split"
)
Scores = dict[str, float | None]

REAL_KEYS = (
    "overlap_psnr",
    "overlap_ssim",
    "overlap_mse",
    "bones_psnr",
    "bones_ssim",
    "bones_mse",
    "whole_crop_psnr",
    "seam_ratio_vs_input",
    "k",
    "laplace_k",
)
SYNTHETIC_KEYS = (
    "layer_psnr",
    "detail_psnr",
    "seam_ratio",
    "other_bone_leak",
    "k",
    "true_k",
    "k_abs_error",
)
# With masks other than the truth (the node's path), what those masks cost.
REAL_PREDICTED_KEYS = ("overlap_dice",)
SYNTHETIC_PREDICTED_KEYS = ("overlap_dice", "either_overlap_layer_psnr")


def overlap_of(masks: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``M_cap``: pixels inside every mask of ``(n, H, W)``."""
    return np.asarray(masks.all(axis=0), dtype=bool)


def laplace_k(masks: np.ndarray, background: np.ndarray) -> float | None:
    """``1 - mean(B over the overlap of masks)``; ``None`` when the masks do not overlap."""
    overlap = overlap_of(masks)
    if not overlap.any():
        return None
    return float(transmittance_from_background(float(background[overlap].mean())))


def mean_seam_ratio(
    layers: np.ndarray, truths: Sequence[np.ndarray], masks: np.ndarray, cap: np.ndarray
) -> float | None:
    """Mean over the layers of the seam ratio on each layer's part of the overlap band.

    A layer whose band is empty (its bone ends right at the overlap's edge) or whose
    truth is flat there does not count; ``None`` when no layer counts.
    """
    ratios = []
    for index, truth in enumerate(truths):
        band = layer_seam_band(cap, masks[index])
        if not band.any() or not gradient_magnitude(truth)[band].any():
            continue
        ratios.append(seam_ratio(layers[index], truth, band))
    return float(np.mean(ratios)) if ratios else None


def other_bone_leak(layers: np.ndarray, truths: np.ndarray, cap: np.ndarray) -> float | None:
    """Mean over the two layers of how much of the other bone each keeps in the overlap.

    Per layer: the least-squares slope of its error (layer - true layer) on the other
    bone's true layer, both inside the overlap ``cap`` and the latter with its mean
    removed, so a brightness offset does not count. 0 for the true layers; the identity
    layers keep about 0.6. A layer that holds no bone at all (the trivial answer's
    lower one) also scores near 0, so a low figure alone is no evidence of separation.
    ``None`` for other than two layers, for an overlap under ``REAL_OVERLAP_MIN_PX``
    (a slope over a few pixels is noise), or when the other bone is flat there.
    """
    if truths.shape[0] != 2 or int(cap.sum()) < REAL_OVERLAP_MIN_PX:
        return None
    slopes = []
    for index in range(2):
        other = truths[1 - index][cap]
        other = other - other.mean()
        energy = float((other**2).sum())
        if energy == 0.0:
            return None
        error = layers[index][cap] - truths[index][cap]
        slopes.append(float((error * other).sum()) / energy)
    return float(np.mean(slopes))


def dice(first: np.ndarray, second: np.ndarray) -> float | None:
    """Dice of two boolean masks; ``None`` when both are empty."""
    total = int(first.sum()) + int(second.sum())
    return 2 * int((first & second).sum()) / total if total else None


def real_region_scores(joint: EvalJoint, output: SeparationResult) -> Scores:
    """Reconstruction against the input in the overlap and the bones of the given masks."""
    masks = joint.given_masks
    cap, union = overlap_of(masks), np.asarray(masks.any(axis=0), dtype=bool)
    reconstruction = output.reconstruction[0].numpy()
    layers = output.layers.numpy()
    scores: Scores = dict.fromkeys(REAL_KEYS)
    for name, region in (("overlap", cap), ("bones", union)):
        if region.any():
            metrics = image_metrics(reconstruction, joint.image, region)
            scores[f"{name}_psnr"] = capped_psnr(metrics["psnr"])
            scores[f"{name}_ssim"] = metrics["ssim"]
            scores[f"{name}_mse"] = metrics["mse"]
    scores["whole_crop_psnr"] = real_scores(joint, output)["psnr"]
    if cap.any():
        scores["seam_ratio_vs_input"] = mean_seam_ratio(
            layers, [joint.image] * layers.shape[0], masks, cap
        )
    scores["k"] = float(output.k)
    scores["laplace_k"] = laplace_k(masks, joint.given_background)
    if joint.input_masks is not None:
        scores["overlap_dice"] = dice(cap, overlap_of(joint.masks))
    return scores


def synthetic_region_scores(joint: EvalJoint, output: SeparationResult) -> Scores:
    """Layers against the true layers inside the true overlap; k against the true k.

    With masks other than the truth (``input_masks``, the node's path) also the overlap
    Dice of the given masks and the layer PSNR inside the true **or** the given overlap:
    the true overlap alone leaves out the pixels where the given masks overlap and the
    bones do not, which the separator splits although one layer there is no bone. There
    that layer's truth is the soft tissue (:func:`trainer.given_masks.layers_for_given_masks`).
    A model that widens its masks (``mask_margin_px``) is scored on the masks it used.
    """
    if joint.true_layers is None or joint.true_k is None:
        raise ValueError(f"joint {joint.name} has no true layers: it is not synthetic")
    layers, truths = output.layers.numpy(), joint.true_layers
    cap = overlap_of(joint.masks)
    errors = layer_errors(layers, truths, joint.masks)
    count = truths.shape[0]
    scores: Scores = {
        "layer_psnr": float(np.mean([capped_psnr(errors[f"layer{i}_psnr"]) for i in range(count)])),
        "detail_psnr": float(
            np.mean(
                [
                    capped_psnr(detail_psnr(layers[i], truths[i], cap, DETAIL_SIGMA))
                    for i in range(count)
                ]
            )
        ),
        "seam_ratio": mean_seam_ratio(layers, list(truths), joint.masks, cap),
        "other_bone_leak": other_bone_leak(layers, truths, cap),
        "k": float(output.k),
        "true_k": joint.true_k,
        "k_abs_error": abs(float(output.k) - joint.true_k),
    }
    if joint.input_masks is not None:
        scores["overlap_dice"] = dice(overlap_of(joint.given_masks), cap)
        used = joint.given_masks if output.masks is None else output.masks.numpy() > 0.5
        expected = layers_for_given_masks(truths, joint.masks, used, joint.background)
        region = cap | overlap_of(used)
        scores["either_overlap_layer_psnr"] = float(
            np.mean([capped_psnr(psnr(layers[i], expected[i], region)) for i in range(count)])
        )
    return scores


def pearson_r(first: Sequence[float | None], second: Sequence[float | None]) -> float | None:
    """Pearson correlation over the pairs where both exist; ``None`` if undefined."""
    pairs = np.asarray(
        [(a, b) for a, b in zip(first, second, strict=True) if a is not None and b is not None],
        dtype=np.float64,
    )
    if len(pairs) < 3 or np.std(pairs[:, 0]) == 0 or np.std(pairs[:, 1]) == 0:
        return None
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def aggregate(scores: Sequence[Scores], keys: Sequence[str], k_reference: str) -> dict[str, Any]:
    """Summary of each key, and Pearson r of ``k`` against ``k_reference``."""
    part: dict[str, Any] = {key: summary([s.get(key) for s in scores]) for key in keys}
    part["k_pearson_r"] = pearson_r([s["k"] for s in scores], [s[k_reference] for s in scores])
    return part


def by_overlap(
    per_separator: Mapping[str, Sequence[Scores]], overlaps: Sequence[int], keys: Sequence[str]
) -> list[dict[str, Any]]:
    """Per overlap-size bin: its bounds, the number of joints, each separator's summaries."""
    rows = []
    for low, high in OVERLAP_BINS:
        inside = [i for i, px in enumerate(overlaps) if px >= low and (high is None or px < high)]
        row: dict[str, Any] = {
            "bin": bin_label(low, high),
            "min_px": low,
            "max_px": high,
            "n_images": len(inside),
        }
        for name, scores in per_separator.items():
            row[name] = {key: summary([scores[i].get(key) for i in inside]) for key in keys}
        rows.append(row)
    return rows


def score_all(
    separators: Mapping[str, Separator], joints: Sequence[EvalJoint], synthetic: bool
) -> dict[str, list[Scores]]:
    """Per separator, the per-joint scores on ``joints``."""
    scorer = synthetic_region_scores if synthetic else real_region_scores
    return {
        name: [scorer(j, o) for j, o in zip(joints, run_separator(separator, joints), strict=True)]
        for name, separator in separators.items()
    }


def protocol_report(
    separators: Mapping[str, Separator], joints: Sequence[EvalJoint], synthetic: bool
) -> dict[str, Any]:
    """One protocol: count, each separator's summaries and Pearson r of k, by overlap."""
    scores = score_all(separators, joints, synthetic)
    keys = list(SYNTHETIC_KEYS if synthetic else REAL_KEYS)
    if any(joint.input_masks is not None for joint in joints):
        keys += SYNTHETIC_PREDICTED_KEYS if synthetic else REAL_PREDICTED_KEYS
    reference = "true_k" if synthetic else "laplace_k"
    return {
        "n_images": len(joints),
        **{name: aggregate(part, keys, reference) for name, part in scores.items()},
        "by_overlap": by_overlap(scores, [joint.overlap_px for joint in joints], keys),
    }


def evaluate_separation(
    real: Sequence[EvalJoint],
    synthetic: Mapping[str, Sequence[EvalJoint]],
    separators: Mapping[str, Separator],
) -> dict[str, Any]:
    """The separation report of several separators on the same joints.

    ``synthetic`` maps a label (e.g. ``"shifts 1-8 px"``) to its synthetic overlaps.
    Keys: ``task``, ``n_images``, ``separators`` (their names), ``real`` and
    ``synthetic`` (label -> protocol report; see :func:`protocol_report`),
    ``detail_sigma_px``, ``split_note`` and ``paper_table2`` (for reference only).
    """
    if not real and not any(synthetic.values()):
        raise ValueError("nothing to evaluate: no real overlapping and no synthetic joints")
    return {
        "task": "separation",
        "n_images": len(real) + sum(len(joints) for joints in synthetic.values()),
        "separators": list(separators),
        "real": protocol_report(separators, real, synthetic=False) if real else None,
        "synthetic": {
            label: protocol_report(separators, joints, synthetic=True)
            for label, joints in synthetic.items()
            if joints
        },
        "detail_sigma_px": DETAIL_SIGMA,
        "split_note": SPLIT_NOTE,
        "paper_table2": dict(PAPER_TABLE2),
    }
