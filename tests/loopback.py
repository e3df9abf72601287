"""Real peer programs on loopback for any test or benchmark: ports, waiting, stopping.

Every test package starts real servers (the node, Orthanc, Redis, dcmtk's storescp) on
free loopback ports and waits for them; this module is the one place that knows how.
``tests/`` is on ``sys.path`` (its conftest), so import it as ``from loopback import ...``.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydicom import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
# Debian's programs, not same-named scripts a virtual environment may put first on PATH.
SYSTEM_PATH = "/usr/bin:/usr/local/bin:/usr/sbin"


# Ports handed out for servers lie below the kernel's ephemeral range (Linux: 32768 and
# up): a port from that range can become the source port of any outgoing connection
# before the server binds it (seen: Orthanc's HTTP port taken while a test's node was
# connecting elsewhere, "already in use").
SERVER_PORTS = range(20000, 32768)
_port_choices = random.Random()
# A port is free when handed out but bound only later, so two calls in a row (a node's
# DICOM and HTTP ports) could get the same one (seen once in CI: "already in use" on the
# second bind). Each port is handed out once per process.
_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return SERVER_PORTS.stop


def free_port() -> int:
    """A loopback TCP port, below the ephemeral range, unbound now and not handed out before."""
    ceiling = min(SERVER_PORTS.stop, _ephemeral_floor())
    for _ in range(200):
        port = _port_choices.randrange(SERVER_PORTS.start, ceiling)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {SERVER_PORTS.start}-{ceiling - 1}")


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs.

    For a peer that is down. A port from ``free_port`` is free only when asked: under
    load another program's listener took it before the test connected (and answered).
    This one stays bound, never listening, so connecting is refused until the block ends.
    """
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on loopback ``port`` now."""
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float = 15.0,
    what: str = "condition",
    interval_s: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def wait_for_port(
    port: int, timeout_s: float = 20.0, process: subprocess.Popen | None = None
) -> None:
    """Block until something listens on ``port``; fail at once if ``process`` has exited."""

    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        return listening(port)

    wait_until(ready, timeout_s, f"port {port} to listen")


def stop_process(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Terminate ``process`` and reap it; kill it if it does not end within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def system_program(name: str) -> str:
    """Path of a Debian-packaged program; a clear failure when it is not installed."""
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        raise RuntimeError(f"{name} is not installed (scripts/install-system-packages.sh)")
    return found


@contextlib.contextmanager
def storage_scp(ae_title: str, on_store: Callable[[Dataset], object]) -> Iterator[int]:
    """A pynetdicom storage SCP on a free loopback port (yielded) that answers 0x0000 and
    hands each received data set, its file meta attached, to ``on_store`` (one at a time)."""
    lock = threading.Lock()

    def store(event: evt.Event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        with lock:
            on_store(dataset)
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server((LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    try:
        yield port
    finally:
        server.shutdown()
