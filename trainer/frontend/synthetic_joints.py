"""Synthetic overlaps of the joints whose bones do not touch: for segmenter training and
for the measurements that need a known hidden outline.

The annotated overlaps are thin slivers whose hidden outline the annotator had to guess
(docs/frontend.md); on a synthetic overlap (``blsgan_core.synthetic``: two bones of a
joint without overlap moved into each other) the hidden outline is known to the pixel.
Adding them to the segmenter's training teaches where a bone continues behind the other
from exact examples; the price is that they are composed by Eq. 1, which real overlaps
only approximate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from blsgan_core.data import JointRecord, JointSample, load_sample
from blsgan_core.synthetic import SyntheticConfig, SyntheticOverlap, synthesize_overlap


def moved_joints(
    records: Iterable[JointRecord],
    rng: np.random.Generator,
    config: SyntheticConfig | None = None,
    per_joint: int = 1,
) -> Iterator[tuple[JointSample, SyntheticOverlap]]:
    """Each record without overlap, loaded, with ``per_joint`` synthetic overlaps of it.

    Only records whose bones do not touch (``overlap_px == 0``) are moved: elsewhere the
    moved masks would carry the annotator's guess along. The draws come from ``rng`` in
    record order, so a seeded generator gives the same overlaps every time.
    """
    if per_joint < 0:
        raise ValueError(f"per_joint must be >= 0, got {per_joint}")
    for record in records:
        if record.overlap_px != 0:
            continue
        sample = load_sample(record)
        for _ in range(per_joint):
            yield (
                sample,
                synthesize_overlap(
                    sample.image,
                    sample.upper,
                    sample.lower,
                    rng,
                    background=sample.background,
                    config=config,
                ),
            )


def synthetic_overlaps(
    records: list[JointRecord],
    per_joint: int,
    rng: np.random.Generator,
    config: SyntheticConfig | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``moved_joints`` as ``load_joint`` gives a joint: the image (float32) and the masks
    ``(2, H, W)`` bool (upper, lower) of each synthetic overlap."""
    return [(made.image, made.masks) for _, made in moved_joints(records, rng, config, per_joint)]
