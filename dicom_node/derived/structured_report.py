"""The TID 1500 Measurement Report of one radiograph (Comprehensive SR, built by highdicom).

One planar-ROI measurement group (TID 1410) per joint. Its region is an Image Region
(SCOORD) on the source radiograph: the closed convex polygon around the joint's two bones
(the crop's square when neither bone was found), in the source's pixel coordinates, so a
viewer can draw the group where the joint is (OHIF shows TID 1500 groups only with one).
TID 1410 takes one region per group, so the group no longer references the Segmentation
frame; the Segmentation stays in the evidence. Its measurements:

- overlap area: SCT "Area" in mm2 (UCUM ``mm2``) when the source has a pixel spacing,
  else in pixels (UCUM ``{pixels}``);
- joint space width along the finger axis (private ``99BLSGAN`` "Joint space width",
  derivation SCT Minimum and SCT Mean) and the bone overlap depth, in mm (UCUM ``mm``)
  or source pixels (``{pixels}``) without spacing; the method names the scale (Pixel
  Spacing, or Imager Pixel Spacing uncorrected for magnification). Negative widths are
  overlaps. Absent when the two masks share no column;
- BLS-GAN's correction parameter k (Eq. 1, soft-tissue transmittance, no units);
- the reconstruction error of R against the crop J: MSE and SSIM (no units), PSNR (dB).

Finding sites are the MCP joint and its digit, each with laterality; the algorithm is
identified by the model's name and version, and a device observer stands for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes
from pydicom.uid import SegmentationStorage

from dicom_node.derived import codes
from dicom_node.derived.equipment import equipment
from dicom_node.derived.model import JointResult, RadiographResult, Side
from dicom_node.derived.outlines import convex_region
from dicom_node.derived.source import check_source_grid
from dicom_node.derived.uids import OutputUids, device_uid
from dicom_node.pixels import pixel_spacing
from dicom_node.settings import OutputSettings

# The role of a joint group's region in its tracking identifier and UID (``MCP2 L joint``);
# the Segmentation's segments are ``upper``, ``lower`` and ``overlap``.
JOINT_REGION = "joint"


def build_structured_report(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
) -> hd.sr.ComprehensiveSR:
    """The Measurement Report of ``result``, referencing ``source`` and the SEG of ``result``.

    The SEG is named in the evidence by its class and deterministic UIDs
    (``_segmentation_evidence``): the report needs the result, not the SEG built from it.
    """
    check_source_grid(source, result.grid_shape, uids)
    report = measurement_report(source, result, outputs, uids)
    evidence = [source, _segmentation_evidence(source, uids)]
    return report_document(evidence, report, document_arguments(result, outputs, uids))


def _segmentation_evidence(source: Dataset, uids: OutputUids) -> Dataset:
    """What the SR's evidence takes of the SEG built with ``uids``: its class and UIDs."""
    reference = Dataset()
    reference.SOPClassUID = SegmentationStorage
    reference.SOPInstanceUID = uids.seg_instance
    reference.SeriesInstanceUID = uids.seg_series
    reference.StudyInstanceUID = source.StudyInstanceUID
    return reference


def measurement_report(
    source: Dataset, result: RadiographResult, outputs: OutputSettings, uids: OutputUids
) -> hd.sr.MeasurementReport:
    """The content tree: TID 1500 with one TID 1410 group per joint of ``result``."""
    spacing, _ = pixel_spacing(source)
    algorithm = hd.sr.AlgorithmIdentification(
        name=result.model.name,
        version=result.model.version,
        manufacturer=outputs.manufacturer,
    )
    groups = [
        _joint_group(source, side, joint, spacing, algorithm, uids)
        for side, joint in result.joints()
    ]
    return hd.sr.MeasurementReport(
        observation_context=_observation_context(result, outputs),
        procedure_reported=codes.IMAGING_PROCEDURE,
        imaging_measurements=groups,
        title=dicom_codes.cid7021.ImagingMeasurementReport,
        referenced_images=[source] if _describable(source) else None,
    )


def document_arguments(
    result: RadiographResult, outputs: OutputSettings, uids: OutputUids
) -> dict[str, Any]:
    """``ComprehensiveSR``'s arguments besides the evidence and the content."""
    return {
        "series_instance_uid": uids.sr_series,
        "series_number": outputs.sr_series_number,
        "sop_instance_uid": uids.sr_instance,
        "instance_number": 1,
        "is_complete": True,
        "series_description": outputs.sr_series_description,
        **equipment(outputs, result.model),
        "coding_schemes": [codes.private_scheme_item()],
    }


def report_document(
    evidence: Sequence[Dataset], report: hd.sr.MeasurementReport, arguments: dict[str, Any]
) -> hd.sr.ComprehensiveSR:
    """``hd.sr.ComprehensiveSR(evidence, report, **arguments)``, without its walks of the tree.

    The constructor deep-copies the content tree, parses the copy back into content
    items and searches it twice for references to check against the evidence: three
    quarters of the SR's build time, and the same document whatever the tree holds (the
    evidence sequences list ``evidence`` itself). So highdicom builds the document around
    the root container alone, and the tree it built is attached afterwards, to the
    dataset and to the document's ``content``. The tests compare the result with what
    the constructor builds from the whole tree, element by element.
    """
    root = report[0]
    tree = root.ContentSequence
    root.ContentSequence = []
    try:
        document = hd.sr.ComprehensiveSR(evidence=evidence, content=report, **arguments)
    finally:
        root.ContentSequence = tree
    document.ContentSequence = tree
    document.content[0].ContentSequence = tree
    return document


