"""Keyed patient pseudonyms: stable per site, different across sites and issuers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydicom.dataset import Dataset

from dicom_node.pseudonym import dataset_pseudonym, patient_pseudonym

SECRET = "site-secret-0123456789"


def test_pseudonym_is_the_hmac_of_id_and_issuer() -> None:
    expected = hmac.new(SECRET.encode(), b"PAT-1\x00HOSP", hashlib.sha256).hexdigest()
    assert patient_pseudonym("PAT-1", "HOSP", SECRET) == expected
    assert patient_pseudonym(" PAT-1 ", "HOSP", SECRET) == expected
    assert patient_pseudonym("PAT-1", "OTHER", SECRET) != expected
    assert patient_pseudonym("PAT-1", "HOSP", SECRET + "x") != expected
    # The separator keeps (id, issuer) splits apart.
    assert patient_pseudonym("12", "3A", SECRET) != patient_pseudonym("123", "A", SECRET)
    assert "PAT-1" not in expected


def test_no_patient_or_no_secret() -> None:
    with pytest.raises(ValueError, match="empty Patient ID"):
        patient_pseudonym("  ", "HOSP", SECRET)
    with pytest.raises(ValueError, match="secret"):
        patient_pseudonym("PAT-1", "HOSP", "")
    dataset = Dataset()
    assert dataset_pseudonym(dataset, SECRET) is None
    dataset.PatientID = "PAT-1"
    assert dataset_pseudonym(dataset, SECRET) == patient_pseudonym("PAT-1", "", SECRET)
