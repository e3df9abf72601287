"""The embedded worker of ``blsnode serve``: started, watched, restarted, stopped.

On a single machine the embedded worker is the only one: if it dies (the OOM killer, a
crash in a native library), nothing would process jobs until someone restarted
``serve``. A supervising thread starts it again, after 1 s, doubling to 60 s while it
keeps dying soon after each start; the sweeper then queues again the job the dead
worker held (``worker.job_lease_s``). The child gets ``--parent-pid``, so it exits by
itself if ``serve`` is killed without stopping it (``worker.lifeline``). Linux sends
that parent-death signal when the *thread* that started the child ends: every child is
started by the supervising thread, which lives until ``stop``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 60.0
# A worker that ran this long before it died was healthy: the next restart is quick.
HEALTHY_AFTER_S = 60.0
CHECK_INTERVAL_S = 0.5


class EmbeddedWorker:
    """One child process kept running until ``stop``."""

    def __init__(
        self,
        argv: Sequence[str],
        on_restart: Callable[[], None] | None = None,
        restart_delay_s: float = RESTART_DELAY_S,
        max_restart_delay_s: float = MAX_RESTART_DELAY_S,
    ) -> None:
        if not argv:
            raise ValueError("the worker's command line must not be empty")
        if restart_delay_s <= 0 or max_restart_delay_s < restart_delay_s:
            raise ValueError(
                f"restart delays must satisfy 0 < {restart_delay_s} <= {max_restart_delay_s}"
            )
        self.argv = [*argv, "--parent-pid", str(os.getpid())]
        self.on_restart = on_restart
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._supervise, name="blsnode-worker-supervisor", daemon=True
        )

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The current child (``None`` before the first start)."""
        return self._process

    def alive(self) -> bool:
        """True while a child runs."""
        process = self._process
        return process is not None and process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the child (from the supervising thread) and return once it runs."""
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError(f"embedded worker did not start within {timeout_s} s")
        if self._process is None:
            raise RuntimeError(f"embedded worker could not be started: {self.argv}")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the child (warm shutdown), SIGKILL it after ``timeout_s``; its exit status."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(CHECK_INTERVAL_S * 4)
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("embedded worker did not stop in time; killing it")
                process.kill()
                process.wait()
        return process.returncode

    def _spawn(self) -> float:
        """Start one child; the monotonic time it started."""
        self._process = subprocess.Popen(self.argv)
        logger.info("embedded worker started", extra={"pid": self._process.pid})
        return time.monotonic()

    def _supervise(self) -> None:
        try:
            started_at = self._spawn()
        except OSError:
            logger.exception("embedded worker could not be started")
            return
        finally:
            self._started.set()
        delay = self.restart_delay_s
        while not self._stopping.wait(CHECK_INTERVAL_S):
            process = self._process
            if process is None or process.poll() is None:
                continue
            lived = time.monotonic() - started_at
            if lived >= HEALTHY_AFTER_S:
                delay = self.restart_delay_s
            logger.error(
                "embedded worker exited with status %s after %.0f s; restarting in %.0f s",
                process.returncode,
                lived,
                delay,
            )
            if self._stopping.wait(delay):
                return
            try:
                started_at = self._spawn()
            except OSError:
                logger.exception("embedded worker could not be restarted")
                started_at = time.monotonic()
                continue
            finally:
                delay = min(delay * 2, self.max_restart_delay_s)
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
