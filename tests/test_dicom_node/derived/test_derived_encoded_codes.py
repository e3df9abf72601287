"""Code items encoded once: the files are byte for byte the ones pydicom writes as built."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_node.derived.encoded_codes import CodeCache, encode_codes_once
from dicom_node.derived.model import RadiographResult
from dicom_node.derived.write import build_outputs
from dicom_node.settings import OutputSettings


def _written(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_every_object_is_written_as_built(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings
) -> None:
    source, result = radiograph
    objects = [item.dataset for item in build_outputs(source, result, outputs)]
    as_built = [_written(dataset) for dataset in objects]
    codes: CodeCache = {}
    for dataset in objects:
        encode_codes_once(dataset, codes)
    assert [_written(dataset) for dataset in objects] == as_built
    report = next(dataset for dataset in objects if dataset.Modality == "SR")
    assert report.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurement Report"
    named = [
        element
        for element in dcmread(io.BytesIO(_written(report))).iterall()
        if element.keyword.endswith("CodeSequence")
    ]
    # Each code is encoded once, however often the objects name it.
    assert 0 < len(codes) < len(named) / 3


def _code(meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X1", "99TEST", meaning
    return item


def _document(syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """UTF-8 text with one item in Latin-1 and one inheriting UTF-8, the same code in all
    three, a code sequence of undefined length, and Pixel Data (VR OB or OW until the
    bits allocated decide)."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.ConceptNameCodeSequence = [_code("Größe")]
    latin, inheriting = Dataset(), Dataset()
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.ConceptNameCodeSequence = [_code("Größe")]
    inheriting.ConceptNameCodeSequence = [_code("Größe")]
    dataset.ContentSequence = [latin, inheriting]
    dataset.MeasurementUnitsCodeSequence = [_code("mm")]
    dataset["MeasurementUnitsCodeSequence"].is_undefined_length = True
    dataset.BitsAllocated = 8
    dataset.PixelData = b"\x00\x01"
    return dataset


def test_character_sets_and_ambiguous_vrs_are_kept() -> None:
    dataset = _document()
    as_built = _written(_document())
    codes: CodeCache = {}
    encode_codes_once(dataset, codes)
    assert len(codes) == 2  # the same code in two character sets: two encodings
    assert _written(dataset) == as_built
    read = dcmread(io.BytesIO(_written(dataset)))
    for item in read.ContentSequence:
        assert item.ConceptNameCodeSequence[0].CodeMeaning == "Größe"
    assert read["PixelData"].VR == "OB"


def test_only_explicit_vr_little_endian() -> None:
    with pytest.raises(ValueError, match="explicit VR little endian"):
        encode_codes_once(_document(ImplicitVRLittleEndian), {})
