"""The plain functions behind the tasks: run one job, record it, schedule a dispatch retry.

The Celery tasks in ``worker.tasks`` only call these and turn the outcome into a return
value or a retry. Database work goes through ``dicom_node.db`` in short transactions;
no transaction is open while the pipeline runs or the network is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy.exc import SQLAlchemyError

from dicom_node.db import JobState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.measurements import prior_joints, record_joint_measurements
from dicom_node.db.models import OutputKind
from dicom_node.db.outputs import OutputRecord, record_job_results
from dicom_node.derived.write import WrittenOutput
from dicom_node.pseudonym import dataset_pseudonym
from dicom_node.queue.publisher import publish_ids
from dicom_node.receive.header import InstanceIdentity
from dicom_node.send.destinations import result_kinds
from dicom_node.send.dispatch import BatchOutcome, send_due_batch
from dicom_node.settings import Settings
from worker.context import WorkerContext
from worker.failures import PermanentError
from worker.joint_layers import layers_file, load_joint_layers, save_joint_layers
from worker.joint_space import FollowUp, joint_rows
from worker.pipeline import SourceLimits, run_pipeline
from worker.prior_fetch import fetch_prior

logger = logging.getLogger(__name__)


class UnknownIdError(LookupError):
    """A message names a job or dispatch the database does not hold (deleted by purge)."""


@dataclass(frozen=True)
class JobOutcome:
    """What one call did with a job (``skipped``: it was already finished)."""

    job_id: int
    state: JobState | None
    reason: str | None = None
    outputs: int = 0
    dispatch_ids: tuple[int, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe summary (a Celery result when a result backend is configured)."""
        return {
            "job_id": self.job_id,
            "state": self.state.value if self.state is not None else "skipped",
            "reason": self.reason,
            "outputs": self.outputs,
            "dispatch_ids": list(self.dispatch_ids),
            "timings_s": self.timings_s,
        }


def output_folder(settings: Settings, sop_instance_uid: str) -> Path:
    """Where the outputs of one source image go: the same folder on every re-run."""
    if not sop_instance_uid or "/" in sop_instance_uid or sop_instance_uid.startswith("."):
        raise ValueError(f"not a SOP Instance UID: {sop_instance_uid!r}")
    return settings.output_dir / sop_instance_uid


def _record(output: WrittenOutput) -> OutputRecord:
    return OutputRecord(
        kind=OutputKind(output.kind.value.lower()),
        sop_instance_uid=output.sop_instance_uid,
        sop_class_uid=output.sop_class_uid,
        series_instance_uid=output.series_instance_uid,
        path=str(output.path),
    )


# A running job's lease is renewed this many times per ``worker.job_lease_s``.
HEARTBEATS_PER_LEASE = 5


