"""DICOMweb destinations: STOW-RS to a real Orthanc with its DICOMweb plugin.

Orthanc (Debian ``orthanc`` with ``orthanc-dicomweb``) asks for HTTP basic
authentication; the node sends with the destination's credentials, one request per
file, with the same retries and dead letter as C-STORE.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from node_testing import hand_dataset, store_datasets
from orthanc_server import Orthanc
from sqlalchemy import select

from blsnode.cli.main import cli
from dicom_node.admin.destinations import echo_destination
from dicom_node.db import Dispatch, DispatchState
from dicom_node.send.dispatch import send_due_batch
from dicom_node.settings import DestinationSettings

USERS = {"blsnode": "stow-secret"}


@pytest.fixture(scope="module")
def web_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path_factory.mktemp("orthanc-web"), dicomweb=True, users=USERS)
    try:
        yield server.start()
    finally:
        server.stop()


def web_destination(orthanc: Orthanc, password: str = USERS["blsnode"]) -> dict:
    return {
        "name": "WEBPACS",
        "protocol": "dicomweb",
        "url": orthanc.dicomweb_url,
        "username": "blsnode",
        "password": password,
        "send": "all",
    }


def received(node, count: int) -> tuple[list[str], list[int]]:
    datasets = [hand_dataset(seed=100 + n) for n in range(count)]
    assert store_datasets(node.port, datasets) == [0] * count
    with node.database.sessions() as session:
        ids = list(session.scalars(select(Dispatch.id).order_by(Dispatch.id)))
    return [str(ds.SOPInstanceUID) for ds in datasets], ids


def states(node) -> list[DispatchState]:
    with node.database.sessions() as session:
        return [d.state for d in session.scalars(select(Dispatch).order_by(Dispatch.id))]


def test_results_reach_orthanc_by_stow_rs(start_node, web_pacs: Orthanc) -> None:
    node = start_node(destinations=[web_destination(web_pacs)])
    uids, ids = received(node, 3)
    batch = send_due_batch(node.settings, node.database, ids[0])
    assert [o.state for o in batch.outcomes] == [DispatchState.SENT] * 3
    assert set(uids) <= set(web_pacs.instances())
    assert echo_destination(node.settings, node.database, "WEBPACS")["ok"] is True


def test_refused_credentials_dead_letter_at_once(start_node, web_pacs: Orthanc) -> None:
    node = start_node(destinations=[web_destination(web_pacs, password="wrong")])
    uids, ids = received(node, 2)
    batch = send_due_batch(node.settings, node.database, ids[0])
    assert [o.state for o in batch.outcomes] == [DispatchState.DEAD] * 2
    assert all(o.error == "WEBPACS answered HTTP 401 to STOW-RS" for o in batch.outcomes)
    assert not set(uids) & set(web_pacs.instances())
    report = echo_destination(node.settings, node.database, "WEBPACS")
    assert report["ok"] is False and "401" in report["error"]


def test_an_unreachable_service_is_tried_again_later(start_node, tmp_path: Path) -> None:
    down = Orthanc(tmp_path / "down", dicomweb=True)  # configured, never started
    node = start_node(destinations=[web_destination(down)], dispatch={"backoff_initial_s": 30})
    _, ids = received(node, 2)
    batch = send_due_batch(node.settings, node.database, ids[0])
    assert [o.state for o in batch.outcomes] == [DispatchState.PENDING] * 2
    assert all(o.next_attempt_at is not None for o in batch.outcomes)
    assert states(node) == [DispatchState.PENDING] * 2


def test_a_destination_must_be_complete_for_its_protocol() -> None:
    with pytest.raises(ValueError, match="needs url"):
        DestinationSettings(name="W", protocol="dicomweb")
    with pytest.raises(ValueError, match="needs ae_title, host, port"):
        DestinationSettings(name="D")
    with pytest.raises(ValueError, match="http:// or https://"):
        DestinationSettings(name="W", protocol="dicomweb", url="ftp://pacs/dicom-web")


def test_config_show_masks_the_destination_password(tmp_path: Path, web_pacs: Orthanc) -> None:
    config = tmp_path / "node.yaml"  # YAML is a superset of JSON
    config.write_text(json.dumps({"destinations": [web_destination(web_pacs)]}))
    result = CliRunner().invoke(
        cli, ["--config", str(config), "--data-dir", str(tmp_path), "config", "show", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert USERS["blsnode"] not in result.output
    (shown,) = json.loads(result.output)["destinations"]
    assert shown["password"] == "**********"
