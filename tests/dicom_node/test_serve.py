"""``blsnode serve`` answers a real C-ECHO from dcmtk's echoscu on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def test_serve_answers_echoscu(tmp_path: Path) -> None:
    port = _free_port()
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicom_node.cli.main",
            "--data-dir",
            str(tmp_path),
            "serve",
            "--port",
            str(port),
            "--ae-title",
            "TESTNODE",
        ],
    )
    try:
        _wait_for_port(port)
        echo = subprocess.run(
            ["echoscu", "-aec", "TESTNODE", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert echo.returncode == 0, echo.stderr
    finally:
        node.terminate()
        node.wait(timeout=10)
