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

import click

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


def invocation(ctx: click.Context, program: str) -> str:
    """``program`` and the arguments and options ``ctx`` was given, as a shell line (for
    the model card).

    Rebuilt from the parsed parameters rather than copied from ``sys.argv``, so that it
    is right however the command was invoked (console script, ``python -m``, tests), with
    option defaults left out; arguments come in their declared order, before the options.
    """
    words = shlex.split(program)
    for param in ctx.command.params:
        if isinstance(param, click.Argument) and param.name is not None:
            given = ctx.params.get(param.name)
            items = given if isinstance(given, tuple | list) else (given,)
            words += [str(item) for item in items if item is not None]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = ctx.params.get(param.name)
        if value is None or value is False or value == () or value == param.default:
            continue
        flag = max(param.opts, key=len)
        values = value if param.multiple else (value,)
        for item in values:
            words += [flag] if param.is_flag else [flag, str(item)]
    return shlex.join(words)


def module_invocation(ctx: click.Context) -> str:
    """``python -m <module> options`` of the trainer command running in ``ctx``."""
    callback = ctx.command.callback
    module = callback.__module__ if callback is not None else "?"
    if module == "__main__":  # started with python -m: the module's own name
        spec = sys.modules["__main__"].__spec__
        module = spec.name if spec is not None else sys.argv[0]
    return invocation(ctx, f"python -m {module}")


def files_digest(root: Path, files: list[Path]) -> str:
    """SHA-256 over the relative paths and contents of ``files``: the training data's id."""
    digest = hashlib.sha256()
    root = root.resolve()
    for path in sorted(p.resolve() for p in files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()
