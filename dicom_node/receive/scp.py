"""The DICOM listener: C-ECHO, C-STORE of every storage SOP class, access control, TLS.

Handlers are thin: ``on_store`` turns the request into a ``Received``, calls
``Ingestor.ingest`` and returns the status (the bookkeeper commits the rows and hands
their ids to the publisher). A handler never raises; it logs and answers a status. A
release is answered once the rows of everything stored so far are committed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from dicom_node.dimse_status import DicomStatus
from dicom_node.metrics import NodeMetrics
from dicom_node.receive.filemeta import encode_file_meta
from dicom_node.receive.header import is_valid_uid
from dicom_node.receive.ingest import DUPLICATE_OUTCOMES, Ingestor, Received
from dicom_node.receive.reactor import QuietAcceptor, QuietDUL
from dicom_node.receive.refusals import Refusals
from dicom_node.settings import AllowedCaller, Settings, TLSSettings

logger = logging.getLogger(__name__)

# Stored exactly as received; decoding is the worker's business.
SUPPORTED_TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
# Larger PDUs mean fewer Python-level fragments per large image.
MAXIMUM_PDU_SIZE = 1 << 20

# A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling AE title not recognised.
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)
# A-ASSOCIATE-RJ: rejected-transient, by the service provider (presentation), local limit
# exceeded.
_REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)
# pynetdicom counts every open TCP connection against its own limit, also a connection
# that closed before sending an A-ASSOCIATE-RQ (a port scan, a load balancer's TCP check):
# its thread waits out the ACSE timeout, so a few such probes locked real callers out for
# 30 s. The listener enforces ``network.max_associations`` itself in ``on_requested``,
# counting only peers that asked for an association; pynetdicom's limit is set out of reach.
_CONNECTION_CEILING = 1 << 16


def requested_associations(ae: AE, host: str | None = None) -> int:
    """Associations this AE accepts whose peer has sent an A-ASSOCIATE-RQ (from ``host``)."""
    wanted = None if host is None else canonical_address(host)
    return sum(
        1
        for association in ae.active_associations
        if association.is_acceptor
        and association.requestor.primitive is not None
        and (wanted is None or canonical_address(association.requestor.address) == wanted)
    )


@dataclass(frozen=True)
class AccessPolicy:
    """Which calling AE titles (optionally from which hosts) may associate."""

    allowed: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def from_settings(cls, callers: list[AllowedCaller]) -> AccessPolicy:
        """Resolve host names once, at start-up."""
        entries = []
        for caller in callers:
            hosts: frozenset[str] = frozenset()
            if caller.host:
                hosts = frozenset(_addresses(caller.host))
            entries.append((caller.ae_title, hosts))
        return cls(tuple(entries))

    @property
    def open(self) -> bool:
        """True when no allow-list is configured: anyone may store."""
        return not self.allowed

    def allows(self, calling_ae_title: str, address: str) -> bool:
        """True if this caller, from this address, may associate."""
        if self.open:
            return True
        title = calling_ae_title.strip()
        peer = canonical_address(address)
        return any(
            title == allowed_title and (not hosts or peer in hosts)
            for allowed_title, hosts in self.allowed
        )


def canonical_address(address: str) -> str:
    """``address`` as the allow-list spells it: an IPv4-mapped IPv6 peer as plain IPv4.

    A listener bound to ``::`` sees every IPv4 caller as ``::ffff:a.b.c.d``; without this
    every host-pinned entry refused them.
    """
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def _addresses(host: str) -> set[str]:
    try:
        return {canonical_address(str(ipaddress.ip_address(host)))}
    except ValueError:
        infos = socket.getaddrinfo(host, None)
        return {canonical_address(str(info[4][0])) for info in infos}


def server_tls_context(tls: TLSSettings) -> ssl.SSLContext:
    """TLS for the listener from the certificate paths in settings."""
    if tls.certificate is None or tls.private_key is None:
        raise ValueError("network.tls.enabled needs network.tls.certificate and private_key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=tls.certificate, keyfile=tls.private_key)
    if tls.ca_certificates is not None:
        context.load_verify_locations(cafile=tls.ca_certificates)
    if tls.require_client_certificate:
        if tls.ca_certificates is None:
            raise ValueError("network.tls.require_client_certificate needs ca_certificates")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class StorageService:
    """The event handlers of the listener."""

    def __init__(
        self,
        ingestor: Ingestor,
        metrics: NodeMetrics,
        policy: AccessPolicy,
        max_associations: int | None = None,
        max_associations_per_host: int | None = None,
    ) -> None:
        """``max_associations``: requested associations at once, and from one host at
        once (``None``: no limit)."""
        for name, limit in (
            ("max_associations", max_associations),
            ("max_associations_per_host", max_associations_per_host),
        ):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be at least 1, not {limit}")
        self.ingestor = ingestor
        self.metrics = metrics
        self.policy = policy
        self.max_associations = max_associations
        self.max_associations_per_host = max_associations_per_host
        self.refusals = Refusals()

    def handlers(self) -> list[Any]:
        """The (event, handler) pairs to bind."""
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_REJECTED, self.on_rejected),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
        ]

    def on_requested(self, event: evt.Event) -> None:
        """Reject callers outside the allow-list, and any beyond the association limit."""
        # The request came within the connection's short deadline; from now on the
        # configured ACSE timeout applies (to the release, and to the ARTIM timer).
        event.assoc.acse_timeout = event.assoc.ae.acse_timeout
        requestor = event.assoc.requestor
        # Negotiation copies the calling AE title onto the requestor later; read the request.
        request = requestor.primitive
        calling = str(request.calling_ae_title).strip() if request is not None else ""
        extra = {"calling_ae_title": calling, "peer": requestor.address}
        if not self.policy.allows(calling, requestor.address):
            logger.warning("rejecting association: calling AE title not allowed", extra=extra)
            self._reject(event, _REJECT_CALLING_AE)
            return
        # This association is counted too: it has sent its request.
        if (
            self.max_associations is not None
            and requested_associations(event.assoc.ae) > self.max_associations
        ):
            logger.warning(
                "rejecting association: %d open (network.max_associations)",
                self.max_associations,
                extra=extra,
            )
            self._reject(event, _REJECT_LOCAL_LIMIT)
            return
        if (
            self.max_associations_per_host is not None
            and requested_associations(event.assoc.ae, requestor.address)
            > self.max_associations_per_host
        ):
            logger.warning(
                "rejecting association: %d open from this host (network.max_associations_per_host)",
                self.max_associations_per_host,
                extra=extra,
            )
            self._reject(event, _REJECT_LOCAL_LIMIT)

    def _reject(self, event: evt.Event, reason: tuple[int, int, int]) -> None:
        self.metrics.associations.labels(result="rejected").inc()
        event.assoc.acse.send_reject(*reason)
        event.assoc.kill()

    def on_established(self, event: evt.Event) -> None:
        """Count and log accepted associations."""
        self.metrics.associations.labels(result="accepted").inc()
        requestor = event.assoc.requestor
        logger.info(
            "association accepted",
            extra={"calling_ae_title": requestor.ae_title, "peer": requestor.address},
        )

    def on_rejected(self, event: evt.Event) -> None:
        """Count associations pynetdicom rejected (called AE title, association limit)."""
        self.metrics.associations.labels(result="rejected").inc()
        logger.warning("association rejected", extra={"peer": event.assoc.requestor.address})

    def on_echo(self, event: evt.Event) -> int:
        """C-ECHO: always success while the process runs."""
        self.metrics.echoes.inc()
        return int(DicomStatus.SUCCESS)

    def on_store(self, event: evt.Event) -> int:
        """C-STORE: ingest, publish ids, answer; never raises."""
        started = time.perf_counter()
        try:
            status, outcome = self._store(event)
        except Exception:  # the handler must answer; the failure is logged in full
            logger.exception("C-STORE handler failed")
            status, outcome = DicomStatus.OUT_OF_RESOURCES, "error"
        self.refusals.record(status, outcome)
        if status.is_success and isinstance(event.assoc, QuietAcceptor):
            # Progress (``QuietAcceptor.max_idle_s``) is an instance taken in: not a
            # C-ECHO, and not a refused C-STORE, which a hostile peer could repeat.
            event.assoc.mark_progress()
        self.metrics.stores.labels(outcome=outcome).inc()
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        return int(status)

    def _store(self, event: evt.Event) -> tuple[DicomStatus, str]:
        request = cast(C_STORE, event.request)
        calling = event.assoc.requestor.ae_title
        sop_class = str(request.AffectedSOPClassUID)
        sop_instance = str(request.AffectedSOPInstanceUID)
        syntax = str(event.context.transfer_syntax)
        if not (is_valid_uid(sop_class) and is_valid_uid(sop_instance)):
            return DicomStatus.CANNOT_UNDERSTAND, "unreadable"
        with cast(BytesIO, request.DataSet).getbuffer() as body:
            received = Received(
                sop_class_uid=sop_class,
                sop_instance_uid=sop_instance,
                transfer_syntax_uid=syntax,
                file_meta=encode_file_meta(sop_class, sop_instance, syntax, calling),
                body=body,
                calling_ae_title=calling,
            )
            result = self.ingestor.ingest(received)
            size = len(body)
        extra = {
            "sop_instance_uid": result.sop_instance_uid,
            "calling_ae_title": calling,
            "outcome": result.outcome,
        }
        if result.status.is_success:
            logger.debug("C-STORE answered", extra=extra)
            if result.outcome == "stored":
                self.metrics.received_bytes.inc(size)
        elif result.outcome in DUPLICATE_OUTCOMES:
            logger.debug("C-STORE of a resend answered: %s", result.reason, extra=extra)
        else:
            logger.warning("C-STORE refused: %s", result.reason, extra=extra)
        return result.status, result.outcome


def build_ae(settings: Settings) -> AE:
    """Our AE: every storage SOP class with the supported syntaxes, verification, limits."""
    network = settings.network
    ae = AE(ae_title=network.ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(cast(str, context.abstract_syntax), SUPPORTED_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, SUPPORTED_TRANSFER_SYNTAXES[:2])
    ae.require_called_aet = network.require_called_ae_title
    # ``network.max_associations`` is enforced by ``StorageService.on_requested``.
    ae.maximum_associations = _CONNECTION_CEILING
    ae.maximum_pdu_size = MAXIMUM_PDU_SIZE
    ae.acse_timeout = network.acse_timeout_s
    ae.dimse_timeout = network.dimse_timeout_s
    ae.network_timeout = network.network_timeout_s
    return ae


class BoundedAssociationSocket(AssociationSocket):
    """An association socket that refuses to read a PDU longer than ``max_pdu_length``.

    pynetdicom reads a PDU's 6-byte header and then as many bytes as the header
    announces, whatever maximum PDU length was negotiated: a peer that announced a 4 GiB
    PDU and kept sending made the listener buffer all of it in memory. The body is read
    by one ``recv(length)`` call; for a length over the limit the connection is closed
    there and nothing is read, which pynetdicom then handles as a peer that
    disconnected in the middle of a PDU (the association's thread ends after the ACSE
    timeout, as for any such peer).
    """

    max_pdu_length = MAXIMUM_PDU_SIZE
    # Set per connection by the request handler from ``network.pdu_deadline_s``.
    pdu_deadline_s: float | None = None

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes``, unless that is more than one acceptable PDU.

        The read must finish within ``pdu_deadline_s``: pynetdicom reads a PDU's header,
        then its body, each with one call, so a peer that trickles bytes loses the
        connection (``TimeoutError``, which pynetdicom handles as a closed connection).
        """
        if nr_bytes <= self.max_pdu_length:
            return self._read_within_deadline(nr_bytes)
        logger.warning(
            "peer announced a PDU of %d bytes (at most %d accepted); disconnecting",
            nr_bytes,
            self.max_pdu_length,
        )
        raw, self.socket, self._is_connected = self.socket, None, False
        if raw is not None:
            with contextlib.suppress(OSError):  # already gone: nothing left to shut
                raw.shutdown(socket.SHUT_RDWR)
            raw.close()
        return bytearray()

    def _read_within_deadline(self, nr_bytes: int) -> bytearray:
        raw = self.socket
        if self.pdu_deadline_s is None or raw is None:
            return super().recv(nr_bytes)
        deadline = time.monotonic() + self.pdu_deadline_s
        idle_timeout = raw.gettimeout()
        data = bytearray()
        try:
            while len(data) < nr_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning(
                        "peer sent %d of %d bytes in %.0f s (network.pdu_deadline_s); "
                        "disconnecting",
                        len(data),
                        nr_bytes,
                        self.pdu_deadline_s,
                    )
                    raise TimeoutError("PDU not received within network.pdu_deadline_s")
                raw.settimeout(left if idle_timeout is None else min(left, idle_timeout))
                chunk = raw.recv(min(nr_bytes - len(data), 1 << 16))
                if not chunk:
                    return data
                data += chunk
        finally:
            raw.settimeout(idle_timeout)
        return data


