"""``blsnode results export``: per-joint measurements of processed radiographs."""

from __future__ import annotations

import click

from blsnode.cli.context import pass_settings
from blsnode.cli.database import command_database
from dicom_node.admin.results import ExportFormat, export_measurements
from dicom_node.settings import Settings


@click.group()
def results() -> None:
    """Measurements the node has made (joint space width, overlap, k)."""


@results.command("export")
@click.option("--study", "study_uid", help="Only this Study Instance UID.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.CSV.value,
    show_default=True,
)
@pass_settings
def export(settings: Settings, study_uid: str | None, fmt: str) -> None:
    """One row per MCP joint of every processed radiograph, on stdout."""
    with command_database(settings) as database:
        text = export_measurements(database, ExportFormat(fmt), study_uid)
    click.echo(text, nl=False)
