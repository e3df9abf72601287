"""The dashboard's HTTP(S) server: uvicorn in a thread of the node's process.

One event loop in one daemon thread serves the pages; database reads and pictures run in
its thread pool, so a slow page never holds up the DICOM listener (another thread).
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from dicom_node.settings import WebSettings

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0


class WebServer:
    """Start and stop uvicorn for one ASGI app on the host and port of ``WebSettings``."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.settings = settings
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            ssl_certfile=str(settings.certificate) if settings.certificate else None,
            ssl_keyfile=str(settings.private_key) if settings.private_key else None,
            lifespan="off",
            access_log=False,
            log_config=None,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen; ``OSError`` if the port cannot be bound or the server does not start."""
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise OSError(
                    f"web dashboard could not listen on {self.settings.host}:{self.settings.port}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise OSError("web dashboard did not start in time")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings ask for port 0)."""
        for server in self._server.servers:
            for socket in server.sockets:
                return int(socket.getsockname()[1])
        return self.settings.port

    @property
    def url(self) -> str:
        """The dashboard's address, as people type it."""
        scheme = "https" if self.settings.tls else "http"
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/"

    def stop(self) -> None:
        """Finish open requests and stop."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
