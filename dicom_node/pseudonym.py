"""Keyed patient pseudonyms: link a patient's radiographs without storing who it is."""

from __future__ import annotations

import hashlib
import hmac

from pydicom.dataset import Dataset

# Between Patient ID and Issuer: a byte neither may contain (VR LO excludes control
# characters), so ("12", "3A") and ("123", "A") never give the same message.
_SEPARATOR = "\x00"


def patient_pseudonym(patient_id: str, issuer: str, secret: str) -> str:
    """HMAC-SHA256 (hex) of Patient ID and Issuer of Patient ID under the site ``secret``.

    Raises ``ValueError`` for an empty Patient ID (no patient to link) or secret.
    """
    patient_id, issuer = patient_id.strip(), issuer.strip()
    if not patient_id:
        raise ValueError("an empty Patient ID cannot be linked to earlier radiographs")
    if not secret:
        raise ValueError("the pseudonym needs a site secret")
    message = f"{patient_id}{_SEPARATOR}{issuer}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def dataset_pseudonym(dataset: Dataset, secret: str) -> str | None:
    """The pseudonym of a source's patient, ``None`` when it has no Patient ID."""
    patient_id = str(dataset.get("PatientID") or "")
    if not patient_id.strip():
        return None
    return patient_pseudonym(patient_id, str(dataset.get("IssuerOfPatientID") or ""), secret)
