"""The Celery broker as the node uses it: one configuration, and a sender of task ids.

The worker package builds its Celery app from ``celery_config`` too, so listener and
workers always agree on the transport, the queues and the routing. Tasks are addressed by
name, so this module never imports the worker (or torch).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu import Producer

from dicom_node.settings import Settings

logger = logging.getLogger(__name__)

PROCESS_TASK = "jobs.process"
DISPATCH_TASK = "jobs.dispatch"
PROCESS_QUEUE = "process"
DISPATCH_QUEUE = "dispatch"
QUEUES = (PROCESS_QUEUE, DISPATCH_QUEUE)


def filesystem_folders(settings: Settings) -> dict[str, Path]:
    """Folders of kombu's filesystem transport under ``settings.broker_queue_dir``."""
    root = settings.broker_queue_dir
    return {
        "messages": root / "messages",
        "control": root / "control",
        "processed": root / "processed",
    }


def uses_filesystem_transport(settings: Settings) -> bool:
    """True when the broker is the serverless filesystem queue."""
    return settings.broker_url.startswith("filesystem:")


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for listener and workers (creates the filesystem queue folders).

    JSON only (ids travel, never objects); late acknowledgement because the tasks are
    idempotent; one message prefetched per worker process because a job takes seconds.
    """
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_timeout": settings.broker.connect_timeout_s,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_routes": {
            PROCESS_TASK: {"queue": PROCESS_QUEUE},
            DISPATCH_TASK: {"queue": DISPATCH_QUEUE},
        },
        "task_default_queue": PROCESS_QUEUE,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": settings.broker.result_backend is None,
        "result_backend": settings.broker.result_backend,
        "enable_utc": True,
    }
    if uses_filesystem_transport(settings):
        # kombu warns on every connection to a URL without a host; the transport ignores it.
        config["broker_url"] = "filesystem://localhost//"
        folders = filesystem_folders(settings)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folders["messages"]),
            "data_folder_out": str(folders["messages"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
        }
    else:
        # Redis: a message not acknowledged within an hour is delivered again.
        config["broker_transport_options"] = {"visibility_timeout": 3600}
    return config


def make_celery_app(settings: Settings, name: str = "blsnode") -> Celery:
    """A Celery app configured by ``celery_config``, not installed as the current app."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class BrokerUnavailableError(ConnectionError):
    """The broker does not accept connections."""


def probe_broker(settings: Settings) -> None:
    """Raise ``BrokerUnavailableError`` at once if a networked broker refuses connections.

    redis-py retries a refused connection for several seconds before it gives up; a plain
    TCP connect first keeps ``status`` and the sweeper quick while Redis is down.
    """
    parts = urlsplit(settings.broker_url)
    if parts.scheme not in {"redis", "rediss", "amqp", "amqps", "pyamqp"}:
        return
    default_port = {"redis": 6379, "rediss": 6379}.get(parts.scheme, 5672)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(address, timeout=settings.broker.connect_timeout_s):
            pass
    except OSError as error:
        raise BrokerUnavailableError(
            f"broker at {address[0]}:{address[1]} unreachable: {error}"
        ) from error


class TaskSender:
    """Publishes job and dispatch ids by task name; one instance per thread that sends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery_app(settings, name="blsnode-sender")
        self._producer: Producer | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Probe the broker once and send everything in the block through one producer.

        A burst of ids then costs one connection check and one producer, not one per id.
        """
        probe_broker(self.settings)
        with self.app.producer_or_acquire() as producer:
            self._producer = producer
            try:
                yield
            finally:
                self._producer = None

    def send_process(self, job_id: int) -> None:
        """Ask a worker to process job ``job_id``; raises if the broker cannot take it."""
        self._send(PROCESS_TASK, PROCESS_QUEUE, job_id)

    def send_dispatch(self, dispatch_id: int) -> None:
        """Ask a worker to send dispatch ``dispatch_id``; raises if the broker cannot take it."""
        self._send(DISPATCH_TASK, DISPATCH_QUEUE, dispatch_id)

    def _send(self, task: str, queue: str, identifier: int) -> None:
        if not isinstance(identifier, int) or isinstance(identifier, bool):
            raise TypeError(f"task argument must be an integer id, not {identifier!r}")
        if self._producer is None:
            probe_broker(self.settings)
        # No retry here: a failed publish leaves the row unpublished for the sweeper.
        self.app.send_task(
            task, args=[identifier], queue=queue, retry=False, producer=self._producer
        )

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each of the node's queues; raises if the broker is down."""
        probe_broker(self.settings)
        depths: dict[str, int] = {}
        with self.app.connection_for_read() as connection:
            channel = connection.default_channel
            for queue in QUEUES:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=False).message_count)
        return depths

    def close(self) -> None:
        """Release broker connections."""
        self.app.close()
