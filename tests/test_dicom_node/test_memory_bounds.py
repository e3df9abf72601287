"""A deflate bomb costs ``blsnode serve`` at most ``storage.max_dataset_bytes``, not gigabytes.

The node runs as an operator runs it (the installed command, its default limit); the
bomb is 1 GiB of zeros deflated to about 1 MB. The listener's peak resident memory
(``VmHWM``) is read from ``/proc`` before and after: the inflated size is counted step by
step and nothing kept until it is known to fit, so it grows by about one step, never by
the bomb's claim (3.1 GB before the bound).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_inputs import deflate_bomb, hand_file, send_files
from installed import blsnode_command, user_environment
from loopback import free_port, wait_for_port
from pynetdicom import _config

from dicom_node.dimse_status import DicomStatus

BOMB_BYTES = 1 << 30
# One 16 MiB inflation step and slack for the allocator: the bomb is counted, not kept.
ALLOWED_GROWTH_BYTES = 64 << 20


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``blsnode serve`` with its default limits; yields the process and its DICOM port."""
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'[network]\nhost = "127.0.0.1"\nport = {port}\n[http]\nport = {free_port()}\n'
        "[storage]\nmin_free_bytes = 0\n[worker]\nembedded = false\n"
        '[logging]\nlevel = "WARNING"\nto_file = false\n'
    )
    command = blsnode_command("--config", config, "--data-dir", tmp_path / "data", "serve")
    process = subprocess.Popen(
        command, env=user_environment(), cwd=tmp_path, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process=process)
        yield process, port
    finally:
        process.terminate()
        process.wait(30)


def test_a_deflate_bomb_is_refused_within_the_limit(
    serve: tuple[subprocess.Popen[bytes], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    process, port = serve
    valid = hand_file(tmp_path / "valid.dcm", seed=1, rows=512, columns=512)
    bomb = deflate_bomb(tmp_path / "bomb.dcm", seed=2, zeros=BOMB_BYTES)
    assert bomb.stat().st_size < 2 << 20
    assert send_files(port, [valid]) == [int(DicomStatus.SUCCESS)]
    before = _peak_rss_bytes(process.pid)
    assert send_files(port, [bomb]) == [int(DicomStatus.OUT_OF_RESOURCES)]
    after = _peak_rss_bytes(process.pid)
    assert after - before < ALLOWED_GROWTH_BYTES, (before, after)
    again = hand_file(tmp_path / "again.dcm", seed=3)
    assert send_files(port, [again]) == [int(DicomStatus.SUCCESS)]
