"""Malformed data sets each get a defined status, nothing is stored, and C-ECHO still works."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_testing import DX_PRESENTATION, echo_status, hand_dataset, save, store_datasets
from pydicom.dataelem import DataElement
from pynetdicom import _config
from sqlalchemy import func, select

from dicom_node.db import Instance
from dicom_node.dimse_status import DicomStatus

CANNOT_UNDERSTAND = int(DicomStatus.CANNOT_UNDERSTAND)


@pytest.fixture(autouse=True)
def _send_files_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom re-encodes files it sends unless told to stream their bytes unchanged."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


def _truncated(path: Path, cut: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    return path


def _patched(path: Path, old: bytes, new: bytes, occurrence: int = 0) -> Path:
    """Replace the ``occurrence``-th ``old`` (0: the only one); same length keeps offsets."""
    assert len(old) == len(new)
    data = path.read_bytes()
    positions = [i for i in range(len(data)) if data.startswith(old, i)]
    assert occurrence < len(positions) and (occurrence or len(positions) == 1)
    at = positions[occurrence]
    path.write_bytes(data[:at] + new + data[at + len(old) :])
    return path


def malformed(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    cases: dict[str, tuple[Path, int]] = {}
    cases["truncated pixel data"] = (
        _truncated(save(hand_dataset(seed=1), tmp_path / "a.dcm"), 1000),
        CANNOT_UNDERSTAND,
    )
    cases["truncated header"] = (
        _truncated(save(hand_dataset(seed=2), tmp_path / "b.dcm"), 64 * 48 * 2 + 150),
        CANNOT_UNDERSTAND,
    )
    no_instance_uid = hand_dataset(seed=3)
    del no_instance_uid.SOPInstanceUID
    cases["missing SOP Instance UID"] = (
        save(no_instance_uid, tmp_path / "c.dcm"),
        CANNOT_UNDERSTAND,
    )
    no_study = hand_dataset(seed=4, StudyInstanceUID=None)
    cases["missing Study Instance UID"] = (save(no_study, tmp_path / "d.dcm"), CANNOT_UNDERSTAND)
    no_series = hand_dataset(seed=5, SeriesInstanceUID=None)
    cases["missing Series Instance UID"] = (save(no_series, tmp_path / "e.dcm"), CANNOT_UNDERSTAND)
    wrong_vr = hand_dataset(seed=6)
    wrong_vr["StudyInstanceUID"] = DataElement(0x0020000D, "US", 7)
    cases["UID with VR US"] = (save(wrong_vr, tmp_path / "f.dcm"), CANNOT_UNDERSTAND)
    unknown_vr = save(hand_dataset(seed=7), tmp_path / "g.dcm")
    cases["unknown VR"] = (
        _patched(unknown_vr, b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00ZZ"),
        CANNOT_UNDERSTAND,
    )
    traversal = hand_dataset(seed=8)
    traversal.SeriesInstanceUID = "1.2.3/../../../etc"
    cases["UID with a path in it"] = (save(traversal, tmp_path / "h.dcm"), CANNOT_UNDERSTAND)
    # The file meta (which pynetdicom puts in the request) keeps the first occurrence.
    other_class = save(hand_dataset(seed=9), tmp_path / "i.dcm")
    mammography = b"1.2.840.10008.5.1.4.1.1.1.2"
    _patched(other_class, DX_PRESENTATION.encode(), mammography, occurrence=1)
    cases["SOP Class differs from the request"] = (
        other_class,
        int(DicomStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS),
    )
    other_instance = hand_dataset(seed=10)
    uid = other_instance.SOPInstanceUID.encode()
    changed = uid[:-1] + (b"1" if uid[-1:] != b"1" else b"2")
    path = save(other_instance, tmp_path / "j.dcm")
    cases["SOP Instance UID differs from the request"] = (
        _patched(path, uid, changed, occurrence=1),
        CANNOT_UNDERSTAND,
    )
    garbage = save(hand_dataset(seed=11), tmp_path / "k.dcm")
    data = garbage.read_bytes()
    meta_end = data.index(b"\x08\x00\x05\x00")
    garbage.write_bytes(data[:meta_end] + bytes(range(256)) * 8)
    cases["garbage after the file meta"] = (garbage, CANNOT_UNDERSTAND)
    return cases  # fmt: skip


def test_each_malformed_data_set_gets_a_defined_status(start_node, tmp_path: Path) -> None:
    node = start_node()
    cases = malformed(tmp_path)
    for name, (path, expected) in cases.items():
        assert store_datasets(node.port, [path]) == [expected], name
        assert echo_status(node.port) == 0, f"no C-ECHO after {name}"
    with node.database.sessions() as session:
        assert session.scalar(select(func.count(Instance.id))) == 0
    spooled = [
        p for p in node.settings.spool_dir.rglob("*") if p.is_file() and p.name != ".reconciled"
    ]
    assert spooled == []


def test_a_wrong_vr_outside_the_uids_is_stored_as_received(start_node, tmp_path: Path) -> None:
    ds = hand_dataset(seed=12)
    ds["PatientName"] = DataElement(0x00100010, "DA", "20250106")
    path = save(ds, tmp_path / "pn.dcm")
    node = start_node()
    assert store_datasets(node.port, [path]) == [0]
    with node.database.sessions() as session:
        stored = session.scalars(select(Instance)).one()
    assert Path(stored.path).read_bytes()[-len(ds.PixelData) :] == ds.PixelData
