"""The named parts of a seeded train/validation split, as trainers and ``evaluate`` name them.

Each data set splits its own way (hands by image, front-end joints and BLS-GAN joints by
case); choosing a part by name is the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

SPLITS = ("all", "train", "val")

Record = TypeVar("Record")


def pick_split(
    records: list[Record],
    split: str,
    halves: Callable[[list[Record]], tuple[list[Record], list[Record]]],
) -> list[Record]:
    """``records`` for ``"all"``, else the ``"train"`` or ``"val"`` half that ``halves`` gives."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'all', 'train' or 'val', got {split!r}")
    if split == "all":
        return records
    train, val = halves(records)
    return train if split == "train" else val
