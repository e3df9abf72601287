"""An embedded worker exits when the ``blsnode serve`` that started it dies.

``serve`` stops its worker on SIGTERM, but a SIGKILL (the OOM killer, ``kill -9``, a
crashed supervisor) gives it no chance: the worker would live on as an orphan, holding
its models in memory and taking messages for a node that is gone, and a restarted
``serve`` would start a second one beside it. Two lines of defence:

- Linux: ``prctl(PR_SET_PDEATHSIG)`` asks the kernel to send SIGTERM when the parent
  dies. The kernel watches the parent *thread* that forked us; ``serve`` starts the worker
  from its main thread, which lives as long as the node.
- Anywhere: a thread compares ``os.getppid()`` with the parent's pid every second (an
  orphan is adopted by init or a subreaper) and sends SIGTERM to this process. It also
  catches a parent that died before the ``prctl`` call.

SIGTERM is the worker's warm shutdown: a job in progress finishes and is recorded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL_S = 1.0


def set_parent_death_signal(signum: signal.Signals = signal.SIGTERM) -> bool:
    """Have the kernel send ``signum`` when the parent dies; False where Linux's prctl is absent."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    return True


def exit_with_parent(
    parent_pid: int,
    signum: signal.Signals = signal.SIGTERM,
    interval_s: float = WATCH_INTERVAL_S,
    kernel: bool = True,
) -> threading.Thread:
    """Send ``signum`` to this process as soon as process ``parent_pid`` is no longer its parent.

    ``kernel=False`` leaves out the Linux ``prctl`` (the watchdog alone, as elsewhere).
    Returns the (daemon) watchdog thread.
    """
    if isinstance(parent_pid, bool) or not isinstance(parent_pid, int) or parent_pid < 1:
        raise ValueError(f"parent_pid must be a process id, not {parent_pid!r}")
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, not {interval_s}")
    kernel = kernel and set_parent_death_signal(signum)
    watchdog = threading.Thread(
        target=_watch, args=(parent_pid, signum, interval_s), name="blsnode-lifeline", daemon=True
    )
    watchdog.start()
    logger.info(
        "worker exits with its parent",
        extra={"parent_pid": parent_pid, "kernel_signal": kernel},
    )
    return watchdog


def _watch(parent_pid: int, signum: signal.Signals, interval_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    logger.warning("parent process %d is gone; stopping this worker", parent_pid)
    os.kill(os.getpid(), signum)
