"""Priors from a PACS: C-FIND finds the patient's newest earlier radiograph of the hand,
C-MOVE delivers it; a PACS that is down or cannot move gives a clear error (real Orthanc)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dx, write_dataset
from loopback import free_port, refusing_port, storage_scp
from orthanc_server import Orthanc

from dicom_node.prior_retrieve import (
    PriorRetrievalError,
    find_prior_image,
    retrieve_prior_image,
)
from dicom_node.settings import PriorPacsSettings

OUR_AE = "BLSNODEPRIOR"
PATIENT = "BLSNODE-TEST-0001"
SCALE = 0.25


def _upload(orthanc: Orthanc, atlas: Path, folder: Path, seed: str, date: str, **kw: object) -> str:
    dataset = make_dx(atlas, scale=SCALE, uid_seed=seed, **kw)  # type: ignore[arg-type]
    dataset.StudyDate = date
    orthanc.upload(write_dataset(dataset, folder / f"{seed}.dcm"))
    return str(dataset.SOPInstanceUID)


@pytest.fixture
def received() -> Iterator[tuple[int, list[str]]]:
    """A storage SCP standing in for the node's listener: (port, SOP Instance UIDs got)."""
    got: list[str] = []
    with storage_scp(OUR_AE, lambda dataset: got.append(str(dataset.SOPInstanceUID))) as port:
        yield port, got


@pytest.fixture
def atlas(hand_radiographs_dir: Path) -> Path:
    return next(iter(sorted((hand_radiographs_dir / "images").glob("*.jpg"))))


def test_newest_earlier_image_of_the_hand_is_found_and_moved(
    running_orthanc: Orthanc, received: tuple[int, list[str]], atlas: Path, tmp_path: Path
) -> None:
    port, got = received
    older = _upload(running_orthanc, atlas, tmp_path, "p-2023", "20230110")
    newest = _upload(running_orthanc, atlas, tmp_path, "p-2024", "20240117")
    _upload(running_orthanc, atlas, tmp_path, "p-2024-right", "20240301", right=True)
    _upload(running_orthanc, atlas, tmp_path, "p-same-day", "20250116")
    _upload(running_orthanc, atlas, tmp_path, "other", "20240601", patient_id="OTHER-1")
    pacs = PriorPacsSettings(
        ae_title=running_orthanc.ae_title, host="127.0.0.1", port=running_orthanc.dicom_port
    )
    # A PACS answers queries and moves only for peers it knows.
    with pytest.raises(PriorRetrievalError, match="AE title"):
        find_prior_image(pacs, "STRANGER", PATIENT, "20250116", "L")
    running_orthanc.add_modality("blsnodeprior", OUR_AE, port)
    found = find_prior_image(pacs, OUR_AE, PATIENT, "20250116", "L")
    assert found is not None and found.sop_instance_uid == newest
    assert found.study_date == "20240117" and newest != older
    # Nothing of this hand before 2023-01-10; the right hand's newest is its own.
    assert find_prior_image(pacs, OUR_AE, PATIENT, "20230110", "L") is None
    right = find_prior_image(pacs, OUR_AE, PATIENT, "20250116", "R")
    assert right is not None and right.study_date == "20240301"
    retrieve_prior_image(pacs, OUR_AE, found, OUR_AE)
    assert got == [newest]  # the C-MOVE returns after the PACS's C-STORE to us


def test_unknown_destination_and_a_pacs_that_is_down(
    running_orthanc: Orthanc, atlas: Path, tmp_path: Path
) -> None:
    running_orthanc.add_modality("blsnodeprior", OUR_AE, free_port())
    newest = _upload(running_orthanc, atlas, tmp_path, "q-2024", "20240117", patient_id="Q-1")
    pacs = PriorPacsSettings(
        ae_title=running_orthanc.ae_title, host="127.0.0.1", port=running_orthanc.dicom_port
    )
    found = find_prior_image(pacs, OUR_AE, "Q-1", "20250116", "L")
    assert found is not None and found.sop_instance_uid == newest
    with pytest.raises(PriorRetrievalError, match="NOWHERE"):
        retrieve_prior_image(pacs, OUR_AE, found, "NOWHERE")
    with refusing_port() as port:
        down = PriorPacsSettings(ae_title="PACS", host="127.0.0.1", port=port, timeout_s=5)
        with pytest.raises(PriorRetrievalError, match="cannot be reached"):
            find_prior_image(down, OUR_AE, "Q-1", "20250116", "L")
    wrong_ae = pacs.model_copy(update={"ae_title": "NOTORTHANC"})
    with pytest.raises(PriorRetrievalError, match="rejected"):
        find_prior_image(wrong_ae, OUR_AE, "Q-1", "20250116", "L")


def test_bad_queries_are_refused() -> None:
    pacs = PriorPacsSettings(ae_title="PACS", host="127.0.0.1", port=104)
    with pytest.raises(ValueError, match="Patient ID"):
        find_prior_image(pacs, OUR_AE, "", "20250116", "L")
    with pytest.raises(ValueError, match="YYYYMMDD"):
        find_prior_image(pacs, OUR_AE, PATIENT, "2025-01-16", "L")
