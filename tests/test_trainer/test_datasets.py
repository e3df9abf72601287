"""Training data: validated and reported, split by joint, seeded per epoch, physics kept."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from blsgan_core.data import read_grey
from blsgan_core.harmonise import grey_map, harmonise
from blsgan_core.mask_margin import widen_masks
from blsgan_core.reconstruction import reconstruct
from trainer.config import TrainConfig
from trainer.datasets import (
    REAL,
    SYNTHETIC,
    Item,
    JointDataset,
    SampleStore,
    epoch_order,
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


def test_phase_one_has_only_synthetic_items(small_manifest: Path, tiny_config: TrainConfig) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    assert {item.kind for item in phase_items(data, 1, 1)} == {SYNTHETIC}
    assert all(isinstance(item, Item) for item in phase_items(data, 2, 1))


def test_crops_are_harmonised_as_on_the_node_before_composition_and_for_real_joints(
    small_manifest: Path, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    store = SampleStore()
    source = data.synthetic_sources("train")[0]
    real = data.real_overlapping("train", 20)[0]
    for record in (source, real):
        raw = read_grey(record.image)
        expected = np.rint(harmonise(raw) * 255).astype(np.uint8)
        stored = store.get(record)
        assert np.array_equal(stored.image, expected)
        assert np.abs(stored.image.astype(int) - np.rint(raw * 255)).mean() > 1  # not the raw crop
        assert record.background is not None
        background = grey_map(raw)(read_grey(record.background))
        assert np.array_equal(stored.background, np.rint(background * 255).astype(np.uint8))
        outside = ~ndimage.binary_dilation(stored.masks.any(axis=0), iterations=12)
        assert np.abs(stored.background[outside].astype(int) - stored.image[outside]).mean() < 2
    # A crop exported with another window and gamma reaches the model as the same crop.
    raw = read_grey(real.image)
    distorted = np.clip((raw - 0.1) / 0.7, 0, 1) ** 1.8
    Image.fromarray(np.rint(distorted * 255).astype(np.uint8)).save(tmp_path / "distorted.png")
    changed = replace(real, image=tmp_path / "distorted.png")
    assert np.abs(store.get(changed).image_float() - store.get(real).image_float()).mean() < 0.02
    assert np.abs(distorted - raw).mean() > 0.05
    # Real items and the sources of synthetic overlaps carry the harmonised grey values.
    items = [Item(REAL, real), Item(SYNTHETIC, source)]
    dataset = JointDataset(
        store, items, seed=1, phase=2, epoch=0, crop_size=256, hflip=False
    )  # fmt: skip
    assert np.allclose(dataset[0]["image"][0].numpy(), store.get(real).image_float())
    synthetic = dataset[1]
    stored = store.get(source)
    outside = ~synthetic["masks"].numpy().any(axis=0)
    made = synthetic["image"][0].numpy()
    assert np.allclose(made[outside], stored.background_float()[outside], atol=1e-6)
    upper = stored.masks[0] & ~stored.masks[1]
    upper_layer = synthetic["true_layers"][0].numpy()
    assert upper_layer.max() == stored.image_float()[upper].max()


def test_without_harmonise_the_raw_crop_and_the_manifest_background_are_used(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    data = prepare_data([small_manifest], tiny_config.data)
    record = data.real_overlapping("train", 20)[0]
    stored = SampleStore(harmonise=False).get(record)
    assert np.array_equal(stored.image, np.rint(read_grey(record.image) * 255).astype(np.uint8))
    assert record.background is not None
    manifest_background = np.rint(read_grey(record.background) * 255).astype(np.uint8)
    assert np.array_equal(stored.background, manifest_background)


def test_phase_two_leaves_out_real_joints_below_the_smallest_overlap(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    """``min_real_overlap_px`` (the shipped model's last run used 100) drops real joints
    overlapping by fewer pixels from phase 2 and keeps every synthetic item."""
    data = prepare_data([small_manifest], tiny_config.data)
    overlaps = sorted(record.overlap_px for record in data.real_overlapping("train", 1))
    assert len(set(overlaps)) > 1, "the fixture needs real overlaps of two sizes"
    threshold = overlaps[-1]
    everything, large_only = phase_items(data, 2, 1), phase_items(data, 2, threshold)
    real_kept = [item.record.overlap_px for item in large_only if item.kind == REAL]
    assert real_kept and min(real_kept) >= threshold
    assert len(real_kept) == sum(1 for px in overlaps if px >= threshold) < len(overlaps)
    synthetic = [item for item in everything if item.kind == SYNTHETIC]
    assert synthetic == [item for item in large_only if item.kind == SYNTHETIC]
    assert phase_items(data, 1, threshold) == synthetic


def _without_and_with(
    manifest: Path, config: TrainConfig, seed: int, **option: Any
) -> tuple[list[Item], JointDataset, JointDataset]:
    """Phase 2's items of ``manifest`` (whole joints, no flips) as two datasets of one seed:
    without and with the given-mask ``option``."""
    items = phase_items(prepare_data([manifest], config.data), 2, 1)

    def dataset(**extra: Any) -> JointDataset:
        store = SampleStore()
        return JointDataset(
            store, items, seed=seed, phase=2, epoch=0, crop_size=256, hflip=False, **extra
        )

    return items, dataset(), dataset(**option)


def test_mask_noise_moves_the_given_outlines_of_synthetic_overlaps_only(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    items, exact, noisy = _without_and_with(small_manifest, tiny_config, 7, mask_noise_px=2.0)
    moved = 0
    for index, item in enumerate(items):
        sample, reference = noisy[index], exact[index]
        assert torch.equal(reference["masks"], reference["true_masks"])
        assert torch.equal(sample["true_masks"], reference["masks"])  # the same overlap
        layers, true_masks = sample["true_layers"], sample["true_masks"]
        inside = torch.maximum(true_masks, sample["masks"])
        assert float((layers * (1 - inside)).abs().sum()) == 0.0
        if item.kind == SYNTHETIC:
            # Where a given mask holds no bone of its own its truth is the soft tissue.
            absent = sample["masks"] > true_masks
            background = noisy.store.get(item.record).background_float()
            expected = torch.from_numpy(background).expand_as(layers)[absent]
            assert torch.allclose(layers[absent], expected)
        if item.kind == REAL:
            assert torch.equal(sample["masks"], sample["true_masks"])
            assert torch.equal(sample["masks"], reference["masks"])
        else:
            changed = (sample["masks"] != true_masks).sum().item()
            assert changed < 0.2 * true_masks.sum().item()
            moved += changed > 0
    assert moved >= 1


def test_a_mask_margin_widens_every_joints_given_masks_and_its_truth_is_soft_tissue(
    small_manifest: Path, tiny_config: TrainConfig
) -> None:
    """Real and synthetic joints alike get masks widened by the margin, as the node's model
    will; a synthetic overlap's truth holds the soft tissue where a widened mask holds no
    bone of its own and its true masks stay the exact ones."""
    items, exact, wide = _without_and_with(small_manifest, tiny_config, 3, mask_margin_px=1)
    for index, item in enumerate(items):
        sample, reference = wide[index], exact[index]
        assert torch.equal(sample["image"], reference["image"])
        assert torch.equal(sample["true_masks"], reference["masks"])
        assert torch.equal(sample["masks"], widen_masks(reference["masks"][None], 1)[0])
        rim = sample["masks"] > sample["true_masks"]
        assert rim.any()
        if item.kind == SYNTHETIC:
            background = wide.store.get(item.record).background_float()
            expected = torch.from_numpy(background).expand_as(rim)[rim]
            assert torch.allclose(sample["true_layers"][rim], expected)
            inside = ~rim
            assert torch.equal(sample["true_layers"][inside], reference["true_layers"][inside])
        else:
            assert float(sample["true_layers"].abs().sum()) == 0.0
