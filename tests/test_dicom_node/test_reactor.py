"""The DUL reactor's socket handling (``dicom_node.receive.reactor``) on real sockets."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from dicom_node.receive import reactor
from dicom_node.receive.reactor import QuietDUL


def test_after_a_pdu_the_reactor_acknowledges_at_once_and_does_not_poll() -> None:
    """Woken at a PDU's first byte, the reactor must switch the kernel to quick ACKs.

    Without them the sender's next segments waited up to 40 ms for a delayed ACK
    (small instances at 50/s instead of 220/s), which is why it used to poll instead.
    """
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 0
            dul = QuietDUL.__new__(QuietDUL)
            dul.socket = SimpleNamespace(socket=accepted)  # type: ignore[assignment]
            dul._acknowledge_at_once()
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    assert reactor._BUSY_S == 0.0


def test_a_closed_socket_is_left_to_the_next_round() -> None:
    """A connection gone between the read and the option is no reactor error."""
    raw = socket.socket()
    raw.close()
    dul = QuietDUL.__new__(QuietDUL)
    dul.socket = SimpleNamespace(socket=raw)  # type: ignore[assignment]
    dul._acknowledge_at_once()
