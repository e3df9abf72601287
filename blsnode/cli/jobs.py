"""``blsnode jobs list|show|retry``."""

from __future__ import annotations

from typing import Any

import click

from blsnode.cli.context import emit, json_option, pass_settings
from blsnode.cli.database import command_database
from dicom_node.admin import jobs as admin
from dicom_node.db import JobState
from dicom_node.settings import Settings


@click.group()
def jobs() -> None:
    """List, inspect and retry processing jobs (and dispatches)."""


@jobs.command("list")
@click.option("--state", type=click.Choice([s.value for s in JobState]), help="Only this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@pass_settings
def list_(settings: Settings, state: str | None, limit: int, as_json: bool) -> None:
    """The newest jobs."""
    with command_database(settings) as database:
        report = admin.list_jobs(database, JobState(state) if state else None, limit)
    emit(report, as_json, _jobs_table)


@jobs.command("show")
@click.argument("job_id", type=int)
@json_option
@pass_settings
def show(settings: Settings, job_id: int, as_json: bool) -> None:
    """One job with its instance, outputs and dispatches."""
    with command_database(settings) as database:
        details = admin.show_job(database, job_id)
    if details is None:
        raise click.ClickException(f"no job with id {job_id}")
    emit(details, as_json, _job_text)


@jobs.command("retry")
@click.argument("job_ids", type=int, nargs=-1)
@click.option("--dispatch", "dispatch_ids", type=int, multiple=True, help="A dead dispatch id.")
@click.option("--all", "everything", is_flag=True, help="Every failed job and dead dispatch.")
@json_option
@pass_settings
def retry(
    settings: Settings,
    job_ids: tuple[int, ...],
    dispatch_ids: tuple[int, ...],
    everything: bool,
    as_json: bool,
) -> None:
    """Re-queue failed jobs (with their dead dispatches) and revive dead dispatches."""
    if not (job_ids or dispatch_ids or everything):
        raise click.UsageError("give JOB_IDS, --dispatch ID, or --all")
    with command_database(settings) as database:
        report = admin.retry(settings, database, job_ids, dispatch_ids, everything)
    emit(
        report,
        as_json,
        lambda r: (
            f"re-queued jobs {r['requeued_jobs'] or 'none'}; revived dispatches "
            f"{r['revived_dispatches'] or 'none'}; published {r['published']}"
            + (f", {r['left_for_sweeper']} left for the sweeper" if r["left_for_sweeper"] else "")
        ),
    )


def _jobs_table(report: dict[str, Any]) -> str:
    if not report["jobs"]:
        return "no jobs"
    lines = [f"{'id':>6}  {'state':8} {'rule':12} {'tries':>5}  reason"]
    for job in report["jobs"]:
        lines.append(
            f"{job['id']:>6}  {job['state']:8} {job['rule'][:12]:12} {job['attempts']:>5}  "
            f"{job['reason'] or ''}"
        )
    return "\n".join(lines)


def _job_text(details: dict[str, Any]) -> str:
    lines = [
        f"job {details['id']}: {details['state']} (rule {details['rule']}, "
        f"{details['attempts']} attempts)",
        f"  instance {details['instance']['sop_instance_uid']} at {details['instance']['path']}",
    ]
    if details["reason"]:
        lines.append(f"  reason: {details['reason']}")
    for output in details["outputs"]:
        lines.append(f"  output {output['kind']} {output['sop_instance_uid']}")
    for dispatch in details["dispatches"]:
        lines.append(
            f"  dispatch {dispatch['id']} -> {dispatch['destination']}: {dispatch['state']} "
            f"after {dispatch['attempts']} attempts {dispatch['last_error'] or ''}".rstrip()
        )
    return "\n".join(lines)
