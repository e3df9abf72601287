"""``blsnode separate``: separate the two bones of one joint crop into layer images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from blsgan_core.model import MODEL_KIND
from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.options import blsgan_model_option, device_option, model_for
from dicom_node.settings import Settings
from worker.joint_separation import separate_joint_files

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("image", type=_FILE)
@click.option("--upper", "upper", type=_FILE, required=True, help="Mask of the upper bone.")
@click.option("--lower", "lower", type=_FILE, required=True, help="Mask of the lower bone.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the layer and reconstruction PNGs.",
)
@blsgan_model_option
@device_option
@json_option
@pass_settings
def separate(
    settings: Settings,
    image: Path,
    upper: Path,
    lower: Path,
    out_dir: Path,
    model_path: Path | None,
    device: str | None,
    as_json: bool,
) -> None:
    """Separate IMAGE (a joint crop, PNG/JPEG) into upper and lower bone layers.

    Writes the two layers and the Eq. 1 reconstruction as PNG into --out and prints the
    correction parameter k and MSE, SSIM, PSNR of the reconstruction against IMAGE inside
    the bones.
    """
    model_path = model_for(settings, MODEL_KIND, model_path)
    with exit_on_value_error():
        result = separate_joint_files(
            image, upper, lower, out_dir, model_path, device=device or settings.models.device
        )
    emit(result.as_dict(), as_json, _render)


def _render(data: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"k     {data['k']:.4f}",
            f"mse   {data['mse']:.3e}",
            f"ssim  {data['ssim']:.4f}",
            f"psnr  {data['psnr']:.2f} dB",
            f"upper layer     {data['upper_layer']}",
            f"lower layer     {data['lower_layer']}",
            f"reconstruction  {data['reconstruction']}",
            f"model {data['model']} (version {data['version']})",
        ]
    )
