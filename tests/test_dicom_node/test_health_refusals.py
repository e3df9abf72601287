"""``/health`` says "failing" while C-STOREs are refused for want of resources.

``blsnode serve`` runs with the disk guard at 0 and a file size limit (``RLIMIT_FSIZE``)
of 512 KiB: small instances are stored, a larger one fails its write as on a full disk.
The free space the guard reads looks fine throughout; the health must follow the
answers instead.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_inputs import hand_file, send_files
from installed import blsnode_command, user_environment
from loopback import free_port, wait_for_port
from pynetdicom import _config

from dicom_node.dimse_status import DicomStatus

FILE_SIZE_LIMIT = 512 << 10


def _limit_file_size() -> None:
    # Past the limit a write fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``blsnode serve`` whose files cannot grow past 512 KiB; yields (DICOM, HTTP) ports."""
    port, http_port = free_port(), free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'[network]\nhost = "127.0.0.1"\nport = {port}\n[http]\nport = {http_port}\n'
        "[storage]\nmin_free_bytes = 0\n[worker]\nembedded = false\n"
        '[logging]\nlevel = "WARNING"\nto_file = false\n'
    )
    process = subprocess.Popen(
        blsnode_command("--config", config, "--data-dir", tmp_path / "data", "serve"),
        env=user_environment(),
        cwd=tmp_path,
        stderr=subprocess.DEVNULL,
        preexec_fn=_limit_file_size,
    )
    try:
        wait_for_port(port, process=process)
        wait_for_port(http_port, process=process)
        yield port, http_port
    finally:
        process.terminate()
        process.wait(30)


def test_health_follows_refused_stores(
    serve: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    port, http_port = serve
    small = [hand_file(tmp_path / f"small{n}.dcm", seed=n) for n in range(2)]
    large = hand_file(tmp_path / "large.dcm", seed=9, rows=512, columns=1024)
    assert send_files(port, [small[0]]) == [int(DicomStatus.SUCCESS)]
    assert _health(port=http_port)[0] == 200
    assert send_files(port, [large]) == [int(DicomStatus.OUT_OF_RESOURCES)]
    code, report = _health(http_port)
    assert code == 503
    assert report["status"] == "failing"
    assert report["checks"]["storing"] == "refusing (error)"
    assert report["checks"]["disk"] == "ok"  # the guard's reading saw nothing wrong
    assert send_files(port, [small[1]]) == [int(DicomStatus.SUCCESS)]
    code, report = _health(http_port)
    assert code == 200 and report["checks"]["storing"] == "ok"
