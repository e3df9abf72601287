"""Where the code that made a model came from: the source commit for the model card."""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def source_commit(root: Path = PACKAGE_ROOT) -> str | None:
    """The git commit of the source tree (``+dirty`` if it has uncommitted changes).

    ``None`` for an installed package outside a git checkout: a card then says so
    instead of guessing.
    """
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if status else commit
