"""Whether the listener is refusing instances for want of resources right now.

The disk guard's reading of free space is not the whole story: with the guard at 0 a
full disk fails every write, and a failing database refuses every instance too, while
the free space looks fine. The health endpoint asks this record instead of guessing.
"""

from __future__ import annotations

import threading
import time

from dicom_node.dimse_status import DicomStatus

# Outcomes of ``Ingestor.ingest`` that mean the node itself could not store.
RESOURCE_OUTCOMES = frozenset({"disk_full", "error"})


class Refusals:
    """The node refuses from the first resource failure until an instance is stored again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._outcome: str | None = None

    def record(self, status: DicomStatus, outcome: str) -> None:
        """Note the answer to one C-STORE."""
        with self._lock:
            if status is DicomStatus.SUCCESS:
                self._since, self._outcome = None, None
            elif status is DicomStatus.OUT_OF_RESOURCES and outcome in RESOURCE_OUTCOMES:
                if self._since is None:
                    self._since = time.monotonic()
                self._outcome = outcome

    def refusing(self) -> tuple[str, float] | None:
        """(last outcome, seconds since the refusals began), or ``None`` when storing."""
        with self._lock:
            if self._since is None or self._outcome is None:
                return None
            return self._outcome, time.monotonic() - self._since