def _describable(source: Dataset) -> bool:
    """Whether highdicom can describe ``source`` in the Image Library (TID 1603).

    It needs a two-valued Patient Orientation and, for CR/DX, Imager Pixel Spacing; a CR
    without them stays out of the library and is still referenced by every measurement
    group and in the evidence.
    """
    orientation = source.get("PatientOrientation")
    if not orientation or len(orientation) != 2:
        return False
    return source.get("Modality") not in {"CR", "DX", "MG", "IO", "PX"} or bool(
        source.get("ImagerPixelSpacing")
    )


def joint_region(source: Dataset, side: Side, joint: JointResult) -> hd.sr.ImageRegion:
    """TID 1410's region of ``joint``: a closed polygon on the source radiograph.

    The convex polygon around both bones' pixels; the crop's square (clipped to the
    image) when neither bone has a pixel, so every joint's group has a region.

    Raises
    ------
    ValueError
        Neither bone has a pixel and the joint carries no crop corners.
    """
    polygon = convex_region(joint.upper_mask, joint.lower_mask, window=joint.window)
    if polygon is None:
        if joint.crop_corners is None:
            raise ValueError(
                f"{joint.joint} {side}: no bone pixels and no crop corners, so no image region"
            )
        rows, columns = joint.grid_shape
        corners = np.clip(joint.crop_corners, 0.0, [columns, rows])
        polygon = np.vstack([corners, corners[:1]]).astype(np.float32)
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=polygon,
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=source.SOPClassUID,
            referenced_sop_instance_uid=source.SOPInstanceUID,
        ),
    )


def _observation_context(
    result: RadiographResult, outputs: OutputSettings
) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(result.model.name, result.model.version, outputs.uid_prefix),
        name=result.model.name,
        manufacturer_name=outputs.manufacturer,
        model_name=result.model.version,
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=dicom_codes.cid270.Device,
            observer_identifying_attributes=device,
        )
    )


def _space_measurements(joint: JointResult) -> list[hd.sr.Measurement]:
    """JSW min and mean and the overlap depth of ``joint`` (none if not measurable)."""
    space = joint.space
    if space is None:
        return []
    unit = codes.LENGTH_UNITS[space.unit]
    method = codes.SCALE_METHODS[space.spacing]
    return [
        hd.sr.Measurement(
            name=codes.JOINT_SPACE_WIDTH,
            value=float(space.min_width),
            unit=unit,
            derivation=codes.MINIMUM,
            method=method,
        ),
        hd.sr.Measurement(
            name=codes.JOINT_SPACE_WIDTH,
            value=float(space.mean_width),
            unit=unit,
            derivation=codes.MEAN,
            method=method,
        ),
        hd.sr.Measurement(
            name=codes.OVERLAP_DEPTH, value=float(space.overlap_depth), unit=unit, method=method
        ),
        *_change_measurements(joint),
    ]


def _change_measurements(joint: JointResult) -> list[hd.sr.Measurement]:
    """Change of the minimum JSW since the prior radiograph, and per year if dated.

    With the prior's layers the change registered at the joint centre follows, its
    method naming the layer registration.
    """
    change = joint.change
    if change is None:
        return []
    length, rate_unit = codes.LENGTH_UNITS[change.unit], codes.RATE_UNITS[change.unit]
    items = (
        (codes.JSW_CHANGE, change.min_change, length, {"derivation": codes.MINIMUM}),
        (
            codes.JSW_CHANGE_RATE,
            change.min_change_per_year,
            rate_unit,
            {"derivation": codes.MINIMUM},
        ),
        (codes.JSW_CHANGE, change.registered_change, length, {"method": codes.LAYER_REGISTRATION}),
        (
            codes.JSW_CHANGE_RATE,
            change.registered_change_per_year,
            rate_unit,
            {"method": codes.LAYER_REGISTRATION},
        ),
    )
    return [
        hd.sr.Measurement(name=name, value=float(value), unit=unit, **how)
        for name, value, unit, how in items
        if value is not None
    ]


def _joint_group(
    source: Dataset,
    side: Side,
    joint: JointResult,
    spacing: tuple[float, float] | None,
    algorithm: hd.sr.AlgorithmIdentification,
    uids: OutputUids,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    laterality = codes.LATERALITY[side]
    if spacing is None:
        area = hd.sr.Measurement(
            name=codes.AREA, value=float(joint.overlap_area_px), unit=codes.PIXELS
        )
    else:
        area = hd.sr.Measurement(
            name=codes.AREA, value=joint.overlap_area_mm2(spacing), unit=codes.SQUARE_MILLIMETER
        )
    numbers = [
        area,
        *_space_measurements(joint),
        hd.sr.Measurement(name=codes.CORRECTION_K, value=float(joint.k), unit=codes.NO_UNITS),
        hd.sr.Measurement(
            name=codes.RECONSTRUCTION_MSE, value=float(joint.error.mse), unit=codes.NO_UNITS
        ),
        hd.sr.Measurement(
            name=codes.RECONSTRUCTION_SSIM, value=float(joint.error.ssim), unit=codes.NO_UNITS
        ),
        hd.sr.Measurement(
            name=codes.RECONSTRUCTION_PSNR, value=float(joint.error.psnr), unit=codes.DECIBEL
        ),
    ]
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uids.tracking(side, joint.joint, JOINT_REGION),
            identifier=f"{joint.joint} {side} {JOINT_REGION}",
        ),
        referenced_region=joint_region(source, side, joint),
        finding_type=codes.BONE_OVERLAP,
        finding_category=codes.SPATIAL_AND_RELATIONAL_CONCEPT,
        finding_sites=[
            hd.sr.FindingSite(codes.METACARPOPHALANGEAL_JOINT, laterality=laterality),
            hd.sr.FindingSite(codes.DIGITS[joint.joint], laterality=laterality),
        ],
        algorithm_id=algorithm,
        measurements=numbers,
    )
