"""Jobs on hostile sources: identity as booked, bounded decoding, poison after one crash.

The process task is called directly on jobs booked as the listener books them; a
source that must not be processed fails its job with a clear reason, before the models
load and before any pixel is decoded.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_files import pixel_bomb
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from worker_testing import add_job, node_settings, promote_blsgan

from blsnode.cli.main import cli
from dicom_node.db import Job, JobState, Output
from dicom_node.db import jobs as job_rows
from dicom_node.db.types import utc_now
from dicom_node.queue.broker import PROCESS_TASK
from dicom_node.settings import Settings
from worker.celery_app import WorkerApp, create_app

# Peak resident memory allowed to ``blsnode process`` refusing a bomb (torch imported).
PROCESS_PEAK_RSS_BYTES = 450 << 20


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Settings, WorkerApp]]:
    """Settings of a node and its worker app (no models needed: nothing gets that far)."""
    settings = node_settings(tmp_path / "node")
    app = create_app(settings)
    yield settings, app
    app.context.close()


def _finished(app: WorkerApp, job_id: int) -> Job:
    with app.context.database.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert session.scalar(select(func.count(Output.id))) == 0
        session.expunge(job)
        return job


def _element(keyword: str, value: object) -> bytes:
    ds = Dataset()
    setattr(ds, keyword, value)
    stream = DicomBytesIO()
    stream.is_little_endian, stream.is_implicit_VR = True, False
    write_dataset(stream, ds)
    return stream.getvalue()


def test_a_spooled_file_with_other_uids_than_booked_is_not_processed(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path
) -> None:
    settings, app = node
    source = shutil.copy(dx_left, tmp_path / "source.dcm")
    job_id = add_job(settings, Path(source), [])
    changed = dcmread(source)
    changed.StudyInstanceUID = generate_uid()
    changed.save_as(source)
    summary = app.tasks[PROCESS_TASK](job_id)
    assert summary["state"] == "failed"
    job = _finished(app, job_id)
    assert job.state is JobState.FAILED
    assert job.reason is not None
    assert "differ from those booked at ingest: study_instance_uid" in job.reason


def test_identity_repeated_after_pixel_data_is_not_processed(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path
) -> None:
    settings, app = node
    source = Path(shutil.copy(dx_left, tmp_path / "source.dcm"))
    job_id = add_job(settings, source, [])
    # As a listener without the tag-order check booked it: the first Patient ID counted.
    source.write_bytes(source.read_bytes() + _element("PatientID", "OTHER-PATIENT"))
    app.tasks[PROCESS_TASK](job_id)
    job = _finished(app, job_id)
    assert job.state is JobState.FAILED and job.reason is not None
    assert "(0010,0020)" in job.reason and "tags must rise strictly" in job.reason
    assert "OTHER-PATIENT" not in job.reason


def _edited(**attributes: object) -> Callable[[Path, Path], Path]:
    """The real radiograph with these attributes set (a VOI LUT item as a dict)."""

    def build(radiograph: Path, folder: Path) -> Path:
        ds = dcmread(radiograph)
        for keyword, value in attributes.items():
            if isinstance(value, dict):
                item = Dataset()
                for name, item_value in value.items():
                    setattr(item, name, item_value)
                value = Sequence([item])
            setattr(ds, keyword, value)
        path = folder / "edited.dcm"
        ds.save_as(path)
        return path

    return build


def _bomb(**claims: int) -> Callable[[Path, Path], Path]:
    return lambda radiograph, folder: pixel_bomb(folder / "bomb.dcm", **claims)


def _frames(radiograph: Path, folder: Path) -> Path:
    ds = dcmread(radiograph)
    ds.NumberOfFrames = 1000
    path = folder / "frames.dcm"
    ds.save_as(path)
    return path


@dataclass(frozen=True)
class JobCase:
    """A source that must fail its job, and how the reason starts."""

    name: str
    build: Callable[[Path, Path], Path]
    reason: str


TOO_LARGE = "image too large: "
GREYSCALE = "invalid modality LUT, VOI LUT or window: "
JOB_CASES = [
    JobCase("RLE claiming 65535 x 65535 at 16 bits", _bomb(), TOO_LARGE + "65535 x 65535"),
    JobCase("RLE claiming 65535 x 65535 at 8 bits", _bomb(bits=8), TOO_LARGE + "65535 x 65535"),
    JobCase("RLE claiming 20000 x 20000", _bomb(rows=20000, columns=20000), TOO_LARGE),
    JobCase("1000 frames claimed", _frames, TOO_LARGE),
    # Runs longer than the 16 x 16 frame: pylibjpeg-rle panics (a BaseException).
    JobCase(
        "RLE runs overflowing the frame",
        _bomb(rows=16, columns=16),
        "pixel data cannot be decoded: PanicException",
    ),
    JobCase("window width 0", _edited(WindowCenter=2048, WindowWidth=0), GREYSCALE + "ValueError"),
    JobCase(
        "VOI LUT shorter than its descriptor",
        _edited(
            VOILUTSequence={"LUTDescriptor": [4096, 0, 16], "LUTData": struct.pack("<3H", 0, 1, 2)}
        ),
        GREYSCALE,
    ),
    JobCase(
        "modality LUT shorter than its descriptor",
        _edited(
            ModalityLUTSequence={
                "LUTDescriptor": [4096, 0, 16],
                "LUTData": struct.pack("<2H", 1, 2),
                "ModalityLUTType": "US",
            }
        ),
        GREYSCALE,
    ),
]


@pytest.mark.parametrize("case", JOB_CASES, ids=[case.name for case in JOB_CASES])
def test_each_hostile_source_fails_its_job_with_a_clear_reason(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path, case: JobCase
) -> None:
    settings, app = node
    job_id = add_job(settings, case.build(dx_left, tmp_path), [])
    assert app.tasks[PROCESS_TASK](job_id)["state"] == "failed"
    job = _finished(app, job_id)
    assert job.reason is not None and job.reason.startswith(case.reason), job.reason
    assert "internal error" not in job.reason


def test_a_duplicate_message_for_a_job_in_a_live_worker_changes_nothing(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, dx_left, [])
    with app.context.database.sessions.begin() as session:
        assert job_rows.claim_job(session, job_id) is not None  # its worker renews the lease
    assert app.tasks[PROCESS_TASK](job_id)["state"] == "skipped"
    with app.context.database.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.RUNNING and job.attempts == 1


def test_a_job_whose_worker_died_fails_as_poison(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    assert settings.worker.max_job_attempts == 1
    job_id = add_job(settings, dx_left, [])
    lost_at = utc_now() - timedelta(seconds=settings.worker.job_lease_s + 1)
    with app.context.database.sessions.begin() as session:
        # Taken by a worker that then died: its lease ran out.
        assert job_rows.claim_job(session, job_id, now=lost_at) is not None
    # The broker delivers the message again to the next worker: it must not run the job.
    summary = app.tasks[PROCESS_TASK](job_id)
    assert summary["state"] == "failed" and summary["reason"] == "poison"
    job = _finished(app, job_id)
    assert job.state is JobState.FAILED and job.attempts == 1
    assert job.reason is not None and job.reason.startswith("poison: the worker running")
    assert f"blsnode jobs retry {job_id}" in job.reason


def test_malformed_optional_attributes_never_fail_a_job_nor_show(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path
) -> None:
    settings, app = node
    promote_blsgan(settings.model_registry_dir)
    sloppy = dcmread(dx_left)
    sloppy.PatientBirthDate, sloppy.PatientSex, sloppy.StudyTime = "PHI-19700101", "PHI", "PHI-1"
    source = tmp_path / "sloppy.dcm"
    sloppy.save_as(source)
    job_id = add_job(settings, source, [])
    summary = app.tasks[PROCESS_TASK](job_id)
    assert summary["state"] == "done" and summary["outputs"] == 18
    listed = CliRunner().invoke(cli, ["--data-dir", str(settings.data_dir), "jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{job_id}" in listed.output and "PHI" not in listed.output
    with app.context.database.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.DONE and job.reason is None
        paths = list(session.scalars(select(Output.path)))
    for path in paths:
        assert not dcmread(path, stop_before_pixels=True).get("PatientBirthDate")


# Runs a command and prints its peak resident memory (KiB). A child forked from pytest
# itself would count pytest's pages towards its peak until it execs; this small parent
# does not.
_PEAK_RSS = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
    "sys.exit(code)"
)


def test_blsnode_process_refuses_a_pixel_bomb_with_little_memory(tmp_path: Path) -> None:
    bomb = pixel_bomb(tmp_path / "bomb.dcm")
    blsnode = str(Path(sys.executable).with_name("blsnode"))
    command = [blsnode, "--data-dir", str(tmp_path / "node"), "process", str(bomb)]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "image too large: 65535 x 65535" in done.stderr
    assert "Traceback" not in done.stderr
    # ru_maxrss is in KiB on Linux; decoding the claimed image would take 8.6 GB.
    peak_bytes = int(done.stdout.split()[-1]) * 1024
    assert peak_bytes < PROCESS_PEAK_RSS_BYTES, peak_bytes
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
