"""C-STORE of one file to one destination, in the transfer syntax the destination takes.

A destination with a configured transfer syntax gets exactly that one; otherwise the
file's own syntax is proposed first with the uncompressed ones as fallbacks. Transcoding
is lossless only: a lossless conversion keeps the SOP Instance UID, a lossy one would
need a new instance, which is not a dispatcher's decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from dicom_node.destinations import requestor_ae
from dicom_node.settings import DestinationSettings, Settings

logger = logging.getLogger(__name__)

UNCOMPRESSED = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
# Compressed syntaxes the node can encode to without loss.
LOSSLESS_ENCODABLE = (RLELossless, JPEGLSLossless, JPEG2000Lossless)
# Statuses that mean "stored" (success and the storage warnings, PS3.4 B.2.3).
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


class TranscodeError(ValueError):
    """The file cannot be brought into the destination's transfer syntax."""


@dataclass(frozen=True)
class StoreAttempt:
    """Outcome of one C-STORE: stored, or why not and whether trying again can help."""

    stored: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False


def proposed_syntaxes(file_syntax: str, wanted: str | None) -> list[str]:
    """Transfer syntaxes to propose, best first."""
    if wanted is not None:
        return [wanted]
    proposals = [file_syntax]
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        if syntax not in proposals:
            proposals.append(syntax)
    return proposals


def convert(ds: Dataset, target: str) -> Dataset:
    """Re-encode ``ds`` in ``target`` losslessly, in place; raise ``TranscodeError`` if not."""
    source = UID(ds.file_meta.TransferSyntaxUID)
    goal = UID(target)
    if goal == source:
        return ds
    if goal not in UNCOMPRESSED and goal not in LOSSLESS_ENCODABLE:
        raise TranscodeError(
            f"will not transcode {source.name} into lossy or unsupported {goal.name}"
        )
    try:
        if source.is_compressed:
            ds.decompress(generate_instance_uid=False)
        if goal in LOSSLESS_ENCODABLE:
            ds.compress(goal, generate_instance_uid=False)
        else:
            # pynetdicom encodes an uncompressed data set in the accepted syntax itself.
            ds.file_meta.TransferSyntaxUID = goal
    except (NotImplementedError, RuntimeError, ValueError, TypeError) as error:
        raise TranscodeError(f"cannot transcode {source.name} into {goal.name}: {error}") from error
    return ds


def store_file(settings: Settings, destination: DestinationSettings, path: Path) -> StoreAttempt:
    """Send the file at ``path`` to ``destination`` over a new association."""
    try:
        ds = dcmread(path)
    except (OSError, InvalidDicomError) as error:
        return StoreAttempt(False, error=f"cannot read {path}: {error}", permanent=True)
    sop_class = str(ds.file_meta.MediaStorageSOPClassUID)
    proposals = proposed_syntaxes(str(ds.file_meta.TransferSyntaxUID), destination.transfer_syntax)
    ae = requestor_ae(settings)
    for syntax in proposals:
        ae.add_requested_context(sop_class, [syntax])
    try:
        assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    except (OSError, RuntimeError) as error:
        return StoreAttempt(False, error=f"cannot reach {destination.name}: {error}")
    if not assoc.is_established:
        reason = "rejected the association" if assoc.is_rejected else "did not associate"
        return StoreAttempt(False, error=f"{destination.name} {reason}")
    try:
        accepted = {
            str(cx.transfer_syntax[0])
            for cx in assoc.accepted_contexts
            if cx.abstract_syntax == sop_class and cx.transfer_syntax
        }
        chosen = next((syntax for syntax in proposals if syntax in accepted), None)
        if chosen is None:
            return StoreAttempt(
                False,
                error=f"{destination.name} accepts none of {proposals} for {sop_class}",
                permanent=True,
            )
        try:
            convert(ds, chosen)
        except TranscodeError as error:
            return StoreAttempt(False, error=str(error), permanent=True)
        try:
            response = assoc.send_c_store(ds)
        except (OSError, RuntimeError, ValueError) as error:
            return StoreAttempt(False, error=f"C-STORE to {destination.name} failed: {error}")
    finally:
        if assoc.is_established:
            assoc.release()
    if "Status" not in response:
        return StoreAttempt(False, error=f"no C-STORE response from {destination.name}")
    status = int(response.Status)
    if status in STORED_STATUSES:
        return StoreAttempt(True, status=status)
    return StoreAttempt(False, status=status, error=f"{destination.name} answered 0x{status:04X}")
