"""The whole pipeline with real peers, as a hospital wires it.

A real Orthanc plays the PACS and dcmtk plays a modality (``storescu``) and a viewer
workstation (``storescp``). ``blsnode serve`` runs with its embedded Celery worker on a
real ``redis-server``; the two destinations receive every result. The radiographs are
real atlas hands re-encoded as DX by ``tests/dicom_factory.py``; the BLS-GAN is the
worker tests' small promoted checkpoint (no trained one ships yet), the localiser and
the segmenter the shipped weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dicom_factory import make_dx, write_dataset
from dicom_validation import dciodvfy
from e2e_node import ServedNode, destination, served_node
from orthanc_server import Orthanc, running_orthanc
from peers import StoreSCP, running_redis, running_storescp
from pydicom import dcmread
from worker_testing import ATLAS_ID

from dicom_node.db import Output, OutputKind

pytestmark = pytest.mark.e2e

NODE_NAME = "blsnode"  # the node as Orthanc's modality
MODALITY_AE = "DXROOM1"
PIPELINE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Hospital:
    """The running peers and the node between them."""

    node: ServedNode
    pacs: Orthanc
    viewer: StoreSCP


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory, model_registry: Path) -> Iterator[Hospital]:
    """Orthanc, a storescp viewer, Redis and ``blsnode serve`` with its embedded worker."""
    root = tmp_path_factory.mktemp("hospital")
    with (
        running_orthanc(root / "orthanc") as pacs,
        running_storescp(root / "viewer") as viewer,
        running_redis(root / "redis") as redis_url,
        served_node(
            root / "node",
            network={"allowed_callers": [{"ae_title": pacs.ae_title}, {"ae_title": MODALITY_AE}]},
            broker={"url": redis_url, "sweep_interval_s": 0.5},
            worker={"embedded": True},
            models={"registry_dir": str(model_registry)},
            destinations=[
                destination("pacs", pacs.ae_title, pacs.dicom_port),
                destination("viewer", viewer.ae_title, viewer.port),
            ],
        ) as node,
    ):
        pacs.add_modality(NODE_NAME, node.ae_title, node.port)
        yield Hospital(node, pacs, viewer)


def _check_kinds(outputs: list[Output]) -> None:
    kinds = [output.kind for output in outputs]
    assert kinds.count(OutputKind.SEG) == 1 and kinds.count(OutputKind.SR) == 1
    assert kinds.count(OutputKind.PR) == 1
    # An overview, then three layer images (L1, L2, reconstruction) per joint.
    assert kinds.count(OutputKind.SC) >= 4 and (kinds.count(OutputKind.SC) - 1) % 3 == 0


def _assert_valid(paths: list[Path]) -> None:
    for path in paths:
        report = dciodvfy(path)
        assert not report.errors, report.summary()


def test_orthanc_sends_a_radiograph_and_gets_seg_sc_sr_back_in_its_study(
    hospital: Hospital, hand_radiographs_dir: Path, tmp_path: Path
) -> None:
    # A full-size radiograph (1950 x 1350), as a DX system sends it to the PACS.
    source = make_dx(hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg", uid_seed="orthanc")
    stored = hospital.pacs.upload(write_dataset(source, tmp_path / "radiograph.dcm"))
    # The PACS forwards it to the node, as a routing rule or a user would.
    answer = hospital.pacs.send(
        "POST", f"/modalities/{NODE_NAME}/store", {"Resources": [stored["ID"]], "Synchronous": True}
    )
    assert answer["FailedInstancesCount"] == 0 and answer["InstancesCount"] == 1

    outputs = hospital.node.delivered(str(source.SOPInstanceUID), 2, PIPELINE_TIMEOUT_S)
    _check_kinds(outputs)
    # Every result is in the radiograph's study at the PACS, once, next to the radiograph.
    study = hospital.pacs.get(f"/studies/{stored['ParentStudy']}")
    assert study["MainDicomTags"]["StudyInstanceUID"] == source.StudyInstanceUID
    in_study = {
        item["MainDicomTags"]["SOPInstanceUID"]: item["ID"]
        for item in hospital.pacs.get(f"/studies/{stored['ParentStudy']}/instances")
    }
    assert set(in_study) == {source.SOPInstanceUID} | {o.sop_instance_uid for o in outputs}
    modalities = sorted(
        hospital.pacs.get(f"/series/{series}")["MainDicomTags"]["Modality"]
        for series in study["Series"]
    )
    assert modalities == ["DX", "OT", "PR", "SEG", "SR"]
    # What the PACS holds is valid DICOM.
    downloaded = []
    for output in outputs:
        path = tmp_path / "from-pacs" / f"{output.kind.value}-{output.sop_instance_uid}.dcm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(
            hospital.pacs.get_bytes(f"/instances/{in_study[output.sop_instance_uid]}/file")
        )
        downloaded.append(path)
    _assert_valid(downloaded)
    # The viewer received each result exactly once.
    counts = hospital.viewer.received_counts()
    assert all(counts[o.sop_instance_uid] == 1 for o in outputs)


def test_storescu_modality_results_reach_the_viewer_and_the_pacs(
    hospital: Hospital, hand_radiographs_dir: Path, tmp_path: Path
) -> None:
    source = make_dx(
        hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg",
        scale=0.5,
        right=True,
        bits_stored=14,
        photometric="MONOCHROME1",
        uid_seed="storescu",
    )
    path = write_dataset(source, tmp_path / "radiograph.dcm")
    node = hospital.node
    node.storescu(path, MODALITY_AE)

    outputs = node.delivered(str(source.SOPInstanceUID), 2, PIPELINE_TIMEOUT_S)
    _check_kinds(outputs)
    counts = hospital.viewer.received_counts()
    assert all(counts[o.sop_instance_uid] == 1 for o in outputs)
    received = {
        str(header.SOPInstanceUID): file
        for file in hospital.viewer.folder.iterdir()
        if (header := dcmread(file, stop_before_pixels=True)).StudyInstanceUID
        == source.StudyInstanceUID
    }
    assert set(received) == {o.sop_instance_uid for o in outputs}
    _assert_valid(list(received.values()))
    # The PACS, which never saw the radiograph, files the results in its study too.
    found = hospital.pacs.send(
        "POST",
        "/tools/find",
        {"Level": "Instance", "Query": {"StudyInstanceUID": source.StudyInstanceUID}},
    )
    assert len(found) == len(outputs)
