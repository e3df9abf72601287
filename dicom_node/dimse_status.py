"""DIMSE status codes the node answers with (PS3.4 Annex B.2.3, PS3.7 Annex C)."""

from __future__ import annotations

import enum


class DicomStatus(enum.IntEnum):
    """The statuses of our C-ECHO and C-STORE responses."""

    SUCCESS = 0x0000
    # Refused: out of resources (disk below the guard, spool or database failure).
    OUT_OF_RESOURCES = 0xA700
    # Error: the data set's SOP Class UID differs from the request's.
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    # Error: cannot understand (truncated, unparseable, missing or invalid UIDs).
    CANNOT_UNDERSTAND = 0xC210
    # Failure: duplicate SOP instance (PS3.7 C.4.1): a resend with other content, refused
    # by ``storage.duplicates = "reject"`` (as dcm4chee's reject policy answers).
    DUPLICATE_SOP_INSTANCE = 0x0111
    # Warning: elements discarded: a resend with other content, not stored, under
    # ``storage.duplicates = "ignore"``; the instance first received is kept.
    ELEMENTS_DISCARDED = 0xB006

    @property
    def is_success(self) -> bool:
        """True for the success status."""
        return self is DicomStatus.SUCCESS


def status_name(value: int) -> str:
    """A readable name for a status value (ours by name, others in hex)."""
    try:
        return DicomStatus(value).name.lower()
    except ValueError:
        return f"0x{value:04X}"
