"""Helpers for the dicom_node tests: free ports, waiting for listeners, finding dcmtk."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 20.0, process: subprocess.Popen | None = None
) -> None:
    """Block until something accepts connections on ``port`` (or fail if ``process`` died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def dcmtk(tool: str) -> str:
    """Path of a dcmtk program, skipping same-named pynetdicom scripts in the venv."""
    venv_bin = Path(sys.prefix) / "bin"
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        if not folder or Path(folder).resolve() == venv_bin.resolve():
            continue
        found = shutil.which(tool, path=folder)
        if found:
            return found
    raise FileNotFoundError(f"dcmtk program {tool!r} not found (apt-get install dcmtk)")
