"""A follow-up whose prior is only on the PACS: fetched by C-MOVE, then used (real Orthanc).

The node's listener is stood in for by a storage SCP under the node's AE title that books
what it receives as the listener does (``add_job``); Orthanc holds the prior.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dx, write_dataset
from loopback import refusing_port, storage_scp
from orthanc_server import Orthanc
from pydicom import Dataset, dcmread
from sqlalchemy import select
from worker_testing import SCALE, add_job, node_settings, promote_blsgan

from dicom_node.db import JointMeasurement
from dicom_node.queue.broker import PROCESS_TASK
from dicom_node.settings import Settings
from worker.celery_app import create_app
from worker.failures import PriorPendingError
from worker.jobs import find_followup
from worker.tasks import MAX_TRANSIENT_RETRIES

SECRET = "test-site-secret-0123"


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[int, list[Path]]]:
    """(port, files received): a storage SCP standing in for the node's listener."""
    folder = tmp_path / "received"
    folder.mkdir()
    got: list[Path] = []

    def keep(dataset: Dataset) -> None:
        got.append(write_dataset(dataset, folder / f"{dataset.SOPInstanceUID}.dcm"))

    with storage_scp("BLSNODE", keep) as port:
        yield port, got


def _dx(atlas_image: Path, folder: Path, seed: str, date: str) -> Path:
    dataset = make_dx(atlas_image, scale=SCALE, uid_seed=seed)
    dataset.StudyDate = date
    return write_dataset(dataset, folder / f"{seed}.dcm")


def _settings(tmp_path: Path, orthanc: Orthanc, port: int | None = None) -> Settings:
    pacs = {"ae_title": orthanc.ae_title, "host": "127.0.0.1", "port": port or orthanc.dicom_port}
    settings = node_settings(
        tmp_path / "node", followup={"site_secret": SECRET, "pacs": pacs | {"timeout_s": 10}}
    )
    promote_blsgan(settings.model_registry_dir)
    return settings


def test_prior_on_the_pacs_is_fetched_once_waited_for_then_used(
    tmp_path: Path, atlas_image: Path, orthanc: Orthanc, listener: tuple[int, list[Path]]
) -> None:
    port, got = listener
    orthanc.add_modality("blsnode", "BLSNODE", port)
    prior = _dx(atlas_image, tmp_path, "prior", "20240117")
    orthanc.upload(prior)
    followup = _dx(atlas_image, tmp_path, "followup", "20250116")
    followup_uid = str(dcmread(followup, stop_before_pixels=True).SOPInstanceUID)
    settings = _settings(tmp_path, orthanc)
    app = create_app(settings)
    try:
        with pytest.raises(PriorPendingError, match="fetched from PACS"):
            find_followup(app.context, followup, followup_uid)
        assert [dcmread(p).SOPInstanceUID for p in got] == [dcmread(prior).SOPInstanceUID]
        # Received and booked, not processed yet: waited for, not fetched again.
        prior_job = add_job(settings, got[0], [])
        with pytest.raises(PriorPendingError, match="not processed yet"):
            find_followup(app.context, followup, followup_uid)
        assert find_followup(app.context, followup, followup_uid, wait_for_prior=False).priors == {}
        assert len(got) == 1
        assert app.tasks[PROCESS_TASK](prior_job)["state"] == "done"
        found = find_followup(app.context, followup, followup_uid)
    finally:
        app.context.close()
    assert found.priors and set(found.prior_layers) == set(found.priors)
    assert {p.study_date for p in found.priors.values()} == {"20240117"}


def test_the_last_try_does_not_wait_but_uses_a_prior_processed_meanwhile(
    tmp_path: Path, atlas_image: Path, orthanc: Orthanc
) -> None:
    prior = _dx(atlas_image, tmp_path, "prior", "20240117")
    orthanc.upload(prior)
    settings = _settings(tmp_path, orthanc)
    job_id = add_job(settings, _dx(atlas_image, tmp_path, "followup", "20250116"), [])
    app = create_app(settings)
    processed: list[str] = []

    def book_and_process(dataset: Dataset) -> None:
        # The prior's own job ends while the follow-up's C-MOVE is still waiting for it,
        # as when another worker (or Celery's timer thread) runs it beside the follow-up.
        moved = write_dataset(dataset, tmp_path / "received" / "prior.dcm")
        processed.append(app.tasks[PROCESS_TASK](add_job(settings, moved, []))["state"])

    (tmp_path / "received").mkdir()
    try:
        with storage_scp("BLSNODE", book_and_process) as port:
            orthanc.add_modality("blsnode", "BLSNODE", port)
            # Retries spent: the prior is fetched but not waited for (no PriorPendingError).
            task = app.tasks[PROCESS_TASK]
            outcome = task.apply((job_id,), retries=MAX_TRANSIENT_RETRIES).get()
        with app.context.database.sessions() as session:
            rows = list(
                session.scalars(select(JointMeasurement).where(JointMeasurement.job_id == job_id))
            )
    finally:
        app.context.close()
    assert processed == ["done"] and outcome["state"] == "done"
    # Read again after the PACS was asked, the prior is there: the change is reported.
    assert rows and {row.prior_sop_instance_uid for row in rows} == {
        str(dcmread(prior, stop_before_pixels=True).SOPInstanceUID)
    }


def test_a_pacs_that_is_down_costs_only_the_change(
    tmp_path: Path, atlas_image: Path, orthanc: Orthanc
) -> None:
    followup = _dx(atlas_image, tmp_path, "followup", "20250116")
    with refusing_port() as port:
        app = create_app(_settings(tmp_path, orthanc, port=port))
        try:
            found = find_followup(app.context, followup, "1.2.3")
        finally:
            app.context.close()
    assert found.pseudonym and found.priors == {}
