"""A follow-up's prior from the PACS when the node has none (glue: prior_retrieve -> job).

When the database holds no earlier radiograph of the patient's hand and
``followup.pacs`` is set, the PACS is asked for one (``dicom_node.prior_retrieve``). A
prior found and not yet received is moved to the node's own AE title, where it is
booked and processed like any radiograph, and :class:`PriorPendingError` sends this job
back for a later retry; so does a prior received whose job is still queued or running,
since the retry may come (seconds) before that job is done (tens of seconds). A prior is
never fetched twice. On the job's last try (``wait=False``) nothing is waited for: the
follow-up goes on with whatever the database holds, rather than fail. A PACS that
cannot be asked costs the follow-up its change, not the radiograph its processing:
logged, and nothing raised.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from dicom_node.db import JobState
from dicom_node.db.instances import find_instance
from dicom_node.prior_retrieve import PriorRetrievalError, find_prior_image, retrieve_prior_image
from worker.context import WorkerContext
from worker.failures import PriorPendingError

logger = logging.getLogger(__name__)

_UNFINISHED = (JobState.QUEUED, JobState.RUNNING)


def fetch_prior(context: WorkerContext, header: Dataset, study_date: str, wait: bool) -> None:
    """Fetch the patient's prior of this hand from the PACS, if there is one to fetch.

    Raises :class:`PriorPendingError` (only if ``wait``) after a prior was moved to the
    node, and while a prior received before is not processed yet.
    """
    pacs = context.settings.followup.pacs
    patient_id = str(header.get("PatientID") or "")
    if pacs is None or not patient_id:
        return
    our_ae = context.settings.network.ae_title
    laterality = str(header.get("ImageLaterality") or header.get("Laterality") or "")
    try:
        found = find_prior_image(pacs, our_ae, patient_id, study_date, laterality)
    except (PriorRetrievalError, ValueError) as error:
        logger.warning("no prior from PACS %s: %s", pacs.ae_title, error)
        return
    if found is None:
        return
    prior = f"prior {found.sop_instance_uid} of {found.study_date}"
    with context.database.sessions() as session:
        received = find_instance(session, found.sop_instance_uid)
        job = received.job if received is not None else None
        unfinished = job is not None and job.state in _UNFINISHED
    if received is not None:
        if unfinished and wait:
            raise PriorPendingError(
                f"{prior} received, not processed yet; this radiograph is retried after it"
            )
        return  # processed (or failed) as its own job: the database has what there is
    try:
        retrieve_prior_image(pacs, our_ae, found, our_ae)
    except PriorRetrievalError as error:
        logger.warning("%s not fetched: %s", prior, error)
        return
    if wait:
        raise PriorPendingError(
            f"{prior} fetched from PACS {pacs.ae_title}; this radiograph is retried after it"
        )
