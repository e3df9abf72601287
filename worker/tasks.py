"""The node's Celery tasks: thin adapters from a message (an id) to ``worker.jobs``.

``worker.tasks.process(job_id)`` runs a job; ``worker.tasks.dispatch(dispatch_id)`` sends
one output (or original) to one destination, with the other files due for that
destination on the same association. Both are idempotent and acknowledged late,
so a message redelivered after a worker died is safe. Retries are declared here and only
for transient errors; a permanent failure is recorded on the job and not retried. The
tasks are registered on the app that ``worker.celery_app.create_app`` builds, which
carries the per-process ``WorkerContext``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from dicom_node.queue.broker import DISPATCH_TASK, PROCESS_TASK
from worker.context import WorkerContext
from worker.failures import PriorPendingError
from worker.jobs import UnknownIdError, fail_job, process_job, send_one

logger = logging.getLogger(__name__)

# What may succeed if tried again later: the database or broker away for a moment, a
# full or unavailable disk. Everything else is permanent or a bug.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    BrokerError,
    OSError,
    PriorPendingError,
)
# Recording a failure can itself meet a transient error, or a job deleted meanwhile.
_RECORDING_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, ValueError)
MAX_TRANSIENT_RETRIES = 8
RETRY_BACKOFF_MAX_S = 600


class NodeTask(Task):
    """Base of the node's tasks: reaches the per-process context through its app."""

    abstract = True

    @property
    def context(self) -> WorkerContext:
        """The worker process's settings, database, models and sender."""
        context = getattr(self.app, "context", None)
        if not isinstance(context, WorkerContext):
            raise TypeError("the node's tasks need an app built by worker.celery_app.create_app")
        return context


class ProcessTask(NodeTask):
    """Records on the job why it finally failed, when retries are spent or a bug hit."""

    abstract = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if isinstance(exc, TRANSIENT_ERRORS):
            reason = f"gave up after {self.request.retries} retries: {type(exc).__name__}: {exc}"
        else:
            reason = f"internal error: {type(exc).__name__}: {exc}"
        try:
            fail_job(self.context, int(job_id), reason)
        except _RECORDING_ERRORS:
            logger.exception("could not record the failure of job %s", job_id)


def process(self: ProcessTask, job_id: int) -> dict[str, Any]:
    """Run processing job ``job_id``: pipeline, outputs, dispatch rows, dispatch messages.

    A follow-up waits for its prior (``PriorPendingError``) on every try but the last,
    which goes on without it rather than fail the radiograph.
    """
    last_try = self.request.retries >= self.max_retries
    try:
        outcome = process_job(self.context, job_id, wait_for_prior=not last_try)
    except UnknownIdError as error:
        logger.error("ignoring a message: %s", error)
        return {"job_id": job_id, "state": "unknown"}
    return outcome.as_dict()


def dispatch(self: NodeTask, dispatch_id: int) -> dict[str, Any]:
    """Send dispatch ``dispatch_id`` and its destination's due ones over one association.

    A failed attempt with tries left is not retried here: its row says when it is due
    (``next_attempt_at``) and the sweeper in ``serve`` publishes it then.
    """
    try:
        batch = send_one(self.context, dispatch_id)
    except UnknownIdError as error:
        logger.error("ignoring a message: %s", error)
        return {"dispatch_id": dispatch_id, "state": "unknown"}
    outcome = batch.outcome()
    return {
        "dispatch_id": dispatch_id,
        "state": outcome.state.value,
        "attempted": outcome.attempted,
        "attempts": outcome.attempts,
        "error": outcome.error,
        "batch": {str(o.dispatch_id): o.state.value for o in batch.outcomes},
    }


def register_tasks(app: Celery) -> None:
    """Register both tasks on ``app`` under the names the listener sends."""
    transient = {
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": 5,
        "retry_backoff_max": RETRY_BACKOFF_MAX_S,
        "retry_jitter": True,
        "max_retries": MAX_TRANSIENT_RETRIES,
    }
    app.task(name=PROCESS_TASK, bind=True, base=ProcessTask, acks_late=True, **transient)(process)
    app.task(name=DISPATCH_TASK, bind=True, base=NodeTask, acks_late=True, **transient)(dispatch)
