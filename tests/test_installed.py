"""The suite tests the product as installed, not the repository's folders."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from installed import blsnode_command, user_environment

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_distribution_is_installed_with_its_entry_point() -> None:
    distribution = importlib.metadata.distribution("blsgan-node")
    scripts = {e.name: e.value for e in distribution.entry_points if e.group == "console_scripts"}
    assert scripts == {"blsnode": "blsnode.cli.main:main"}


def test_every_package_imports_from_outside_the_repository(tmp_path: Path) -> None:
    """From a folder outside the checkout, with no PYTHONPATH, as a user runs it."""
    code = (
        "import blsnode, blsgan_core, dicom_node, trainer, worker\n"
        "import blsnode.cli.worker, worker.celery_app\n"
        "from blsnode.node import embedded_worker_available\n"
        "print(embedded_worker_available())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"


def test_blsnode_runs_from_a_fresh_folder(tmp_path: Path) -> None:
    """A fresh data folder is created; no migration chatter, no library web link."""
    done = subprocess.run(
        blsnode_command("--data-dir", tmp_path / "new" / "data", "status"),
        cwd=tmp_path,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "instances" in done.stdout
    assert "Context impl" not in done.stderr and "alembic" not in done.stderr.lower()
    assert (tmp_path / "new" / "data" / "blsnode.db").is_file()


def test_a_data_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = subprocess.run(
        blsnode_command("--data-dir", blocker / "data", "destinations", "list"),
        cwd=tmp_path,
        env=user_environment(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert f"cannot create the data folder {blocker / 'data'}" in done.stderr
    assert "http" not in done.stderr and "Traceback" not in done.stderr


def test_no_product_module_below_the_application_names_it() -> None:
    """DESIGN.md's rooms: nothing below ``blsnode`` names it, not even as a string."""
    offenders = []
    for package in ("dicom_node", "worker", "trainer", "blsgan_core"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "blsnode.cli" in text or "blsnode.node" in text or "import blsnode" in text:
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_trainer_and_core_do_not_reach_the_dicom_side() -> None:
    offenders = []
    for package, forbidden in (
        ("trainer", ("dicom_node", "worker")),
        ("blsgan_core", ("dicom_node", "worker", "trainer")),
        ("dicom_node", ("worker.", "trainer.", "blsgan_core", "torch")),
    ):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                stripped = line.strip()
                if stripped.startswith(("import ", "from ")) and any(
                    stripped.split()[1].startswith(name) for name in forbidden
                ):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}: {stripped}")
    assert offenders == []
