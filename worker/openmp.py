"""How torch's OpenMP threads wait for work: sleep (passive), not spin, by default.

GNU OpenMP, which torch's CPU kernels use, lets an idle worker thread spin for a while
before it sleeps. On a machine of its own that saves a few microseconds per operator;
on a node whose cores are shared (the DICOM listener, the database, a second worker,
other services) the spinning threads take the cores from the thread that has work, and
every operator waits for a descheduled partner. Measured on the shared 2-core
development VM (load average 5-6), one-hand radiograph with 2 torch threads: 7.3 s wall
and 3.1 s CPU with the default policy, 1.7 s wall and 1.0 s CPU with ``PASSIVE``
(``docs/worker.md``, benchmark section).

OpenMP reads the policy once, when torch loads it, so it must be in the environment
before ``import torch``; ``worker/__init__.py`` applies it before any worker module
imports torch. An explicit ``OMP_WAIT_POLICY`` in the environment always wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"
DEFAULT_WAIT_POLICY = "PASSIVE"


def prefer_passive_waiting(environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless already set; returns the policy in force."""
    target = os.environ if environ is None else environ
    return target.setdefault(WAIT_POLICY_VARIABLE, DEFAULT_WAIT_POLICY)
