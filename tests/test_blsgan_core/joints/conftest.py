"""Fixtures of the localiser's tests: the shipped weights and validation radiographs."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.joints import Localiser, load_localiser
from trainer.frontend.hand_data import LandmarkRecord, read_landmarks_csv, select_split


@pytest.fixture(scope="session")
def localiser() -> Localiser:
    """The shipped localiser."""
    return load_localiser()


@pytest.fixture(scope="session")
def validation_hands(hand_radiographs_dir: Path) -> list[LandmarkRecord]:
    """Three radiographs of the localiser's validation split (never trained on)."""
    records = read_landmarks_csv(hand_radiographs_dir / "landmarks.csv")
    return select_split(records, "val")[:3]
