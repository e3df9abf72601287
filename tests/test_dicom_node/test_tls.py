"""TLS on the DICOM port and to destinations: certificates made with openssl."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from loopback import system_program
from node_testing import RecordingSCP, echo_status, hand_dataset, store_datasets
from sqlalchemy import select

from dicom_node.db import Dispatch, DispatchState
from dicom_node.send.destinations import echo
from dicom_node.send.dispatch import send_due_batch
from dicom_node.settings import DestinationSettings


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    root = tmp_path_factory.mktemp("pki")
    files = {
        name: root / name
        for name in ("ca.key", "ca.pem", "server.key", "server.pem", "client.key", "client.pem")
    }
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(files["ca.key"]),
        "-out",
        str(files["ca.pem"]),
    )
    for who, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        request = root / f"{who}.csr"
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={who}",
            "-keyout",
            str(files[f"{who}.key"]),
            "-out",
            str(request),
        )
        extfile = root / f"{who}.ext"
        extfile.write_text(extension + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(request),
            "-CA",
            str(files["ca.pem"]),
            "-CAkey",
            str(files["ca.key"]),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(extfile),
            "-out",
            str(files[f"{who}.pem"]),
        )
    return files  # fmt: skip


def client_tls(pki: dict[str, Path], with_certificate: bool) -> tuple[ssl.SSLContext, str]:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki["ca.pem"]))
    if with_certificate:
        context.load_cert_chain(pki["client.pem"], pki["client.key"])
    return context, "127.0.0.1"


def tls_settings(pki: dict[str, Path], require_client: bool) -> dict:
    return {
        "tls": {
            "enabled": True,
            "certificate": str(pki["server.pem"]),
            "private_key": str(pki["server.key"]),
            "ca_certificates": str(pki["ca.pem"]),
            "require_client_certificate": require_client,
        }
    }


def test_tls_listener_serves_tls_clients_only(start_node, pki) -> None:
    node = start_node(network=tls_settings(pki, require_client=False))
    tls = client_tls(pki, with_certificate=False)
    assert echo_status(node.port, tls=tls) == 0
    assert store_datasets(node.port, [hand_dataset()], tls=tls) == [0]
    assert echo_status(node.port) is None
    command = [system_program("echoscu"), "+tla", "+cf", str(pki["ca.pem"])]
    done = subprocess.run(
        [*command, "-aec", "BLSNODE", "127.0.0.1", str(node.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_client_certificates_can_be_required(start_node, pki) -> None:
    node = start_node(network=tls_settings(pki, require_client=True))
    assert echo_status(node.port, tls=client_tls(pki, with_certificate=False)) is None
    assert echo_status(node.port, tls=client_tls(pki, with_certificate=True)) == 0
    command = [system_program("echoscu"), "+tls", str(pki["client.key"]), str(pki["client.pem"])]
    done = subprocess.run(
        [*command, "+cf", str(pki["ca.pem"]), "-aec", "BLSNODE", "127.0.0.1", str(node.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_tls_without_certificate_paths_is_refused(start_node) -> None:
    with pytest.raises(ValueError, match="certificate"):
        start_node(network={"tls": {"enabled": True}})


def test_a_silent_connection_does_not_stop_the_tls_listener(start_node, pki) -> None:
    # The TLS handshake of an accepted connection must not wait forever for a client
    # that never speaks (a port scan, a load balancer's TCP check, an attacker).
    node = start_node(network={**tls_settings(pki, require_client=False), "network_timeout_s": 2})
    silent = socket.create_connection(("127.0.0.1", node.port))
    try:
        tls = client_tls(pki, with_certificate=False)
        assert echo_status(node.port, tls=tls) == 0
    finally:
        silent.close()


def test_results_go_out_over_tls_to_a_tls_destination(start_node, pki) -> None:
    """DIMSE over TLS out: the peer's certificate is checked against the configured CA."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki["server.pem"], pki["server.key"])
    peer = RecordingSCP(ae_title="TLSPACS", tls=server).start()
    try:
        destination = {
            "name": "TLSPACS",
            "ae_title": "TLSPACS",
            "host": "127.0.0.1",
            "port": peer.port,
            "send": "all",
            "tls": {"enabled": True, "ca_certificates": str(pki["ca.pem"])},
        }
        untrusted = {**destination, "name": "UNTRUSTED", "tls": {"enabled": True}}
        node = start_node(destinations=[destination])
        datasets = [hand_dataset(seed=n) for n in range(2)]
        assert store_datasets(node.port, datasets) == [0, 0]
        with node.database.sessions() as session:
            first = session.scalars(select(Dispatch.id).order_by(Dispatch.id)).first()
        batch = send_due_batch(node.settings, node.database, first)
        assert [o.state for o in batch.outcomes] == [DispatchState.SENT] * 2
        assert set(peer.received) == {str(ds.SOPInstanceUID) for ds in datasets}
        assert echo(node.settings, DestinationSettings(**destination)).ok
        associations = peer.associations
        refused = echo(node.settings, DestinationSettings(**untrusted))  # system CAs only
        assert not refused.ok
        assert peer.associations == associations  # the handshake failed: no A-ASSOCIATE
    finally:
        peer.stop()
