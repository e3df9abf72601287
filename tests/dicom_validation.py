"""Run dicom3tools' ``dciodvfy`` on a file and sort what it says into errors and warnings.

Tests assert "no errors" and print the warnings, so a reviewer sees what the validator
still dislikes without failing on it. Import as ``from dicom_validation import dciodvfy``
(or ``assert_passes_dciodvfy``, which does both).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# dciodvfy writes "Error - ..." or "(0xgggg,0xeeee) VR - Error - ..." one per line.
_ERROR = re.compile(r"(^|\s-\s)Error\s-\s")
_WARNING = re.compile(r"(^|\s-\s)Warning\s-\s")


@dataclass(frozen=True)
class DciodvfyReport:
    """What dciodvfy said about one file."""

    path: Path
    iod: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def summary(self) -> str:
        """Errors and warnings as text for an assertion message or a test log."""
        lines = [f"{self.path.name} ({self.iod}): {len(self.errors)} errors"]
        lines += [f"  {line}" for line in self.errors]
        # The same warning recurs once per segment or content item: count, do not repeat.
        counts = Counter(self.warnings)
        lines += [f"  {line} (x{n})" if n > 1 else f"  {line}" for line, n in counts.items()]
        return "\n".join(lines)


def dciodvfy(path: Path | str) -> DciodvfyReport:
    """Validate ``path`` against its IOD; raise ``RuntimeError`` if dciodvfy cannot run."""
    program = shutil.which("dciodvfy")
    if program is None:
        raise RuntimeError("dciodvfy (dicom3tools) is not installed; see scripts/")
    target = Path(path)
    done = subprocess.run(
        [program, str(target)], capture_output=True, text=True, timeout=120, check=False
    )
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = tuple(line for line in lines if _ERROR.search(line))
    warnings = tuple(line for line in lines if _WARNING.search(line))
    if done.returncode != 0 and not errors:
        errors = (f"dciodvfy exited with {done.returncode}",)
    iods = [line for line in lines if not _ERROR.search(line) and not _WARNING.search(line)]
    return DciodvfyReport(target, iods[0] if iods else "?", errors, warnings)


def assert_passes_dciodvfy(path: Path | str, iod: str | None = None) -> DciodvfyReport:
    """Validate ``path``: no errors, and the IOD ``iod`` if given; warnings are printed.

    The report is returned for further checks.
    """
    report = dciodvfy(path)
    print(report.summary())
    if iod is not None and report.iod != iod:
        raise AssertionError(f"dciodvfy read a {report.iod!r}, not {iod!r}\n{report.summary()}")
    if report.errors:
        raise AssertionError(report.summary())
    return report
