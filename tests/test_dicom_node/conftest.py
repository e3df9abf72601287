"""Fixtures for the dicom_node tests: a throwaway PostgreSQL server, databases, settings."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopback import free_port
from node_testing import node_settings
from orthanc_server import Orthanc
from sqlalchemy import create_engine, text

from blsnode.node import Node
from dicom_node.db import Database, open_database
from dicom_node.settings import Settings

_database_counter = itertools.count()


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    found = shutil.which("initdb")
    if found:
        candidates.append(found)
    if not candidates:
        pytest.fail("PostgreSQL not installed (scripts/install-system-packages.sh)", pytrace=False)
    return Path(candidates[-1]).parent


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` system user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the whole session on a free loopback port; yields its base URL."""
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="blsnode-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data = root / "data"
    port = free_port()
    subprocess.run(
        _as_postgres_user(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "node", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://node@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            ),
            check=True,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def make_postgres_database(server_url: str) -> str:
    """Create an empty database on the test server and return its URL."""
    name = f"blsnode_test_{os.getpid()}_{next(_database_counter)}"
    admin = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server_url}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return make_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database on each back end."""
    db = open_database(database_url)
    try:
        yield db
    finally:
        db.dispose()


@dataclass
class RunningNode:
    """A node started in this process (listener, publisher, health endpoint)."""

    node: Node
    settings: Settings

    @property
    def port(self) -> int:
        return self.settings.network.port

    @property
    def http_port(self) -> int:
        return self.settings.http.port

    @property
    def database(self) -> Database:
        assert self.node.database is not None
        return self.node.database


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., RunningNode]]:
    """Start nodes with test settings (plus overrides); all are stopped afterwards."""
    started: list[Node] = []

    def _start(**overrides: Any) -> RunningNode:
        settings = node_settings(tmp_path / f"node{len(started)}", **overrides)
        node = Node(settings)
        node.start()
        started.append(node)
        return RunningNode(node, settings)

    yield _start
    for node in started:
        node.stop()


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    """An Orthanc configured on free ports, not yet started (tests start it when they want)."""
    server = Orthanc(tmp_path / "orthanc")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def running_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """One started Orthanc shared by a module's tests (each checks only its own UIDs)."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    try:
        yield server
    finally:
        server.stop()
