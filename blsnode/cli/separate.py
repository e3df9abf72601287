"""``blsnode separate``: separate the two bones of one joint crop, or of every joint of a
manifest, into layer images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from blsgan_core.model import MODEL_KIND
from blsgan_core.segment.model import KIND as SEGMENTER_KIND
from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.options import blsgan_model_option, device_option, model_for
from dicom_node.settings import Settings
from worker.joint_separation import separate_joint_files
from worker.manifest_separation import MASK_SOURCES, RESULTS_FILE, separate_manifest

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("image", type=_FILE, required=False)
@click.option("--upper", "upper", type=_FILE, help="Mask of the upper bone (with IMAGE).")
@click.option("--lower", "lower", type=_FILE, help="Mask of the lower bone (with IMAGE).")
@click.option(
    "--manifest",
    type=_FILE,
    help="Instead of IMAGE: every record of a manifest.json in the format of mcp_joints.",
)
@click.option(
    "--masks",
    "mask_source",
    type=click.Choice(MASK_SOURCES),
    default="annotated",
    show_default=True,
    help="With --manifest: the manifest's masks, or those the promoted segmenter predicts "
    "(widened towards the other bone, as the node gives them to BLS-GAN).",
)
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
    image: Path | None,
    upper: Path | None,
    lower: Path | None,
    manifest: Path | None,
    mask_source: str,
    out_dir: Path,
    model_path: Path | None,
    device: str | None,
    as_json: bool,
) -> None:
    """Separate IMAGE (a joint crop, PNG/JPEG) into upper and lower bone layers.

    Writes the two layers and the Eq. 1 reconstruction as PNG into --out and prints the
    correction parameter k and MSE, SSIM, PSNR of the reconstruction against IMAGE inside
    the bones.

    With --manifest instead of IMAGE, does so for every record and prints one JSON line
    per record (k, overlap, files; or an error), also written to --out/separations.jsonl;
    exits 1 if any record could not be separated.
    """
    if (image is None) == (manifest is None):
        raise click.UsageError("give either IMAGE (with --upper and --lower) or --manifest")
    model_path = model_for(settings, MODEL_KIND, model_path)
    device = device or settings.models.device
    if manifest is not None:
        segmenter = model_for(settings, SEGMENTER_KIND) if mask_source == "predicted" else None
        _separate_manifest(manifest, segmenter, out_dir, model_path, device)
        return
    if image is None or upper is None or lower is None or mask_source != "annotated":
        raise click.UsageError("IMAGE needs --upper and --lower (--masks is for --manifest)")
    with exit_on_value_error():
        result = separate_joint_files(image, upper, lower, out_dir, model_path, device=device)
    emit(result.as_dict(), as_json, _render)


def _separate_manifest(
    manifest: Path,
    segmenter_path: Path | None,
    out_dir: Path,
    model_path: Path,
    device: str,
) -> None:
    from blsgan_core.model import load_model
    from blsgan_core.segment import load_segmenter

    failed = total = 0
    with exit_on_value_error():
        model = load_model(model_path, device=device)
        segmenter = load_segmenter(segmenter_path) if segmenter_path is not None else None
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / RESULTS_FILE, "w", encoding="utf-8") as results:
            for line in separate_manifest(
                manifest, out_dir, model, segmenter=segmenter, device=device
            ):
                text = json.dumps(line, sort_keys=True)
                results.write(text + "\n")
                click.echo(text)
                total += 1
                failed += "error" in line
    if failed:
        raise click.ClickException(f"{failed} of {total} records could not be separated")


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
