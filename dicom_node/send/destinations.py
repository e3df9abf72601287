"""Destinations from the settings file and from the command line, and C-ECHO to them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy.orm import Session

from dicom_node.db import destinations as destination_rows
from dicom_node.settings import DestinationSettings, Settings

logger = logging.getLogger(__name__)


def all_destinations(settings: Settings, session: Session) -> list[DestinationSettings]:
    """Settings-file destinations, then those added from the CLI (names are unique)."""
    configured = list(settings.destinations)
    names = {destination.name for destination in configured}
    stored = [d for d in destination_rows.stored_destinations(session) if d.name not in names]
    return configured + stored


def find_destination(settings: Settings, session: Session, name: str) -> DestinationSettings | None:
    """The destination called ``name`` from either source, or ``None``."""
    for destination in all_destinations(settings, session):
        if destination.name == name:
            return destination
    return None


@dataclass(frozen=True)
class EchoResult:
    """Outcome of a C-ECHO to a destination."""

    ok: bool
    status: int | None
    seconds: float
    error: str | None = None


def requestor_ae(settings: Settings) -> AE:
    """An AE that calls out with our AE title and the configured timeouts."""
    ae = AE(ae_title=settings.network.ae_title)
    ae.acse_timeout = settings.network.acse_timeout_s
    ae.dimse_timeout = settings.network.dimse_timeout_s
    ae.network_timeout = settings.network.network_timeout_s
    return ae


def echo(settings: Settings, destination: DestinationSettings) -> EchoResult:
    """C-ECHO the destination: is it up, and does it accept our AE title?"""
    ae = requestor_ae(settings)
    ae.add_requested_context(Verification)
    started = time.monotonic()
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        reason = "association rejected" if assoc.is_rejected else "no association"
        return EchoResult(
            False, None, time.monotonic() - started, f"{reason} with {destination.name}"
        )
    try:
        response = assoc.send_c_echo()
    finally:
        assoc.release()
    status = int(response.Status) if "Status" in response else None
    elapsed = time.monotonic() - started
    if status is None:
        return EchoResult(False, None, elapsed, "no C-ECHO response")
    return EchoResult(
        status == 0, status, elapsed, None if status == 0 else f"status 0x{status:04X}"
    )
