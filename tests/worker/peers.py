"""Real peers for the worker tests, each on a free loopback port: Redis and dcmtk storescp.

Started by the tests, stopped afterwards; nothing is mocked. Import as
``from peers import running_redis, running_storescp``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydicom import dcmread

T = TypeVar("T")
# Debian's programs, not same-named scripts a virtual environment may put first on PATH.
SYSTEM_PATH = "/usr/bin:/usr/local/bin:/usr/sbin"
STORESCP_AE_TITLE = "VIEWER"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def system_program(name: str) -> str:
    """Path of a Debian-packaged program; a clear failure when it is not installed."""
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        raise RuntimeError(f"{name} is not installed (scripts/install-system-packages.sh)")
    return found


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, step_s: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def running_redis(folder: Path, port: int | None = None) -> Iterator[str]:
    """A ``redis-server`` without persistence on loopback; yields its URL.

    ``port``: a fixed port, to bring a server back where clients expect it (default: a
    free one).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = folder / "redis.log"
    command = [
        system_program("redis-server"),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(folder),
        "--logfile", str(log),
    ]  # fmt: skip
    process = subprocess.Popen(command)
    try:
        wait_until(
            lambda: process.poll() is not None or _listening(port), 20, "redis-server to listen"
        )
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


@dataclass(frozen=True)
class StoreSCP:
    """A running dcmtk ``storescp``: where it listens and where it writes what it receives."""

    port: int
    ae_title: str
    folder: Path

    def received(self) -> dict[str, str]:
        """SOP Instance UID -> SOP Class UID of every file received so far."""
        found = {}
        for path in self._files():
            header = dcmread(path, stop_before_pixels=True)
            found[str(header.SOPInstanceUID)] = str(header.SOPClassUID)
        return found

    def received_counts(self) -> Counter[str]:
        """How often each SOP Instance UID arrived (every copy is its own file)."""
        return Counter(
            str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in self._files()
        )

    def _files(self) -> list[Path]:
        return [p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith(".")]


@contextmanager
def running_storescp(folder: Path, port: int | None = None) -> Iterator[StoreSCP]:
    """dcmtk's ``storescp`` on loopback (``port``, default a free one), any storage class."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = (folder.parent / f"{folder.name}.log").open("ab")
    # +xa: every transfer syntax dcmtk knows; -od: output folder; -aet: our AE title;
    # +uf: a new file for every copy received, so duplicates can be counted.
    command = [
        system_program("storescp"), "-aet", STORESCP_AE_TITLE, "+xa", "+uf", "-od", str(folder),
        str(port),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_until(lambda: process.poll() is not None or _listening(port), 20, "storescp")
        if process.poll() is not None:
            raise RuntimeError(f"storescp exited with {process.returncode}")
        yield StoreSCP(port, STORESCP_AE_TITLE, folder)
    finally:
        _stop(process)
        log.close()
