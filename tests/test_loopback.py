"""The test suite's port helper: ports handed out for servers never repeat."""

from __future__ import annotations

import socket

from loopback import LOOPBACK, SERVER_PORTS, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    assert all(port in SERVER_PORTS for port in ports)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, ports[-1]))
