"""Joint crops with bone masks from manifest files: validated records, arrays, joint splits.

A manifest is a JSON list of records ``{case, image, upper, lower, background?,
overlap_px?}`` with paths relative to the manifest's folder (the layout of
``shared/data/mcp_joints``). Every record is checked before anything trusts it:

- the image and both masks exist, decode, and are ``size`` x ``size``;
- each mask is binary (values {0, 255} or {0, 1}) and not empty;
- the two masks are not drawn on the same bone: their intersection over union is below
  ``max_mask_iou``. On the authors' training split the IoU of genuine pairs is at most
  0.172 (99.5th percentile 0.108; real overlaps are thin bands), while the four known
  annotation errors (upper mask drawn on the lower bone) have 0.75-0.91: 0.5 sits in the
  middle of that empty gap;
- a stated ``overlap_px`` equals the measured mask intersection (else the files changed);
- a background, if named, exists and has the image's size.

Records that fail are returned as :class:`Rejection` with the reason, never silently
dropped, so that callers can report them; they stay out of training and metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

DEFAULT_SIZE = 256
DEFAULT_MAX_MASK_IOU = 0.5


@dataclass(frozen=True)
class JointRecord:
    """One validated joint image: where its files are and what was measured on its masks."""

    case: str
    image: Path
    upper: Path
    lower: Path
    background: Path | None
    overlap_px: int
    mask_iou: float
    manifest: Path


@dataclass(frozen=True)
class Rejection:
    """A manifest record that failed validation, and why."""

    manifest: Path
    index: int
    case: str
    image: str
    reason: str


@dataclass(frozen=True)
class ManifestContents:
    """Validated records and rejected ones of one or more manifests."""

    records: tuple[JointRecord, ...]
    rejected: tuple[Rejection, ...]

    @property
    def cases(self) -> tuple[str, ...]:
        """Distinct joint ids of the accepted records, sorted."""
        return tuple(sorted({record.case for record in self.records}))


@dataclass(frozen=True)
class JointSample:
    """The arrays of one joint: ``image`` in [0, 1] (bright = bone), masks as booleans."""

    image: NDArray[np.float32]
    upper: NDArray[np.bool_]
    lower: NDArray[np.bool_]
    background: NDArray[np.float32] | None
    overlap_px: int

    @property
    def masks(self) -> NDArray[np.bool_]:
        """``(2, H, W)``: upper then lower, the layer order used everywhere."""
        return np.stack([self.upper, self.lower])


class InvalidRecordError(ValueError):
    """A record (or an image file) that cannot be used; the message is the reason."""


def read_grey(path: Path) -> NDArray[np.float32]:
    """An image file as one float32 channel in [0, 1] (RGB-stored grey becomes one channel)."""
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as error:
        raise InvalidRecordError(f"{path} is not a readable image: {error}") from error
    return grey / 255.0


def read_mask(path: Path) -> NDArray[np.bool_]:
    """A binary mask file ({0, 255} or {0, 1}) as booleans; anything else is invalid."""
    try:
        with Image.open(path) as image:
            values = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError) as error:
        raise InvalidRecordError(f"{path} is not a readable image: {error}") from error
    levels = set(np.unique(values).tolist())
    if not (levels <= {0, 255} or levels <= {0, 1}):
        raise InvalidRecordError(f"mask {path.name} is not binary (values {sorted(levels)[:6]})")
    return values > 0


def mask_iou(first: NDArray[np.bool_], second: NDArray[np.bool_]) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    union = int(np.count_nonzero(first | second))
    return int(np.count_nonzero(first & second)) / union if union else 0.0


def _existing(root: Path, raw: Mapping[str, Any], key: str) -> Path:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"field {key!r} is missing")
    path = root / value
    if not path.is_file():
        raise InvalidRecordError(f"{key} file {value} does not exist")
    return path


def _checked_size(path: Path, size: int, what: str) -> None:
    try:
        with Image.open(path) as image:
            shape = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise InvalidRecordError(f"{what} {path.name} is not a readable image: {error}") from error
    if shape != (size, size):
        raise InvalidRecordError(f"{what} {path.name} is {shape[0]}x{shape[1]}, not {size}x{size}")


def validate_record(
    raw: Mapping[str, Any],
    root: Path,
    manifest: Path,
    *,
    size: int = DEFAULT_SIZE,
    max_mask_iou: float | None = DEFAULT_MAX_MASK_IOU,
) -> JointRecord:
    """Check one manifest record (see the module docstring); raise ``InvalidRecordError``.

    ``max_mask_iou=None`` keeps masks drawn on one bone: the caller judges the record by
    its ``mask_iou`` (the segmenter reports such records instead of dropping them).
    """
    case = raw.get("case")
    if not isinstance(case, str) or not case:
        raise InvalidRecordError("field 'case' is missing")
    image = _existing(root, raw, "image")
    upper = _existing(root, raw, "upper")
    lower = _existing(root, raw, "lower")
    background = _existing(root, raw, "background") if raw.get("background") else None
    _checked_size(image, size, "image")
    if background is not None:
        _checked_size(background, size, "background")
    masks = {}
    for name, path in (("upper", upper), ("lower", lower)):
        _checked_size(path, size, f"{name} mask")
        masks[name] = read_mask(path)
        if not masks[name].any():
            raise InvalidRecordError(f"{name} mask is empty")
    overlap = int(np.count_nonzero(masks["upper"] & masks["lower"]))
    iou = mask_iou(masks["upper"], masks["lower"])
    if max_mask_iou is not None and iou >= max_mask_iou:
        raise InvalidRecordError(
            f"upper and lower masks cover the same bone (IoU {iou:.2f} >= {max_mask_iou})"
        )
    stated = raw.get("overlap_px")
    if stated is not None and stated != overlap:
        raise InvalidRecordError(f"overlap_px is {stated} but the masks intersect in {overlap}")
    return JointRecord(case, image, upper, lower, background, overlap, iou, manifest)


def read_manifests(
    paths: Sequence[Path] | Path,
    *,
    size: int = DEFAULT_SIZE,
    max_mask_iou: float | None = DEFAULT_MAX_MASK_IOU,
) -> ManifestContents:
    """Validate every record of one or more manifests; duplicates of an image are rejected."""
    if isinstance(paths, Path):
        paths = [paths]
    if not paths:
        raise ValueError("no manifest given")
    if max_mask_iou is not None and not 0 < max_mask_iou <= 1:
        raise ValueError(f"max_mask_iou must be in (0, 1], got {max_mask_iou}")
    records: list[JointRecord] = []
    rejected: list[Rejection] = []
    seen: set[Path] = set()
    for manifest in paths:
        for index, raw in enumerate(_load_list(manifest)):
            try:
                if not isinstance(raw, Mapping):
                    raise InvalidRecordError("record is not an object")
                record = validate_record(
                    raw, manifest.parent, manifest, size=size, max_mask_iou=max_mask_iou
                )
                if record.image.resolve() in seen:
                    raise InvalidRecordError("image already listed by an earlier record")
            except InvalidRecordError as error:
                info = raw if isinstance(raw, Mapping) else {}
                rejected.append(
                    Rejection(
                        manifest,
                        index,
                        str(info.get("case", "")),
                        str(info.get("image", "")),
                        str(error),
                    )
                )
                continue
            seen.add(record.image.resolve())
            records.append(record)
    return ManifestContents(tuple(records), tuple(rejected))


def _load_list(manifest: Path) -> list[Any]:
    if not manifest.is_file():
        raise ValueError(f"manifest {manifest} does not exist")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"manifest {manifest} is not valid JSON: {error}") from error
    if not isinstance(data, list):
        raise ValueError(f"manifest {manifest} must hold a JSON list of records")
    return data


def load_sample(record: JointRecord) -> JointSample:
    """Read the arrays of a validated record."""
    background = read_grey(record.background) if record.background is not None else None
    return JointSample(
        image=read_grey(record.image),
        upper=read_mask(record.upper),
        lower=read_mask(record.lower),
        background=background,
        overlap_px=record.overlap_px,
    )


def split_by_case(
    records: Iterable[JointRecord], *, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[list[JointRecord], list[JointRecord]]:
    """Split records into (train, validation) with no joint (``case``) on both sides.

    Images of one joint are follow-ups of the same bone pair, so an image-level split
    would leak. Cases are sorted before a seeded shuffle, so the split depends only on
    the set of cases and the seed, not on record order.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    records = list(records)
    cases = sorted({record.case for record in records})
    order = np.random.default_rng(seed).permutation(len(cases))
    count = round(validation_fraction * len(cases))
    validation_cases = {cases[i] for i in order[:count]}
    train = [r for r in records if r.case not in validation_cases]
    validation = [r for r in records if r.case in validation_cases]
    return train, validation
