"""Synthetic BLS-GAN results placed on real radiographs, for the derived-object tests.

The radiograph is real (an atlas hand re-encoded as DX by ``dicom_factory``) and the
joints sit where the atlas' landmarks put the MCP joints; only the network outputs are
made up: two overlapping discs per joint along the finger axis as bone masks, the real
joint crop as J, its upper and lower parts as layers, and Eq. 1 with a chosen k as the
reconstruction. The thumb's discs are kept apart, so one overlap is empty.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from dicom_node.derived.model import (
    HandResult,
    Joint,
    JointResult,
    ModelInfo,
    RadiographResult,
    ReconstructionError,
    Side,
)

CROP = 256
# Landmark indices (hand_radiographs/README.md): MCP joint and the next joint distally.
_MCP = {Joint.MCP1: 18, Joint.MCP2: 21, Joint.MCP3: 25, Joint.MCP4: 29, Joint.MCP5: 33}
_DISTAL = {Joint.MCP1: 19, Joint.MCP2: 22, Joint.MCP3: 26, Joint.MCP4: 30, Joint.MCP5: 34}
MODEL = ModelInfo(name="BLS-GAN test model", version="0.0.1-test")


@dataclass(frozen=True)
class AtlasHand:
    """One atlas image and its 37 landmarks (x, y) on the full-size image."""

    image: Path
    landmarks: np.ndarray  # (37, 2)
    width: int


def atlas_hand(hand_radiographs_dir: Path, atlas_id: str) -> AtlasHand:
    """Read the landmarks of ``atlas_id`` from ``landmarks.csv``."""
    with (hand_radiographs_dir / "landmarks.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["id"] == atlas_id:
                points = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(37)])
                image = hand_radiographs_dir / row["file"]
                with Image.open(image) as opened:
                    width = opened.width
                return AtlasHand(image, points, width)
    raise ValueError(f"atlas id {atlas_id} not in landmarks.csv")


def synthetic_result(
    hand: AtlasHand,
    pixels: np.ndarray,
    *,
    scale: float,
    layout: str = "left",
    model: ModelInfo = MODEL,
) -> RadiographResult:
    """Results for the hand(s) of a radiograph made by ``dicom_factory`` with ``scale``.

    ``layout`` is ``left`` (the atlas as is), ``right`` (mirrored) or ``both``.
    ``pixels`` is the decoded radiograph ([0, 1], bright = bone) the crops are cut from.
    """
    width = round(hand.width * scale)
    placements: list[tuple[Side, np.ndarray]] = []
    points = hand.landmarks * scale
    mirrored = points.copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    if layout == "left":
        placements.append((Side.LEFT, points))
    elif layout == "right":
        placements.append((Side.RIGHT, mirrored))
    elif layout == "both":
        shifted = points.copy()
        shifted[:, 0] += width
        placements += [(Side.RIGHT, mirrored), (Side.LEFT, shifted)]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    hands = tuple(
        HandResult(side, tuple(_joint(joint, landmarks, pixels) for joint in Joint))
        for side, landmarks in placements
    )
    return RadiographResult(model=model, hands=hands)


def _joint(joint: Joint, landmarks: np.ndarray, pixels: np.ndarray) -> JointResult:
    centre = landmarks[_MCP[joint]]
    axis = landmarks[_DISTAL[joint]] - centre
    axis /= np.linalg.norm(axis)
    size = float(np.linalg.norm(landmarks[_MCP[Joint.MCP2]] - landmarks[_MCP[Joint.MCP3]]))
    # Thumb discs 0.36 apart with radii 0.14 + 0.16: no overlap; the others overlap.
    gap = 0.36 if joint == Joint.MCP1 else 0.22
    upper = _disc(pixels.shape, centre + 0.10 * size * axis, 0.14 * size)
    lower = _disc(pixels.shape, centre - (gap - 0.10) * size * axis, 0.16 * size)
    crop = _crop(pixels, centre, 1.2 * size)
    rows = np.arange(CROP)[:, None]
    upper_layer = np.where(rows < 150, crop, 0.0).astype(np.float32)
    lower_layer = np.where(rows > 100, crop, 0.0).astype(np.float32)
    k = 0.7 + 0.02 * int(joint.value[-1])
    reconstruction = np.clip(1.0 - (1.0 - upper_layer) * (1.0 - lower_layer) / k, 0.0, 1.0).astype(
        np.float32
    )
    mse = float(np.mean((reconstruction - crop) ** 2))
    error = ReconstructionError(
        mse=mse,
        ssim=float(structural_similarity(reconstruction, crop, data_range=1.0)),
        psnr=10.0 * math.log10(1.0 / max(mse, 1e-12)),
    )
    return JointResult(
        joint=joint,
        upper_mask=upper,
        lower_mask=lower,
        crop=crop,
        upper_layer=upper_layer,
        lower_layer=lower_layer,
        reconstruction=reconstruction,
        k=k,
        error=error,
    )


def _disc(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    return np.asarray((columns - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2)


def _crop(pixels: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    half = side / 2
    box = (
        max(0, round(centre[0] - half)),
        max(0, round(centre[1] - half)),
        min(pixels.shape[1], round(centre[0] + half)),
        min(pixels.shape[0], round(centre[1] + half)),
    )
    image = Image.fromarray(np.asarray(pixels, dtype=np.float32), mode="F").crop(box)
    resized = np.asarray(image.resize((CROP, CROP), Image.Resampling.BILINEAR))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
