"""One running node: listener, publisher/sweeper, health endpoint, embedded worker.

``Node.start`` brings the parts up in dependency order (database and migrations first,
the listener last so nothing is accepted before it can be booked); ``Node.stop`` takes
them down in reverse. The CLI's ``serve`` only parses options and waits for a signal.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from blsnode.embedded_worker import EmbeddedWorker
from dicom_node.admin.users import any_user
from dicom_node.db import Database, open_node_database
from dicom_node.http_server import HealthServer
from dicom_node.metrics import NodeMetrics
from dicom_node.node_report import health_report, node_status
from dicom_node.queue.broker import TaskSender
from dicom_node.queue.publisher import Publisher
from dicom_node.receive.booking import Bookkeeper
from dicom_node.receive.ingest import Ingestor
from dicom_node.receive.reconcile import reconcile_spool
from dicom_node.receive.scp import AccessPolicy, StorageService, build_ae, start_listener
from dicom_node.receive.spool import Spool
from dicom_node.settings import Settings
from dicom_node.web.app import ModelsProvider, WebContext, create_app
from dicom_node.web.server import WebServer

logger = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0


# What the embedded worker process imports; looked up through the import system (never
# the file layout), so editable installs, wheels and the Docker image behave alike.
WORKER_MODULES = ("blsnode.cli.worker", "worker.celery_app", "torch")


def embedded_worker_available() -> bool:
    """True if the worker's modules can be imported here (checked without importing torch)."""
    return all(importlib.util.find_spec(name) is not None for name in WORKER_MODULES)


def worker_command(config_file: Path | None, data_dir: Path | None) -> list[str]:
    """The command line of the embedded worker, with the node's global options."""
    command = [sys.executable, "-m", "blsnode"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return [*command, "worker"]


class Node:
    """The parts of ``blsnode serve``, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        worker_argv: list[str] | None = None,
        models: ModelsProvider | None = None,
    ) -> None:
        """``worker_argv``: the embedded worker's command line, ``None`` if not installed;
        ``models``: what the dashboard's models page reads."""
        self.settings = settings
        self.worker_argv = worker_argv
        self.models = models
        self.metrics = NodeMetrics()
        self.database: Database | None = None
        self.publisher: Publisher | None = None
        self.bookkeeper: Bookkeeper | None = None
        self.listener: ThreadedAssociationServer | None = None
        self.http: HealthServer | None = None
        self.web: WebServer | None = None
        self.service: StorageService | None = None
        self.embedded_worker: EmbeddedWorker | None = None
        self._status_lock = threading.Lock()
        self._status_sender: TaskSender | None = None

    def start(self) -> None:
        """Bring every part up; on failure, what was started is stopped again."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        spool = Spool(settings.spool_dir, settings.storage.min_free_bytes)
        self.database = open_node_database(settings)
        self._status_sender = TaskSender(settings)
        self.metrics.watch_status(self.status)
        self.publisher = Publisher(settings, self.database, self.metrics)
        self.publisher.start()
        if settings.http.enabled:
            self.http = HealthServer(
                settings.http.host,
                settings.http.port,
                self.metrics,
                self.health,
                settings.http.client_timeout_s,
            )
            self.http.start()
        self._start_web(self.database)
        self._start_worker()
        self.bookkeeper = Bookkeeper(settings, self.database, self.publisher.submit)
        ingestor = Ingestor(settings, self.database, spool, self.bookkeeper)
        reconcile_spool(spool, self.database, ingestor)
        self.bookkeeper.start()
        policy = AccessPolicy.from_settings(settings.network.allowed_callers)
        self.service = StorageService(
            ingestor,
            self.metrics,
            policy,
            settings.network.max_associations,
            settings.network.max_associations_per_host,
        )
        self.listener = start_listener(settings, self.service, build_ae(settings))

    def _start_web(self, database: Database) -> None:
        web = self.settings.web
        enabled = web.enabled if web.enabled is not None else any_user(database)
        if not enabled:
            logger.info("web dashboard off: no user exists yet (blsnode users add NAME ...)")
            return
        context = WebContext(self.settings, database, self.status, self.health, self.models)
        self.web = WebServer(create_app(context), web)
        self.web.start()
        logger.info("web dashboard at %s", self.web.url, extra={"url": self.web.url})

    def _start_worker(self) -> None:
        if not self.settings.worker.embedded:
            return
        if self.worker_argv is None:
            logger.warning(
                "embedded worker not available in this installation; jobs wait in the "
                "queue for a 'blsnode worker'"
            )
            return
        self.embedded_worker = EmbeddedWorker(
            self.worker_argv, on_restart=self.metrics.worker_restarts.inc
        )
        self.embedded_worker.start()

    @property
    def worker(self) -> subprocess.Popen[bytes] | None:
        """The embedded worker's current process, if there is one."""
        return self.embedded_worker.process if self.embedded_worker is not None else None

    def status(self) -> dict[str, Any]:
        """The ``blsnode status`` snapshot (serialised: one broker client is shared)."""
        if self.database is None:
            raise RuntimeError("node not started")
        with self._status_lock:
            return node_status(self.settings, self.database, self._status_sender)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when listening and accepting instances."""
        alive = self.listener is not None and self.listener.socket is not None
        refusing = self.service.refusals.refusing() if self.service is not None else None
        healthy, report = health_report(
            self.status(), alive, None if refusing is None else refusing[0]
        )
        if self.embedded_worker is not None:
            # An exited worker is restarted by its supervisor within a minute.
            report["checks"]["worker"] = "ok" if self.embedded_worker.alive() else "restarting"
        return healthy, report

    def stop(self) -> None:
        """Stop accepting, finish publishing, stop the worker, close the database."""
        if self.listener is not None:
            self.listener.shutdown()
            self.listener = None
            logger.info("listener stopped")
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.web is not None:
            self.web.stop()
            self.web = None
        if self.bookkeeper is not None:
            # Rows still waiting are committed before the publisher stops.
            self.bookkeeper.stop()
            self.bookkeeper = None
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher = None
        self._stop_worker()
        if self._status_sender is not None:
            self._status_sender.close()
            self._status_sender = None
        if self.database is not None:
            self.database.dispose()
            self.database = None

    def _stop_worker(self) -> None:
        if self.embedded_worker is None:
            return
        returncode = self.embedded_worker.stop(WORKER_STOP_TIMEOUT_S)
        logger.info("embedded worker stopped", extra={"returncode": returncode})
        self.embedded_worker = None
