"""Separate every joint of a manifest: the batch form of ``blsnode separate``.

Researchers run BLS-GAN over a data set in the ``mcp_joints`` manifest format. Each
record gives ``<image stem>_upper.png``, ``_lower.png`` and ``_reconstruction.png`` in the
output folder and one JSON line (k, the overlap of the masks used, the files). The masks
are the manifest's annotations, or (``predicted``) those of the segmenter the node runs,
as the node gives them to BLS-GAN (``node_masks(...).for_separation``), so the product's
own path can be measured on annotated data. Records the manifest
validation rejects and crops in which the segmenter finds no bone get a line with an
``error`` instead: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blsgan_core.data import JointRecord, read_grey, read_manifests, read_mask
from blsgan_core.inference import separate
from blsgan_core.model import BLSGANModel
from blsgan_core.segment import Segmenter, node_masks
from worker.joint_separation import write_separation_pngs
from worker.pipeline import NO_BONE

MASK_SOURCES = ("annotated", "predicted")
RESULTS_FILE = "separations.jsonl"


def _unique_stems(records: Sequence[JointRecord]) -> None:
    seen: dict[str, Path] = {}
    for record in records:
        stem = record.image.stem
        if stem in seen:
            raise ValueError(
                f"images {seen[stem]} and {record.image} share the stem {stem!r}: their "
                "output files would overwrite each other"
            )
        seen[stem] = record.image


def _masks(
    records: Sequence[JointRecord], images: np.ndarray, segmenter: Segmenter | None
) -> np.ndarray:
    if segmenter is not None:
        return node_masks(images, segmenter).for_separation
    return np.stack([np.stack([read_mask(r.upper), read_mask(r.lower)]) for r in records])


def separate_manifest(
    manifest: Path,
    out_dir: Path,
    model: BLSGANModel,
    *,
    segmenter: Segmenter | None = None,
    device: str | None = None,
    batch_size: int = 8,
) -> Iterator[dict[str, Any]]:
    """Separate each valid record of ``manifest``; yield one JSON-ready line per record.

    ``segmenter`` given: the masks are predicted from the image (as on the node's path);
    else the manifest's. A line holds ``case``, ``image``, ``masks`` (which kind),
    ``overlap_px`` (of those masks), ``k``, the three written files, ``model`` (version);
    or ``case``, ``image`` and ``error``. Raises ``ValueError`` for an unreadable
    manifest or two images whose outputs would collide.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    contents = read_manifests(manifest)
    _unique_stems(contents.records)
    source = "predicted" if segmenter is not None else "annotated"
    for rejection in contents.rejected:
        yield {"case": rejection.case, "image": rejection.image, "error": rejection.reason}
    records = list(contents.records)
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        images = np.stack([read_grey(record.image) for record in chunk])
        masks = _masks(chunk, images, segmenter)
        kept = [i for i in range(len(chunk)) if masks[i].any()]  # as the pipeline
        for index in sorted(set(range(len(chunk))) - set(kept)):
            yield {"case": chunk[index].case, "image": str(chunk[index].image), "error": NO_BONE}
        if not kept:
            continue
        result = separate(images[kept], masks[kept], model, device=device)
        for row, index in enumerate(kept):
            record = chunk[index]
            files = write_separation_pngs(
                out_dir,
                record.image.stem,
                result.layers[row].numpy(),
                result.reconstruction[row, 0].numpy(),
            )
            yield {
                "case": record.case,
                "image": str(record.image),
                "masks": source,
                "overlap_px": int(np.count_nonzero(masks[index].all(axis=0))),
                "k": float(result.k[row]),
                **{name: str(path) for name, path in files.items()},
                "model": model.version,
            }
