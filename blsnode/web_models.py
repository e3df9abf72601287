"""The dashboard's models page, answered by the ``blsnode models`` commands.

Reading the registry imports torch (``blsgan_core.checkpoint``), which the node's own
process never loads (its worker runs apart); so each look-up runs the command in a child
process, the same code and output as ``blsnode models list --json``. A page takes the
child's start-up time (a few seconds); it is visited rarely.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

COMMAND_TIMEOUT_S = 120.0


class CommandModels:
    """``ModelsProvider`` of ``dicom_node.web.app`` through ``blsnode models``."""

    def __init__(self, config_file: Path | None, data_dir: Path | None) -> None:
        self.prefix = [sys.executable, "-m", "blsnode"]
        if config_file is not None:
            self.prefix += ["--config", str(config_file)]
        if data_dir is not None:
            self.prefix += ["--data-dir", str(data_dir)]

    def _run(self, command: str, *arguments: str) -> dict[str, Any]:
        # "--": a name from a URL is never taken for an option.
        try:
            done = subprocess.run(
                [*self.prefix, "models", command, "--json", "--", *arguments],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ValueError(f"blsnode models {command} did not answer: {error}") from error
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            raise ValueError(lines[-1].removeprefix("Error: "))
        data = json.loads(done.stdout)
        if not isinstance(data, dict):
            raise ValueError("blsnode models answered something other than a JSON object")
        return data

    def listing(self) -> dict[str, Any]:
        """What ``blsnode models list --json`` says."""
        return self._run("list")

    def promote(self, name: str) -> dict[str, Any]:
        """What ``blsnode models promote NAME --json`` says."""
        return self._run("promote", name)
