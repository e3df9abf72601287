"""``blsnode serve`` and ``blsnode worker`` as child processes, as systemd or compose runs them.

Each process runs in its own process group, so a SIGKILL of the group takes the embedded
worker down with the listener, as systemd's control group would. Settings go through a
real settings file; the node's database is read directly to count what it holds.
Import as ``from e2e_node import ServedNode, blsnode_process``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml
from installed import blsnode_command, user_environment
from loopback import system_program, wait_for_port, wait_until
from node_testing import node_settings
from pydantic import SecretStr
from sqlalchemy import select

from dicom_node.db import (
    Database,
    Dispatch,
    DispatchState,
    Instance,
    Job,
    JobState,
    Output,
    open_database,
)
from dicom_node.node_report import node_status
from dicom_node.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


def child_environment() -> dict[str, str]:
    """A user's environment: the installed product, no ``PYTHONPATH``, no ``BLSNODE_*``."""
    return user_environment()


def destination(name: str, ae_title: str, port: int, send: str = "results") -> dict[str, Any]:
    """A ``destinations`` entry for a peer on loopback."""
    return {"name": name, "ae_title": ae_title, "host": "127.0.0.1", "port": port, "send": send}


def _file_values(settings: Settings) -> dict[str, Any]:
    """``settings`` as an operator writes them in the file: secrets in clear.

    Pydantic's JSON dump writes ``**********`` for a secret (``followup.site_secret``).
    """

    def plain(value: Any) -> str:
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    values: dict[str, Any] = json.loads(json.dumps(settings.model_dump(), default=plain))
    return values


class BlsnodeProcess:
    """One ``blsnode`` command in its own process group, its output in a log file."""

    def __init__(self, config: Path, args: list[str], log: Path) -> None:
        self.argv = blsnode_command("--config", config, *args)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the command (appending to its log)."""
        if self.running():
            raise RuntimeError(f"already running: {self.argv}")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(),
                cwd=self.log.parent,
                start_new_session=True,
            )

    def running(self) -> bool:
        """True while the process lives."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a power cut or the OOM killer would."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM and wait (the warm shutdown); SIGKILL what is left of the group."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._signal_group(signal.SIGKILL)
        return self.process.returncode

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _signal_group(self, signum: signal.Signals) -> None:
        if self.process is None:
            return
        # The group is gone once its last member exited: nothing left to signal.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


