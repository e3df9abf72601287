"""What one worker process holds: settings, a database, the models, a task sender.

Everything is created on first use and belongs to the process that created it. In a
prefork pool the children are forked from a parent that may already hold some of it
(connections must never be shared across a fork), so the context notices a new process
id and starts afresh there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from dicom_node.db import Database, open_database
from dicom_node.queue.broker import TaskSender
from dicom_node.settings import Settings
from worker.models import ModelCache, parse_device, registry_for

logger = logging.getLogger(__name__)


class WorkerContext:
    """Per-process resources of the tasks, built lazily from one settings object."""

    def __init__(
        self,
        settings: Settings,
        device: str | None = None,
        torch_threads: int | None = None,
        model_overrides: dict[str, Path] | None = None,
    ) -> None:
        """``device`` overrides ``models.device``; ``torch_threads`` caps intra-op threads
        (several prefork children on one machine would otherwise oversubscribe it)."""
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        self.settings = settings
        self.device = device or settings.models.device
        parse_device(self.device)  # refuse a bad device at start-up, not at the first job
        self.torch_threads = torch_threads
        self.model_overrides = dict(model_overrides or {})
        self._pid: int | None = None
        self._database: Database | None = None
        self._models: ModelCache | None = None
        self._sender: TaskSender | None = None

    def _this_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        if self._pid is not None:
            # Inherited through fork: drop the parent's handles without closing its sockets.
            if self._database is not None:
                self._database.engine.dispose(close=False)
            self._database, self._models, self._sender = None, None, None
        self._pid = pid
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)

    @property
    def database(self) -> Database:
        """The node's database (schema brought to head on first use, as the listener does)."""
        self._this_process()
        if self._database is None:
            self._database = open_database(self.settings.database_url)
        return self._database

    @property
    def models(self) -> ModelCache:
        """The model cache of this process (models load at the first job)."""
        self._this_process()
        if self._models is None:
            registry = registry_for(self.settings)
            self._models = ModelCache(registry, self.device, self.model_overrides)
        return self._models

    @property
    def sender(self) -> TaskSender:
        """Publishes dispatch ids after a job is recorded."""
        self._this_process()
        if self._sender is None:
            self._sender = TaskSender(self.settings)
        return self._sender

    def close(self) -> None:
        """Release connections held by this process."""
        if self._pid != os.getpid():
            return
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._database is not None:
            self._database.dispose()
            self._database = None
