"""A follow-up whose baseline is only on the PACS, through a running node (issue 15, item 3).

``blsnode serve`` runs as installed (embedded worker, filesystem queue) with a site
secret and ``followup.pacs`` naming a real Orthanc, which holds the patient's baseline
left hand (study 2024-01-17) and is the node's only result destination. A modality
(``storescu``) sends the follow-up of 2025-01-16: the same real atlas radiograph (so the
true change is none), other UIDs, Pixel Spacing known. The node must ask Orthanc by
C-FIND, fetch the baseline by C-MOVE, process it, then finish the follow-up with each
joint's change in JSW since the baseline, in its SR (read back from Orthanc) and in
``blsnode results export``. With ``followup.pacs`` off the follow-up finishes without a
change, and the test fails.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from pathlib import Path

import highdicom as hd
import pytest
from dicom_factory import make_dx, write_dataset
from dicom_validation import dciodvfy
from e2e_node import ServedNode, destination, served_node
from orthanc_server import Orthanc, running_orthanc
from pydicom import Dataset
from sqlalchemy import select
from worker_testing import ATLAS_ID, SCALE

from dicom_node.db import Instance, JobState, OutputKind
from dicom_node.derived import codes

pytestmark = pytest.mark.e2e

MODALITY_AE = "DXROOM1"
SECRET = "e2e-site-secret-0123"
BASELINE_DATE, FOLLOWUP_DATE, INTERVAL_DAYS = "20240117", "20250116", 365
TIMEOUT_S = 240.0
JOINTS = 5  # MCP1 to MCP5 of one hand


def _radiograph(atlas: Path, folder: Path, seed: str, study_date: str) -> tuple[Dataset, Path]:
    # Imager Pixel Spacing 0.3 mm at half scale, and Pixel Spacing 2 % smaller (calibrated).
    dataset = make_dx(atlas, scale=SCALE, calibrated_spacing=True, uid_seed=seed)
    dataset.StudyDate = study_date
    return dataset, write_dataset(dataset, folder / f"{seed}.dcm")


def _stores_answered(node: ServedNode) -> float:
    """C-STOREs the listener answered, every outcome (``blsnode_cstore`` in ``/metrics``)."""
    url = f"http://127.0.0.1:{node.settings.http.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("blsnode_cstore_total{")
    )


def _sr_from_pacs(pacs: Orthanc, sop_instance_uid: str, folder: Path) -> Path:
    (found,) = pacs.send(
        "POST", "/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}}
    )
    path = folder / "sr-from-pacs.dcm"
    path.write_bytes(pacs.get_bytes(f"/instances/{found}/file"))
    return path


def _check_sr(path: Path) -> None:
    """Per joint: the mask-based and the registered change in mm, each per year in mm/a."""
    validation = dciodvfy(path)
    assert not validation.errors, validation.summary()
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    assert len(groups) == JOINTS
    for group in groups:
        measured = group.get_measurements()
        changes = [m for m in measured if m.name.value == codes.JSW_CHANGE.value]
        rates = [m for m in measured if m.name.value == codes.JSW_CHANGE_RATE.value]
        assert [(m.unit.value, m.unit.scheme_designator) for m in changes] == [("mm", "UCUM")] * 2
        assert [(m.unit.value, m.unit.scheme_designator) for m in rates] == [("mm/a", "UCUM")] * 2
        by_method = {m.method.value if m.method else None: m.value for m in changes}
        # The same pixels a year apart: no change by the masks, none by the registration.
        assert by_method[None] == pytest.approx(0.0, abs=1e-6)
        registered = by_method[codes.LAYER_REGISTRATION.value]
        assert abs(registered) < 0.01
        rate = {m.method.value if m.method else None: m.value for m in rates}
        assert rate[codes.LAYER_REGISTRATION.value] == pytest.approx(
            registered * 365.25 / INTERVAL_DAYS, abs=1e-6
        )


def _check_export(node: ServedNode, study_uid: str, baseline_uid: str) -> None:
    """The follow-up's five rows, in JSON and in CSV: linked to the fetched baseline."""
    args = ("results", "export", "--study", study_uid, "--format")
    as_json = json.loads(node.command(*args, "json"))
    as_csv = list(csv.DictReader(io.StringIO(node.command(*args, "csv"))))
    assert len(as_json) == len(as_csv) == JOINTS
    for row, text in zip(as_json, as_csv, strict=True):
        assert row["prior_sop_instance_uid"] == text["prior_sop_instance_uid"] == baseline_uid
        assert row["interval_days"] == int(text["interval_days"]) == INTERVAL_DAYS
        assert (row["length_unit"], row["spacing_source"]) == ("mm", "PixelSpacing")
        assert row["jsw_min_change"] == pytest.approx(0.0, abs=1e-9)
        assert row["jsw_min_change_per_year"] == pytest.approx(0.0, abs=1e-9)
        assert abs(row["jsw_registered_change"]) < 0.01
        assert row["jsw_registered_change_per_year"] == pytest.approx(
            row["jsw_registered_change"] * 365.25 / INTERVAL_DAYS
        )
        assert float(text["jsw_registered_change"]) == pytest.approx(row["jsw_registered_change"])


def test_a_followup_fetches_its_baseline_from_the_pacs_and_reports_the_change(
    hand_radiographs_dir: Path, model_registry: Path, tmp_path: Path
) -> None:
    atlas = hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg"
    baseline, baseline_file = _radiograph(atlas, tmp_path, "baseline", BASELINE_DATE)
    followup, followup_file = _radiograph(atlas, tmp_path, "followup", FOLLOWUP_DATE)
    with running_orthanc(tmp_path / "orthanc") as pacs:
        pacs.upload(baseline_file)
        with served_node(
            tmp_path / "node",
            network={"allowed_callers": [{"ae_title": pacs.ae_title}, {"ae_title": MODALITY_AE}]},
            worker={"embedded": True},
            models={"registry_dir": str(model_registry)},
            destinations=[destination("pacs", pacs.ae_title, pacs.dicom_port)],
            followup={
                "site_secret": SECRET,
                "pacs": {"ae_title": pacs.ae_title, "host": "127.0.0.1", "port": pacs.dicom_port},
            },
        ) as node:
            # The PACS moves to the node's AE title only if it knows where that is.
            pacs.add_modality("blsnode", node.ae_title, node.port)
            node.storescu(followup_file, MODALITY_AE)
            outputs = node.delivered(str(followup.SOPInstanceUID), 1, TIMEOUT_S)

            # The baseline came from the PACS, once: one row, and only two C-STOREs in all.
            baseline_uid = str(baseline.SOPInstanceUID)
            assert node.instance_uids()[baseline_uid] == 1, node.serve.log_text()
            with node.database.reader() as session:
                came_from = session.scalars(
                    select(Instance.calling_ae_title).where(
                        Instance.sop_instance_uid == baseline_uid
                    )
                ).one()
            assert came_from == pacs.ae_title
            assert _stores_answered(node) == 2
            # The baseline processed; the follow-up waited for it (tried again at least once).
            prior_job, _ = node.finished_job(baseline_uid) or (None, [])
            followup_job, _ = node.finished_job(str(followup.SOPInstanceUID)) or (None, [])
            assert prior_job is not None and prior_job.state is JobState.DONE
            assert followup_job is not None and followup_job.attempts >= 2

            (report,) = [o for o in outputs if o.kind is OutputKind.SR]
            _check_sr(_sr_from_pacs(pacs, report.sop_instance_uid, tmp_path))
            _check_export(node, str(followup.StudyInstanceUID), baseline_uid)