class ServedNode:
    """``blsnode serve`` with its own settings file and data directory under ``folder``.

    ``overrides`` are settings sections over the test defaults of
    ``node_testing.node_settings`` (loopback, free ports, no disk guard, quick sweeps,
    no embedded worker).
    """

    def __init__(self, folder: Path, **overrides: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "node.yaml"
        values = _file_values(node_settings(folder / "data", **overrides))
        self.config.write_text(yaml.safe_dump(values), encoding="utf-8")
        self.settings: Settings = load_settings(self.config)
        self.serve = BlsnodeProcess(self.config, ["serve"], folder / "serve.log")
        self._database: Database | None = None

    @property
    def port(self) -> int:
        """The DICOM port."""
        return self.settings.network.port

    @property
    def ae_title(self) -> str:
        """Our AE title."""
        return self.settings.network.ae_title

    def start(self) -> ServedNode:
        """Start ``serve`` and wait until it listens for DICOM and answers ``/health``."""
        self.serve.start()
        try:
            wait_for_port(self.port, START_TIMEOUT_S, self.serve.process)
            if self.settings.http.enabled:
                wait_until(lambda: self.health()[0] != 0, START_TIMEOUT_S, what="/health")
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"blsnode serve did not start:\n{self.serve.log_text()}") from error
        return self

    def stop(self) -> int | None:
        """SIGTERM ``serve`` (and its embedded worker); its exit status."""
        if self._database is not None:
            self._database.dispose()
            self._database = None
        return self.serve.stop()

    def command(self, *args: str) -> str:
        """Run ``blsnode ARGS`` with this node's settings, as an operator would; its stdout."""
        done = subprocess.run(
            blsnode_command("--config", self.config, *args),
            capture_output=True,
            env=child_environment(),
            cwd=self.folder,
            timeout=120,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"blsnode {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def storescu(self, file: Path, calling_ae_title: str) -> None:
        """Send ``file`` with dcmtk's ``storescu``, as a modality does; fails unless stored."""
        sent = subprocess.run(
            [system_program("storescu"), "-aet", calling_ae_title, "-aec", self.ae_title,
             "127.0.0.1", str(self.port), str(file)],
            capture_output=True, timeout=60,
        )  # fmt: skip
        if sent.returncode != 0:
            raise RuntimeError(f"storescu exited {sent.returncode}: {sent.stderr!r}")

    def worker(self, *args: str, name: str = "worker") -> BlsnodeProcess:
        """A ``blsnode worker`` with this node's settings (not started)."""
        return BlsnodeProcess(self.config, ["worker", *args], self.folder / f"{name}.log")

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /health``: (HTTP status, report); (0, {}) while nothing answers."""
        url = f"http://127.0.0.1:{self.settings.http.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except (urllib.error.URLError, ConnectionError):
            return 0, {}

    @property
    def database(self) -> Database:
        """The node's database, opened once (no migrations: ``serve`` runs them)."""
        if self._database is None:
            self._database = open_database(self.settings.database_url, migrate=False)
        return self._database

    def status(self) -> dict[str, Any]:
        """What ``blsnode status`` reports, without the broker."""
        return node_status(self.settings, self.database, None)

    def instance_uids(self) -> Counter[str]:
        """SOP Instance UIDs booked in the database, with how often each is there."""
        with self.database.reader() as session:
            return Counter(session.scalars(select(Instance.sop_instance_uid)))

    def jobs(self) -> list[Job]:
        """Every job row (detached copies)."""
        with self.database.reader() as session:
            return list(session.scalars(select(Job).order_by(Job.id)))

    def dispatches(self) -> list[Dispatch]:
        """Every dispatch row (detached copies)."""
        with self.database.reader() as session:
            return list(session.scalars(select(Dispatch).order_by(Dispatch.id)))

    def finished_job(self, sop_instance_uid: str) -> tuple[Job, list[Output]] | None:
        """The job of an instance once it is done or failed, with its outputs; else None."""
        with self.database.reader() as session:
            job = session.scalars(
                select(Job).join(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
            ).one_or_none()
            if job is None or job.state in {JobState.QUEUED, JobState.RUNNING}:
                return None
            return job, list(session.scalars(select(Output).where(Output.job_id == job.id)))

    def delivered(self, sop_instance_uid: str, destinations: int, timeout_s: float) -> list[Output]:
        """Wait until the instance's job is done and each output sent to ``destinations``.

        Returns the job's outputs; a failed job or a dead dispatch fails at once.
        """

        def finished() -> list[Output] | None:
            found = self.finished_job(sop_instance_uid)
            if found is None:
                return None
            job, outputs = found
            assert job.state is JobState.DONE, job.reason
            with self.database.reader() as session:
                dispatches = list(
                    session.scalars(
                        select(Dispatch).where(Dispatch.output_id.in_([o.id for o in outputs]))
                    )
                )
            assert not [d for d in dispatches if d.state is DispatchState.DEAD]
            sent = [d for d in dispatches if d.state is DispatchState.SENT]
            return outputs if len(sent) == destinations * len(outputs) else None

        return list(wait_until(finished, timeout_s, interval_s=0.5, what="results delivered"))

    def spooled_files(self) -> list[Path]:
        """Files in the spool's study/series folders (not temporary files)."""
        return sorted(self.settings.spool_dir.glob("*/*/*.dcm"))


@contextmanager
def served_node(folder: Path, **overrides: Any) -> Iterator[ServedNode]:
    """A started ``ServedNode``, stopped (with its workers' group) when the block ends."""
    node = ServedNode(folder, **overrides)
    try:
        yield node.start()
    finally:
        node.stop()


@contextmanager
def running_worker(node: ServedNode, *args: str, name: str = "worker") -> Iterator[BlsnodeProcess]:
    """``blsnode worker ARGS`` beside ``node`` until the block ends."""
    worker = node.worker(*args, name=name)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
