"""The binary DICOM Segmentation of the MCP bones on the source radiograph's grid.

Per joint of each hand three segments: the upper bone (base of the proximal phalanx), the
lower bone (metacarpal head) and their overlap, 15 per hand with all five joints. Every
segment is coded (category, type, the joint as anatomic region, laterality) and names the
algorithm (model name and version). Segments are stored with one frame each, empty ones
included, so that frame number N holds segment N for every reader, whatever the masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from dicom_node.derived import codes
from dicom_node.derived.equipment import equipment
from dicom_node.derived.model import Joint, JointResult, RadiographResult, Side
from dicom_node.derived.outlines import Window
from dicom_node.derived.source import (
    check_source_grid,
    copy_body_part_and_laterality,
    set_patient_orientation,
)
from dicom_node.derived.uids import OutputUids
from dicom_node.settings import OutputSettings

CONTENT_LABEL = "BLSGAN_MCP_BONES"


class BonePart(StrEnum):
    """The three regions segmented per joint."""

    UPPER = "upper"
    LOWER = "lower"
    OVERLAP = "overlap"


# Recommended display colours (sRGB): phalanx red, metacarpal blue, overlap yellow.
DISPLAY_COLOURS = {
    BonePart.UPPER: (230, 60, 50),
    BonePart.LOWER: (50, 110, 230),
    BonePart.OVERLAP: (250, 220, 40),
}
_PART_NAMES = {
    BonePart.UPPER: "proximal phalanx base",
    BonePart.LOWER: "metacarpal head",
    BonePart.OVERLAP: "bone overlap",
}


@dataclass(frozen=True)
class SegmentSpec:
    """Where one region of one joint lives in the Segmentation."""

    number: int
    side: Side
    joint: Joint
    part: BonePart

    @property
    def label(self) -> str:
        """Segment Label, e.g. ``MCP2 L overlap``."""
        return f"{self.joint} {self.side} {self.part}"


def segment_layout(result: RadiographResult) -> list[SegmentSpec]:
    """Segment numbers in order: hands right first, joints thumb first, upper-lower-overlap."""
    specs: list[SegmentSpec] = []
    for side, joint in result.joints():
        for part in BonePart:
            specs.append(SegmentSpec(len(specs) + 1, side, joint.joint, part))
    return specs


def build_segmentation(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
) -> hd.seg.Segmentation:
    """The binary Segmentation of ``result`` on the grid of ``source`` (same study).

    highdicom builds every attribute but the pixels on a one-pixel grid (what it derives
    from a frame's content, Segments Overlap, is set here), and the frames are packed
    here, inside the joints' windows only: highdicom would check and pack all 15 (30)
    full-size frames pixel by pixel, most of the Segmentation's build time, for frames
    that are empty but for one joint each. The result equals highdicom's own build from
    the full frames (``highdicom_segmentation``) in every element; the tests compare them.

    Raises
    ------
    ValueError
        The masks do not lie on the source's grid, or ``uids`` belong to another source.
    """
    check_source_grid(source, result.grid_shape, uids)
    masks, windows = _segment_masks(result)
    segmentation = highdicom_segmentation(
        source, result, outputs, uids, np.zeros((len(masks), 1, 1), dtype=np.uint8)
    )
    segmentation.Rows, segmentation.Columns = result.grid_shape
    segmentation.SegmentsOverlap = _segments_overlap(masks, windows).value
    segmentation.PixelData = _packed_frames(masks, windows)
    return segmentation


def highdicom_segmentation(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
    frames: np.ndarray,
) -> hd.seg.Segmentation:
    """The Segmentation highdicom builds from ``frames`` (segment, row, column), one per
    segment of ``segment_layout``, on a grid of their size with the source's header."""
    layout = segment_layout(result)
    if frames.ndim != 3 or len(frames) != len(layout):
        raise ValueError(
            f"frames must have shape ({len(layout)}, rows, columns), got {frames.shape}"
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name=result.model.name,
        family=codes.ARTIFICIAL_INTELLIGENCE,
        version=result.model.version,
        source=outputs.manufacturer,
    )
    segmentation = hd.seg.Segmentation(
        source_images=[_reference_without_spacing(source, frames.shape[1:])],
        # highdicom wants (frames, rows, columns, segments); a view keeps segments contiguous.
        pixel_array=frames.transpose(1, 2, 0)[np.newaxis],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_describe(spec, algorithm, uids) for spec in layout],
        series_instance_uid=uids.seg_series,
        series_number=outputs.seg_series_number,
        sop_instance_uid=uids.seg_instance,
        instance_number=1,
        **equipment(outputs, result.model),
        content_description=f"MCP bone layers by {result.model.name} {result.model.version}"[:64],
        content_label=CONTENT_LABEL,
        omit_empty_frames=False,
        series_description=outputs.seg_series_description,
        coding_schemes=[codes.private_scheme_item()],
    )
    # On the source grid, the segmentation shares the source's orientation and laterality.
    set_patient_orientation(segmentation, source.get("PatientOrientation"))
    copy_body_part_and_laterality(source, segmentation)
    return segmentation


