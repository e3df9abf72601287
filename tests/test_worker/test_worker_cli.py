"""``blsnode worker``: options, and a real worker on the serverless filesystem broker."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from installed import blsnode_command, user_environment
from loopback import wait_until
from worker_testing import add_job, node_settings, promote_blsgan

from blsnode.cli.main import cli
from dicom_node.db import JobState, open_database
from dicom_node.db import jobs as job_rows
from dicom_node.queue.broker import TaskSender
from worker.serve import Pool, WorkerOptions, torch_threads_per_process, worker_options

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_options_default_to_the_settings(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, worker={"concurrency": 1})
    options = worker_options(settings)
    assert options == WorkerOptions(("process", "dispatch"), 1, Pool.SOLO)
    several = worker_options(settings, ["process"], 3, None, "cpu")
    assert several.pool is Pool.PREFORK and several.queues == ("process",)
    assert torch_threads_per_process(1) is None
    assert torch_threads_per_process(64) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--queues", "process,render"], "unknown queues ['render']"),
        (["--pool", "solo", "--concurrency", "2"], "the solo pool runs one job at a time"),
        (["--device", "quantum"], "unknown torch device 'quantum'"),
        (["--queues", ","], "at least one queue"),
    ],
)
def test_bad_options_are_usage_errors(arguments: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "worker", *arguments])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_prefork_worker_serves_the_filesystem_broker_until_sigterm(
    dx_left: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    settings = node_settings(data_dir)
    promote_blsgan(settings.model_registry_dir)
    job_id = add_job(settings, dx_left, [])
    log = tmp_path / "worker.log"
    command = blsnode_command(
        "--data-dir", data_dir, "worker", "--concurrency", "2", "--queues", "process"
    )
    with log.open("wb") as stream:
        worker = subprocess.Popen(
            command, cwd=tmp_path, stdout=stream, stderr=stream, env=user_environment()
        )
    database = open_database(settings.database_url)
    sender = TaskSender(settings)
    try:
        sender.send_process(job_id)

        def state() -> JobState:
            with database.sessions() as session:
                job = job_rows.get_job(session, job_id)
                assert job is not None
                return job.state

        wait_until(lambda: state() in (JobState.DONE, JobState.FAILED), 180, "the job")
        assert state() is JobState.DONE, log.read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
        assert "pool=prefork" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        sender.close()
        database.dispose()
