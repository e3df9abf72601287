"""What an admin does through the dashboard takes effect, and leaves one audit line each."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from loopback import refusing_port
from starlette.testclient import TestClient
from web_testing import ADMIN, DESTINATION, WebNode, log_in

from dicom_node.admin import destinations as destination_admin
from dicom_node.db import DispatchState, JobState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.settings import DestinationSettings
from dicom_node.web.app import create_app


def _audit_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dicom_node.web.audit"]


def test_retrying_a_failed_job_and_a_dead_dispatch(web_node: WebNode, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dicom_node.web.audit")
    client = web_node.client()
    token = log_in(client, *ADMIN[::2])
    dead = client.get("/dispatches?state=dead").text
    assert "association refused" in dead
    response = client.post(f"/dispatches/{web_node.dead_dispatch_id}/retry", data={"csrf": token})
    assert response.status_code == 303
    with web_node.database.reader() as session:
        dispatch = dispatch_rows.get_dispatch(session, web_node.dead_dispatch_id)
        assert dispatch is not None and dispatch.state is DispatchState.PENDING
    page = client.get("/jobs?state=failed").text
    assert "pipeline stopped: no hand found" in page
    assert f"/jobs/{web_node.failed_job_id}/retry" in page
    response = client.post(f"/jobs/{web_node.failed_job_id}/retry", data={"csrf": token})
    assert response.status_code == 303
    assert web_node.job_state(web_node.failed_job_id) is JobState.QUEUED
    assert "requeued [1]" in client.get(response.headers["location"]).text  # the notice
    lines = _audit_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith(
        f"audit user=alice action=dispatch.retry target={web_node.dead_dispatch_id}"
    )
    assert "outcome=revived [1]" in lines[0]
    assert f"action=job.retry target={web_node.failed_job_id} outcome=requeued [1]" in lines[1]


def test_adding_echoing_and_removing_a_destination(web_node: WebNode, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dicom_node.web.audit")
    client = web_node.client()
    token = log_in(client, *ADMIN[::2])
    # Nothing listens there while the test runs: the C-ECHO fails, and says so.
    with refusing_port() as port:
        form = {"csrf": token, "name": "viewer2", "ae_title": "VIEWER2", "host": "127.0.0.1"}
        response = client.post("/destinations", data=form | {"port": str(port), "send": "all"})
        assert response.status_code == 303
        listed = destination_admin.listing(web_node.settings, web_node.database)["destinations"]
        assert [(d["name"], d["port"], d["send"]) for d in listed] == [("viewer2", port, "all")]
        assert listed[0]["results"] is None  # none ticked: every kind
        # Ticked kinds: only those (a viewer of presentation states and reports).
        named = form | {"name": "gsps", "port": str(port), "results": ["sr", "pr"]}
        assert client.post("/destinations", data=named).status_code == 303
        listed = destination_admin.listing(web_node.settings, web_node.database)["destinations"]
        assert [d["results"] for d in listed if d["name"] == "gsps"] == [["sr", "pr"]]
        assert "sr, pr" in client.get("/destinations").text
        client.post("/destinations/gsps/remove", data={"csrf": token})
        # A bad value is refused with its reason, and nothing is stored.
        client.post("/destinations", data=form | {"name": "bad", "ae_title": "A\\B", "port": "1"})
        assert "Not added" in client.get("/destinations").text
        response = client.post("/destinations/viewer2/echo", data={"csrf": token})
        assert "C-ECHO viewer2: FAILED" in client.get(response.headers["location"]).text
        response = client.post("/destinations/viewer2/remove", data={"csrf": token})
        assert "Destination viewer2 removed." in client.get(response.headers["location"]).text
        assert destination_admin.listing(web_node.settings, web_node.database)["destinations"] == []
        actions = [line.split()[2] for line in _audit_lines(caplog)]
        assert actions == [
            "action=destination.add",
            "action=destination.add",
            "action=destination.remove",
            "action=destination.add",
            "action=destination.echo",
            "action=destination.remove",
        ]
        assert "outcome=refused" in _audit_lines(caplog)[3]


def test_a_destination_of_the_settings_file_is_not_removed(web_node: WebNode) -> None:
    configured = DestinationSettings(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=104)
    settings = web_node.settings.model_copy(update={"destinations": [configured]})
    context = replace(web_node.context(), settings=settings)
    client = TestClient(create_app(context), follow_redirects=False)
    token = log_in(client, *ADMIN[::2])
    page = client.get("/destinations").text
    assert "archive" in page and "/destinations/archive/remove" not in page
    response = client.post("/destinations/archive/remove", data={"csrf": token})
    page = client.get(response.headers["location"]).text
    assert "Not removed: destination &#39;archive&#39; is defined in the settings file" in page
    response = client.post(f"/destinations/{DESTINATION}/remove", data={"csrf": token})
    page = client.get(response.headers["location"]).text
    assert "Not removed: no destination called &#39;pacs&#39;" in page


def test_rules_test_names_an_unknown_instance(web_node: WebNode) -> None:
    client = web_node.client()
    token = log_in(client, *ADMIN[::2])
    response = client.post("/rules/test", data={"csrf": token, "instance_id": "999"})
    assert response.status_code == 400
    assert "no stored instance with id 999" in response.text


def test_models_page_shows_the_choice_and_promotes(web_node: WebNode, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dicom_node.web.audit")
    client = web_node.client()
    token = log_in(client, *ADMIN[::2])
    page = client.get("/models").text
    assert "shipped with the package; none promoted in" in page
    assert "val_real_psnr" in page  # the card's metrics
    # Each models page runs "blsnode models list" (seconds): the notices are read elsewhere.
    response = client.post("/models/blsgan-cpu/promote", data={"csrf": token})
    assert response.headers["location"] == "/models"
    assert "Promoted blsgan-cpu (blsgan)." in client.get("/rules").text
    promoted = json.loads((web_node.settings.model_registry_dir / "promoted.json").read_text())
    assert promoted == {"blsgan": "blsgan-cpu"}
    client.post("/models/no-such-model/promote", data={"csrf": token})
    assert "Not promoted: no model named &#39;no-such-model&#39;" in client.get("/rules").text
    assert [line.split()[-2] for line in _audit_lines(caplog)] == [
        "outcome=promoted",
        "outcome=refused",
    ]
