"""A follow-up's prior from the PACS when the node has none (glue: prior_retrieve -> job).

When the database holds no earlier radiograph of the patient's hand and
``followup.pacs`` is set, the PACS is asked for one (``dicom_node.prior_retrieve``). A
prior found and not yet received is moved to the node's own AE title, where it is
booked and processed like any radiograph, and :class:`PriorPendingError` sends this job
back for a later retry. A prior already received is never fetched again, so the retry
goes on with whatever the database holds then. A PACS that cannot be asked costs the
follow-up its change, not the radiograph its processing: logged, and nothing raised.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from dicom_node.db.instances import find_instance
from dicom_node.prior_retrieve import PriorRetrievalError, find_prior_image, retrieve_prior_image
from worker.context import WorkerContext
from worker.failures import PriorPendingError

logger = logging.getLogger(__name__)


def fetch_prior(context: WorkerContext, header: Dataset, study_date: str) -> None:
    """Fetch the patient's prior of this hand from the PACS, if there is one to fetch.

    Raises :class:`PriorPendingError` after a prior was moved to the node.
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
    with context.database.sessions() as session:
        if find_instance(session, found.sop_instance_uid) is not None:
            return  # received before: processed (or failed) as its own job
    try:
        retrieve_prior_image(pacs, our_ae, found, our_ae)
    except PriorRetrievalError as error:
        logger.warning("prior %s not fetched: %s", found.sop_instance_uid, error)
        return
    raise PriorPendingError(
        f"prior {found.sop_instance_uid} of {found.study_date} fetched from PACS "
        f"{pacs.ae_title}; this radiograph is retried after it"
    )