@contextmanager
def lease_renewed(context: WorkerContext, job_id: int) -> Iterator[None]:
    """Renew the lease of a running job from a thread while the block runs.

    The sweeper of ``serve`` queues again a job whose lease ran out (its worker died);
    a worker that is alive, however slow its job, keeps renewing it. A failed renewal
    (database away for a moment) is logged and tried again at the next beat.
    """
    interval_s = context.settings.worker.job_lease_s / HEARTBEATS_PER_LEASE
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                with context.database.sessions.begin() as session:
                    job_rows.touch_running_job(session, job_id)
            except SQLAlchemyError:
                logger.warning("could not renew the lease of job %d", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"blsnode-lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_job(context: WorkerContext, job_id: int, reason: str) -> None:
    """Record that a job failed and why (shown by ``blsnode jobs list/show``)."""
    with context.database.sessions.begin() as session:
        job_rows.mark_failed(session, job_id, reason)
    logger.warning("job %d failed: %s", job_id, reason, extra={"job_id": job_id})


def find_followup(
    context: WorkerContext, source: Path, sop_instance_uid: str, wait_for_prior: bool = True
) -> FollowUp:
    """The patient's pseudonym, earlier joints and their stored layers.

    Empty without a site secret. A header that cannot be read is left to the pipeline,
    which fails the job with the reason; no Patient ID or no study date means nothing to
    link. A prior whose layers file is unreadable keeps its measured change only (logged).
    Without a prior in the database, one may be fetched from the PACS
    (:func:`worker.prior_fetch.fetch_prior`, which then raises ``PriorPendingError``
    until the prior is processed, unless ``wait_for_prior`` is off: the job's last try).
    """
    secret = context.settings.followup.site_secret
    if secret is None:
        return FollowUp()
    try:
        header = dcmread(source, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, TypeError, KeyError, EOFError):
        return FollowUp()  # the pipeline refuses the file with its reason
    pseudonym = dataset_pseudonym(header, secret.get_secret_value())
    study_date = str(header.get("StudyDate") or "") or None
    if pseudonym is None or study_date is None:
        return FollowUp(pseudonym, study_date)
    with context.database.sessions.begin() as session:
        priors = prior_joints(session, pseudonym, study_date, sop_instance_uid)
    if not priors:
        fetch_prior(context, header, study_date, wait_for_prior)
        # The prior's job may have finished while the PACS was asked (another worker, or
        # Celery's timer thread running this retry beside it): its rows are there now.
        with context.database.sessions.begin() as session:
            priors = prior_joints(session, pseudonym, study_date, sop_instance_uid)
    layers = {}
    for uid in sorted({prior.sop_instance_uid for prior in priors.values()}):
        try:
            stored = load_joint_layers(layers_file(context.settings.layers_dir, uid))
        except ValueError:
            logger.warning("prior %s: layers not usable, no registered change", uid, exc_info=True)
            continue
        layers.update(
            {
                key: joint
                for key, joint in stored.items()
                if key in priors and priors[key].sop_instance_uid == uid
            }
        )
    return FollowUp(pseudonym, study_date, priors, layers)


def _release(context: WorkerContext, job_id: int) -> None:
    try:
        with context.database.sessions.begin() as session:
            job_rows.release_job(session, job_id)
    except SQLAlchemyError:
        logger.warning("job %d stays running until its lease ends", job_id, exc_info=True)


def process_job(context: WorkerContext, job_id: int, wait_for_prior: bool = True) -> JobOutcome:
    """Run job ``job_id`` through the pipeline and record its outputs and dispatches.

    A permanent failure is recorded on the job and returned; transient errors (database,
    broker, disk, a prior still on its way: see :func:`find_followup`) propagate for the
    task to retry.

    Raises
    ------
    UnknownIdError
        No job has this id.
    """
    settings = context.settings
    with context.database.sessions.begin() as session:
        job = job_rows.get_job(session, job_id)
        if job is None:
            raise UnknownIdError(f"no job with id {job_id}")
        was_running = job.state is JobState.RUNNING
        claimed = job_rows.claim_job(
            session,
            job_id,
            max_attempts=settings.worker.max_job_attempts,
            lease=timedelta(seconds=settings.worker.job_lease_s),
        )
        state_now = job.state
    if claimed is None:
        if was_running and state_now is JobState.FAILED:
            logger.error(
                "job %d failed as poison: its worker was lost while running it",
                job_id,
                extra={"job_id": job_id},
            )
            return JobOutcome(job_id, JobState.FAILED, "poison")
        if was_running:
            logger.info("job %d runs in a live worker; duplicate message ignored", job_id)
        else:
            logger.info("job %d is already finished; duplicate message ignored", job_id)
        return JobOutcome(job_id, None)
    source = Path(claimed.path)
    booked = InstanceIdentity(
        claimed.sop_class_uid,
        claimed.sop_instance_uid,
        claimed.study_instance_uid,
        claimed.series_instance_uid,
    )
    try:
        if not source.is_file():
            raise PermanentError(f"source file missing: {source}")
        with lease_renewed(context, job_id):
            followup = find_followup(context, source, claimed.sop_instance_uid, wait_for_prior)
            result = run_pipeline(
                source,
                context.models.models,
                settings.outputs,
                output_folder(settings, claimed.sop_instance_uid),
                SourceLimits.from_settings(settings),
                booked,
                followup,
            )
    except PermanentError as failure:
        fail_job(context, job_id, failure.reason)
        return JobOutcome(job_id, JobState.FAILED, failure.reason)
    except Exception:
        # Not the job's fault (database, disk, broker): back to queued for the task's
        # retry; a bug is then recorded as failed by the task's on_failure.
        _release(context, job_id)
        raise
    save_joint_layers(
        layers_file(settings.layers_dir, claimed.sop_instance_uid), result.joint_layers
    )
    records = [_record(output) for output in result.outputs]
    measurements = joint_rows(
        result.result, result.pixel_spacing_mm, result.spacing_source, followup.pseudonym
    )
    with context.database.sessions.begin() as session:
        record_joint_measurements(session, job_id, measurements)
        kinds = result_kinds(context.settings, session)
        pending = record_job_results(
            session, job_id, records, claimed.result_destinations, kinds=kinds
        )
    # A broker that cannot take them now leaves them unpublished for the sweeper.
    publish_ids(context.sender, context.database, [], pending)
    logger.info(
        "job %d done: %d outputs, %d dispatches",
        job_id,
        len(records),
        len(pending),
        extra={"job_id": job_id, "seconds": round(result.timings_s["total"], 3)},
    )
    return JobOutcome(
        job_id, JobState.DONE, None, len(records), tuple(pending), dict(result.timings_s)
    )


def send_one(context: WorkerContext, dispatch_id: int) -> BatchOutcome:
    """Send dispatch ``dispatch_id`` with the due ones of its destination.

    The sending itself is ``dicom_node.send.dispatch``.

    Raises ``UnknownIdError`` if no dispatch has this id.
    """
    with context.database.sessions() as session:
        if dispatch_rows.get_dispatch(session, dispatch_id) is None:
            raise UnknownIdError(f"no dispatch with id {dispatch_id}")
    return send_due_batch(context.settings, context.database, dispatch_id)
