"""Whether the listener is refusing instances for want of resources right now.

The disk guard's reading of free space is not the whole story: with the guard at 0 a
full disk fails every write, and a failing database refuses every instance too, while
the free space looks fine. The health endpoint asks this record instead of guessing.
"""

from __future__ import annotations

import threading
import time

from dicom_node.dimse_status import DicomStatus

# Outcomes of ``Ingestor.ingest`` that mean the node itself could not store. The disk
# guard's refusals ("disk_full") are not among them: its reading is in the health report
# already, and recovers as soon as space returns.
RESOURCE_OUTCOMES = frozenset({"error"})
# A refusal is news for this long; without another one the node counts as storing again
# (the sender retries, and a success ends the refusing state at once).
REFUSAL_MEMORY_S = 60.0


class Refusals:
    """Refusing: a resource failure, no instance stored since, and not long ago."""

    def __init__(self, memory_s: float = REFUSAL_MEMORY_S) -> None:
        if memory_s <= 0:
            raise ValueError(f"memory_s must be positive, not {memory_s}")
        self.memory_s = memory_s
        self._lock = threading.Lock()
        self._last: tuple[float, str] | None = None

    def record(self, status: DicomStatus, outcome: str) -> None:
        """Note the answer to one C-STORE."""
        with self._lock:
            if status is DicomStatus.SUCCESS:
                self._last = None
            elif status is DicomStatus.OUT_OF_RESOURCES and outcome in RESOURCE_OUTCOMES:
                self._last = (time.monotonic(), outcome)

    def refusing(self) -> tuple[str, float] | None:
        """(outcome, seconds since) of the last refusal that still counts, else ``None``."""
        with self._lock:
            if self._last is None:
                return None
            age = time.monotonic() - self._last[0]
            return None if age > self.memory_s else (self._last[1], age)
