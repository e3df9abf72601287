"""The TID 1500 Measurement Report of one radiograph (Comprehensive SR, built by highdicom).

One planar-ROI measurement group (TID 1410) per joint. Its region is the joint's overlap
segment in the Segmentation (referenced by frame; the Segmentation stores every segment,
empty ones too, so each joint has one), which in turn names the source radiograph. Its
measurements:

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

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes

from dicom_node.derived import codes
from dicom_node.derived.equipment import equipment
from dicom_node.derived.model import JointResult, RadiographResult, Side
from dicom_node.derived.segmentation import overlap_frame_numbers, segment_layout
from dicom_node.derived.source import check_source_grid
from dicom_node.derived.uids import OutputUids, device_uid
from dicom_node.pixels import pixel_spacing
from dicom_node.settings import OutputSettings


def build_structured_report(
    source: Dataset,
    segmentation: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
) -> hd.sr.ComprehensiveSR:
    """The Measurement Report of ``result``, referencing ``source`` and ``segmentation``.

    Raises
    ------
    ValueError
        ``segmentation`` is not the one built from ``result`` and ``uids``.
    """
    check_source_grid(source, result.grid_shape, uids)
    if segmentation.SOPInstanceUID != uids.seg_instance:
        raise ValueError(
            f"segmentation {segmentation.SOPInstanceUID} is not this result's ({uids.seg_instance})"
        )
    frames = overlap_frame_numbers(segment_layout(result))
    if int(segmentation.NumberOfFrames) < max(frames.values()):
        raise ValueError("the segmentation lacks the overlap frames of this result")
    spacing, _ = pixel_spacing(source)
    algorithm = hd.sr.AlgorithmIdentification(
        name=result.model.name,
        version=result.model.version,
        manufacturer=outputs.manufacturer,
    )
    groups = [
        _joint_group(
            segmentation, side, joint, frames[(side, joint.joint)], spacing, algorithm, uids
        )
        for side, joint in result.joints()
    ]
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(result, outputs),
        procedure_reported=codes.IMAGING_PROCEDURE,
        imaging_measurements=groups,
        title=dicom_codes.cid7021.ImagingMeasurementReport,
        referenced_images=[source] if _describable(source) else None,
    )
    return hd.sr.ComprehensiveSR(
        evidence=[source, segmentation],
        content=report,
        series_instance_uid=uids.sr_series,
        series_number=outputs.sr_series_number,
        sop_instance_uid=uids.sr_instance,
        instance_number=1,
        is_complete=True,
        series_description=outputs.sr_series_description,
        **equipment(outputs, result.model),
        coding_schemes=[codes.private_scheme_item()],
    )


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


def _segmentation_frame(segmentation: Dataset, frame: int) -> hd.sr.ReferencedSegmentationFrame:
    """TID 1410's region: one Segmentation frame and the single-frame source under it.

    Built by hand rather than with ``from_segmentation``, which in highdicom 0.28 gives
    the single-frame source a frame number and the Segmentation reference both frame and
    segment number; the Image SOP Instance Reference Macro (PS3.3 Table 10-3) wants one
    of the two, and the frame (holding exactly one segment here) is what TID 1410 names.
    """
    referenced = segmentation.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    region = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=segmentation.SOPClassUID,
        sop_instance_uid=segmentation.SOPInstanceUID,
        frame_number=frame,
        segment_number=frame,
        source_image=hd.sr.SourceImageForSegmentation(
            referenced_sop_class_uid=referenced.ReferencedSOPClassUID,
            referenced_sop_instance_uid=referenced.ReferencedSOPInstanceUID,
        ),
    )
    del region[0].ReferencedSOPSequence[0].ReferencedSegmentNumber
    return region


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
    found = [
        hd.sr.Measurement(
            name=codes.JSW_CHANGE,
            value=float(change.min_change),
            unit=length,
            derivation=codes.MINIMUM,
        )
    ]
    rate = change.min_change_per_year
    if rate is not None:
        found.append(
            hd.sr.Measurement(
                name=codes.JSW_CHANGE_RATE,
                value=float(rate),
                unit=rate_unit,
                derivation=codes.MINIMUM,
            )
        )
    if change.registered_change is not None:
        found.append(
            hd.sr.Measurement(
                name=codes.JSW_CHANGE,
                value=float(change.registered_change),
                unit=length,
                method=codes.LAYER_REGISTRATION,
            )
        )
    registered_rate = change.registered_change_per_year
    if registered_rate is not None:
        found.append(
            hd.sr.Measurement(
                name=codes.JSW_CHANGE_RATE,
                value=float(registered_rate),
                unit=rate_unit,
                method=codes.LAYER_REGISTRATION,
            )
        )
    return found


def _joint_group(
    segmentation: Dataset,
    side: Side,
    joint: JointResult,
    frame: int,
    spacing: tuple[float, float] | None,
    algorithm: hd.sr.AlgorithmIdentification,
    uids: OutputUids,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    laterality = codes.LATERALITY[side]
    region = _segmentation_frame(segmentation, frame)
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
            uid=uids.tracking(side, joint.joint, "overlap"),
            identifier=f"{joint.joint} {side} overlap",
        ),
        referenced_segment=region,
        finding_type=codes.BONE_OVERLAP,
        finding_category=codes.SPATIAL_AND_RELATIONAL_CONCEPT,
        finding_sites=[
            hd.sr.FindingSite(codes.METACARPOPHALANGEAL_JOINT, laterality=laterality),
            hd.sr.FindingSite(codes.DIGITS[joint.joint], laterality=laterality),
        ],
        algorithm_id=algorithm,
        measurements=numbers,
    )
