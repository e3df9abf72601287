"""Where a model came from, for its card: source commit, training command, data digest.

Every trainer (BLS-GAN, localiser, segmenter) records these the same way, so that the
cards of all kinds can be compared field by field.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

from blsgan_core.checkpoint import file_digest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DIRTY = "+dirty"
# Changes here never reach a trainer: they do not make the source dirty.
NOT_TRAINING_CODE = ("tests/",)


def source_commit(root: Path = PACKAGE_ROOT) -> str | None:
    """The git commit of the source tree, ``+dirty`` if the code differs from it.

    Untracked files count too (a new module is untracked until committed), except under
    ``tests/``, which no trainer imports. ``None`` for an installed package outside a git
    checkout: a card then says so instead of guessing.
    """
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    dirty = any(not path.startswith(NOT_TRAINING_CODE) for path in changed)
    return commit + (DIRTY if dirty else "")


def module_command(argv: list[str]) -> str:
    """``python -m package.module args`` for a trainer started by path or with ``-m``."""
    program, *rest = argv
    path = Path(program)
    if path.suffix == ".py" and "trainer" in path.parts:
        parts = path.with_suffix("").parts
        program = "-m " + ".".join(parts[parts.index("trainer") :])
    return " ".join(["python", program, shlex.join(rest)])


def command_line() -> str:
    """How this process was started, for the model card."""
    return module_command(sys.argv)


def files_digest(root: Path, files: list[Path]) -> str:
    """SHA-256 over the relative paths and contents of ``files``: the training data's id."""
    digest = hashlib.sha256()
    root = root.resolve()
    for path in sorted(p.resolve() for p in files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()
