"""Fixtures of the dashboard tests: a node with users, a failure and a dead letter, and a
radiograph really processed with the shipped models.

The helper modules of ``tests/test_dicom_node`` and ``tests/test_worker`` are put on
``sys.path`` here (as ``tests/e2e`` does) so this folder runs on its own too.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for helpers in (TESTS / "test_dicom_node", TESTS / "test_worker"):
    if str(helpers) not in sys.path:
        sys.path.append(str(helpers))

from web_testing import ADMIN, VIEWER, WebNode, open_web_node, process_radiograph  # noqa: E402


@pytest.fixture
def web_node(tmp_path: Path, hand_radiographs_dir: Path) -> Iterator[WebNode]:
    """A fresh node: an admin and a viewer, a failed job, a dead dispatch, a destination."""
    node = open_web_node(tmp_path / "node", hand_radiographs_dir, users=(ADMIN, VIEWER))
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="session")
def processed_node(
    tmp_path_factory: pytest.TempPathFactory, hand_radiographs_dir: Path
) -> Iterator[WebNode]:
    """A node holding one left-hand DX processed by the worker with the shipped models."""
    node = open_web_node(
        tmp_path_factory.mktemp("processed") / "node", hand_radiographs_dir, users=(ADMIN, VIEWER)
    )
    try:
        process_radiograph(node, hand_radiographs_dir)
        yield node
    finally:
        node.close()


@pytest.fixture
def record(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Screenshots taken by a test, copied to ``<basetemp>/screenshots`` at its end."""
    shots: list[Path] = []
    yield shots
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    for shot in shots:
        shutil.copy(shot, folder / shot.name)
