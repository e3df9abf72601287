"""Running a Celery worker of the node in the foreground until SIGTERM (warm shutdown)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dicom_node.queue.broker import QUEUES, uses_filesystem_transport
from dicom_node.settings import Settings
from worker.celery_app import WorkerApp, create_app

logger = logging.getLogger(__name__)


class Pool(StrEnum):
    """Celery execution pools the node supports."""

    SOLO = "solo"  # one job at a time in the worker process itself
    PREFORK = "prefork"  # child processes, each with its own models


@dataclass(frozen=True)
class WorkerOptions:
    """How one ``blsnode worker`` runs (validated)."""

    queues: tuple[str, ...]
    concurrency: int
    pool: Pool
    device: str | None = None

    def __post_init__(self) -> None:
        if not self.queues:
            raise ValueError("at least one queue is needed")
        unknown = sorted(set(self.queues) - set(QUEUES))
        if unknown:
            raise ValueError(f"unknown queues {unknown}; the node's queues are {list(QUEUES)}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.pool is Pool.SOLO and self.concurrency != 1:
            raise ValueError(f"the solo pool runs one job at a time, not {self.concurrency}")


def worker_options(
    settings: Settings,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    pool: str | None = None,
    device: str | None = None,
) -> WorkerOptions:
    """Options from the command line, falling back to ``settings.worker``.

    The pool defaults to ``solo`` for one process and ``prefork`` for several.
    """
    count = concurrency if concurrency is not None else settings.worker.concurrency
    chosen = Pool(pool) if pool is not None else (Pool.SOLO if count == 1 else Pool.PREFORK)
    names = tuple(queues) if queues is not None else tuple(settings.worker.queues)
    return WorkerOptions(names, count, chosen, device)


def torch_threads_per_process(concurrency: int) -> int | None:
    """Intra-op threads per child so that several children share the cores, not fight."""
    if concurrency == 1:
        return None
    return max(1, (os.cpu_count() or 1) // concurrency)


def build_worker_app(settings: Settings, options: WorkerOptions) -> WorkerApp:
    """The app of this worker, with its device and thread budget."""
    return create_app(
        settings,
        device=options.device,
        torch_threads=torch_threads_per_process(options.concurrency),
    )


def run_worker(settings: Settings, options: WorkerOptions) -> int:
    """Consume the queues until SIGTERM/SIGINT (warm: the running job finishes); exit code."""
    app = build_worker_app(settings, options)
    logger.info(
        "worker starting",
        extra={
            "queues": list(options.queues),
            "concurrency": options.concurrency,
            "pool": options.pool.value,
            "device": app.context.device,
            "filesystem_broker": uses_filesystem_transport(settings),
        },
    )
    worker = app.Worker(
        hostname=f"blsnode-{os.getpid()}@{socket.gethostname()}",
        queues=list(options.queues),
        concurrency=options.concurrency,
        pool=options.pool.value,
        loglevel=settings.logging.level,
        redirect_stdouts=False,
        quiet=True,
        # Each process keeps its models for good; no recycling of children.
        max_tasks_per_child=None,
    )
    try:
        worker.start()
    finally:
        app.context.close()
    return int(worker.exitcode or 0)
