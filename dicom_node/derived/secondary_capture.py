"""Secondary Capture images: each joint's layers, and one overview of the radiograph.

Per joint three 8-bit greyscale images at crop resolution: the upper layer L1, the lower
layer L2 and the reconstruction R, each without burned-in text (what they show is in
Derivation Description and Image Comments). Per radiograph one overview
(``overview.render_overview``) a radiologist reads at a glance, with labels burned in.

Burned In Annotation says whether the pixels carry enough text "to identify the patient
and date the image was acquired" (PS3.3 C.7.6.1.1.11). The overview's text names joints,
model and measurements only (the renderer never sees patient data), so both kinds of
image say ``NO``; the overview's labels are announced in Image Comments instead.

All images join one new series in the source's study, reference the source radiograph
(Source Image Sequence) and carry its laterality; joint crops get the orientation of a
finger-up crop (``source.crop_orientation``), the overview, a montage, none.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.frame import encode_frame
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicom_node.derived.equipment import equipment
from dicom_node.derived.model import JointResult, Layer, RadiographResult, Side
from dicom_node.derived.overview import overlap_text, render_overview, to_uint8
from dicom_node.derived.source import (
    check_source_grid,
    copy_body_part_and_laterality,
    crop_orientation,
    set_patient_orientation,
)
from dicom_node.derived.uids import OutputUids
from dicom_node.pixels import pixel_spacing
from dicom_node.settings import OutputSettings

_LAYER_NAMES = {
    Layer.UPPER: "upper layer L1 (proximal phalanx base)",
    Layer.LOWER: "lower layer L2 (metacarpal head)",
    Layer.RECONSTRUCTION: "reconstruction R (Eq. 1)",
}
# Only for highdicom's argument check: the value written is replaced right after.
_ORIENTATION_PLACEHOLDER = ("L", "H")


def build_secondary_captures(
    source: Dataset, result: RadiographResult, outputs: OutputSettings, uids: OutputUids
) -> list[Dataset]:
    """The overview (instance 1), then every joint's L1, L2 and R, in report order.

    highdicom builds the overview and the first joint image, which is kept as written
    and read back (``_encoded``); the other joint images are that one's siblings
    (``_sibling``): the same attributes but for their pixels, UID, number, laterality and
    descriptions, which is what ``build_joint_image`` would give them (the tests compare
    the files). A sibling takes a quarter of highdicom's build time, and as most of its
    elements are still encoded, half the time to write.
    """
    check_source_grid(source, result.grid_shape, uids)
    acquisition = acquisition_equipment(source)
    images: list[Dataset] = [build_overview(source, result, outputs, uids, acquisition)]
    first: hd.sc.SCImage | None = None
    encoded: Dataset | None = None
    layers = ((side, joint, layer) for side, joint in result.joints() for layer in Layer)
    for number, (side, joint, layer) in enumerate(layers, start=2):
        if first is None or encoded is None:
            first = build_joint_image(
                source, result, outputs, uids, acquisition, side, joint, layer, number
            )
            image = encoded = _encoded(first)
        else:
            image = _sibling(
                first,
                encoded,
                to_uint8(joint.layer(layer)),
                uids.sc_instance(side, joint.joint, layer),
            )
            image.InstanceNumber = number
            copy_body_part_and_laterality(source, image, side.value)
            _describe(image, source, result, side, joint, layer)
        images.append(image)
    return images


def acquisition_equipment(source: Dataset) -> list[hd.ContributingEquipment]:
    """The source's acquisition equipment, the item ``SCImage.from_ref_dataset`` adds.

    Built once per radiograph: highdicom first checks the source's IOD against the
    standard's module tables, about 5 ms each time, the same answer for all 1 + 3 x
    joints images. As in ``from_ref_dataset``, a source without a manufacturer gets no
    item (highdicom needs one to describe the equipment).
    """
    if not source.get("Manufacturer"):
        return []
    return [hd.ContributingEquipment.for_image_acquisition(source)]


def build_overview(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
    acquisition: Sequence[hd.ContributingEquipment] | None = None,
) -> hd.sc.SCImage:
    """The labelled montage of all joints with their layers.

    ``acquisition``: ``acquisition_equipment(source)``, computed here if not given.
    """
    spacing, _ = pixel_spacing(source)
    pixels = render_overview(result, spacing)
    image = _secondary_capture(
        source,
        result,
        outputs,
        uids,
        pixels=pixels,
        sop_instance_uid=uids.sc_overview,
        instance_number=1,
        orientation=None,
        laterality=None,
        acquisition=acquisition_equipment(source) if acquisition is None else acquisition,
    )
    image.DerivationDescription = (
        f"Overview of BLS-GAN layer separation of {len(list(result.joints()))} MCP joints "
        f"by {result.model.name} {result.model.version}"
    )
    image.ImageComments = (
        "Burned-in labels: joint, hand, overlap area, k and reconstruction error per row; "
        "no patient identification."
    )
    return image


def build_joint_image(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
    acquisition: Sequence[hd.ContributingEquipment],
    side: Side,
    joint: JointResult,
    layer: Layer,
    number: int,
) -> hd.sc.SCImage:
    """One layer image of one joint, instance ``number``, built by highdicom."""
    image = _secondary_capture(
        source,
        result,
        outputs,
        uids,
        pixels=to_uint8(joint.layer(layer)),
        sop_instance_uid=uids.sc_instance(side, joint.joint, layer),
        instance_number=number,
        orientation=crop_orientation(source),
        laterality=side.value,
        acquisition=acquisition,
    )
    _describe(image, source, result, side, joint, layer)
    return image


def _describe(
    image: Dataset,
    source: Dataset,
    result: RadiographResult,
    side: Side,
    joint: JointResult,
    layer: Layer,
) -> None:
    spacing, _ = pixel_spacing(source)
    image.DerivationDescription = (
        f"{joint.joint} {side} {_LAYER_NAMES[layer]} of the {joint.joint.finger} joint crop, "
        f"BLS-GAN {result.model.name} {result.model.version}"
    )
    image.ImageComments = (
        f"{joint.joint} {side} {layer}: k {joint.k:.3f}, {overlap_text(joint, spacing)}, "
        f"PSNR {joint.error.psnr:.1f} dB, SSIM {joint.error.ssim:.4f}"
    )


def _encoded(image: hd.sc.SCImage) -> Dataset:
    """``image`` written once and read back, its elements left encoded (pydicom decodes an
    element only when it is asked for): written again, they are copied as they are."""
    buffer = io.BytesIO()
    image.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))


def _sibling(
    template: hd.sc.SCImage, encoded: Dataset, pixels: np.ndarray, sop_instance_uid: UID
) -> Dataset:
    """``encoded`` (``template`` as written) with other 8-bit pixels and SOP Instance UID.

    Sets what ``SCImage`` derives from its pixel array (rows, columns and the frame,
    encoded by highdicom's ``encode_frame`` as there) and keeps every other attribute as
    ``encoded`` holds it, still encoded, so that pydicom writes it without encoding it
    again. No image shares a decoded value with another: pydicom decodes an element into
    the dataset that asks for it.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise TypeError(f"pixels must be a 2-D uint8 array, got {pixels.dtype} {pixels.shape}")
    image = Dataset()
    for element in encoded.elements():
        # An encoded element is an immutable tuple; one already decoded gets its own copy.
        image[element.tag] = copy.deepcopy(element) if isinstance(element, DataElement) else element
    implicit_vr, little_endian = encoded.original_encoding
    image.set_original_encoding(implicit_vr, little_endian, encoded.original_character_set)
    image.file_meta = copy.deepcopy(encoded.file_meta)
    image.SOPInstanceUID = image.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    # The template's group length counts its own UID; pydicom writes the right one.
    del image.file_meta.FileMetaInformationGroupLength
    image.Rows, image.Columns = pixels.shape
    image.PixelData = encode_frame(
        pixels,
        transfer_syntax_uid=template.file_meta.TransferSyntaxUID,
        bits_allocated=template.BitsAllocated,
        bits_stored=template.BitsStored,
        photometric_interpretation=template.PhotometricInterpretation,
        pixel_representation=template.PixelRepresentation,
    )
    return image


def _secondary_capture(
    source: Dataset,
    result: RadiographResult,
    outputs: OutputSettings,
    uids: OutputUids,
    *,
    pixels: np.ndarray,
    sop_instance_uid: str,
    instance_number: int,
    orientation: Sequence[str] | None,
    laterality: str | None,
    acquisition: Sequence[hd.ContributingEquipment],
) -> hd.sc.SCImage:
    # What SCImage.from_ref_dataset does, with the acquisition equipment built once.
    image = hd.sc.SCImage(
        pixel_array=pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.MONOCHROME2,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        **_patient_and_study(source, acquisition),
        series_instance_uid=uids.sc_series,
        series_number=outputs.sc_series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        patient_orientation=(orientation[0], orientation[1])
        if orientation
        else _ORIENTATION_PLACEHOLDER,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=outputs.sc_series_description,
        **equipment(outputs, result.model),
    )
    # highdicom insists on an orientation for patient images; Type 2C allows "unknown".
    set_patient_orientation(image, orientation)
    copy_body_part_and_laterality(source, image, laterality)
    image.BurnedInAnnotation = "NO"
    image.LossyImageCompression = "00"
    image.SourceImageSequence = [_source_reference(source)]
    return image


def _patient_and_study(
    source: Dataset, acquisition: Sequence[hd.ContributingEquipment]
) -> dict[str, Any]:
    """The arguments ``SCImage.from_ref_dataset`` takes from its reference dataset."""
    return {
        "study_instance_uid": source.StudyInstanceUID,
        "patient_id": source.get("PatientID"),
        "patient_name": source.get("PatientName"),
        "patient_birth_date": source.get("PatientBirthDate"),
        "patient_sex": source.get("PatientSex"),
        "accession_number": source.get("AccessionNumber"),
        "study_id": source.get("StudyID"),
        "study_date": source.get("StudyDate"),
        "study_time": source.get("StudyTime"),
        "referring_physician_name": source.get("ReferringPhysicianName"),
        "contributing_equipment": [copy.deepcopy(item) for item in acquisition],
        "specific_character_set": source.get("SpecificCharacterSet"),
    }


def _source_reference(source: Dataset) -> Dataset:
    """A Source Image Sequence item: the radiograph the image was derived from."""
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    purpose = hd.sr.CodedConcept("121322", "DCM", "Source image for image processing operation")
    item.PurposeOfReferenceCodeSequence = [purpose]
    return item
