"""Joints as the node sees them: masks from the shipped segmenter instead of annotations.

On the node, the masks that BLS-GAN separates with come from the segmenter; how much of
a real overlap it finds bounds how much of it gets separated. Measuring with predicted
masks (``blsnode evaluate --masks predicted``) measures that path: the separators get
the segmenter's masks and the Laplace background solved for them, while every truth
(annotated overlap, true layers) stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from blsgan_core.laplace import soft_tissue_background
from blsgan_core.mask_thresholds import SEPARATION_CONTACT_PX, SEPARATION_THRESHOLD
from blsgan_core.segment import Segmenter, node_masks
from trainer.evaluation.separation import EvalJoint


def with_predicted_masks(
    joints: Sequence[EvalJoint],
    segmenter: Segmenter,
    batch_size: int = 16,
    separation_threshold: float = SEPARATION_THRESHOLD,
    contact_px: int = SEPARATION_CONTACT_PX,
) -> list[EvalJoint]:
    """``joints`` with ``input_masks`` from ``segmenter`` and their Laplace background.

    The masks are those the node gives BLS-GAN (``node_masks(...).for_separation``, widened
    to ``separation_threshold`` within ``contact_px`` of the other bone).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    result = []
    for start in range(0, len(joints), batch_size):
        chunk = joints[start : start + batch_size]
        images = np.stack([joint.image for joint in chunk])
        masks = node_masks(images, segmenter, separation_threshold, contact_px).for_separation
        for joint, predicted in zip(chunk, masks, strict=True):
            background = soft_tissue_background(joint.image, predicted)
            result.append(replace(joint, input_masks=predicted, input_background=background))
    return result
