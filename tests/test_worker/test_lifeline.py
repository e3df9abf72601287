"""A worker started with ``--parent-pid`` exits when its parent is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from worker.lifeline import exit_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a child which watches it, prints the child's pid, then waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = """
import os, sys, time
from worker.lifeline import exit_with_parent
kernel = sys.argv[1] == "kernel"
exit_with_parent(os.getppid(), interval_s=60 if kernel else 0.2, kernel=kernel)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """True once ``pid`` exited (a zombie nobody reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


@pytest.mark.parametrize("mode", ["kernel", "watchdog"])
def test_the_child_exits_when_its_parent_is_killed(mode: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, mode], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        time.sleep(1.0)  # the child is up and watching
        assert not gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(child), f"child {child} outlived its parent ({mode})"
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="parent_pid"):
        exit_with_parent(0)
    with pytest.raises(ValueError, match="parent_pid"):
        exit_with_parent(True)
    with pytest.raises(ValueError, match="interval_s"):
        exit_with_parent(os.getppid(), interval_s=0)
