"""The worker's Celery app: the listener's broker configuration plus the node's tasks.

Built from ``dicom_node.queue.broker.celery_config``, so the listener and every worker agree on
transport, queues, routing, serialisation and late acknowledgement: the filesystem
transport of the embedded default, Redis in production.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from dicom_node.queue.broker import celery_config
from dicom_node.settings import Settings
from worker.context import WorkerContext
from worker.tasks import register_tasks


class WorkerApp(Celery):
    """A Celery app that carries the per-process resources its tasks use."""

    def __init__(self, context: WorkerContext, name: str = "blsnode-worker") -> None:
        super().__init__(name, set_as_current=False)
        self.context = context


def create_app(
    settings: Settings,
    *,
    device: str | None = None,
    torch_threads: int | None = None,
    model_overrides: dict[str, Path] | None = None,
) -> WorkerApp:
    """The app ``blsnode worker`` runs, with ``worker.tasks.process`` and ``.dispatch``."""
    app = WorkerApp(WorkerContext(settings, device, torch_threads, model_overrides))
    app.conf.update(celery_config(settings))
    # Log through the node's logging set up by the command, not Celery's own handlers.
    app.conf.worker_hijack_root_logger = False
    register_tasks(app)
    return app
