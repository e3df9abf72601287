"""The hand radiographs with landmarks: reading ``landmarks.csv``, images, the split.

The split is by image, seeded, and reproducible from ``(ids, n_val, seed)`` alone, so the
evaluation command can rebuild the validation set the shipped weights were chosen on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from blsgan_core.crops import warp
from blsgan_core.joints.anatomy import N_LANDMARKS
from blsgan_core.joints.preprocess import normalise_intensity
from trainer.splits import pick_split

N_VALIDATION = 20
SPLIT_SEED = 0


@dataclass(frozen=True)
class LandmarkRecord:
    """One row of a landmarks CSV: the image file and its 37 points ``(x, y)``."""

    id: str
    file: Path
    pixel_spacing_mm: float | None
    points: np.ndarray  # (37, 2), source pixels


def read_landmarks_csv(path: Path) -> list[LandmarkRecord]:
    """Rows of a CSV in the format of ``hand_radiographs/landmarks.csv``; paths resolved."""
    if not path.is_file():
        raise ValueError(f"landmarks CSV {path} does not exist")
    records = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [f"{axis}{i}" for i in range(N_LANDMARKS) for axis in "xy"]
        missing = {"id", "file", *columns} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)[:6]}")
        for line, row in enumerate(reader, start=2):
            try:
                points = np.array([float(row[c]) for c in columns]).reshape(N_LANDMARKS, 2)
            except ValueError as error:
                raise ValueError(f"{path}:{line}: bad coordinate: {error}") from error
            spacing = row.get("pixel_spacing_mm") or None
            records.append(
                LandmarkRecord(
                    id=row["id"],
                    file=(path.parent / row["file"]).resolve(),
                    pixel_spacing_mm=float(spacing) if spacing else None,
                    points=points,
                )
            )
    if not records:
        raise ValueError(f"{path} holds no landmark rows")
    return records


def split_records(
    records: list[LandmarkRecord], n_val: int = N_VALIDATION, seed: int = SPLIT_SEED
) -> tuple[list[LandmarkRecord], list[LandmarkRecord]]:
    """(train, validation) by image: a seeded permutation of the sorted ids."""
    if not 0 < n_val < len(records):
        raise ValueError(f"n_val={n_val} must be between 1 and {len(records) - 1}")
    ids = sorted(r.id for r in records)
    chosen = set(np.random.default_rng(seed).permutation(ids)[:n_val].tolist())
    train = [r for r in records if r.id not in chosen]
    val = [r for r in records if r.id in chosen]
    return train, val


def select_split(
    records: list[LandmarkRecord], split: str, n_val: int = N_VALIDATION, seed: int = SPLIT_SEED
) -> list[LandmarkRecord]:
    """``"all"``, ``"train"`` or ``"val"`` records of the seeded split."""
    return pick_split(records, split, lambda r: split_records(r, n_val, seed))


def read_grey(path: Path) -> np.ndarray:
    """An 8/16-bit PNG or JPEG as float32 in [0, 1] (colour is averaged to grey)."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I"):
            array = np.asarray(image, dtype=np.float32)
            return array / max(float(array.max()), 1.0)
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class HandImage:
    """A radiograph held in memory at reduced resolution, with its landmarks in that grid."""

    id: str
    image: np.ndarray  # float32 (H, W) in [0, 1], intensity-normalised
    points: np.ndarray  # (37, 2) in this array's pixels


def load_hand_image(record: LandmarkRecord, long_side: int) -> HandImage:
    """Read, normalise and shrink one radiograph so that its long side is ``long_side``."""
    full = normalise_intensity(read_grey(record.file))
    scale = max(full.shape) / long_side
    shape = (round(full.shape[0] / scale), round(full.shape[1] / scale))
    matrix = np.diag([scale, scale, 1.0])
    # Pixel centres: output pixel i covers input [i*s, (i+1)*s), centred at (i + 0.5) s - 0.5.
    matrix[:2, 2] = 0.5 * scale - 0.5
    small = warp(full, matrix, shape)
    points = (record.points + 0.5) / scale - 0.5
    return HandImage(record.id, small, points)
