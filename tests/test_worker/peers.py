"""Real peers for the worker tests, each on a free loopback port: Redis and dcmtk storescp.

Started by the tests, stopped afterwards; nothing is mocked. Import as
``from peers import running_redis, running_storescp``.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loopback import (
    free_port,
    listening,
    stop_process,
    system_program,
    wait_for_port,
    wait_until,
)
from pydicom import dcmread

STORESCP_AE_TITLE = "VIEWER"


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
            lambda: process.poll() is not None or listening(port), 20, "redis-server to listen"
        )
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


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
        wait_for_port(port, 20, process)
        yield StoreSCP(port, STORESCP_AE_TITLE, folder)
    finally:
        stop_process(process)
        log.close()
