"""Start a real Orthanc (the Debian ``Orthanc`` binary) on free loopback ports for a test.

Its own JSON configuration, storage and index live in a temporary folder; no plugins are
loaded and nothing but loopback can reach it. Import as
``from orthanc_server import running_orthanc``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AE_TITLE = "ORTHANCTEST"


@dataclass(frozen=True)
class Orthanc:
    """A running Orthanc: its REST root and DICOM address."""

    url: str
    dicom_port: int
    ae_title: str
    log: Path

    def get(self, path: str) -> Any:
        """GET a REST resource and decode its JSON."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def get_bytes(self, path: str) -> bytes:
        """GET a REST resource as it is (e.g. ``/instances/<id>/file``)."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as response:
            body: bytes = response.read()
        return body

    def send(self, method: str, path: str, body: Any) -> Any:
        """``method`` (POST, PUT) a JSON body to a REST resource and decode the answer."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
        return json.loads(answer) if answer.strip() else None

    def add_modality(self, name: str, ae_title: str, port: int, host: str = "127.0.0.1") -> None:
        """Make a DICOM peer known to Orthanc (what its ``DicomModalities`` would list)."""
        self.send("PUT", f"/modalities/{name}", {"AET": ae_title, "Host": host, "Port": port})

    def upload(self, file: Path) -> dict[str, Any]:
        """POST one DICOM file to ``/instances``; Orthanc answers with the stored IDs."""
        request = urllib.request.Request(
            f"{self.url}/instances",
            data=file.read_bytes(),
            headers={"Content-Type": "application/dicom"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_orthanc(folder: Path, start_timeout_s: float = 30.0) -> Iterator[Orthanc]:
    """Run Orthanc with storage under ``folder`` until the block ends, then stop it."""
    program = shutil.which("Orthanc")
    if program is None:
        raise RuntimeError("Orthanc is not installed; see scripts/install-system-packages.sh")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "blsnode-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": AE_TITLE,
        "DicomPort": dicom_port,
        "Plugins": [],
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 4,
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = folder / "orthanc.log"
    with log.open("wb") as log_stream:
        process = subprocess.Popen(
            [program, str(config_path)], stdout=log_stream, stderr=log_stream
        )
    server = Orthanc(f"http://127.0.0.1:{http_port}", dicom_port, AE_TITLE, log)
    try:
        _wait_until_up(server, process, start_timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_up(server: Orthanc, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.log.read_text(errors="replace")
            raise RuntimeError(f"Orthanc exited with {process.returncode}:\n{output}")
        try:
            server.get("/system")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s} s; log in {server.log}")
