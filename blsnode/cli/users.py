"""``blsnode users add|remove|passwd|list``: who may log in to the web dashboard."""

from __future__ import annotations

import sys
from typing import Any

import click

from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.database import command_database
from dicom_node.admin import users as admin
from dicom_node.db import Role
from dicom_node.settings import Settings

password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    required=True,
    help="Read the password from the first line of standard input (never from arguments).",
)


def _read_password() -> str:
    """The first line of standard input without its line break."""
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on standard input")
    return password


@click.group()
def users() -> None:
    """Add, remove and list the users of the web dashboard."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@password_stdin_option
@json_option
@pass_settings
def add(settings: Settings, name: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add user NAME with a role (admin changes the node, viewer only looks)."""
    password = _read_password()
    with command_database(settings) as database, exit_on_value_error():
        report = admin.add(database, name, role, password)
    emit(report, as_json, lambda r: f"added {r['added']} ({r['role']})")


@users.command("remove")
@click.argument("name")
@json_option
@pass_settings
def remove(settings: Settings, name: str, as_json: bool) -> None:
    """Remove user NAME."""
    with command_database(settings) as database, exit_on_value_error():
        report = admin.remove(database, name)
    emit(report, as_json, lambda r: f"removed {r['removed']}")


@users.command("passwd")
@click.argument("name")
@password_stdin_option
@json_option
@pass_settings
def passwd(settings: Settings, name: str, password_stdin: bool, as_json: bool) -> None:
    """Give user NAME a new password."""
    password = _read_password()
    with command_database(settings) as database, exit_on_value_error():
        report = admin.change_password(database, name, password)
    emit(report, as_json, lambda r: f"password of {r['password_changed']} changed")


@users.command("list")
@json_option
@pass_settings
def list_(settings: Settings, as_json: bool) -> None:
    """Every user and their role."""
    with command_database(settings) as database:
        report = admin.listing(database)
    emit(report, as_json, _table)


def _table(report: dict[str, Any]) -> str:
    if not report["users"]:
        return "no users (the web dashboard stays off until one is added)"
    return "\n".join(f"{u['name']:32} {u['role']:8} {u['created_at']}" for u in report["users"])
