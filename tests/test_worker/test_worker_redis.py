"""``blsnode worker`` against a real Redis: C-STORE in, SEG/SC/SR out to a real storescp.

The node's listener and publisher run in this process (as ``serve`` runs them); the
worker is the real command in a child process. Sent by dcmtk's storescu: a one-hand DX
and a blank DX. SIGTERM while the first job runs must let it finish (warm shutdown) and
lose nothing: the second job and the dispatches wait in Redis for the next worker.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from installed import blsnode_command, user_environment
from loopback import free_port, system_program, wait_until
from peers import StoreSCP, running_redis, running_storescp
from pydicom import dcmread
from sqlalchemy import select
from worker_testing import promote_blsgan

from blsnode.cli.main import cli
from blsnode.node import Node
from dicom_node.db import (
    Database,
    Dispatch,
    DispatchState,
    Job,
    JobState,
    Output,
    OutputKind,
    open_database,
)
from dicom_node.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


@pytest.fixture
def node_config(tmp_path: Path) -> Iterator[tuple[Settings, Path, StoreSCP]]:
    """Redis, a storescp viewer, and the settings file the node and the worker share."""
    with (
        running_redis(tmp_path / "redis") as redis_url,
        running_storescp(tmp_path / "viewer") as viewer,
    ):
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / "node"),
            "network": {"host": "127.0.0.1", "port": free_port()},
            "http": {"enabled": False},
            "storage": {"min_free_bytes": 0},
            "broker": {"url": redis_url, "sweep_interval_s": 0.5},
            "worker": {"embedded": False},
            "logging": {"to_file": False},
            "destinations": [
                {
                    "name": "viewer",
                    "ae_title": viewer.ae_title,
                    "host": "127.0.0.1",
                    "port": viewer.port,
                }
            ],
        }
        config = tmp_path / "node.yaml"
        config.write_text(yaml.safe_dump(values))
        settings = load_settings(config)
        promote_blsgan(settings.model_registry_dir)
        yield settings, config, viewer


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """The installed ``blsnode worker`` in a child process, started outside the checkout."""
    command = blsnode_command("--config", config, "worker")
    with log.open("ab") as stream:
        return subprocess.Popen(
            command, env=user_environment(), stdout=stream, stderr=stream, cwd=log.parent
        )


def rows(database: Database, model: type) -> list[Any]:
    with database.sessions() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def stop(worker: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> int:
    """SIGTERM, then wait for the warm shutdown; the exit status."""
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        raise AssertionError(f"worker ignored SIGTERM; log:\n{log.read_text()}") from None


def test_worker_processes_and_dispatches_through_redis(
    node_config: tuple[Settings, Path, StoreSCP], dx_left: Path, blank_dx: Path, tmp_path: Path
) -> None:
    settings, config, viewer = node_config
    node = Node(settings)
    node.start()
    log = tmp_path / "worker.log"
    worker = start_worker(config, log)
    try:
        assert node.database is not None
        database = node.database
        sent = subprocess.run(
            [system_program("storescu"), "-aec", settings.network.ae_title, "127.0.0.1",
             str(settings.network.port), str(dx_left), str(blank_dx)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: len(rows(database, Job)) == 2, 30, "two jobs")

        # SIGTERM while the first job runs: it finishes, the worker exits cleanly.
        wait_until(
            lambda: rows(database, Job)[0].state is not JobState.QUEUED, 120, "job 1 to start"
        )
        assert stop(worker, log) == 0, log.read_text()
        first, second = rows(database, Job)
        assert first.state is JobState.DONE, log.read_text()
        assert second.state is JobState.QUEUED
        outputs = rows(database, Output)
        assert len(outputs) == 18 and {o.kind for o in outputs} == set(OutputKind)
        assert all(d.state is DispatchState.PENDING for d in rows(database, Dispatch))

        # The next worker finds the second job and the dispatches waiting in Redis.
        worker = start_worker(config, log)
        wait_until(lambda: rows(database, Job)[1].state is JobState.FAILED, 120, "job 2 to fail")
        wait_until(
            lambda: all(d.state is DispatchState.SENT for d in rows(database, Dispatch)),
            120,
            "every dispatch to be sent",
        )
        assert stop(worker, log) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        node.stop()

    assert job_reason(settings, second.id).startswith("no hand found")
    outputs = rows_of(settings, Output)
    dispatches = rows_of(settings, Dispatch)
    assert len(dispatches) == 18 and {d.destination for d in dispatches} == {"viewer"}
    received = viewer.received()
    assert received == {o.sop_instance_uid: o.sop_class_uid for o in outputs}
    assert set(received.values()) == {SEG, SECONDARY_CAPTURE, COMPREHENSIVE_SR}
    source_study = dcmread(dx_left, stop_before_pixels=True).StudyInstanceUID
    for path in viewer.folder.iterdir():
        assert dcmread(path, stop_before_pixels=True).StudyInstanceUID == source_study


def rows_of(settings: Settings, model: type) -> list[Any]:
    """Rows read through a fresh connection, after the node has stopped."""
    database = open_database(settings.database_url)
    try:
        return rows(database, model)
    finally:
        database.dispose()


def job_reason(settings: Settings, job_id: int) -> str:
    """The reason ``blsnode jobs show --json`` gives for a failed job."""
    shown = CliRunner().invoke(
        cli, ["--data-dir", str(settings.data_dir), "jobs", "show", str(job_id), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.stdout)
    assert details["state"] == "failed"
    return str(details["reason"])
