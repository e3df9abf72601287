"""``blsnode purge``: apply the retention period."""

from __future__ import annotations

import click

from blsnode.cli.context import emit, json_option, pass_settings
from blsnode.cli.database import command_database
from dicom_node.admin.retention import purge as run_purge
from dicom_node.settings import Settings


@click.command()
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0),
    help="Override storage.retention_days for this run.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@json_option
@pass_settings
def purge(settings: Settings, older_than_days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete instances (and their jobs, outputs, dispatches) older than the retention period.

    Instances whose job is queued or running, or with a dispatch still pending, are kept.
    """
    with command_database(settings) as database:
        try:
            report = run_purge(settings, database, older_than_days, dry_run)
        except ValueError as error:
            raise click.UsageError(str(error)) from error
    emit(
        report,
        as_json,
        lambda r: (
            f"{'would purge' if r['dry_run'] else 'purged'} {r['instances']} instances "
            f"received before {r['cutoff']}"
            + ("" if r["dry_run"] else f"; {r['files_removed']} files, {r['bytes_freed']} bytes")
        ),
    )
