"""Command-line entry points of the worker package (``blsnode worker``, ``process``, ...)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

# Libraries that log routine steps at INFO (highdicom: every module it copies).
CHATTY_LOGGERS = ("highdicom",)


def quiet_libraries() -> None:
    """Keep library chatter for DEBUG sessions: WARNING unless the root logs DEBUG."""
    level = max(logging.WARNING, logging.getLogger().level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)


# The options every command that runs BLS-GAN offers, alike in each.
blsgan_model_option = click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BLS-GAN checkpoint (default: the promoted model of the registry).",
)
device_option = click.option(
    "--device", help="Torch device for BLS-GAN (default from settings: models.device)."
)
