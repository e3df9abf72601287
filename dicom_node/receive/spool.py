"""The spool: received instances on disk, written durably before anyone is told "stored".

Layout: ``<spool>/<study UID>/<series UID>/<SOP Instance UID>.dcm``, exactly the bytes
that arrived (Part 10 file meta, then the data set as encoded by the sender). A file is
written to a hidden temporary file in its series folder, fdatasynced, renamed into place
(atomic), and the folder is fsynced so the rename survives a power cut. The temporary
file sits beside its target because a rename within one folder journals one directory,
not two: on ext4 both flushes took about half as long as with a separate ``.incoming``
folder (which older versions used and which is still cleaned at start-up).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pynetdicom.dsutils import split_dataset

from dicom_node.receive.header import is_valid_uid

logger = logging.getLogger(__name__)

INCOMING = ".incoming"
# Temporary files: hidden, and never ``*.dcm``, so no scan mistakes them for instances.
PART_PREFIX = ".blsnode-"
PART_SUFFIX = ".part"
# How long a free-space reading is trusted (minus what this spool wrote since): statvfs on
# every C-STORE costs a system call for a figure that moves slowly.
FREE_SPACE_TTL_S = 1.0
# Attempts at a fresh temporary name before giving up (names left by a dead process with
# the same pid are skipped).
_TEMPORARY_ATTEMPTS = 100


class DiskFullError(OSError):
    """Free space would fall under the configured guard."""


@dataclass(frozen=True)
class SpooledFile:
    """A file durably in the spool."""

    path: Path
    size_bytes: int


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a write may take only part of it)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(descriptor, view)
        if written == 0:
            raise OSError(f"write made no progress with {len(view)} bytes left")
        view = view[written:]


class Spool:
    """Durable writes of received instances under one directory."""

    def __init__(self, root: Path, min_free_bytes: int) -> None:
        if min_free_bytes < 0:
            raise ValueError(f"min_free_bytes must be >= 0, not {min_free_bytes}")
        self.root = Path(root)
        self.min_free_bytes = min_free_bytes
        self.incoming = self.root / INCOMING
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._names = itertools.count()
        self._free_lock = threading.Lock()
        # (monotonic time of the reading, free bytes then minus bytes spooled since)
        self._free: tuple[float, int] | None = None

    def free_bytes(self) -> int:
        """Free bytes on the spool's file system (for unprivileged users)."""
        return shutil.disk_usage(self.root).free

    def check_space(self, incoming_bytes: int) -> None:
        """Raise ``DiskFullError`` if storing ``incoming_bytes`` would breach the guard.

        The file system is asked at most every ``FREE_SPACE_TTL_S`` while instances are
        accepted (the bytes accepted since are subtracted from the last reading), and
        always before one is refused, so a refusal never outlasts the shortage.
        """
        with self._free_lock:
            now = time.monotonic()
            if self._free is None or now - self._free[0] > FREE_SPACE_TTL_S:
                self._free = (now, self.free_bytes())
            read_at, free = self._free
            if free - incoming_bytes < self.min_free_bytes and read_at != now:
                read_at, free = now, self.free_bytes()
                self._free = (read_at, free)
            if free - incoming_bytes < self.min_free_bytes:
                raise DiskFullError(
                    f"free space {free} B minus {incoming_bytes} B incoming is under the "
                    f"guard of {self.min_free_bytes} B"
                )
            self._free = (read_at, free - incoming_bytes)

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        """Where an instance lives; UIDs are validated because they become file names."""
        for uid in (study_uid, series_uid, sop_instance_uid):
            if not is_valid_uid(uid):
                raise ValueError(f"not a valid UID (refusing it as a file name): {uid!r}")
        return self.root / study_uid / series_uid / f"{sop_instance_uid}.dcm"

    def write(self, target: Path, parts: list[bytes | memoryview]) -> SpooledFile:
        """Write ``parts`` to ``target`` durably; on any error nothing is left behind."""
        size = sum(len(part) for part in parts)
        self.check_space(size)
        created = self._make_parents(target.parent)
        temporary, descriptor = self._create_temporary(target.parent)
        placed = False
        try:
            try:
                for part in parts:
                    _write_all(descriptor, part)
                # Data and size; the name is made durable by the directory fsync below.
                os.fdatasync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, target)
            placed = True
            _fsync_directory(target.parent)
            for directory in created:
                _fsync_directory(directory.parent)
        except BaseException:
            temporary.unlink(missing_ok=True)
            if placed:
                # Renamed but not known to be durable: the caller answers failure, so the
                # file must not stay to be mistaken for a stored instance.
                target.unlink(missing_ok=True)
            raise
        return SpooledFile(path=target, size_bytes=size)

    def _create_temporary(self, directory: Path) -> tuple[Path, int]:
        """A new, empty temporary file in ``directory`` and its descriptor.

        Named by process id and a counter (``tempfile.mkstemp`` spends more on its random
        names than the open itself); ``O_EXCL`` still refuses to reuse an existing file.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(_TEMPORARY_ATTEMPTS):
            path = directory / f"{PART_PREFIX}{os.getpid()}-{next(self._names)}{PART_SUFFIX}"
            try:
                return path, os.open(path, flags, 0o600)
            except FileExistsError:
                logger.warning("temporary file %s exists (left by a crash?); trying another", path)
        raise FileExistsError(
            f"no free temporary name in {directory} after {_TEMPORARY_ATTEMPTS} attempts"
        )

    def _make_parents(self, directory: Path) -> list[Path]:
        """Create missing directories up to the spool root; return those created."""
        if directory.is_dir():
            # The series folder exists for every instance but the first of a series.
            return []
        created: list[Path] = []
        current = directory
        while not current.exists() and current != self.root:
            created.append(current)
            current = current.parent
        directory.mkdir(parents=True, exist_ok=True)
        return created

    def _series_folders(self, changed_since: float) -> Iterator[Path]:
        for study in sorted(self.root.iterdir()):
            if study.name.startswith(".") or not study.is_dir():
                continue
            for series in sorted(study.iterdir()):
                if series.is_dir() and series.stat().st_mtime >= changed_since:
                    yield series

    def spooled_files(self, changed_since: float = 0.0) -> Iterator[Path]:
        """Spooled files in series folders modified at or after ``changed_since`` (epoch s)."""
        for series in self._series_folders(changed_since):
            yield from sorted(series.glob("*.dcm"))

    def remove_stale_parts(self, older_than_s: float, changed_since: float = 0.0) -> int:
        """Delete temporary files left by writes that never finished (a crash).

        Looks in ``.incoming`` and in series folders modified at or after
        ``changed_since`` (a crash in the middle of a write modified its folder).
        """
        limit = time.time() - older_than_s
        parts = list(self.incoming.glob(f"*{PART_SUFFIX}"))
        for series in self._series_folders(changed_since):
            parts.extend(series.glob(f"{PART_PREFIX}*{PART_SUFFIX}"))
        removed = 0
        for part in parts:
            if part.stat().st_mtime < limit:
                part.unlink(missing_ok=True)
                removed += 1
        return removed

    def remove(self, path: Path) -> None:
        """Delete a spooled file (after its database row is gone or was never committed)."""
        path.unlink(missing_ok=True)


def spooled_body_equals(path: Path, body: bytes | memoryview) -> bool:
    """True if the spooled file at ``path`` holds the data set ``body`` after its file meta.

    The file meta differs between copies (the calling AE title is in it); the data set
    is what was sent.
    """
    size = path.stat().st_size
    if size < len(body):
        return False
    with path.open("rb") as handle:
        handle.seek(size - len(body))
        if handle.read(len(body)) != bytes(body):
            return False
    _, offset = split_dataset(path)
    return offset == size - len(body)
