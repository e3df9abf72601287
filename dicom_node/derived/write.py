"""Build every derived object of one radiograph and write them to a folder.

The one call the worker and ``blsnode process --out DIR`` make. Files are named by kind
and SOP Instance UID (``SEG_<uid>.dcm``, ``SC_<uid>.dcm``, ``SR_<uid>.dcm``,
``PR_<uid>.dcm``); the UIDs are
deterministic, so a re-run with the same model overwrites its earlier files instead of
adding new ones. Each file is written to a temporary name, flushed to disk and renamed, so
a crash never leaves a half-written object behind a final name. The files are written by
a few threads at once, while the later objects are still being built, which overlaps
their waits for the disk.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydicom import config, dcmread
from pydicom.dataset import Dataset

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


# The order of the kinds in ``build_outputs`` and ``write_outputs``.
_KINDS = list(OutputKind)


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
    """SEG, the SC images (overview first), the SR that references the SEG, then the GSPS."""
    return sorted(_built(source, result, outputs), key=lambda item: _KINDS.index(item.kind))


def _built(
    source: Dataset, result: RadiographResult, outputs: OutputSettings
) -> Iterator[DerivedObject]:
    """Each object as soon as it is built: the SC images, the SR, the GSPS, then the SEG.

    Built with pydicom's value validation off: in its default mode it only warns, and it
    ran on every one of the thousands of elements highdicom sets (half the build time of
    the SR). The values are validated where they enter (the result dataclasses, the
    settings, ``with_usable_copied_attributes`` for the source's), and every object
    passes dciodvfy in the tests.

    The SEG is built in a thread of its own meanwhile: most of its time goes to numpy's
    work on its full-size frames (highdicom's overlap check, packing the bits), which
    leaves the interpreter to the other builders (and to the writers of what they
    built), so the two overlap on a second core. The SR names the SEG by its UIDs and
    does not wait for it.
    """
    with (
        config.disable_value_validation(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-build") as pool,
    ):
        usable = with_usable_copied_attributes(source)
        uids = OutputUids(str(usable.SOPInstanceUID), result.model.version, outputs.uid_prefix)
        segmentation = pool.submit(build_segmentation, usable, result, outputs, uids)
        for image in build_secondary_captures(usable, result, outputs, uids):
            yield DerivedObject(OutputKind.SECONDARY_CAPTURE, _sc_label(image, uids), image)
        report = build_structured_report(usable, result, outputs, uids)
        yield DerivedObject(OutputKind.STRUCTURED_REPORT, "measurements", report)
        state = build_presentation_state(usable, result, outputs, uids)
        yield DerivedObject(OutputKind.PRESENTATION_STATE, "outlines", state)
        yield DerivedObject(OutputKind.SEGMENTATION, "segmentation", segmentation.result())


def write_outputs(
    source: Dataset | Path | str,
    result: RadiographResult,
    outputs: OutputSettings,
    folder: Path | str,
) -> list[WrittenOutput]:
    """Build all outputs of ``source`` and write them into ``folder`` (created if needed).

    ``source`` is the radiograph's dataset or file; only its header is used. Each object
    is written to a temporary file as soon as it is built, while the next ones are
    built; the files get their names once all are built and on disk, so an object that
    cannot be built leaves no file at all. A file that cannot be named is raised once
    the others have their names. Returned in the order of ``build_outputs``.
    """
    header = source if isinstance(source, Dataset) else dcmread(source, stop_before_pixels=True)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="dicom-write") as pool:
        staged: list[tuple[DerivedObject, Future[Path]]] = []
        try:
            for item in _built(header, result, outputs):
                staged.append((item, pool.submit(_stage, item.dataset, target)))
            temporaries = [future.result() for _, future in staged]
        except BaseException:
            for _, future in staged:
                if future.exception() is None:
                    future.result().unlink(missing_ok=True)
            raise
    written: list[WrittenOutput] = []
    failures: list[OSError] = []
    for (item, _), temporary in zip(staged, temporaries, strict=True):
        try:
            written.append(_publish(item, temporary, target))
        except OSError as error:
            temporary.unlink(missing_ok=True)
            failures.append(error)
    if failures:
        raise failures[0]
    logger.info(
        "wrote %d derived objects for %s to %s",
        len(written),
        header.SOPInstanceUID,
        target,
    )
    return sorted(written, key=lambda output: _KINDS.index(output.kind))


def _sc_label(image: Dataset, uids: OutputUids) -> str:
    if image.SOPInstanceUID == uids.sc_overview:
        return "overview"
    # "MCP2 L upper: k ..." -> "MCP2 L upper"
    return str(image.ImageComments).split(":", 1)[0]


def _stage(dataset: Dataset, folder: Path) -> Path:
    """``dataset`` in a new temporary file of ``folder``, flushed to disk."""
    handle, temporary = tempfile.mkstemp(prefix=".partial-", suffix=".dcm", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            dataset.save_as(stream, enforce_file_format=True)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def _publish(item: DerivedObject, temporary: Path, folder: Path) -> WrittenOutput:
    """Give the staged file of ``item`` its name, replacing an earlier run's."""
    dataset = item.dataset
    path = folder / f"{item.kind.value}_{dataset.SOPInstanceUID}.dcm"
    os.replace(temporary, path)
    return WrittenOutput(
        kind=item.kind,
        label=item.label,
        path=path,
        sop_class_uid=str(dataset.SOPClassUID),
        sop_instance_uid=str(dataset.SOPInstanceUID),
        series_instance_uid=str(dataset.SeriesInstanceUID),
        study_instance_uid=str(dataset.StudyInstanceUID),
    )
