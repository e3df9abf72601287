"""Destinations from the settings file and from the command line, and C-ECHO to them."""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy.orm import Session

from dicom_node.db import destinations as destination_rows
from dicom_node.settings import DestinationProtocol, DestinationSettings, Settings

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


def tls_arguments(destination: DestinationSettings) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's ``tls_args`` for an association to ``destination`` (``None``: plain TCP)."""
    tls = destination.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(tls.ca_certificates) if tls.ca_certificates else None,
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = tls.check_hostname
    if tls.certificate is not None:
        context.load_cert_chain(
            str(tls.certificate), str(tls.private_key) if tls.private_key else None
        )
    host, _, _ = destination.dimse_address()
    return context, host


def echo(settings: Settings, destination: DestinationSettings) -> EchoResult:
    """Is the destination up, and does it accept us? C-ECHO, or a QIDO-RS for DICOMweb."""
    started = time.monotonic()
    if destination.protocol is DestinationProtocol.DICOMWEB:
        from dicom_node.send.stow import probe  # requests loads only for DICOMweb

        ok, code, error = probe(settings, destination)
        return EchoResult(ok, code, time.monotonic() - started, error or None)
    ae = requestor_ae(settings)
    ae.add_requested_context(Verification)
    host, port, ae_title = destination.dimse_address()
    try:
        assoc = ae.associate(host, port, ae_title=ae_title, tls_args=tls_arguments(destination))
    except (OSError, ssl.SSLError) as error:
        return EchoResult(False, None, time.monotonic() - started, str(error))
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
