"""Training data: validated and reported, split by joint, seeded per epoch, physics kept."""

from pathlib import Path

import numpy as np
import torch

from blsgan_core.reconstruction import reconstruct
from trainer.config import TrainConfig
from trainer.datasets import (
    REAL,
    SYNTHETIC,
    Item,
    JointDataset,
    SampleStore,
    epoch_order,
    joint_space_centre,
    phase_items,
    prepare_data,
)


def test_bad_records_are_reported_and_the_split_is_by_joint(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    assert len(data.rejected) == 1
    assert "same bone" in data.rejected[0].reason
    rejected_image = Path(data.rejected[0].image)
    used = {record.image for record in (*data.train, *data.validation)}
    assert rejected_image not in used
    assert not {r.case for r in data.train} & {r.case for r in data.validation}
    assert data.synthetic_sources("validation") and data.real_overlapping("validation", 20)
    assert len(data.digest) == 64


def _dataset(data, phase: int, epoch: int, crop: int = 64) -> JointDataset:  # type: ignore[no-untyped-def]
    store = SampleStore()
    return JointDataset(
        store, phase_items(data, phase, 1), seed=7, phase=phase, epoch=epoch,
        crop_size=crop, hflip=True,
    )  # fmt: skip


def test_items_depend_only_on_seed_phase_epoch_and_index(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    first, again, later = _dataset(data, 2, 0), _dataset(data, 2, 0), _dataset(data, 2, 1)
    kinds = {item.kind for item in first.items}
    assert kinds == {SYNTHETIC, REAL}
    for index in range(len(first)):
        a, b = first[index], again[index]
        assert all(np.array_equal(a[key], b[key], equal_nan=True) for key in a)
    assert any(not torch.equal(first[i]["image"], later[i]["image"]) for i in range(len(first)))
    assert list(epoch_order(10, seed=7, phase=2, epoch=0)) == list(
        epoch_order(10, seed=7, phase=2, epoch=0)
    )
    assert list(epoch_order(10, seed=7, phase=2, epoch=0)) != list(
        epoch_order(10, seed=7, phase=2, epoch=1)
    )


def test_synthetic_items_obey_eq1_inside_the_masks_and_real_ones_have_no_truth(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    dataset = _dataset(data, 2, 3, crop=128)
    for index, item in enumerate(dataset.items):
        sample = dataset[index]
        assert sample["image"].shape == (1, 128, 128)
        if item.kind == SYNTHETIC:
            assert bool(sample["has_truth"])
            masks = sample["masks"][None]
            composed = reconstruct(sample["true_layers"][None], masks, sample["k"].item())
            union = masks.amax(dim=1, keepdim=True).bool()
            assert torch.allclose(composed[union], sample["image"][None][union], atol=1e-5)
            assert 0.5 < sample["k"].item() < 1.0  # soft tissue passes most of the beam
        else:
            assert not bool(sample["has_truth"])
            assert torch.isnan(sample["k"])
            assert float(sample["true_layers"].abs().sum()) == 0.0
            assert float(sample["masks"].sum()) > 0


def test_crops_are_centred_on_the_joint_space() -> None:
    masks = np.zeros((2, 64, 64), dtype=bool)
    masks[0, 5:30, 10:50] = True  # upper bone
    masks[1, 36:60, 10:50] = True  # lower bone: the gap is rows 30-35
    row, col = joint_space_centre(masks)
    assert 30 <= row <= 35 and 25 <= col <= 35
    masks[1, 28:36, 20:30] = True  # now they overlap in rows 28-29, columns 20-29
    row, col = joint_space_centre(masks)
    assert 28 <= row <= 29 and 20 <= col <= 29


def test_phase_one_has_only_synthetic_items(small_manifest: Path, tiny_config: TrainConfig) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    assert {item.kind for item in phase_items(data, 1, 1)} == {SYNTHETIC}
    assert all(isinstance(item, Item) for item in phase_items(data, 2, 1))
