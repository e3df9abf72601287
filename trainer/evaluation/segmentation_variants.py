"""The segmenter on the validation joints as given, turned, mirrored and inverted.

    python -m trainer.evaluation.segmentation_variants --split val

Prints one JSON object, a report of ``evaluate_segmentation`` per variant, and a
Markdown table of the main numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from blsgan_core.segment import load_segmenter
from trainer.evaluation.cli_options import manifest_option
from trainer.evaluation.segmentation import VARIANTS, evaluate_segmentation
from trainer.frontend.joint_data import read_manifest, select_split


@click.command()
@manifest_option
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--split", type=click.Choice(("all", "train", "val")), default="val")
@click.option("--threads", type=int, default=1, show_default=True)
def main(manifest: Path, model: Path | None, split: str, threads: int) -> None:
    """Evaluate every variant and print the reports and a table."""
    torch.set_num_threads(threads)
    records = select_split(read_manifest(manifest), split)
    segmenter = load_segmenter(model)
    reports = {name: evaluate_segmentation(records, segmenter, name) for name in VARIANTS}
    for report in reports.values():
        report.pop("excluded")
    click.echo(json.dumps({"model": segmenter.version, "split": split, "variants": reports}))
    click.echo("| variant | Dice upper | Dice lower | overlap Dice | area ratio |")
    click.echo("| --- | --- | --- | --- | --- |")
    for name, r in reports.items():
        click.echo(
            f"| {name} | {r['dice_upper']:.3f} | {r['dice_lower']:.3f} | "
            f"{r['dice_overlap']:.3f} | {r['overlap_area_ratio_median']:.2f} |"
        )


if __name__ == "__main__":
    main()
