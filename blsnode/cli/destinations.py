"""``blsnode destinations add|remove|list|echo``."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.database import command_database
from dicom_node.admin import destinations as admin
from dicom_node.settings import DestinationSettings, ResultKind, SendWhat, Settings


@click.group()
def destinations() -> None:
    """Add, remove, list and C-ECHO the DICOM destinations results go to."""


@destinations.command("add")
@click.argument("name")
@click.option("--ae-title", required=True, help="The destination's AE title.")
@click.option("--host", required=True, help="Host name or address.")
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option(
    "--send",
    type=click.Choice([s.value for s in SendWhat]),
    default=SendWhat.RESULTS.value,
    show_default=True,
    help="What it receives.",
)
@click.option("--transfer-syntax", help="UID or pydicom keyword (default: as stored).")
@click.option(
    "--results",
    "results",
    multiple=True,
    type=click.Choice([kind.value for kind in ResultKind]),
    help="A kind of result it takes; repeat for several (default: every kind).",
)
@json_option
@pass_settings
def add(
    settings: Settings,
    name: str,
    ae_title: str,
    host: str,
    port: int,
    send: str,
    transfer_syntax: str | None,
    results: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a destination (stored in the node's database).

    E.g. a viewer that shows presentation states and reports only:
    ``--results pr --results sr``.
    """
    try:
        destination = DestinationSettings(
            name=name,
            ae_title=ae_title,
            host=host,
            port=port,
            send=SendWhat(send),
            transfer_syntax=transfer_syntax,
            results=[ResultKind(kind) for kind in results] or None,
        )
    except ValidationError as error:
        raise click.UsageError(f"invalid destination: {error}") from error
    with command_database(settings) as database, exit_on_value_error():
        report = admin.add(settings, database, destination)
    emit(report, as_json, lambda r: f"added {r['added']['name']}")


@destinations.command("remove")
@click.argument("name")
@json_option
@pass_settings
def remove(settings: Settings, name: str, as_json: bool) -> None:
    """Remove a destination added from the command line."""
    with command_database(settings) as database, exit_on_value_error():
        report = admin.remove(settings, database, name)
    emit(report, as_json, lambda r: f"removed {r['removed']}")


@destinations.command("list")
@json_option
@pass_settings
def list_(settings: Settings, as_json: bool) -> None:
    """Every destination, from the settings file and the command line."""
    with command_database(settings) as database:
        report = admin.listing(settings, database)
    emit(report, as_json, _table)


@destinations.command("echo")
@click.argument("name")
@json_option
@pass_settings
def echo(settings: Settings, name: str, as_json: bool) -> None:
    """C-ECHO a destination; exit status 1 if it does not answer success."""
    with command_database(settings) as database, exit_on_value_error():
        report = admin.echo_destination(settings, database, name)
    emit(
        report,
        as_json,
        lambda r: (
            f"{r['destination']}: "
            + (f"ok in {r['seconds'] * 1000:.0f} ms" if r["ok"] else f"FAILED ({r['error']})")
        ),
    )
    if not report["ok"]:
        raise SystemExit(1)


def _table(report: dict[str, Any]) -> str:
    if not report["destinations"]:
        return "no destinations"
    lines = [f"{'name':16} {'AE title':16} {'address':24} {'send':9} {'results':12} source"]
    for d in report["destinations"]:
        if d["protocol"] == "dicomweb":
            called, address = "(DICOMweb)", d["url"]
        else:
            called = d["ae_title"]
            address = f"{d['host']}:{d['port']}" + (" TLS" if d["tls"]["enabled"] else "")
        kinds = ",".join(d["results"]) if d["results"] else "all"
        lines.append(
            f"{d['name']:16} {called:16} {address:24} {d['send']:9} {kinds:12} {d['source']}"
        )
    return "\n".join(lines)
