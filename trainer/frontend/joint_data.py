"""The MCP joint crops with bone masks: manifest, invalid records, split by joint.

Some records of the published data have the upper mask drawn on the lower bone. Real
overlaps of the two bones are thin slivers (mask IoU at most about 0.2 in this data),
while those errors put both masks on one bone (IoU 0.75-0.91), so an IoU threshold of
0.4 separates them with a wide margin. Such records are reported and left out of
training and of every metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blsgan_core.data import mask_iou, read_mask
from trainer.frontend.hand_data import read_grey
from trainer.splits import pick_split

INVALID_IOU = 0.4
VAL_FRACTION = 0.15
SPLIT_SEED = 0


@dataclass(frozen=True)
class JointRecord:
    """One joint image of the manifest, paths resolved."""

    case: str
    image: Path
    upper: Path
    lower: Path
    overlap_px: int


def read_manifest(path: Path) -> list[JointRecord]:
    """Records of a ``manifest.json`` in the format of ``mcp_joints``."""
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    entries = json.loads(path.read_text())
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path} is not a non-empty list of records")
    root = path.parent
    records = []
    for index, entry in enumerate(entries):
        missing = {"case", "image", "upper", "lower"} - set(entry)
        if missing:
            raise ValueError(f"{path}: record {index} lacks {sorted(missing)}")
        records.append(
            JointRecord(
                entry["case"],
                root / entry["image"],
                root / entry["upper"],
                root / entry["lower"],
                int(entry.get("overlap_px", -1)),
            )
        )
    return records


def load_joint(record: JointRecord) -> tuple[np.ndarray, np.ndarray]:
    """The image (float32 [0, 1]) and masks ``(2, H, W)`` bool: upper, lower."""
    image = read_grey(record.image)
    masks = np.stack([read_mask(record.upper), read_mask(record.lower)])
    if masks.shape[1:] != image.shape:
        raise ValueError(f"{record.image}: masks {masks.shape[1:]} do not match {image.shape}")
    return image, masks


def partition_valid(
    records: list[JointRecord], threshold: float = INVALID_IOU
) -> tuple[list[JointRecord], list[tuple[JointRecord, float]]]:
    """(valid records, [(invalid record, its IoU)]): both masks on one bone is invalid."""
    valid, invalid = [], []
    for record in records:
        iou = mask_iou(read_mask(record.upper), read_mask(record.lower))
        if iou > threshold:
            invalid.append((record, iou))
        else:
            valid.append(record)
    return valid, invalid


def split_by_case(
    records: list[JointRecord], val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[JointRecord], list[JointRecord]]:
    """(train, validation) by joint: all images of a case fall on the same side."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    cases = sorted({r.case for r in records})
    count = max(1, round(val_fraction * len(cases)))
    chosen = set(np.random.default_rng(seed).permutation(cases)[:count].tolist())
    return [r for r in records if r.case not in chosen], [r for r in records if r.case in chosen]


def select_split(
    records: list[JointRecord],
    split: str,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> list[JointRecord]:
    """``"all"``, ``"train"`` or ``"val"`` records of the seeded split by case."""
    return pick_split(records, split, lambda r: split_by_case(r, val_fraction, seed))


def valid_split(
    records: list[JointRecord], val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[JointRecord], list[JointRecord], list[tuple[JointRecord, float]]]:
    """(train, validation, invalid): the split by case, invalid records dropped after it.

    The cases of the whole manifest are split first, so the split is the same whatever
    the validity check finds, and ``evaluate --split`` rebuilds it.
    """
    valid, invalid = partition_valid(records)
    train, val = split_by_case(records, val_fraction, seed)
    kept = {r.image for r in valid}
    return [r for r in train if r.image in kept], [r for r in val if r.image in kept], invalid


def training_records(manifest: Path) -> list[JointRecord]:
    """The valid training records of the default split of ``manifest``."""
    return valid_split(read_manifest(manifest))[0]
