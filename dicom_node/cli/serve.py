"""``blsnode serve``: run the node in the foreground until interrupted."""

from __future__ import annotations

import logging

import click
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicom_node.cli.context import CliContext
from dicom_node.logging_setup import configure_logging

logger = logging.getLogger(__name__)


@click.command()
@click.option("--port", type=int, help="DICOM port (default from settings: 11112).")
@click.option("--ae-title", help="Our AE title (default from settings: BLSNODE).")
@click.pass_obj
def serve(ctx: CliContext, port: int | None, ae_title: str | None) -> None:
    """Run the node: answer DICOM associations until Ctrl-C."""
    network: dict[str, object] = {}
    if port is not None:
        network["port"] = port
    if ae_title is not None:
        network["ae_title"] = ae_title
    base = ctx.settings()
    settings = base.model_copy(
        update={"network": base.network.model_validate(base.network.model_dump() | network)}
    )
    configure_logging(settings.logging, settings.log_dir)
    ae = AE(ae_title=settings.network.ae_title)
    ae.add_supported_context(Verification)
    address = (settings.network.host, settings.network.port)
    logger.info("listening as %s on %s:%d", settings.network.ae_title, *address)
    ae.start_server(address, block=True, evt_handlers=[(evt.EVT_C_ECHO, lambda event: 0x0000)])
