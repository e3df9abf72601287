"""Synthetic overlaps as extra segmenter training samples, with exact amodal masks.

The annotated overlaps are thin slivers whose hidden outline the annotator had to guess
(docs/frontend.md); on a synthetic overlap (``blsgan_core.synthetic``: two bones of a
joint without overlap moved into each other) the hidden outline is known to the pixel.
Adding them teaches where a bone continues behind the other from exact examples; the
price is that they are composed by Eq. 1, which real overlaps only approximate.
"""

from __future__ import annotations

import numpy as np

from blsgan_core.data import JointRecord, load_sample
from blsgan_core.synthetic import SyntheticConfig, synthesize_overlap


def synthetic_overlaps(
    records: list[JointRecord],
    per_joint: int,
    rng: np.random.Generator,
    config: SyntheticConfig | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``per_joint`` synthetic overlaps of every record without overlap, as ``load_joint``
    gives a joint: the image (float32) and the masks ``(2, H, W)`` bool (upper, lower).

    Only records whose bones do not touch (``overlap_px == 0``) are moved: elsewhere the
    moved masks would carry the annotator's guess along.
    """
    if per_joint < 0:
        raise ValueError(f"per_joint must be >= 0, got {per_joint}")
    joints = []
    for record in records:
        if record.overlap_px != 0:
            continue
        sample = load_sample(record)
        for _ in range(per_joint):
            overlap = synthesize_overlap(
                sample.image,
                sample.upper,
                sample.lower,
                rng,
                background=sample.background,
                config=config,
            )
            joints.append((overlap.image, overlap.masks))
    return joints
