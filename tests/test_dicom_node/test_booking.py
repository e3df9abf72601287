"""Rows committed in groups after the C-STORE is answered, and settled at release and stop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from node_testing import hand_dataset, node_settings, store_datasets
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from sqlalchemy import select

from blsnode.node import Node
from dicom_node.db import Instance, Job, open_node_database
from dicom_node.dimse_status import DicomStatus
from dicom_node.settings import Settings

SUCCESS = int(DicomStatus.SUCCESS)
DX = "1.2.840.10008.5.1.4.1.1.1.1"


def _settings(tmp_path: Path) -> Settings:
    # An hour: nothing is committed by the clock, only by a release, a copy or a stop.
    return node_settings(tmp_path / "data", database={"group_commit_s": 3600.0})


@contextmanager
def _open_association(port: int) -> Iterator[Association]:
    """An association the test releases or aborts itself (store_datasets releases)."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(DX, ExplicitVRLittleEndian)
    association = ae.associate("127.0.0.1", port, ae_title="BLSNODE")
    assert association.is_established
    try:
        yield association
    finally:
        if association.is_established:
            association.abort()


def _booked(node: Node) -> dict[str, int]:
    """SOP Instance UID -> number of jobs, for every booked instance."""
    assert node.database is not None
    with node.database.reader() as session:
        uids = list(session.scalars(select(Instance.sop_instance_uid)))
        jobs = list(session.scalars(select(Instance.sop_instance_uid).join(Job)))
    return {uid: jobs.count(uid) for uid in uids}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = Node(_settings(tmp_path))
    started.start()
    try:
        yield started
    finally:
        started.stop()


def test_answered_before_booked_and_booked_before_the_release_is_answered(node: Node) -> None:
    datasets = [hand_dataset(seed=seed) for seed in range(3)]
    with _open_association(node.settings.network.port) as association:
        statuses = [association.send_c_store(ds).Status for ds in datasets]
        assert statuses == [SUCCESS] * 3
        assert _booked(node) == {}
        association.release()
    assert _booked(node) == {str(ds.SOPInstanceUID): 1 for ds in datasets}


def test_a_copy_of_an_instance_waiting_for_its_row_is_booked_once(node: Node) -> None:
    original = hand_dataset(seed=1)
    with _open_association(node.settings.network.port) as association:
        assert association.send_c_store(original).Status == SUCCESS
        assert _booked(node) == {}
        # A second sender's copy while the first association still runs.
        assert store_datasets(node.settings.network.port, [original]) == [SUCCESS]
        assert _booked(node) == {str(original.SOPInstanceUID): 1}
        other = hand_dataset(seed=2, SOPInstanceUID=original.SOPInstanceUID)
        other.file_meta.MediaStorageSOPInstanceUID = original.SOPInstanceUID
        # Other content under the waiting UID: the duplicate policy (ignore) answers.
        assert association.send_c_store(other).Status == int(DicomStatus.ELEMENTS_DISCARDED)
    assert _booked(node) == {str(original.SOPInstanceUID): 1}


def test_a_stopping_node_commits_the_rows_still_waiting(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    node = Node(settings)
    node.start()
    datasets = [hand_dataset(seed=seed) for seed in range(2)]
    try:
        with _open_association(settings.network.port) as association:
            assert [association.send_c_store(ds).Status for ds in datasets] == [SUCCESS] * 2
            assert _booked(node) == {}
    finally:
        node.stop()
    database = open_node_database(settings)
    with database.reader() as session:
        uids = set(session.scalars(select(Instance.sop_instance_uid)))
    database.dispose()
    assert uids == {str(ds.SOPInstanceUID) for ds in datasets}


def test_too_many_rows_waiting_refuses_before_spooling(node: Node) -> None:
    assert node.bookkeeper is not None
    node.bookkeeper.max_waiting = 2
    datasets = [hand_dataset(seed=seed) for seed in range(3)]
    with _open_association(node.settings.network.port) as association:
        statuses = [association.send_c_store(ds).Status for ds in datasets]
    assert statuses == [SUCCESS, SUCCESS, int(DicomStatus.OUT_OF_RESOURCES)]
    assert {path.stem for path in node.settings.spool_dir.glob("*/*/*.dcm")} == {
        str(ds.SOPInstanceUID) for ds in datasets[:2]
    }
