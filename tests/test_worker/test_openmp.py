"""The worker's OpenMP wait policy: passive unless the environment chose one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from worker.openmp import DEFAULT_WAIT_POLICY, WAIT_POLICY_VARIABLE, prefer_passive_waiting

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_passive_is_set_only_when_nothing_was_chosen() -> None:
    empty: dict[str, str] = {}
    assert prefer_passive_waiting(empty) == DEFAULT_WAIT_POLICY == "PASSIVE"
    assert empty == {WAIT_POLICY_VARIABLE: "PASSIVE"}
    chosen = {WAIT_POLICY_VARIABLE: "ACTIVE"}
    assert prefer_passive_waiting(chosen) == "ACTIVE"
    assert chosen == {WAIT_POLICY_VARIABLE: "ACTIVE"}


def _policy_seen_by_a_new_worker_process(extra: dict[str, str]) -> str:
    """What a fresh process that imports a worker module has in its environment."""
    env = {k: v for k, v in os.environ.items() if k != WAIT_POLICY_VARIABLE}
    env |= extra
    script = (
        "import sys, os\n"
        "import worker.pipeline\n"  # imports torch through blsgan_core
        "print(sys.modules['worker'].TORCH_LOADED_FIRST, 'torch' in sys.modules)\n"
        f"print(os.environ['{WAIT_POLICY_VARIABLE}'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    order, policy = done.stdout.split("\n")[:2]
    assert order == "False True"  # the policy was set before torch was loaded
    return policy


def test_importing_the_worker_sets_the_policy_before_torch_loads() -> None:
    assert _policy_seen_by_a_new_worker_process({}) == "PASSIVE"
    assert _policy_seen_by_a_new_worker_process({WAIT_POLICY_VARIABLE: "ACTIVE"}) == "ACTIVE"
