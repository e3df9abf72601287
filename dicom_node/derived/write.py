"""Build every derived object of one radiograph and write them to a folder.

The one call the worker and ``blsnode process --out DIR`` make. Files are named by kind
and SOP Instance UID (``SEG_<uid>.dcm``, ``SC_<uid>.dcm``, ``SR_<uid>.dcm``,
``PR_<uid>.dcm``); the UIDs are
deterministic, so a re-run with the same model overwrites its earlier files instead of
adding new ones. Each file is written to a temporary name, flushed to disk and renamed, so
a crash never leaves a half-written object behind a final name. The files are written by
a few threads at once, which overlaps their waits for the disk.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydicom import config, dcmread
from pydicom.dataset import Dataset

from dicom_node.derived.encoded_codes import CodeCache, encode_codes_once
from dicom_node.derived.model import RadiographResult
from dicom_node.derived.presentation_state import build_presentation_state
from dicom_node.derived.secondary_capture import build_secondary_captures
from dicom_node.derived.segmentation import build_segmentation
from dicom_node.derived.source import with_usable_copied_attributes
from dicom_node.derived.structured_report import build_structured_report
from dicom_node.derived.uids import OutputUids
from dicom_node.settings import OutputSettings

logger = logging.getLogger(__name__)

# Each object is fsync'ed before its rename; a few threads overlap those disk waits
# (18 files for one hand: about 55 ms one after another, 15 ms this way on the
# development VM). Serialising still takes turns on the GIL, so more threads gain nothing.
WRITER_THREADS = 4


class OutputKind(StrEnum):
    """The kinds of derived object."""

    SEGMENTATION = "SEG"
    SECONDARY_CAPTURE = "SC"
    STRUCTURED_REPORT = "SR"
    PRESENTATION_STATE = "PR"


@dataclass(frozen=True)
class DerivedObject:
    """One built object, before it is written."""

    kind: OutputKind
    label: str
    dataset: Dataset


@dataclass(frozen=True)
class WrittenOutput:
    """One written object: where it is and who it is."""

    kind: OutputKind
    label: str
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and bookkeeping."""
        return {
            "kind": self.kind.value,
            "label": self.label,
            "path": str(self.path),
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
        }


def build_outputs(
    source: Dataset, result: RadiographResult, outputs: OutputSettings
) -> list[DerivedObject]:
    """SEG, the SC images (overview first), the SR that references the SEG, then the GSPS.

    Built with pydicom's value validation off: in its default mode it only warns, and it
    ran on every one of the thousands of elements highdicom sets (half the build time of
    the SR). The values are validated where they enter (the result dataclasses, the
    settings, ``with_usable_copied_attributes`` for the source's), and every object
    passes dciodvfy in the tests.
    """
    with config.disable_value_validation():
        return _build_outputs(with_usable_copied_attributes(source), result, outputs)


def _build_outputs(
    source: Dataset, result: RadiographResult, outputs: OutputSettings
) -> list[DerivedObject]:
    uids = OutputUids(str(source.SOPInstanceUID), result.model.version, outputs.uid_prefix)
    segmentation = build_segmentation(source, result, outputs, uids)
    objects = [DerivedObject(OutputKind.SEGMENTATION, "segmentation", segmentation)]
    for image in build_secondary_captures(source, result, outputs, uids):
        label = "overview" if image.SOPInstanceUID == uids.sc_overview else _sc_label(image)
        objects.append(DerivedObject(OutputKind.SECONDARY_CAPTURE, label, image))
    report = build_structured_report(source, result, outputs, uids)
    objects.append(DerivedObject(OutputKind.STRUCTURED_REPORT, "measurements", report))
    state = build_presentation_state(source, result, outputs, uids)
    objects.append(DerivedObject(OutputKind.PRESENTATION_STATE, "outlines", state))
    return objects


def write_outputs(
    source: Dataset | Path | str,
    result: RadiographResult,
    outputs: OutputSettings,
    folder: Path | str,
) -> list[WrittenOutput]:
    """Build all outputs of ``source`` and write them into ``folder`` (created if needed).

    ``source`` is the radiograph's dataset or file; only its header is used. The code
    items the objects share are encoded once for all of them (``encode_codes_once``).
    """
    header = source if isinstance(source, Dataset) else dcmread(source, stop_before_pixels=True)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    items = build_outputs(header, result, outputs)
    codes: CodeCache = {}
    for item in items:
        encode_codes_once(item.dataset, codes)
    with ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="dicom-write") as pool:
        # map keeps the order of ``items``; the first failure is raised once all are done.
        written = list(pool.map(lambda item: _write(item, target), items))
    logger.info(
        "wrote %d derived objects for %s to %s",
        len(written),
        header.SOPInstanceUID,
        target,
    )
    return written


def _sc_label(image: Dataset) -> str:
    # "MCP2 L upper: k ..." -> "MCP2 L upper"
    return str(image.ImageComments).split(":", 1)[0]


def _write(item: DerivedObject, folder: Path) -> WrittenOutput:
    dataset = item.dataset
    path = folder / f"{item.kind.value}_{dataset.SOPInstanceUID}.dcm"
    handle, temporary = tempfile.mkstemp(prefix=".partial-", suffix=".dcm", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            dataset.save_as(stream, enforce_file_format=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return WrittenOutput(
        kind=item.kind,
        label=item.label,
        path=path,
        sop_class_uid=str(dataset.SOPClassUID),
        sop_instance_uid=str(dataset.SOPInstanceUID),
        series_instance_uid=str(dataset.SeriesInstanceUID),
        study_instance_uid=str(dataset.StudyInstanceUID),
    )
