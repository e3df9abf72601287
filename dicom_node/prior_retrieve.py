"""Find a patient's previous hand radiograph on a PACS (C-FIND) and fetch it (C-MOVE).

Used when the node's own database holds no earlier radiograph of the patient's hand:
the PACS is asked at STUDY level for the patient's studies dated before this one (newest
first), at SERIES level for their CR/DX series, and at IMAGE level for the images of the
same laterality (``ImageLaterality``, else the series' ``Laterality``; an image of both
hands counts for either). The newest such image is moved to ``destination`` (our own AE
title: it then arrives by C-STORE like any radiograph, and is processed and stored).

Study Root Query/Retrieve, as every PACS offers it. A PACS that is down, refuses us, or
answers with a failure status raises :class:`PriorRetrievalError` with the reason; no
match is not an error (``None``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicom_node.settings import PriorPacsSettings

RADIOGRAPHS = ("CR", "DX")
_PENDING = (0xFF00, 0xFF01)


class PriorRetrievalError(RuntimeError):
    """The PACS could not be asked or refused the query or the move (reason in the text)."""


@dataclass(frozen=True)
class PriorImage:
    """The previous radiograph found on the PACS."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    study_date: str


def _day_before(study_date: str) -> str:
    if len(study_date) != 8 or not study_date.isdigit():
        raise ValueError(f"study date must be YYYYMMDD, got {study_date!r}")
    day = date(int(study_date[:4]), int(study_date[4:6]), int(study_date[6:]))
    return (day - timedelta(days=1)).strftime("%Y%m%d")


class _Session:
    """One association to the PACS for the queries and the move."""

    def __init__(self, pacs: PriorPacsSettings, calling_ae_title: str) -> None:
        self.pacs = pacs
        ae = AE(ae_title=calling_ae_title)
        for context in (
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelMove,
        ):
            ae.add_requested_context(context)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = pacs.timeout_s
        self.ae = ae
        self.association: Association | None = None

    def __enter__(self) -> _Session:
        where = f"PACS {self.pacs.ae_title} at {self.pacs.host}:{self.pacs.port}"
        association = self.ae.associate(self.pacs.host, self.pacs.port, ae_title=self.pacs.ae_title)
        if association.is_rejected:
            raise PriorRetrievalError(f"{where} rejected the association")
        if not association.is_established:
            raise PriorRetrievalError(f"{where} cannot be reached (down or refusing)")
        self.association = association
        return self

    def __exit__(self, *exc: object) -> None:
        if self.association is not None and self.association.is_established:
            self.association.release()

    def _open(self) -> Association:
        if self.association is None:
            raise RuntimeError("use the session in a with block")
        return self.association

    def find(self, query: Dataset) -> list[Dataset]:
        """Every match, read to the final response (one query at a time per association)."""
        matches = []
        responses = self._open().send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
        for status, identifier in responses:
            if not status:
                raise PriorRetrievalError(
                    "the PACS did not answer the C-FIND (timeout or abort; does it know our "
                    "AE title as a peer allowed to query?)"
                )
            code = int(status.Status)
            if code in _PENDING and identifier is not None:
                matches.append(identifier)
            elif code not in _PENDING and code != 0x0000:
                raise PriorRetrievalError(
                    f"the PACS refused the C-FIND (status 0x{code:04X}; does it know our AE "
                    "title as a peer allowed to query?)"
                )
        return matches

    def move(self, image: PriorImage, destination: str) -> None:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = image.study_instance_uid
        query.SeriesInstanceUID = image.series_instance_uid
        query.SOPInstanceUID = image.sop_instance_uid
        final = None
        responses = self._open().send_c_move(
            query, destination, StudyRootQueryRetrieveInformationModelMove
        )
        for status, _ in responses:
            if not status:
                raise PriorRetrievalError("the PACS did not answer the C-MOVE (timeout or abort)")
            final = status
        code = int(final.Status) if final is not None else -1
        completed = int(final.get("NumberOfCompletedSuboperations", 0)) if final else 0
        if code != 0x0000 or completed < 1:
            raise PriorRetrievalError(
                f"the PACS could not move {image.sop_instance_uid} to {destination} "
                f"(status 0x{code:04X}, {completed} sent; is {destination} a known destination?)"
            )


def _query(level: str, **keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def _candidates(session: _Session, patient_id: str, last_day: str) -> Iterator[tuple[str, str]]:
    """(study UID, study date) of the patient's studies up to ``last_day``, newest first."""
    studies = [
        (str(found.StudyInstanceUID), str(found.get("StudyDate", "")))
        for found in session.find(
            _query(
                "STUDY",
                PatientID=patient_id,
                StudyDate=f"-{last_day}",
                StudyInstanceUID="",
            )
        )
    ]
    yield from sorted(studies, key=lambda study: study[1], reverse=True)


def _same_hand(found: Dataset, series_laterality: str, laterality: str) -> bool:
    side = str(found.get("ImageLaterality", "") or series_laterality).upper()
    return side in (laterality, "B") or not laterality


def find_prior_image(
    pacs: PriorPacsSettings,
    calling_ae_title: str,
    patient_id: str,
    study_date: str,
    laterality: str,
) -> PriorImage | None:
    """The patient's newest CR/DX image of ``laterality`` (L, R; "" for any) before ``study_date``.

    Raises :class:`PriorRetrievalError` when the PACS cannot be asked, ``ValueError`` for
    an empty Patient ID or a malformed date.
    """
    if not patient_id:
        raise ValueError("a prior can only be looked up by Patient ID")
    last_day = _day_before(study_date)
    with _Session(pacs, calling_ae_title) as session:
        for study_uid, found_date in _candidates(session, patient_id, last_day):
            series = session.find(
                _query(
                    "SERIES",
                    StudyInstanceUID=study_uid,
                    SeriesInstanceUID="",
                    Modality="",
                    Laterality="",
                )
            )
            for one in series:
                if str(one.get("Modality", "")) not in RADIOGRAPHS:
                    continue
                series_uid = str(one.SeriesInstanceUID)
                images = session.find(
                    _query(
                        "IMAGE",
                        StudyInstanceUID=study_uid,
                        SeriesInstanceUID=series_uid,
                        SOPInstanceUID="",
                        ImageLaterality="",
                    )
                )
                for image in images:
                    if _same_hand(image, str(one.get("Laterality", "")), laterality.upper()):
                        return PriorImage(
                            study_uid, series_uid, str(image.SOPInstanceUID), found_date
                        )
    return None


def retrieve_prior_image(
    pacs: PriorPacsSettings, calling_ae_title: str, image: PriorImage, destination: str
) -> None:
    """C-MOVE ``image`` to ``destination``; returns once the PACS reports it sent.

    Raises :class:`PriorRetrievalError` when the PACS cannot be reached or the move fails.
    """
    with _Session(pacs, calling_ae_title) as session:
        session.move(image, destination)