def _reference_without_spacing(source: Dataset, grid: tuple[int, int]) -> Dataset:
    """The source's header on ``grid``, minus pixels and Pixel Spacing, for highdicom.

    Given a Pixel Spacing, highdicom 0.28 writes a Pixel Measures item without Slice
    Thickness, which is correct without a Frame of Reference (PS3.3 C.7.6.16.2.1, Type
    1C) but which its own reader then refuses. A SEG of a projection radiograph needs no
    spacing of its own: it lies on the source's grid, and the source keeps the spacing.
    """
    reference = Dataset()
    for element in source:
        # The source's own elements are shared, not copied: the grid gets new ones.
        if element.keyword not in {"PixelData", "PixelSpacing", "Rows", "Columns"}:
            reference.add(element)
    reference.Rows, reference.Columns = grid
    if hasattr(source, "file_meta"):
        reference.file_meta = source.file_meta
    return reference


def _segment_masks(result: RadiographResult) -> tuple[list[np.ndarray], list[Window]]:
    """Each segment's mask in ``segment_layout`` order, and its joint's window."""
    layout = segment_layout(result)
    by_key = {(side, joint.joint): joint for side, joint in result.joints()}
    joints = [by_key[(spec.side, spec.joint)] for spec in layout]
    masks = [_mask(joint, spec.part) for joint, spec in zip(joints, layout, strict=True)]
    return masks, [joint.window for joint in joints]


def _segments_overlap(
    masks: Sequence[np.ndarray], windows: Sequence[Window]
) -> hd.seg.SegmentsOverlapValues:
    """YES where a pixel belongs to two segments, as highdicom decides it (PS3.3 C.8.20.2).

    The counts live in zeroed memory touched only inside the windows: the operating
    system hands large zeroed blocks out as pages it has not yet written.
    """
    counts = np.zeros(masks[0].shape, dtype=np.uint8)
    for mask, window in zip(masks, windows, strict=True):
        counts[window] += mask[window]
    if any(np.any(counts[window] > 1) for window in windows):
        return hd.seg.SegmentsOverlapValues.YES
    return hd.seg.SegmentsOverlapValues.NO


def _packed_frames(masks: Sequence[np.ndarray], windows: Sequence[Window]) -> bytes:
    """The masks as highdicom packs their frames: one bit per pixel, least significant
    first, frame after frame without padding between frames (PS3.5 8.1.1), with
    highdicom's trailing ``b"0"`` after an odd number of bytes.

    Only the bytes of each window's rows are packed, straight from the mask (whose pixels
    all lie in its window); the rest of the frames packs to zero bytes. A byte that two
    frames share (a frame ending inside it, the next beginning) gets the bits of both.
    """
    rows_total, columns = masks[0].shape
    frame_bits = rows_total * columns
    size = -(-len(masks) * frame_bits // 8)
    packed = np.zeros(size + size % 2, dtype=np.uint8)
    if size % 2:
        packed[-1] = ord("0")
    for index, (mask, (rows, _)) in enumerate(zip(masks, windows, strict=True)):
        if rows.start == rows.stop:
            continue
        start_bit = index * frame_bits + rows.start * columns
        first, last = start_bit // 8, -(-(start_bit + (rows.stop - rows.start) * columns) // 8)
        bits = np.zeros((last - first) * 8, dtype=np.uint8)
        offset = start_bit - 8 * first
        bits[offset : offset + (rows.stop - rows.start) * columns] = mask[rows].reshape(-1)
        packed[first:last] |= np.packbits(bits, bitorder="little")
    return packed.tobytes()


def _mask(joint: JointResult, part: BonePart) -> np.ndarray:
    if part == BonePart.UPPER:
        return joint.upper_mask
    if part == BonePart.LOWER:
        return joint.lower_mask
    return joint.overlap_mask


def _describe(
    spec: SegmentSpec, algorithm: hd.AlgorithmIdentificationSequence, uids: OutputUids
) -> hd.seg.SegmentDescription:
    category, property_type = _property(spec.part)
    description = hd.seg.SegmentDescription(
        segment_number=spec.number,
        segment_label=spec.label,
        segmented_property_category=category,
        segmented_property_type=property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=uids.tracking(spec.side, spec.joint, spec.part),
        tracking_id=spec.label,
        anatomic_regions=[codes.METACARPOPHALANGEAL_JOINT, codes.DIGITS[spec.joint]],
        display_color=hd.color.CIELabColor.from_rgb(*DISPLAY_COLOURS[spec.part]),
    )
    description.SegmentDescription = (
        f"{_PART_NAMES[spec.part]} at the MCP joint of the {spec.joint.finger}, "
        f"{'left' if spec.side == Side.LEFT else 'right'} hand"
    )[:64]
    laterality = codes.LATERALITY[spec.side]
    # highdicom has no argument for region modifiers; the sequence is a standard attribute.
    for region in description.AnatomicRegionSequence:
        region.AnatomicRegionModifierSequence = [hd.sr.CodedConcept.from_code(laterality)]
    return description


def _property(part: BonePart) -> tuple[Code, Code]:
    if part == BonePart.UPPER:
        return codes.ANATOMICAL_STRUCTURE, codes.PROXIMAL_PHALANX_BASE
    if part == BonePart.LOWER:
        return codes.ANATOMICAL_STRUCTURE, codes.METACARPAL
    return codes.SPATIAL_AND_RELATIONAL_CONCEPT, codes.BONE_OVERLAP
