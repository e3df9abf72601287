"""``blsnode config``: show the effective settings."""

from __future__ import annotations

from typing import Any

import click
import yaml

from blsnode.cli.context import emit, json_option, pass_settings
from dicom_node.settings import Settings, effective_settings


@click.group()
def config() -> None:
    """Inspect the node's settings."""


@config.command("show")
@json_option
@pass_settings
def show(settings: Settings, as_json: bool) -> None:
    """Print the effective settings (defaults, file, environment, flags), secrets masked."""
    emit(effective_settings(settings), as_json, _as_yaml)


def _as_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False).rstrip()
