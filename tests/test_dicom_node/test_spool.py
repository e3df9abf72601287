"""The spool's durable write: exact bytes in place, nothing half-written, the disk guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicom_node.receive.spool import DiskFullError, Spool


def test_write_places_the_exact_bytes_and_leaves_no_temporary(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 0)
    target = spool.path_for("1.2", "1.2.3", "1.2.3.4")
    body = bytes(range(256)) * 1000
    spooled = spool.write(target, [b"meta", memoryview(body)[10:]])
    assert spooled.path == target
    assert spooled.size_bytes == 4 + len(body) - 10
    assert target.read_bytes() == b"meta" + body[10:]
    assert list(spool.incoming.iterdir()) == []
    # A second instance of the series goes into the existing folder.
    second = spool.write(spool.path_for("1.2", "1.2.3", "1.2.3.5"), [b"x"])
    assert sorted(p.name for p in target.parent.iterdir()) == ["1.2.3.4.dcm", "1.2.3.5.dcm"]
    assert second.path.read_bytes() == b"x"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 0)
    (spool.root / "1.2").write_bytes(b"a file where the study folder belongs")
    target = spool.path_for("1.2", "1.2.3", "1.2.3.4")
    with pytest.raises(OSError):
        spool.write(target, [b"meta", b"body"])
    assert not target.exists()
    assert list(spool.incoming.iterdir()) == []
    assert [p.name for p in spool.root.iterdir() if p.name != ".incoming"] == ["1.2"]


def test_a_temporary_name_left_by_a_crash_is_skipped_not_overwritten(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 0)
    target = spool.path_for("1.2", "1.2.3", "1.2.3.4")
    target.parent.mkdir(parents=True)
    # Temporary files live beside their target, hidden and never named *.dcm.
    stale = target.parent / f".blsnode-{os.getpid()}-0.part"
    stale.write_bytes(b"left by a process that died")
    spool.write(target, [b"new"])
    assert list(spool.spooled_files()) == [target]
    assert target.read_bytes() == b"new"
    assert stale.read_bytes() == b"left by a process that died"


def test_disk_guard_refuses_on_a_fresh_reading_and_accepts_as_soon_as_space_returns(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool", 0)
    free = spool.free_bytes()
    spool.min_free_bytes = free - (64 << 20)
    spool.check_space(40 << 20)  # accepted; this reading is reused for a second
    # The guard moves above the free space (as if the disk filled up): refused at once.
    spool.min_free_bytes = free + (1 << 30)
    with pytest.raises(DiskFullError, match="under the guard"):
        spool.check_space(1)
    # Space is back within the same second: accepted at once, not after the reading ages.
    spool.min_free_bytes = free - (64 << 20)
    spool.check_space(40 << 20)
    spool.check_space(40 << 20)


class _ScriptedDisk(Spool):
    """A spool whose file system reports the free space the test sets."""

    free = 0

    def free_bytes(self) -> int:
        return self.free


def test_a_refusal_is_not_cached(tmp_path: Path) -> None:
    spool = _ScriptedDisk(tmp_path / "spool", 1000)
    spool.free = 500
    with pytest.raises(DiskFullError):
        spool.check_space(1)
    # Space returns within a reading's lifetime: the sender's retry is accepted at once.
    spool.free = 10_000
    spool.check_space(1)
    # An accepted reading is trusted for a while (minus what was accepted since).
    spool.free = 0
    spool.check_space(1)
