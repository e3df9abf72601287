"""Choosing a part of a seeded split by name, shared by every data set the trainer splits."""

from __future__ import annotations

import pytest

from trainer.splits import pick_split


def _halves(records: list[int]) -> tuple[list[int], list[int]]:
    return [r for r in records if r % 3], [r for r in records if not r % 3]


def test_pick_split_names_each_half_and_all() -> None:
    records = list(range(7))
    assert pick_split(records, "all", _halves) == records
    assert pick_split(records, "train", _halves) == [1, 2, 4, 5]
    assert pick_split(records, "val", _halves) == [0, 3, 6]


def test_pick_split_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="'test'"):
        pick_split([1, 2], "test", _halves)
