"""OHIF's published build (npm ``@ohif/app``) served on loopback in front of a test Orthanc.

OHIF is a single-page app built to live at the root of its origin (``PUBLIC_URL="/"``)
and to reach its DICOMweb server from the browser; Orthanc sends no CORS headers. So one
small server on a free loopback port serves the build's files (any unknown path gets
``index.html``, as the app's router wants), our ``app-config.js`` naming Orthanc's
DICOMweb as the data source, and passes ``/dicom-web/`` on to Orthanc: one origin.

The build is unpacked by ``scripts/install-ohif.sh`` (``make ohif``) into
``build/ohif/<version>/dist``; ``OHIF_DIST`` names another folder. Import as
``from ohif_viewer import running_ohif``.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from loopback import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parent.parent
OHIF_VERSION = "3.13.2"
PROXIED = "/dicom-web/"


def ohif_dist() -> Path:
    """The unpacked build; a clear error naming the install step when it is missing."""
    configured = os.environ.get("OHIF_DIST")
    folder = Path(configured) if configured else REPO_ROOT / "build/ohif" / OHIF_VERSION / "dist"
    if not (folder / "index.html").is_file():
        raise RuntimeError(f"OHIF's build is not at {folder}: run `make ohif` (scripts/)")
    return folder


def app_config(origin: str) -> str:
    """OHIF's configuration: Orthanc's DICOMweb (through this server) as the only source."""
    root = f"{origin}/dicom-web"
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "dicomweb",
        "configuration": {
            "friendlyName": "test Orthanc",
            "name": "orthanc",
            "wadoUriRoot": root,
            "qidoRoot": root,
            "wadoRoot": root,
            "qidoSupportsIncludeField": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True},
        },
    }
    config = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showLoadingIndicator": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "dicomweb",
        "dataSources": [source],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


class _Handler(BaseHTTPRequestHandler):
    server: _ViewerServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what it needs from the browser and Orthanc."""

    def do_GET(self) -> None:
        if self.path.startswith(PROXIED):
            self._proxy()
            return
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self._send(200, self.server.config.encode(), "application/javascript")
            return
        file = (self.server.dist / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.server.dist) or not file.is_file():
            file = self.server.dist / "index.html"  # the app's own routes
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if file.suffix == ".wasm":
            kind = "application/wasm"
        self._send(200, file.read_bytes(), kind)

    def _proxy(self) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept",)}
        request = urllib.request.Request(self.server.orthanc + self.path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                body = answer.read()
                self._send(answer.status, body, answer.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as error:
            self._send(error.code, error.read(), error.headers.get("Content-Type", ""))

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dist: Path, orthanc_url: str) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.dist = dist.resolve()
        self.orthanc = orthanc_url.rstrip("/")
        self.url = f"http://{LOOPBACK}:{self.server_address[1]}"
        self.config = app_config(self.url)


@contextmanager
def running_ohif(orthanc_url: str) -> Iterator[str]:
    """Serve OHIF for the Orthanc at ``orthanc_url`` until the block ends; yields its URL."""
    server = _ViewerServer(ohif_dist(), orthanc_url)
    thread = threading.Thread(target=server.serve_forever, name="ohif", daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
