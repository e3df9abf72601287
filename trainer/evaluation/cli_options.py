"""Command-line options that several evaluation commands share."""

from __future__ import annotations

from pathlib import Path

import click

#: The MCP joint manifest beside the checkout (``../shared/data``), as the tests read it.
DEFAULT_JOINT_MANIFEST = Path("../shared/data/mcp_joints/manifest.json")

#: ``--manifest FILE``: the joint manifest a segmentation command measures.
manifest_option = click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_JOINT_MANIFEST,
    show_default=True,
)
