"""Fixtures of the end-to-end tests: the helpers of the package tests, a model registry.

The end-to-end tests reuse the helper modules of ``tests/test_dicom_node`` (settings, senders,
dcmtk) and ``tests/test_worker`` (Redis, storescp, the small BLS-GAN). pytest puts a test
folder on ``sys.path`` only when it collects it, so they are added here for runs of
``tests/e2e`` alone; their module names are unique across the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for helpers in (TESTS / "test_dicom_node", TESTS / "test_worker"):
    if str(helpers) not in sys.path:
        sys.path.append(str(helpers))

from worker_testing import promote_blsgan  # noqa: E402


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model registry with the worker tests' small BLS-GAN promoted.

    No trained BLS-GAN ships yet: its layers are not meaningful, but every file and DICOM
    object downstream of it is real. The localiser and the segmenter are the weights
    shipped with the package.
    """
    registry = tmp_path_factory.mktemp("e2e-models") / "registry"
    promote_blsgan(registry)
    return registry
