"""What the model-running commands share: options, the model choice, quiet libraries."""

from __future__ import annotations

from pathlib import Path

import click

from dicom_node.settings import Settings

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


def model_for(settings: Settings, kind: str, override: Path | None = None) -> Path:
    """The checkpoint of ``kind`` this command runs: ``--model``, else the registry's choice.

    Goes through :func:`worker.models.choose_model`, the one place that decides (promoted,
    else shipped unless ``models.use_shipped_weights`` is off), so every command runs the
    model ``blsnode models list`` reports as in use.
    """
    from worker.failures import PermanentError  # torch loads only when a model is needed
    from worker.models import choose_model, registry_for

    try:
        return choose_model(registry_for(settings), kind, override).path
    except PermanentError as error:
        raise click.ClickException(str(error)) from error
