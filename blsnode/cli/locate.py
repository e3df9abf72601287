"""``blsnode locate IMAGE``: the hands and MCP joints of one radiograph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.options import model_for
from dicom_node.settings import Settings


def _render(data: dict[str, Any]) -> str:
    lines = []
    for number, hand in enumerate(data["hands"], start=1):
        lines.append(f"hand {number}: side {hand['side']}, score {hand['score']:.2f}")
        for joint in hand["joints"]:
            lines.append(
                f"  {joint['name']}: x {joint['x']:8.1f}  y {joint['y']:8.1f}  "
                f"axis {joint['axis_deg']:7.1f} deg  score {joint['score']:.2f}"
            )
    return "\n".join(lines)


@click.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Localiser checkpoint (default: the model in use, see blsnode models list).",
)
@json_option
@pass_settings
def locate(settings: Settings, image: Path, model_path: Path | None, as_json: bool) -> None:
    """Find the hands and their MCP joints in IMAGE (DICOM, PNG or JPEG).

    Coordinates are source pixels (x right, y down). axis_deg is the bearing of the
    finger axis from the joint towards the finger tip: 0 = up, positive clockwise on
    screen (90 = right, -90 = left). side is the hand (L/R) of a PA view, from where the
    thumb lies. Exit status 1 with a message when no hand is found.
    """
    from blsgan_core.joints.model import KIND
    from worker.frontend import locate_file  # torch loads only when the command runs

    model_path = model_for(settings, KIND, model_path)

    with exit_on_value_error():  # NoHandFoundError, unreadable image, bad checkpoint
        result = locate_file(image, model_path)
    emit(result, as_json, _render)
