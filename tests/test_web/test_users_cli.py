"""``blsnode users``: add, list, passwd, remove; passwords only from standard input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from blsnode.cli.main import cli
from dicom_node.admin.users import authenticate
from dicom_node.db import Role, open_database
from dicom_node.settings import load_settings


def _run(data_dir: Path, *args: str, password: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "users", *args], input=password)
    return result.exit_code, result.output


def test_users_are_added_listed_changed_and_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = _run(data, "add", "alice", "--role", "admin", "--password-stdin",
                     password="first-password\n")  # fmt: skip
    assert code == 0 and out.strip() == "added alice (admin)"
    code, out = _run(data, "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(out)["users"]] == [("alice", "admin")]
    assert "hash" not in out and "first-password" not in out
    code, out = _run(data, "passwd", "alice", "--password-stdin", password="second-password\n")
    assert code == 0
    database = open_database(load_settings(data_dir=data).database_url)
    try:
        assert authenticate(database, "alice", "first-password") is None
        identity = authenticate(database, "alice", "second-password")
        assert identity is not None and identity.role is Role.ADMIN
    finally:
        database.dispose()
    code, out = _run(data, "remove", "alice")
    assert code == 0 and out.strip() == "removed alice"
    code, out = _run(data, "list")
    assert "no users" in out


def test_bad_users_and_passwords_are_refused_with_a_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = _run(data, "add", "bob", "--role", "viewer", "--password-stdin", password="short\n")
    assert code == 1 and "at least 10 characters" in out
    code, out = _run(data, "add", "../bob", "--role", "viewer", "--password-stdin",
                     password="long-enough-pw\n")  # fmt: skip
    assert code == 1 and "invalid user name" in out
    code, out = _run(data, "add", "bob", "--role", "root", "--password-stdin",
                     password="long-enough-pw\n")  # fmt: skip
    assert code == 2 and "'root' is not one of" in out
    code, out = _run(data, "add", "bob", "--role", "viewer", "--password-stdin", password="")
    assert code == 2 and "no password on standard input" in out
    _run(data, "add", "bob", "--role", "viewer", "--password-stdin", password="long-enough-pw\n")
    code, out = _run(data, "add", "bob", "--role", "admin", "--password-stdin",
                     password="long-enough-pw\n")  # fmt: skip
    assert code == 1 and "already exists" in out
    code, out = _run(data, "passwd", "carol", "--password-stdin", password="long-enough-pw\n")
    assert code == 1 and "no user called 'carol'" in out
    code, out = _run(data, "remove", "carol")
    assert code == 1 and "no user called 'carol'" in out
