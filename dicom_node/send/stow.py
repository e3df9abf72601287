"""Sending results to a DICOMweb destination with STOW-RS (``dicomweb-client``).

One POST per file, so each file's result is known (and committed by the caller) before
the next goes out, as with C-STORE. HTTP 4xx answers other than 408 and 429 are
permanent for that file (the service refused it; sending it again cannot help); 5xx,
408, 429 and connection failures are tried again with the dispatch backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from dicom_node.send.scu import ResultCallback, StoreAttempt
from dicom_node.settings import DestinationSettings, Settings

logger = logging.getLogger(__name__)

TRANSIENT_HTTP = {408, 429}
# Where a STOW-RS answer lists refused instances, each with its Failure Reason (0008,1197).
FAILED_SOP_SEQUENCE = "FailedSOPSequence"


def client_for(settings: Settings, destination: DestinationSettings) -> DICOMwebClient:
    """A client with the destination's credentials and CA (``ValueError`` if not DICOMweb).

    Requests time out like DIMSE operations do (``network.acse_timeout_s`` to connect,
    ``network.dimse_timeout_s`` for an answer).
    """
    if destination.url is None:
        raise ValueError(f"destination {destination.name!r} has no DICOMweb url")
    session = requests.Session()
    if destination.username is not None:
        password = destination.password.get_secret_value() if destination.password else ""
        session.auth = (destination.username, password)
    session.verify = str(destination.ca_certificates) if destination.ca_certificates else True
    timeout = (settings.network.acse_timeout_s, settings.network.dimse_timeout_s)
    return DICOMwebClient(url=destination.url, session=session, timeout=timeout)


def stow_files(
    settings: Settings,
    destination: DestinationSettings,
    paths: Sequence[Path],
    on_result: ResultCallback | None = None,
) -> list[StoreAttempt]:
    """STOW-RS every file to ``destination``, one request each, results in order."""
    client = client_for(settings, destination)
    attempts = []
    for index, path in enumerate(paths):
        attempt = _stow_one(client, destination, path)
        attempts.append(attempt)
        if on_result is not None:
            on_result(index, attempt)
        if not attempt.stored and not attempt.permanent and attempt.status is None:
            # The service cannot be reached: the rest would fail the same way.
            unreachable = StoreAttempt(False, error=attempt.error)
            for rest in range(index + 1, len(paths)):
                attempts.append(unreachable)
                if on_result is not None:
                    on_result(rest, unreachable)
            break
    return attempts


def _stow_one(client: DICOMwebClient, destination: DestinationSettings, path: Path) -> StoreAttempt:
    try:
        dataset = dcmread(path)
    except (OSError, InvalidDicomError) as error:
        return StoreAttempt(False, error=f"cannot read {path}: {error}", permanent=True)
    try:
        answer: Dataset = client.store_instances([dataset])
    except requests.HTTPError as error:
        code = error.response.status_code if error.response is not None else None
        permanent = code is not None and 400 <= code < 500 and code not in TRANSIENT_HTTP
        return StoreAttempt(
            False,
            status=code,
            error=f"{destination.name} answered HTTP {code} to STOW-RS",
            permanent=permanent,
        )
    except (requests.RequestException, OSError) as error:
        return StoreAttempt(False, error=f"cannot reach {destination.name}: {error}")
    failed = answer.get(FAILED_SOP_SEQUENCE) if answer is not None else None
    if failed:
        reason = failed[0].get("FailureReason")
        return StoreAttempt(
            False,
            status=int(reason) if reason is not None else None,
            error=f"{destination.name} refused the instance (STOW-RS failure {reason})",
            permanent=True,
        )
    return StoreAttempt(True, status=200)


def probe(settings: Settings, destination: DestinationSettings) -> tuple[bool, int | None, str]:
    """Does the DICOMweb service answer a QIDO-RS search? ``(ok, HTTP status, error)``."""
    try:
        client_for(settings, destination).search_for_studies(limit=1)
    except requests.HTTPError as error:
        code = error.response.status_code if error.response is not None else None
        return False, code, f"HTTP {code}"
    except (requests.RequestException, OSError) as error:
        return False, None, f"cannot reach {destination.name}: {error}"
    return True, 200, ""