class AnsweringAssociation(QuietAcceptor):
    """An acceptor association that answers every C-STORE request it can address.

    pynetdicom drops a request that lacks a required element (an empty Affected SOP
    Instance UID) with a log line and no response: the sender waited for its own DIMSE
    timeout. A C-STORE request with a Message ID gets 0xC210 (cannot understand).
    """

    def _serve_request(self, msg: Any, context_id: int) -> None:
        if isinstance(msg, C_STORE) and not msg.is_valid_request and msg.MessageID is not None:
            logger.warning(
                "C-STORE request %s lacks a required element (Affected SOP Class or "
                "Instance UID, Priority); answering 0xC210",
                msg.MessageID,
                extra={"peer": self.requestor.address},
            )
            response = C_STORE()
            response.MessageIDBeingRespondedTo = msg.MessageID
            if msg.AffectedSOPClassUID:
                response.AffectedSOPClassUID = msg.AffectedSOPClassUID
            response.Status = int(DicomStatus.CANNOT_UNDERSTAND)
            self.dimse.send_msg(response, context_id)
        else:
            super()._serve_request(msg, context_id)


class BoundedDIMSE(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider, refusing data sets that are too large or too slow.

    pynetdicom collects every P-DATA fragment of a message in memory before the C-STORE
    handler sees it: a peer that kept sending one data set could take all of it. Past
    ``max_data_set_bytes`` (``storage.max_dataset_bytes``) the fragments are dropped and
    the association is aborted as for an invalid PDU (Evt19: A-ABORT to the peer).

    A peer that sends whole PDUs slowly (a small P-DATA every few seconds, each within
    ``network.pdu_deadline_s`` and the network timeout) held its slot for as long as it
    liked. A message (a C-STORE request with its data set) must therefore keep pace:
    ``transfer_grace_s`` after its first fragment, plus one second per
    ``min_transfer_rate`` bytes received; a fragment arriving later aborts the
    association in the same way.
    """

    # Set per association by the request handler.
    max_data_set_bytes: int | None = None
    min_transfer_rate: float | None = None
    transfer_grace_s: float = 0.0
    # When the message being gathered began, and its bytes so far.
    _message_started = 0.0
    _message_bytes = 0
    # Set once a message was refused: what follows until the abort is dropped.
    _refused = False

    def receive_primitive(self, primitive: Any) -> None:
        """Gather the fragments, unless the message grows too large or falls behind."""
        if self._refused:
            return
        # Each value starts with its one-byte message control header.
        incoming = sum(len(value) - 1 for _, value in primitive.presentation_data_value_list)
        now = time.monotonic()
        if self.message is None:
            self._message_started, self._message_bytes = now, 0
        self._message_bytes += incoming
        if self._too_slow(now):
            self._refuse(
                "message of %d bytes so far took %.0f s (network.min_transfer_rate_bytes_s "
                "%.0f, transfer_grace_s %.0f); aborting",
                self._message_bytes,
                now - self._message_started,
                self.min_transfer_rate,
                self.transfer_grace_s,
            )
            return
        message, limit = self.message, self.max_data_set_bytes
        if (
            limit is not None
            and message is not None
            and isinstance(message.data_set, BytesIO)
            and message.data_set.tell() + incoming > limit
        ):
            self._refuse(
                "data set larger than %d bytes (storage.max_dataset_bytes); aborting", limit
            )
            return
        super().receive_primitive(primitive)

    def _too_slow(self, now: float) -> bool:
        if self.min_transfer_rate is None:
            return False
        allowed = self.transfer_grace_s + self._message_bytes / self.min_transfer_rate
        return now - self._message_started > allowed

    def _refuse(self, reason: str, *args: Any) -> None:
        """Drop the message and abort the association (A-ABORT to the peer)."""
        logger.warning(reason, *args, extra={"peer": self.assoc.requestor.address})
        self.message, self._refused = None, True
        self.dul.event_queue.put("Evt19")


class BoundedRequestHandler(RequestHandler):
    """pynetdicom's request handler, with the association's socket bounded."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        # The socket is made (and its connection event queued) inside pynetdicom's
        # method; narrowing the classes adds the bound and the answers without second
        # objects.
        assoc.dul.socket.__class__ = BoundedAssociationSocket
        bounded = cast(BoundedAssociationSocket, assoc.dul.socket)
        bounded.pdu_deadline_s = getattr(self.server, "pdu_deadline_s", None)
        assoc.dimse.__class__ = BoundedDIMSE
        dimse = cast(BoundedDIMSE, assoc.dimse)
        dimse.max_data_set_bytes = getattr(self.server, "max_dataset_bytes", None)
        dimse.min_transfer_rate = getattr(self.server, "min_transfer_rate_bytes_s", None)
        dimse.transfer_grace_s = getattr(self.server, "transfer_grace_s", 0.0)
        assoc.__class__ = AnsweringAssociation
        answering = cast(AnsweringAssociation, assoc)
        answering.before_release = getattr(self.server, "before_release", None)
        answering.max_idle_s = getattr(self.server, "max_idle_association_s", None)
        assoc.dul.__class__ = QuietDUL
        cast(QuietDUL, assoc.dul).quieten()
        # Until its A-ASSOCIATE-RQ arrives (``StorageService.on_requested`` restores the
        # ACSE timeout), a connection gets the request deadline: the acceptor's wait for
        # the request and the ARTIM timer both follow ``acse_timeout``.
        request_timeout = getattr(self.server, "association_request_timeout_s", None)
        if request_timeout is not None and (
            assoc.acse_timeout is None or request_timeout < assoc.acse_timeout
        ):
            assoc.acse_timeout = request_timeout
        return assoc


class ListenerServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, hardened for a listener on a hospital network.

    Python's ``accept()`` returns blocking sockets, so pynetdicom's network timeout never
    reached a connection: a peer that sent part of a PDU and then nothing held its thread
    forever, and with TLS the handshake ran in the accept loop, so one client that
    connected and stayed silent stopped the listener from accepting anyone. Here every
    accepted socket gets the network timeout, and the TLS handshake runs in the
    connection's own thread.
    """

    # The deadline each connection's PDUs must meet (``network.pdu_deadline_s``).
    pdu_deadline_s: float | None = None
    # The largest data set gathered from the network (``storage.max_dataset_bytes``).
    max_dataset_bytes: int | None = None
    # How long a new connection may take to send its A-ASSOCIATE-RQ.
    association_request_timeout_s: float | None = None
    # The pace every DIMSE message must keep (``BoundedDIMSE``).
    min_transfer_rate_bytes_s: float | None = None
    transfer_grace_s: float = 0.0
    # How long an association may go without an accepted instance (``QuietAcceptor.max_idle_s``).
    max_idle_association_s: float | None = None
    # Runs before a release is answered (the bookkeeper's ``settle``).
    before_release: Callable[[], object] | None = None

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        """Accept a connection; give it the timeout; wrap it for TLS without handshaking."""
        listening = cast(socket.socket, self.socket)
        client, address = listening.accept()
        client.settimeout(self.ae.network_timeout)
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def process_request_thread(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: tuple[str, int] | str,
    ) -> None:
        """Finish the TLS handshake here, in the connection's thread, then serve it."""
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as error:
                logger.warning("TLS handshake failed: %s", error, extra={"peer": client_address})
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def shutdown(self) -> None:
        """Stop accepting and close the socket (the AE did not start this server)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def start_listener(
    settings: Settings, service: StorageService, ae: AE | None = None
) -> ThreadedAssociationServer:
    """Start listening in background threads; ``server.shutdown()`` stops it."""
    ae = ae or build_ae(settings)
    network = settings.network
    context = server_tls_context(network.tls) if network.tls.enabled else None
    if service.policy.open:
        logger.warning("no allow-list configured: any calling AE title may store")
    server = ae.make_server(
        (network.host, network.port),
        ssl_context=context,
        evt_handlers=service.handlers(),
        server_class=ListenerServer,
        request_handler=BoundedRequestHandler,
    )
    listener = cast(ListenerServer, server)
    listener.pdu_deadline_s = network.pdu_deadline_s
    listener.max_dataset_bytes = settings.storage.max_dataset_bytes
    listener.association_request_timeout_s = network.association_request_timeout_s
    listener.min_transfer_rate_bytes_s = network.min_transfer_rate_bytes_s
    listener.transfer_grace_s = network.transfer_grace_s
    listener.max_idle_association_s = network.max_idle_association_s or None
    listener.before_release = service.ingestor.bookkeeper.settle
    threading.Thread(target=server.serve_forever, name="dicom-listener", daemon=True).start()
    service.metrics.active_associations.set_function(lambda: requested_associations(ae))
    logger.info(
        "listening as %s on %s:%d%s",
        network.ae_title,
        network.host,
        network.port,
        " (TLS)" if context else "",
    )
    return server
