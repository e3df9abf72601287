"""``blsnode serve``: run the node in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from blsnode.cli.context import CliContext
from blsnode.node import Node, embedded_worker_available, worker_command
from dicom_node.logging_setup import configure_logging
from dicom_node.settings import Settings

logger = logging.getLogger(__name__)


def _with_overrides(base: Settings, port: int | None, ae_title: str | None) -> Settings:
    network: dict[str, object] = {}
    if port is not None:
        network["port"] = port
    if ae_title is not None:
        network["ae_title"] = ae_title
    if not network:
        return base
    updated = base.network.model_validate(base.network.model_dump() | network)
    return base.model_copy(update={"network": updated})


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), help="DICOM port (default from settings).")
@click.option("--ae-title", help="Our AE title (default from settings).")
@click.pass_obj
def serve(ctx: CliContext, port: int | None, ae_title: str | None) -> None:
    """Run the node: DICOM listener, sweeper, health/metrics, embedded worker."""
    try:
        settings = _with_overrides(ctx.settings(), port, ae_title)
    except ValueError as error:
        raise click.UsageError(f"invalid option: {error}") from error
    configure_logging(settings.logging, settings.log_dir)
    stop = threading.Event()

    def _request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    argv = worker_command(ctx.config_file, ctx.data_dir) if embedded_worker_available() else None
    node = Node(settings, argv)
    try:
        node.start()
    except (OSError, ValueError) as error:
        raise click.ClickException(f"cannot start the node: {error}") from error
    try:
        while not stop.wait(1.0):
            pass
    finally:
        node.stop()
        logger.info("node stopped")
