"""Training data from one or more manifests: validated, split by joint, cached, seeded.

- :func:`prepare_data` validates every record with :func:`blsgan_core.data.read_manifests`
  (rejections are returned, to be reported, and never used), optionally caps the records
  for smoke runs, and splits by joint (``case``) with
  :func:`blsgan_core.data.split_by_case`, never by image.
- :class:`SampleStore` holds the decoded arrays of every record in memory as uint8 and
  booleans (256 kB a joint, ~300 MB for the 1194 joints of the shared set), loaded once
  in the main process so that forked loader workers share them. Each image is
  harmonised (:func:`blsgan_core.harmonise.harmonise`) as the node harmonises every crop
  before the segmenter and BLS-GAN, and its soft-tissue background goes through the same
  grey map: synthetic overlaps are composed from, and real joints given as, the grey
  values the model meets on the node.
- :class:`JointDataset` yields one epoch of one phase: synthetic overlaps made from the
  non-overlapping joints (phase 1 and 2) and real joints (phase 2). Every random choice
  (synthetic shift, crop window, flip) is drawn from a generator seeded with
  ``(seed, phase, epoch, index)``: an epoch is the same whether the run was resumed or
  not, and whatever the number of loader workers.

Augmentation keeps the physics valid: a horizontal flip (left and right hands are mirror
images; the upper/lower order of the bones is kept) and the position of the crop window.
Intensity changes are left out, because they would break Eq. 1's relation between the
layers, the image and k. ``mask_noise_px`` (a departure, off by default) gives the
networks of a synthetic overlap masks with moved outlines
(:func:`trainer.given_masks.perturb_outlines`), and ``mask_margin_px`` (likewise) widens
the masks of every joint as the model will at inference
(:func:`blsgan_core.mask_margin.widen_masks`); the true layers of a synthetic overlap hold
the soft tissue where a given mask has no bone of its own
(:func:`trainer.given_masks.layers_for_given_masks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from blsgan_core.checkpoint import file_digest
from blsgan_core.data import (
    JointRecord,
    ManifestContents,
    Rejection,
    load_sample,
    read_manifests,
    split_by_case,
)
from blsgan_core.harmonise import grey_map
from blsgan_core.joint_window import joint_space_centre, window_around
from blsgan_core.laplace import soft_tissue_background
from blsgan_core.mask_margin import widen_masks
from blsgan_core.synthetic import SyntheticConfig, synthesize_overlap
from trainer.config import DataSection
from trainer.given_masks import layers_for_given_masks, perturb_outlines

SYNTHETIC = "synthetic"
REAL = "real"
REAL_OVERLAP_MIN_PX = 20  # the authors' definition of an overlapping image


@dataclass(frozen=True)
class TrainingData:
    """Records of one run: the joint-disjoint split, what was rejected, and a digest."""

    manifests: tuple[Path, ...]
    train: tuple[JointRecord, ...]
    validation: tuple[JointRecord, ...]
    rejected: tuple[Rejection, ...]
    digest: str

    def synthetic_sources(self, split: str = "train") -> list[JointRecord]:
        """Joints of ``split`` whose masks do not intersect: the sources of synthetic overlaps."""
        return [record for record in self._split(split) if record.overlap_px == 0]

    def real_overlapping(self, split: str = "train", min_px: int = 1) -> list[JointRecord]:
        """Joints of ``split`` whose masks intersect in at least ``min_px`` pixels."""
        return [record for record in self._split(split) if record.overlap_px >= min_px]

    def _split(self, split: str) -> tuple[JointRecord, ...]:
        if split == "train":
            return self.train
        if split == "validation":
            return self.validation
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")


def cap_records(records: Sequence[JointRecord], max_records: int, seed: int) -> list[JointRecord]:
    """At most ``max_records`` records of whole joints, half without and half with overlap.

    Joints are taken in a seeded order, so a smoke run always sees the same few joints
    and still has synthetic sources and real overlaps on both sides of the split.
    """
    cases = sorted({record.case for record in records})
    order = [cases[i] for i in np.random.default_rng(seed).permutation(len(cases))]
    by_case: dict[str, list[JointRecord]] = {}
    for record in records:
        by_case.setdefault(record.case, []).append(record)
    chosen: list[JointRecord] = []
    for wanted_overlap in (False, True):
        budget = max_records // 2 if not wanted_overlap else max_records - len(chosen)
        taken = 0
        for case in order:
            picks = [r for r in by_case[case] if (r.overlap_px > 0) == wanted_overlap]
            picks = [r for r in picks if r not in chosen][: budget - taken]
            chosen.extend(picks)
            taken += len(picks)
            if taken >= budget:
                break
    return chosen


def data_digest(records: Sequence[JointRecord]) -> str:
    """SHA-256 over the bytes of every image and mask used, in a fixed order."""
    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: str(r.image)):
        for path in (record.image, record.upper, record.lower):
            digest.update(file_digest(path).encode())
    return digest.hexdigest()


def prepare_data(manifests: Sequence[Path], data: DataSection) -> TrainingData:
    """Validate and split the records of ``manifests``; cap each side for smoke runs.

    The split is made on all valid records, so the validation joints are those that
    ``--split val`` of the evaluation reproduces; ``max_records`` then caps each side
    (in proportion to ``validation_fraction``, half without and half with overlap).
    """
    if not manifests:
        raise ValueError("at least one manifest is needed")
    contents: ManifestContents = read_manifests(list(manifests))
    if not contents.records:
        raise ValueError(f"no valid record in {', '.join(map(str, manifests))}")
    train, validation = split_by_case(
        contents.records, validation_fraction=data.validation_fraction, seed=data.split_seed
    )
    if data.max_records is not None:
        validation_cap = max(2, round(data.max_records * data.validation_fraction))
        train = cap_records(train, data.max_records - validation_cap, data.split_seed)
        validation = cap_records(validation, validation_cap, data.split_seed)
    return TrainingData(
        manifests=tuple(Path(path) for path in manifests),
        train=tuple(train),
        validation=tuple(validation),
        rejected=contents.rejected,
        digest=data_digest([*train, *validation]),
    )


@dataclass(frozen=True)
class StoredJoint:
    """Compact arrays of one joint: grey values as uint8, masks as booleans."""

    image: NDArray[np.uint8]
    masks: NDArray[np.bool_]
    background: NDArray[np.uint8]
    overlap_px: int

    def image_float(self) -> NDArray[np.float32]:
        """The joint image in [0, 1]."""
        return self.image.astype(np.float32) / 255.0

    def background_float(self) -> NDArray[np.float32]:
        """The soft-tissue background in [0, 1]."""
        return self.background.astype(np.float32) / 255.0


def _to_uint8(values: NDArray[np.float32]) -> NDArray[np.uint8]:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


class SampleStore:
    """Decoded joints by image path, loaded once; backgrounds solved where none is given.

    With ``harmonise`` (the default, what the node does) every image is mapped onto the
    training data's grey statistics (:func:`blsgan_core.harmonise.harmonise`) and its
    soft-tissue background goes through the same grey map
    (:func:`blsgan_core.harmonise.grey_map`: outside the bones the background is the
    image, so both stay equal there; the map is increasing, so the fill stays between its
    boundary values). Solving Laplace's equation anew on every harmonised joint would
    cost ~0.3 s a joint on an idle core. Without ``harmonise`` the raw grey values are
    used, as the models up to ``blsgan-cpu`` were trained.
    """

    def __init__(self, harmonise: bool = True) -> None:
        self.harmonise = harmonise
        self._joints: dict[Path, StoredJoint] = {}

    def __len__(self) -> int:
        return len(self._joints)

    def load(self, records: Sequence[JointRecord]) -> None:
        """Decode every record not yet held."""
        for record in records:
            if record.image not in self._joints:
                self._joints[record.image] = self._decode(record)

    def get(self, record: JointRecord) -> StoredJoint:
        """The arrays of ``record`` (decoded now if :meth:`load` did not see it)."""
        if record.image not in self._joints:
            self._joints[record.image] = self._decode(record)
        return self._joints[record.image]

    def _decode(self, record: JointRecord) -> StoredJoint:
        sample = load_sample(record)
        if sample.background is not None:
            background = sample.background
        else:
            background = soft_tissue_background(sample.image, sample.masks)
        image = sample.image
        if self.harmonise:
            to_reference = grey_map(image)
            image, background = to_reference(image), to_reference(background)
        return StoredJoint(_to_uint8(image), sample.masks, _to_uint8(background), sample.overlap_px)


def crop_window(
    masks: NDArray[np.bool_], size: int, rng: np.random.Generator
) -> tuple[slice, slice]:
    """A ``size`` square around the joint space, jittered by up to a quarter of its side."""
    height, width = masks.shape[-2:]
    if size >= min(height, width):
        return slice(0, height), slice(0, width)
    jitter = size // 4
    offset = (int(rng.integers(-jitter, jitter + 1)), int(rng.integers(-jitter, jitter + 1)))
    return window_around(joint_space_centre(masks), size, (height, width), offset)


@dataclass(frozen=True)
class Item:
    """One entry of an epoch: where it comes from and how it is used."""

    kind: str
    record: JointRecord


class JointDataset(Dataset[dict[str, torch.Tensor]]):
    """One epoch of one phase: synthetic overlaps (with true layers) and real joints.

    Each item is a dict of tensors: ``image`` ``(1, s, s)``, ``masks`` ``(2, s, s)``
    (upper, lower; what the networks are given), ``true_masks`` (the masks of the true
    layers: ``masks`` unless ``mask_noise_px`` moved the outlines of a synthetic
    overlap's or ``mask_margin_px`` widened them), ``true_layers`` ``(2, s, s)`` (zeros
    for real joints; with moved or widened outlines the soft tissue where a given mask
    holds no bone of its own), ``has_truth``
    (bool), ``k`` (the true k of a synthetic overlap, NaN for real joints) and
    ``overlap_px`` (in the full joint, before cropping).
    """

    def __init__(
        self,
        store: SampleStore,
        items: Sequence[Item],
        *,
        seed: int,
        phase: int,
        epoch: int,
        crop_size: int,
        hflip: bool,
        synthetic: SyntheticConfig | None = None,
        mask_noise_px: float = 0.0,
        mask_margin_px: int = 0,
    ) -> None:
        if any(item.kind not in (SYNTHETIC, REAL) for item in items):
            raise ValueError(f"items must be of kind {SYNTHETIC!r} or {REAL!r}")
        self.store = store
        self.items = list(items)
        self.seed = seed
        self.phase = phase
        self.epoch = epoch
        self.crop_size = crop_size
        self.hflip = hflip
        self.synthetic = synthetic or SyntheticConfig()
        self.mask_noise_px = mask_noise_px
        self.mask_margin_px = mask_margin_px

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.items[index]
        rng = np.random.default_rng([self.seed, self.phase, self.epoch, index])
        joint = self.store.get(item.record)
        if item.kind == SYNTHETIC:
            made = synthesize_overlap(
                joint.image_float(),
                joint.masks[0],
                joint.masks[1],
                rng,
                background=joint.background_float(),
                config=self.synthetic,
            )
            image, masks, layers, k = made.image, made.masks, made.layers, made.k
            overlap_px, has_truth = made.overlap_px, True
        else:
            image, masks = joint.image_float(), joint.masks
            layers = np.zeros(masks.shape, dtype=np.float32)
            k, overlap_px, has_truth = float("nan"), joint.overlap_px, False
        given = masks
        if has_truth and self.mask_noise_px > 0:
            given = perturb_outlines(masks, float(rng.uniform(0, self.mask_noise_px)), rng)
        if self.mask_margin_px:
            widened = widen_masks(torch.from_numpy(given)[None], self.mask_margin_px)
            given = widened[0].numpy() > 0.5
        if has_truth and given is not masks:
            layers = layers_for_given_masks(layers, masks, given, joint.background_float())
        rows, cols = crop_window(masks, self.crop_size, rng)
        planes = [image[None], given.astype(np.float32), masks.astype(np.float32), layers]
        stack = np.concatenate(planes)[:, rows, cols]
        if self.hflip and rng.random() < 0.5:
            stack = stack[:, :, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
        return {
            "image": tensor[0:1],
            "masks": tensor[1:3],
            "true_masks": tensor[3:5],
            "true_layers": tensor[5:7],
            "has_truth": torch.tensor(has_truth),
            "k": torch.tensor(k, dtype=torch.float32),
            "overlap_px": torch.tensor(overlap_px),
        }


def phase_items(data: TrainingData, phase: int, min_real_overlap_px: int) -> list[Item]:
    """Phase 1: synthetic overlaps only; phase 2: synthetic overlaps and real joints."""
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2, got {phase!r}")
    items = [Item(SYNTHETIC, record) for record in data.synthetic_sources("train")]
    if phase == 2:
        items += [Item(REAL, r) for r in data.real_overlapping("train", min_real_overlap_px)]
    if not items:
        raise ValueError(f"phase {phase} has no training joints (check the manifests)")
    return items


def epoch_order(length: int, *, seed: int, phase: int, epoch: int) -> Iterator[int]:
    """The shuffled item order of one epoch, a function of its seed, phase and epoch only."""
    yield from np.random.default_rng([seed, phase, epoch, 2**31]).permutation(length).tolist()
