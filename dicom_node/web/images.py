"""PNG pictures of a processed radiograph, drawn server-side from the stored objects.

The overlay is the source radiograph with the outline of every segment of the stored
Segmentation drawn in the segment's recommended colour (phalanx red, metacarpal blue,
overlap yellow); joint pictures are the Secondary Capture layers as they were sent, and
the joint's region of the source, cut axis-aligned around its two bones.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from PIL import Image
from pydicom import dcmread

from dicom_node.derived.segmentation import DISPLAY_COLOURS, BonePart
from dicom_node.pixels import load_radiograph

# The longest side of the overlay as served: enough to see a joint, small to send.
OVERLAY_SIZE = 1000
REGION_MARGIN = 0.25
OUTLINE_WIDTH = 2


@dataclass(frozen=True)
class Segment:
    """One segment of the stored Segmentation: its label, part and mask on the source grid."""

    label: str
    part: BonePart
    mask: np.ndarray

    @property
    def joint_key(self) -> str:
        """``MCP2 L`` of the label ``MCP2 L overlap``."""
        return self.label.rsplit(" ", 1)[0]


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a uint8 greyscale (H, W) or RGB (H, W, 3) array as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def source_grey(path: Path) -> np.ndarray:
    """The radiograph as displayed (bright bone), uint8."""
    pixels = load_radiograph(path).pixels
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


def read_segments(seg_path: Path) -> list[Segment]:
    """Every segment of a Segmentation of one source image, with its mask."""
    seg = hd.seg.segread(seg_path)
    source_uid = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    masks = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[source_uid.ReferencedSOPInstanceUID],
        segment_numbers=list(seg.segment_numbers),
    )[0]
    segments = []
    for index, number in enumerate(seg.segment_numbers):
        label = str(seg.get_segment_description(number).segment_label)
        part = BonePart(label.rsplit(" ", 1)[-1])
        segments.append(Segment(label, part, masks[..., index].astype(bool)))
    return segments


def outline(mask: np.ndarray, width: int = OUTLINE_WIDTH) -> np.ndarray:
    """The pixels of ``mask`` within ``width`` pixels of its border."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def _resized(array: np.ndarray, scale: float, resample: Image.Resampling) -> np.ndarray:
    if scale >= 1.0:
        return array
    rows, columns = array.shape[:2]
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    if array.dtype == bool:
        return np.asarray(Image.fromarray(array.astype(np.uint8) * 255).resize(size, resample)) > 0
    return np.asarray(Image.fromarray(array).resize(size, resample))


def overlay(grey: np.ndarray, segments: list[Segment], size: int = OVERLAY_SIZE) -> np.ndarray:
    """RGB radiograph (longest side at most ``size``) with every segment's outline.

    Overlaps are drawn last, so their yellow stays visible where bones' outlines cross.
    """
    scale = min(1.0, size / max(grey.shape))
    picture = np.repeat(_resized(grey, scale, Image.Resampling.BILINEAR)[..., None], 3, axis=2)
    order = {BonePart.UPPER: 0, BonePart.LOWER: 1, BonePart.OVERLAP: 2}
    for segment in sorted(segments, key=lambda s: order[s.part]):
        if not segment.mask.any():
            continue
        edge = outline(_resized(segment.mask, scale, Image.Resampling.NEAREST))
        picture[edge] = DISPLAY_COLOURS[segment.part]
    return picture


def joint_region(
    grey: np.ndarray, segments: list[Segment], joint_key: str, margin: float = REGION_MARGIN
) -> np.ndarray | None:
    """The source around one joint's two bones (axis-aligned box plus a margin)."""
    masks = [
        s.mask for s in segments if s.joint_key == joint_key and s.part is not BonePart.OVERLAP
    ]
    if not masks:
        return None
    rows, columns = np.nonzero(np.logical_or.reduce(masks))
    if rows.size == 0:
        return None
    pad = round(margin * max(int(np.ptp(rows)) + 1, int(np.ptp(columns)) + 1))
    top, left = max(0, rows.min() - pad), max(0, columns.min() - pad)
    bottom = min(grey.shape[0], rows.max() + pad + 1)
    right = min(grey.shape[1], columns.max() + pad + 1)
    return grey[top:bottom, left:right]


def stored_image(path: Path) -> np.ndarray:
    """The pixels of a stored 8-bit greyscale Secondary Capture."""
    dataset = dcmread(path)
    pixels = dataset.pixel_array
    if pixels.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8-bit greyscale, found {pixels.dtype}")
    return pixels
