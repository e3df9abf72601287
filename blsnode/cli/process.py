"""``blsnode process FILE.dcm --out DIR``: the whole pipeline offline on one radiograph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from blsnode.cli.context import emit, json_option, pass_settings
from blsnode.cli.options import blsgan_model_option, device_option
from dicom_node.settings import Settings


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the SEG, SC and SR files (created if needed).",
)
@blsgan_model_option
@device_option
@json_option
@pass_settings
def process(
    settings: Settings,
    file: Path,
    out_dir: Path,
    model_path: Path | None,
    device: str | None,
    as_json: bool,
) -> None:
    """Process FILE (a DICOM hand radiograph) as the worker would and write its outputs.

    Finds the hands and MCP joints, segments the bones, separates them with BLS-GAN and
    writes a Segmentation, Secondary Captures and a Structured Report into --out. Exit
    status 1 with the reason when the file cannot be processed (e.g. no hand found).
    """
    # Imported here: torch loads only when the command runs.
    from worker.failures import PermanentError
    from worker.models import parse_device
    from worker.offline import process_file

    try:
        parse_device(device or settings.models.device)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    try:
        report = process_file(settings, file, out_dir, model_path=model_path, device=device)
    except PermanentError as failure:
        raise click.ClickException(failure.reason) from failure
    emit(report, as_json, _render)


def _render(report: dict[str, Any]) -> str:
    lines = []
    for hand in report["hands"]:
        lines.append(f"hand {hand['side']} (score {hand['score']:.2f})")
        for joint in hand["joints"]:
            lines.append(
                f"  {joint['name']}: k {joint['k']:.3f}  overlap {joint['overlap_px']:6d} px  "
                f"PSNR {joint['psnr']:5.1f} dB  SSIM {joint['ssim']:.3f}"
            )
    for skipped in report["skipped_joints"]:
        lines.append(f"  skipped {skipped['joint']} {skipped['side']}: {skipped['reason']}")
    lines.append(f"{len(report['outputs'])} objects written:")
    lines += [f"  {o['kind']:3} {o['label']:<16} {o['path']}" for o in report["outputs"]]
    timings = report["timings_s"]
    lines.append(
        "seconds: " + ", ".join(f"{stage} {value:.2f}" for stage, value in timings.items())
    )
    model = report["model"]
    lines.append(f"model {model['name']} version {model['version']}")
    return "\n".join(lines)
