"""Start a real Orthanc (the Debian ``Orthanc`` binary) on free loopback ports for a test.

Its own JSON configuration, storage and index live in a temporary folder; nothing but
loopback can reach it. With ``dicomweb=True`` it loads Debian's DICOMweb plugin
(``orthanc-dicomweb``) under ``/dicom-web``; with ``users`` its REST API and DICOMweb
need HTTP basic authentication (this helper authenticates as the first user). Import as
``from orthanc_server import running_orthanc`` (or ``Orthanc`` to configure it first and
start it later).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loopback import free_port, listening, wait_until

AE_TITLE = "ORTHANCTEST"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class Orthanc:
    """An Orthanc configured on free loopback ports at once, started when asked.

    Tests of a destination that is down and comes back need its address before it
    runs; ``running_orthanc`` is the usual configure-start-stop in one block.
    """

    def __init__(
        self,
        folder: Path,
        ae_title: str = AE_TITLE,
        dicomweb: bool = False,
        users: dict[str, str] | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.ae_title = ae_title
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = folder / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None
        config = {
            "Name": "blsnode-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(users),
            "RegisteredUsers": dict(users or {}),
            "DicomServerEnabled": True,
            "DicomAet": ae_title,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "Plugins": [DICOMWEB_PLUGIN] if dicomweb else [],
            "DicomWeb": {"Enable": dicomweb, "Root": "/dicom-web/"},
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 4,
        }
        self.dicomweb_url = f"{self.url}/dicom-web"
        self._authorization = {}
        if users:
            user, password = next(iter(users.items()))
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._authorization = {"Authorization": f"Basic {token}"}
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config, indent=2), encoding="utf-8")

    def start(self, timeout_s: float = 30.0) -> Orthanc:
        """Run Orthanc and wait until its REST API and its DICOM port answer."""
        program = shutil.which("Orthanc")
        if program is None:
            raise RuntimeError("Orthanc is not installed; see scripts/install-system-packages.sh")
        with self.log.open("ab") as log_stream:
            self.process = subprocess.Popen(
                [program, str(self.config)], stdout=log_stream, stderr=log_stream
            )
        self._wait_until_up(self.process, timeout_s)
        return self

    def stop(self) -> None:
        """Kill it: its storage is thrown away, so no graceful shutdown (seconds) is needed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(20)
        self.process = None

    def _wait_until_up(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        def up() -> bool:
            if process.poll() is not None:
                output = self.log.read_text(errors="replace")
                raise RuntimeError(f"Orthanc exited with {process.returncode}:\n{output}")
            if not listening(self.dicom_port):
                return False
            try:
                self.get("/system")
            except (urllib.error.URLError, ConnectionError):
                return False
            return True

        wait_until(up, timeout_s, f"Orthanc to answer (log in {self.log})", interval_s=0.2)

    def get(self, path: str) -> Any:
        """GET a REST resource and decode its JSON."""
        with self._open(urllib.request.Request(f"{self.url}{path}"), 30) as response:
            return json.loads(response.read())

    def get_bytes(self, path: str) -> bytes:
        """GET a REST resource as it is (e.g. ``/instances/<id>/file``)."""
        with self._open(urllib.request.Request(f"{self.url}{path}"), 60) as response:
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
        with self._open(request, 120) as response:
            answer = response.read()
        return json.loads(answer) if answer.strip() else None

    def _open(self, request: urllib.request.Request, timeout_s: float) -> Any:
        for name, value in self._authorization.items():
            request.add_header(name, value)
        return urllib.request.urlopen(request, timeout=timeout_s)

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
        with self._open(request, 60) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def instances(self) -> dict[str, str]:
        """SOP Instance UID -> transfer syntax UID of every stored instance."""
        found = {}
        for item in self.get("/instances?expand"):
            syntax = self.get_bytes(f"/instances/{item['ID']}/metadata/TransferSyntax")
            found[item["MainDicomTags"]["SOPInstanceUID"]] = syntax.decode()
        return found


@contextmanager
def running_orthanc(
    folder: Path, start_timeout_s: float = 30.0, **options: Any
) -> Iterator[Orthanc]:
    """Run Orthanc with storage under ``folder`` until the block ends, then stop it.

    ``options`` go to :class:`Orthanc` (``dicomweb``, ``users``).
    """
    server = Orthanc(folder, **options)
    try:
        yield server.start(start_timeout_s)
    finally:
        server.stop()
