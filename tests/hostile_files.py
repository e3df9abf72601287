"""Small files that claim to be huge: pixel bombs for the worker and ``blsnode process``.

Shared by the package tests (``tests/`` is on ``sys.path``): import as
``from hostile_files import pixel_bomb``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid

DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def pixel_bomb(path: Path, rows: int = 65535, columns: int = 65535, bits: int = 16) -> Path:
    """An RLE Lossless DX of about 1 KB whose header claims ``rows`` x ``columns`` pixels.

    The one fragment holds an RLE header with one segment per byte of a sample and a few
    runs of zeros: a decoder allocates the whole claimed image before it finds the runs
    too short.
    """
    segments = bits // 8
    runs = bytes([0x81, 0x00]) * 4  # 4 runs of 128 zeros each: far too few
    offsets = [64 + index * len(runs) for index in range(segments)]
    header = struct.pack("<16L", segments, *offsets, *([0] * (15 - segments)))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.SOPClassUID = DX_PRESENTATION
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = "BOMB^PIXEL", "PID-BOMB"
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "HAND", "PA"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([header + runs * segments])
    ds["PixelData"].VR = "OB"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
