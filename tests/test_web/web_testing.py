"""Helpers of the dashboard tests: a node's database with users and rows, logging in.

Import as ``from web_testing import ...`` (``tests/test_web`` is on ``sys.path``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dicom_factory import make_dx, write_dataset
from node_testing import node_settings
from pydicom import dcmread
from starlette.testclient import TestClient
from worker_testing import ATLAS_ID, SCALE, add_job

from blsnode.web_models import CommandModels
from dicom_node.admin.users import hash_password
from dicom_node.db import Database, JobState, Role, open_node_database
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db import users as user_rows
from dicom_node.db.instances import find_instance
from dicom_node.db.types import utc_now
from dicom_node.node_report import node_status
from dicom_node.settings import Settings
from dicom_node.web.app import WebContext, create_app

ADMIN = ("alice", "admin", "alice-password-1")
VIEWER = ("victor", "viewer", "victor-password-1")
DESTINATION = "pacs"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Argon2 takes about a second per hash on the test machine: each test user's is made once.
_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    """The Argon2 hash of a test password, computed once per session."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@dataclass
class WebNode:
    """A node's settings and database, and the ids of the rows the tests act on."""

    settings: Settings
    database: Database
    instance_id: int
    failed_job_id: int
    dead_dispatch_id: int
    processed_job_id: int | None = None
    processed_instance_id: int | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def context(self) -> WebContext:
        """What the node's ``serve`` hands the dashboard (the models page included)."""
        return WebContext(
            self.settings,
            self.database,
            lambda: node_status(self.settings, self.database, None),
            models=CommandModels(None, self.settings.data_dir),
        )

    def client(self) -> TestClient:
        """An HTTP client of a new dashboard app on this node (no session yet)."""
        return TestClient(create_app(self.context()), follow_redirects=False)

    def job_state(self, job_id: int) -> JobState:
        """The state of a job now."""
        with self.database.reader() as session:
            job = job_rows.get_job(session, job_id)
            assert job is not None
            return job.state

    def close(self) -> None:
        """Release the database."""
        self.database.dispose()


def _radiograph(folder: Path, hand_radiographs_dir: Path, seed: str) -> Path:
    atlas = hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg"
    return write_dataset(make_dx(atlas, scale=SCALE, uid_seed=seed), folder / f"{seed}.dcm")


def open_web_node(
    data_dir: Path, hand_radiographs_dir: Path, users: tuple[tuple[str, str, str], ...]
) -> WebNode:
    """A node with ``users``, one failed job and a dead dispatch of its instance."""
    settings = node_settings(
        data_dir,
        destinations=[],
        web={"host": "127.0.0.1", "port": 0, "login_attempts": 3},
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    source = _radiograph(data_dir.parent, hand_radiographs_dir, "failed")
    failed_job = add_job(settings, source, [DESTINATION])
    database = open_node_database(settings)
    uid = dcmread(source, stop_before_pixels=True).SOPInstanceUID
    with database.sessions.begin() as session:
        for name, role, password in users:
            user_rows.add_user(session, name, Role(role), password_hash(password))
        job_rows.mark_failed(session, failed_job, "pipeline stopped: no hand found")
        instance = find_instance(session, uid)
        assert instance is not None
        dispatch = dispatch_rows.create_dispatch(session, DESTINATION, instance_id=instance.id)
        dispatch_rows.record_failure(
            session, dispatch.id, "association refused", utc_now(), next_attempt_at=None
        )
        instance_id, dispatch_id = instance.id, dispatch.id
    return WebNode(settings, database, instance_id, failed_job, dispatch_id)


def process_radiograph(node: WebNode, hand_radiographs_dir: Path) -> None:
    """Book a left-hand DX and run its job through the worker (shipped models, CPU)."""
    from worker.context import WorkerContext
    from worker.jobs import process_job

    source = _radiograph(node.settings.data_dir.parent, hand_radiographs_dir, "processed")
    job_id = add_job(node.settings, source, [])
    context = WorkerContext(node.settings, torch_threads=1)
    try:
        outcome = process_job(context, job_id)
    finally:
        context.close()
    assert outcome.state is JobState.DONE, outcome
    node.processed_job_id = job_id
    uid = dcmread(source, stop_before_pixels=True).SOPInstanceUID
    with node.database.reader() as session:
        instance = find_instance(session, uid)
        assert instance is not None
        node.processed_instance_id = instance.id


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found is not None, "page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, name: str, password: str) -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    page = client.get("/login")
    response = client.post(
        "/login", data={"csrf": csrf_of(page.text), "name": name, "password": password}
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)
