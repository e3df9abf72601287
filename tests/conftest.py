"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout, or ``BLSNODE_SHARED_DATA`` if set."""
    configured = os.environ.get("BLSNODE_SHARED_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real data set; fails (never skips) with a clear message when missing."""
    path = shared_data_dir()
    if not (path / "mcp_joints" / "manifest.json").is_file():
        pytest.fail(
            f"shared data not found at {path}: the tests need ../shared/data beside the "
            "checkout (or BLSNODE_SHARED_DATA pointing at it)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def mcp_joints_dir(shared_data: Path) -> Path:
    """The MCP joint crops with bone masks."""
    return shared_data / "mcp_joints"


@pytest.fixture(scope="session")
def hand_radiographs_dir(shared_data: Path) -> Path:
    """The full hand radiographs with landmarks."""
    return shared_data / "hand_radiographs"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own BLSNODE_* settings."""
    for name in list(os.environ):
        if name.startswith("BLSNODE_") and name != "BLSNODE_SHARED_DATA":
            monkeypatch.delenv(name)
