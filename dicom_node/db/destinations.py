"""Destinations added from the command line (the settings file holds the others)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicom_node.db.models import Destination
from dicom_node.settings import DestinationSettings, ResultKind


def add_destination(session: Session, destination: DestinationSettings) -> Destination:
    """Store a validated DIMSE destination; ``ValueError`` if the name is taken.

    DICOMweb and TLS destinations live in the settings file (their credentials and
    certificate paths belong with the site's other secrets, not in the database).
    """
    if find_destination(session, destination.name) is not None:
        raise ValueError(f"destination {destination.name!r} exists already")
    if destination.tls.enabled:
        raise ValueError("TLS destinations are configured in the settings file")
    host, port, ae_title = destination.dimse_address()
    row = Destination(
        name=destination.name,
        ae_title=ae_title,
        host=host,
        port=port,
        send=destination.send,
        transfer_syntax=destination.transfer_syntax,
        results=None
        if destination.results is None
        else ",".join(kind.value for kind in destination.results),
    )
    session.add(row)
    session.flush()
    return row


def find_destination(session: Session, name: str) -> Destination | None:
    """The stored destination called ``name``, or ``None``."""
    return session.scalars(select(Destination).where(Destination.name == name)).one_or_none()


def remove_destination(session: Session, name: str) -> bool:
    """Delete the stored destination called ``name``; ``False`` if there was none."""
    result = session.execute(delete(Destination).where(Destination.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stored_destinations(session: Session) -> list[DestinationSettings]:
    """Every stored destination, as the same model the settings file uses."""
    rows = session.scalars(select(Destination).order_by(Destination.name))
    return [
        DestinationSettings(
            name=row.name,
            ae_title=row.ae_title,
            host=row.host,
            port=row.port,
            send=row.send,
            transfer_syntax=row.transfer_syntax,
            results=None
            if row.results is None
            else [ResultKind(kind) for kind in row.results.split(",")],
        )
        for row in rows
    ]
