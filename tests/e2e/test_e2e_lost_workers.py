"""Workers that die: nothing stays half-done, nothing is left behind.

- ``blsnode serve`` SIGKILLed alone (not its process group): its embedded worker exits
  by itself within seconds instead of living on as an orphan.
- The embedded worker SIGKILLed in the middle of a job on the embedded filesystem
  broker, which drops a message once a worker has read it: ``serve`` starts a new
  worker, the sweeper queues the job again when its lease (``worker.job_lease_s``) runs
  out, the new worker runs it, and the viewer receives every result exactly once
  (counted by SOP Instance UID).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import pytest
from dicom_factory import make_dx, write_dataset
from e2e_node import destination, served_node
from node_testing import dcmtk, wait_until
from peers import running_storescp
from worker_testing import ATLAS_ID

from dicom_node.db import DispatchState, JobState

pytestmark = pytest.mark.e2e

LEASE_S = 6.0


def _children(pid: int) -> list[int]:
    """Process ids of the children of ``pid`` (Linux ``/proc``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that ended meanwhile
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _exited(pid: int) -> bool:
    """True once ``pid`` exited (a zombie nobody reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


def test_the_embedded_worker_exits_when_serve_is_killed(tmp_path: Path) -> None:
    with served_node(tmp_path / "node", worker={"embedded": True}) as node:
        serve = node.serve.process
        assert serve is not None
        (worker,) = wait_until(lambda: _children(serve.pid), what="the embedded worker")
        wait_until(
            lambda: "worker starting" in node.serve.log_text(),
            timeout_s=120,
            what="the embedded worker to run",
        )
        serve.send_signal(signal.SIGKILL)  # serve alone: no supervisor kills its group
        serve.wait(30)
        killed_at = time.monotonic()
        wait_until(lambda: _exited(worker), timeout_s=20, what="the orphaned worker to exit")
        assert time.monotonic() - killed_at < 10


def test_a_job_whose_worker_was_killed_runs_again_after_its_lease(
    tmp_path: Path, model_registry: Path, hand_radiographs_dir: Path
) -> None:
    source = make_dx(
        hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg", scale=0.5, uid_seed="lease"
    )
    path = write_dataset(source, tmp_path / "radiograph.dcm")
    with (
        running_storescp(tmp_path / "viewer") as viewer,
        served_node(
            tmp_path / "node",
            models={"registry_dir": str(model_registry)},
            # The single-machine default, with a second attempt allowed: the default (1)
            # fails a job that lost its worker as poison (tests/test_worker/test_hostile_jobs.py).
            worker={"embedded": True, "job_lease_s": LEASE_S, "max_job_attempts": 2},
            destinations=[destination("viewer", viewer.ae_title, viewer.port)],
        ) as node,
    ):
        serve = node.serve.process
        assert serve is not None
        sent = subprocess.run(
            [dcmtk("storescu"), "-aec", node.ae_title, "127.0.0.1", str(node.port), str(path)],
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        wait_until(
            lambda: [job.state for job in node.jobs()] == [JobState.RUNNING],
            timeout_s=120,
            interval_s=0.05,
            what="the embedded worker to take the job",
        )
        (worker,) = _children(serve.pid)
        os.kill(worker, signal.SIGKILL)  # the OOM killer, in the middle of the job
        wait_until(lambda: _exited(worker), timeout_s=10, what="the worker to die")
        (job,) = node.jobs()
        assert job.state is JobState.RUNNING and job.attempts == 1
        # serve starts a new worker; the sweeper queues the job again after its lease.
        wait_until(
            lambda: (
                [job.state for job in node.jobs()] == [JobState.DONE]
                and node.dispatches()
                and all(d.state is DispatchState.SENT for d in node.dispatches())
            ),
            timeout_s=LEASE_S + 240,
            interval_s=0.5,
            what="the job run again and its results sent",
        )
        (job,) = node.jobs()
        assert job.attempts == 2
        assert [child for child in _children(serve.pid) if child != worker]
        # One dispatch per output (a re-run adds none), each output received once.
        output_ids = {d.output_id for d in node.dispatches()}
        assert len(output_ids) == len(node.dispatches()) >= 4
        counts = viewer.received_counts()
        assert len(counts) == len(node.dispatches())
        assert set(counts.values()) == {1}, counts
        log = node.serve.log_text()
        assert "embedded worker exited with status -9" in log
        assert "queued again 1 jobs running past their lease" in log
