"""The MCP joint crops with bone masks for the segmenter: records, invalid ones, the split.

Records are :class:`blsgan_core.data.JointRecord`, read and checked by
:func:`blsgan_core.data.read_manifests` as for BLS-GAN (files exist and decode, binary
non-empty masks of the crop size, ``overlap_px`` as measured), and split by joint with
the same :func:`blsgan_core.data.split_by_case`.

Some records of the published data have the upper mask drawn on the lower bone. Real
overlaps of the two bones are thin slivers (mask IoU at most 0.172 in this data), while
those errors put both masks on one bone (IoU 0.755-0.909), so BLS-GAN's threshold
(``DEFAULT_MAX_MASK_IOU``, 0.5) separates them with a wide margin. The segmenter keeps
such records in the manifest's list, so that the split by case is the same whatever the
check finds, and reports them; they are left out of training and of every metric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blsgan_core.data import (
    DEFAULT_MAX_MASK_IOU,
    JointRecord,
    load_sample,
    read_manifests,
    split_by_case,
)
from trainer.splits import pick_split

VAL_FRACTION = 0.15
SPLIT_SEED = 0


def read_manifest(path: Path) -> list[JointRecord]:
    """The checked records of a ``manifest.json`` of ``mcp_joints``, same-bone pairs kept.

    ``ValueError`` naming the records that fail any other check.
    """
    contents = read_manifests(path, max_mask_iou=None)
    if contents.rejected:
        reasons = "; ".join(f"record {r.index} ({r.image}): {r.reason}" for r in contents.rejected)
        raise ValueError(f"{path}: {reasons}")
    if not contents.records:
        raise ValueError(f"{path} holds no records")
    return list(contents.records)


def load_joint(record: JointRecord) -> tuple[np.ndarray, np.ndarray]:
    """The image (float32 [0, 1]) and masks ``(2, H, W)`` bool: upper, lower."""
    sample = load_sample(record)
    return sample.image, sample.masks


def partition_valid(
    records: list[JointRecord], threshold: float = DEFAULT_MAX_MASK_IOU
) -> tuple[list[JointRecord], list[tuple[JointRecord, float]]]:
    """(valid records, [(invalid record, its IoU)]): both masks on one bone is invalid."""
    valid = [record for record in records if record.mask_iou < threshold]
    invalid = [(record, record.mask_iou) for record in records if record.mask_iou >= threshold]
    return valid, invalid


def select_split(
    records: list[JointRecord],
    split: str,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> list[JointRecord]:
    """``"all"``, ``"train"`` or ``"val"`` records of the seeded split by case."""
    return pick_split(
        records, split, lambda r: split_by_case(r, validation_fraction=val_fraction, seed=seed)
    )


def valid_split(
    records: list[JointRecord], val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[JointRecord], list[JointRecord], list[tuple[JointRecord, float]]]:
    """(train, validation, invalid): the split by case, invalid records dropped after it.

    The cases of the whole manifest are split first, so the split is the same whatever
    the validity check finds, and ``evaluate --split`` rebuilds it.
    """
    valid, invalid = partition_valid(records)
    train, val = split_by_case(records, validation_fraction=val_fraction, seed=seed)
    kept = {r.image for r in valid}
    return [r for r in train if r.image in kept], [r for r in val if r.image in kept], invalid


def training_records(manifest: Path) -> list[JointRecord]:
    """The valid training records of the default split of ``manifest``."""
    return valid_split(read_manifest(manifest))[0]
