"""JSW accuracy where the truth is known: synthetic overlaps of real, separate bones.

A joint whose bones do not overlap is turned into an overlapping one by moving its bones
towards each other by a known amount (:mod:`blsgan_core.synthetic`, the pre-training
recipe: 1-8 px per bone along the axis, +-2 px sideways). The true masks after the move
are known, and with them the true joint space width; on the node's path the masks come
from the segmenter run on the synthetic image, so the error measured here is the error
of the width the node would report.

Truth: :func:`blsgan_core.jsw.measure_jsw` on the true moved masks. Without sideways
jitter this equals the source's width minus the total shift exactly (tested); with
jitter the moved masks are the only exact description.

An independent check of the measurement itself: the source's annotated width minus the
total shift along the axis ("analytic"). Without sideways jitter (``lateral_jitter`` 0)
it is the exact true minimum width, so the error of the measurement on the annotated
(true moved) masks against it separates the measurement's error from the masks'.

Baselines in the same run: "no overlap" (depth 0, a node that reports nothing), "mean"
(every joint gets the mean true depth of the run) and "source" (the segmenter's depth on
the unshifted source image: a measurement blind to the shift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from blsgan_core.data import JointRecord
from blsgan_core.jsw import JointSpaceWidth, NoJointSpaceError, measure_jsw
from blsgan_core.segment import Segmenter, segment_masks
from blsgan_core.synthetic import SyntheticConfig
from trainer.frontend.synthetic_joints import moved_joints

BATCH = 16


def _measure_batch(images: np.ndarray, segmenter: Segmenter) -> list[JointSpaceWidth | None]:
    widths: list[JointSpaceWidth | None] = []
    for masks in segment_masks(images, segmenter):
        try:
            widths.append(measure_jsw(masks[0], masks[1]))
        except NoJointSpaceError:
            widths.append(None)
    return widths


def _mae(errors: Sequence[float] | np.ndarray) -> float:
    return float(np.mean(np.abs(errors)))


def synthetic_jsw_accuracy(
    records: Sequence[JointRecord],
    segmenter: Segmenter,
    *,
    seed: int = 0,
    config: SyntheticConfig | None = None,
) -> dict[str, Any]:
    """Mean absolute error (px) of overlap depth and widths on synthetic overlaps.

    ``records`` are the sources; those whose masks intersect (>= 1 px) are skipped, since
    their true width before the move is itself an annotation. Raises ``ValueError``
    when no source is left.
    """
    sources = [r for r in records if r.overlap_px == 0]
    if not sources:
        raise ValueError("no joint without overlap among the records: nothing to shift")
    rng = np.random.default_rng(seed)
    truths, images, originals, shifts, analytic = [], [], [], [], []
    for sample, synthetic in moved_joints(sources, rng, config):
        source_min = measure_jsw(sample.upper, sample.lower).min_px
        truths.append(measure_jsw(synthetic.upper, synthetic.lower))
        images.append(synthetic.image)
        originals.append(sample.image)
        shifts.append(synthetic.shifts.upper_down + synthetic.shifts.lower_up)
        analytic.append(source_min - shifts[-1])
    measured: list[JointSpaceWidth | None] = []
    unshifted: list[JointSpaceWidth | None] = []
    for start in range(0, len(images), BATCH):
        measured += _measure_batch(np.stack(images[start : start + BATCH]), segmenter)
        unshifted += _measure_batch(np.stack(originals[start : start + BATCH]), segmenter)
    found = [i for i, m in enumerate(measured) if m is not None]
    pairs = [(truths[i], m) for i, m in enumerate(measured) if m is not None]
    true_depth = np.array([truth.overlap_depth_px for truth, _ in pairs])
    depth = np.array([m.overlap_depth_px for _, m in pairs])
    min_error = np.array([m.min_px - truth.min_px for truth, m in pairs])
    mean_error = np.array([m.mean_px - truth.mean_px for truth, m in pairs])
    true_min = np.array([truth.min_px for truth, _ in pairs])
    true_mean = np.array([truth.mean_px for truth, _ in pairs])
    expected_min = np.array([analytic[i] for i in found])
    source_depth = np.array(
        [u.overlap_depth_px if (u := unshifted[i]) is not None else 0.0 for i in found]
    )
    return {
        "n_joints": len(sources),
        "n_measured": len(pairs),
        "seed": seed,
        "total_shift_px": {"mean": float(np.mean(shifts)), "max": int(np.max(shifts))},
        "true_overlap_depth_px": {
            "mean": float(true_depth.mean()),
            "max": float(true_depth.max()),
            "overlapping": int(np.count_nonzero(true_depth > 0)),
        },
        "overlap_depth_mae_px": _mae(depth - true_depth),
        "min_width_mae_px": _mae(min_error),
        "mean_width_mae_px": _mae(mean_error),
        "overlap_depth_bias_px": float(np.mean(depth - true_depth)),
        "against_analytic_min_width": {
            "exact": (config or SyntheticConfig()).lateral_jitter == 0,
            "annotated_masks_mae_px": _mae(true_min - expected_min),
            "predicted_masks_mae_px": _mae(true_min + min_error - expected_min),
        },
        "baselines": {
            "no_overlap": {"overlap_depth_mae_px": _mae(true_depth)},
            "mean_depth": {"overlap_depth_mae_px": _mae(true_depth - true_depth.mean())},
            "source_unshifted": {"overlap_depth_mae_px": _mae(source_depth - true_depth)},
            "mean_width": {
                "min_width_mae_px": _mae(true_min - true_min.mean()),
                "mean_width_mae_px": _mae(true_mean - true_mean.mean()),
            },
        },
        "masks": f"segmenter {segmenter.version} on the synthetic image",
        "truth": "measure_jsw on the true moved masks",
    }
