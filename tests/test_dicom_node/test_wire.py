"""The structural walk finds truncation and nonsense that pydicom reads without complaint."""

from __future__ import annotations

import struct

import pytest
from node_testing import hand_dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicom_node.receive.wire import MalformedDatasetError, check_complete


def encode(ds, implicit: bool = False, little: bool = True) -> bytes:
    stream = DicomBytesIO()
    stream.is_implicit_VR = implicit
    stream.is_little_endian = little
    write_dataset(stream, ds)
    return stream.getvalue()


def with_sequence(undefined: bool):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = hand_dataset()
    item = Dataset()
    item.CodeValue = "T-D0025"
    item.CodingSchemeDesignator = "SRT"
    ds.AnatomicRegionSequence = Sequence([item])
    ds["AnatomicRegionSequence"].is_undefined_length = undefined
    return ds


@pytest.mark.parametrize(("implicit", "little"), [(False, True), (True, True), (False, False)])
def test_whole_data_sets_pass_and_the_header_ends_at_pixel_data(
    implicit: bool, little: bool
) -> None:
    ds = hand_dataset()
    data = encode(ds, implicit, little)
    header_end = check_complete(data, implicit, little)
    assert data[header_end : header_end + 4] == struct.pack(
        "<HH" if little else ">HH", 0x7FE0, 0x0010
    )


@pytest.mark.parametrize("undefined", [True, False])
def test_sequences_are_walked(undefined: bool) -> None:
    data = encode(with_sequence(undefined))
    check_complete(data, False, True)
    if undefined:
        # Without its sequence delimiter the walk cannot end.
        delimiter = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        position = data.index(delimiter)
        broken = data[:position] + data[position + 8 :]
        with pytest.raises(MalformedDatasetError):
            check_complete(broken, False, True)


@pytest.mark.parametrize("cut", [1, 2, 7, 100, 3000])
def test_truncation_anywhere_is_found(cut: int) -> None:
    data = encode(hand_dataset())
    with pytest.raises(MalformedDatasetError, match="truncated"):
        check_complete(data[:-cut], False, True)


def test_unknown_vr_and_empty_input_are_refused() -> None:
    data = bytearray(encode(hand_dataset()))
    position = data.index(b"CS")
    data[position : position + 2] = b"ZZ"
    with pytest.raises(MalformedDatasetError, match="unknown VR"):
        check_complete(bytes(data), False, True)
    with pytest.raises(MalformedDatasetError, match="empty"):
        check_complete(b"", False, True)


def test_encapsulated_pixel_data_needs_its_delimiter() -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = hand_dataset()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    data = encode(ds)
    check_complete(data, False, True)
    with pytest.raises(MalformedDatasetError, match="no sequence delimiter"):
        check_complete(data[:-8], False, True)
