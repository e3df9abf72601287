"""``blsnode worker``: take jobs and dispatches from the broker until told to stop."""

from __future__ import annotations

import sys

import click

from blsnode.cli.context import CliContext
from dicom_node.logging_setup import configure_logging


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


@click.command()
@click.option(
    "--device", help="Torch device for BLS-GAN: cpu, cuda, cuda:1 (default models.device)."
)
@click.option("--queues", help="Comma-separated queues: process,dispatch (default worker.queues).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs at once, one process each (default worker.concurrency).",
)
@click.option(
    "--pool",
    type=click.Choice(["solo", "prefork"]),
    help="Celery pool (default: solo for one process, prefork for several).",
)
@click.option(
    "--parent-pid",
    type=click.IntRange(min=1),
    hidden=True,
    help="Exit when this process (the 'blsnode serve' that started us) dies.",
)
@click.pass_obj
def worker(
    ctx: CliContext,
    device: str | None,
    queues: str | None,
    concurrency: int | None,
    pool: str | None,
    parent_pid: int | None,
) -> None:
    """Run a processing worker in the foreground until SIGTERM or SIGINT.

    Takes job ids from the 'process' queue (pipeline, outputs, dispatch rows) and
    dispatch ids from the 'dispatch' queue (C-STORE to destinations). A GPU machine
    typically runs 'blsnode worker --device cuda --queues process'. SIGTERM lets the
    running job finish (warm shutdown).
    """
    settings = ctx.settings()
    configure_logging(settings.logging, settings.log_dir)
    if parent_pid is not None:
        # Before torch loads: a parent killed meanwhile is noticed at once.
        from worker.lifeline import exit_with_parent

        exit_with_parent(parent_pid)
    # Imported here: torch loads only when the command runs.
    from worker.models import parse_device
    from worker.serve import run_worker, worker_options

    try:
        options = worker_options(settings, _split(queues), concurrency, pool, device)
        parse_device(options.device or settings.models.device)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    sys.exit(run_worker(settings, options))
