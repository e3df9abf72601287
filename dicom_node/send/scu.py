"""C-STORE of files to one destination, in the transfer syntax the destination takes.

A destination with a configured transfer syntax gets exactly that one; otherwise the
file's own syntax is proposed first with the uncompressed ones as fallbacks. Transcoding
is lossless only: a lossless conversion keeps the SOP Instance UID, a lossy one would
need a new instance, which is not a dispatcher's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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
from pynetdicom.association import Association

from dicom_node.send.destinations import requestor_ae, tls_arguments
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


# Called with a file's position in the batch and its attempt, as soon as it is known.
ResultCallback = Callable[[int, StoreAttempt], None]


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


# pynetdicom proposes at most 128 presentation contexts in one association.
MAX_CONTEXTS = 128


@dataclass(frozen=True)
class _Outgoing:
    """One file to send: its place in the caller's list and what to propose for it."""

    index: int
    path: Path
    sop_class: str
    proposals: tuple[str, ...]

    @property
    def contexts(self) -> set[tuple[str, str]]:
        return {(self.sop_class, syntax) for syntax in self.proposals}


def store_file(settings: Settings, destination: DestinationSettings, path: Path) -> StoreAttempt:
    """Send the file at ``path`` to ``destination`` over a new association."""
    return store_files(settings, destination, [path])[0]


class _Results:
    """Each file's attempt, handed to ``on_result`` the moment it is known."""

    def __init__(self, count: int, on_result: ResultCallback | None) -> None:
        self.attempts: list[StoreAttempt | None] = [None] * count
        self.on_result = on_result

    def __setitem__(self, index: int, attempt: StoreAttempt) -> None:
        self.attempts[index] = attempt
        if self.on_result is not None:
            self.on_result(index, attempt)


def store_files(
    settings: Settings,
    destination: DestinationSettings,
    paths: Sequence[Path],
    on_result: ResultCallback | None = None,
) -> list[StoreAttempt]:
    """Send files to one destination over as few associations as possible.

    One attempt per file, in order; the result of each file is its own: a file the peer
    refuses, or one that cannot be read or transcoded, fails alone. An association that
    breaks down in the middle is opened again for the files after the one it broke on, so
    every file is tried once, and a destination that cannot be reached fails them all at
    once without a connection attempt each. ``on_result(index, attempt)`` is called as
    soon as each file's result is known (between two C-STOREs), so a caller can record
    every delivery before the next file goes out.
    """
    results = _Results(len(paths), on_result)
    queue: list[_Outgoing] = []
    for index, path in enumerate(paths):
        try:
            header = dcmread(path, stop_before_pixels=True)
            sop_class = str(header.file_meta.MediaStorageSOPClassUID)
            file_syntax = str(header.file_meta.TransferSyntaxUID)
        except (OSError, InvalidDicomError, AttributeError) as error:
            results[index] = StoreAttempt(
                False, error=f"cannot read {path}: {error}", permanent=True
            )
            continue
        proposals = proposed_syntaxes(file_syntax, destination.transfer_syntax)
        queue.append(_Outgoing(index, path, sop_class, tuple(proposals)))
    while queue:
        group, queue = _fitting_group(queue)
        unsent = _send_group(settings, destination, group, results)
        queue = unsent + queue
    return [result if result is not None else _NOT_TRIED for result in results.attempts]


_NOT_TRIED = StoreAttempt(False, error="not tried")


def _fitting_group(queue: list[_Outgoing]) -> tuple[list[_Outgoing], list[_Outgoing]]:
    """The longest head of ``queue`` whose presentation contexts fit one association."""
    contexts: set[tuple[str, str]] = set()
    for position, outgoing in enumerate(queue):
        wanted = contexts | outgoing.contexts
        if len(wanted) > MAX_CONTEXTS and position > 0:
            return queue[:position], queue[position:]
        contexts = wanted
    return queue, []


def _send_group(
    settings: Settings,
    destination: DestinationSettings,
    group: list[_Outgoing],
    results: _Results,
) -> list[_Outgoing]:
    """Send ``group`` over one association; returns the files left when it broke down."""
    ae = requestor_ae(settings)
    requested: list[tuple[str, str]] = []
    for outgoing in group:
        for syntax in outgoing.proposals:
            if (outgoing.sop_class, syntax) not in requested:
                requested.append((outgoing.sop_class, syntax))
    for sop_class, syntax in requested:
        ae.add_requested_context(sop_class, [syntax])
    try:
        host, port, ae_title = destination.dimse_address()
        assoc = ae.associate(host, port, ae_title=ae_title, tls_args=tls_arguments(destination))
    except (OSError, RuntimeError) as error:
        _fail_all(group, results, f"cannot reach {destination.name}: {error}")
        return []
    if not assoc.is_established:
        reason = "rejected the association" if assoc.is_rejected else "did not associate"
        _fail_all(group, results, f"{destination.name} {reason}")
        return []
    accepted = {
        (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
        for cx in assoc.accepted_contexts
        if cx.transfer_syntax
    }
    finished = False
    try:
        for position, outgoing in enumerate(group):
            result = _store_one(assoc, destination, outgoing, accepted)
            results[outgoing.index] = result
            # No answer at all (aborted, timed out, connection lost): the association is
            # not to be trusted with the next file; the rest go on a new one.
            if not assoc.is_established or _transport_failure(result):
                return group[position + 1 :]
        finished = True
    finally:
        if assoc.is_established:
            if finished:
                assoc.release()
            else:
                assoc.abort()
    return []


def _transport_failure(result: StoreAttempt) -> bool:
    return not result.stored and result.status is None and not result.permanent


def _fail_all(group: list[_Outgoing], results: _Results, error: str) -> None:
    for outgoing in group:
        results[outgoing.index] = StoreAttempt(False, error=error)


def _store_one(
    assoc: Association,
    destination: DestinationSettings,
    outgoing: _Outgoing,
    accepted: set[tuple[str, str]],
) -> StoreAttempt:
    """One C-STORE on an open association, in the best syntax the peer accepted."""
    chosen = next(
        (s for s in outgoing.proposals if (outgoing.sop_class, s) in accepted),
        None,
    )
    if chosen is None:
        return StoreAttempt(
            False,
            error=f"{destination.name} accepts none of {list(outgoing.proposals)} "
            f"for {outgoing.sop_class}",
            permanent=True,
        )
    try:
        ds = dcmread(outgoing.path)
    except (OSError, InvalidDicomError) as error:
        return StoreAttempt(False, error=f"cannot read {outgoing.path}: {error}", permanent=True)
    try:
        convert(ds, chosen)
    except TranscodeError as error:
        return StoreAttempt(False, error=str(error), permanent=True)
    try:
        response = assoc.send_c_store(ds)
    except (OSError, RuntimeError, ValueError) as error:
        return StoreAttempt(False, error=f"C-STORE to {destination.name} failed: {error}")
    if "Status" not in response:
        return StoreAttempt(False, error=f"no C-STORE response from {destination.name}")
    status = int(response.Status)
    if status in STORED_STATUSES:
        return StoreAttempt(True, status=status)
    return StoreAttempt(False, status=status, error=f"{destination.name} answered 0x{status:04X}")
