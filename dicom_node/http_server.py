"""The health and Prometheus metrics endpoint (``GET /health``, ``GET /metrics``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from dicom_node.metrics import NodeMetrics

logger = logging.getLogger(__name__)

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]


def _handler_class(
    metrics: NodeMetrics, health: HealthProbe, client_timeout_s: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "blsnode"
        # Without it a client that connects and sends nothing holds a thread for good.
        timeout = client_timeout_s

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._metrics()
            elif path in ("/health", "/healthz"):
                self._health()
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def _metrics(self) -> None:
            try:
                body = generate_latest(metrics.registry)
            except SQLAlchemyError:
                logger.exception("metrics scrape failed on the database")
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"database unavailable\n", "text/plain")
                return
            self._send(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)

        def _health(self) -> None:
            try:
                healthy, report = health()
            except SQLAlchemyError as error:
                logger.exception("health check failed on the database")
                healthy, report = False, {"status": "failing", "checks": {"database": str(error)}}
            code = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(code, json.dumps(report).encode() + b"\n", "application/json")

        def _send(self, code: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("http: " + format, *args)

    return Handler


class HealthServer:
    """A small threaded HTTP server in a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: NodeMetrics,
        health: HealthProbe,
        client_timeout_s: float = 10.0,
    ) -> None:
        if client_timeout_s <= 0:
            raise ValueError(f"client_timeout_s must be positive, not {client_timeout_s}")
        handler = _handler_class(metrics, health, client_timeout_s)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="blsnode-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()
        logger.info(
            "health and metrics on http://%s:%d/", self._server.server_address[0], self.port
        )

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
