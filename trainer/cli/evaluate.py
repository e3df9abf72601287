"""``blsnode evaluate --task ...``: measure a model against annotated data, one JSON report.

Each task is a plain function in ``trainer.evaluation``; this command parses options,
loads the data and the model, calls that function and prints its report. To add a task
(``separation`` comes next), add its name to ``TASKS`` and a ``_run_<task>`` function
with the same signature, and list it in ``RUNNERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dicom_node.cli.context import emit, exit_on_value_error, json_option
from trainer.splits import SPLITS

TASKS = ("localization", "segmentation")  # "separation": added by the BLS-GAN trainer


def _run_localization(options: dict[str, Any]) -> dict[str, Any]:
    from blsgan_core.joints import load_localiser
    from trainer.evaluation.localization import evaluate_localization
    from trainer.frontend.hand_data import read_landmarks_csv, select_split

    if options["landmarks"] is None:
        raise click.UsageError("--task localization needs --landmarks CSV")
    records = select_split(
        read_landmarks_csv(options["landmarks"]), options["split"], seed=options["seed"]
    )
    model = load_localiser(options["model"])
    report = evaluate_localization(records, model, options["variant"])
    return {**report, "model": model.version, "split": options["split"]}


def _run_segmentation(options: dict[str, Any]) -> dict[str, Any]:
    from blsgan_core.segment import load_segmenter
    from trainer.evaluation.segmentation import evaluate_segmentation
    from trainer.frontend.joint_data import read_manifest, select_split

    if options["manifest"] is None:
        raise click.UsageError("--task segmentation needs --manifest PATH")
    records = select_split(
        read_manifest(options["manifest"]), options["split"], seed=options["seed"]
    )
    model = load_segmenter(options["model"])
    report = evaluate_segmentation(records, model)
    return {**report, "model": model.version, "split": options["split"]}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "localization": _run_localization,
    "segmentation": _run_segmentation,
}


def _render(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}"
        for key, value in data.items()
        if not isinstance(value, list)
    )


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True, help="What to measure.")
@click.option(
    "--landmarks",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Localization: a CSV in the format of hand_radiographs/landmarks.csv.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Segmentation: a manifest.json in the format of mcp_joints.",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint to measure (default: the weights shipped with the package).",
)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="all",
    show_default=True,
    help="Only the training or validation part of the seeded split the weights used.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of that split.")
@click.option(
    "--variant",
    type=click.Choice(("as-is", "mirrored", "two-hands")),
    default="as-is",
    show_default=True,
    help="Localization: images as given, mirrored (right hands), or pairs side by side.",
)
@json_option
def evaluate(
    task: str,
    landmarks: Path | None,
    manifest: Path | None,
    model: Path | None,
    split: str,
    seed: int,
    variant: str,
    as_json: bool,
) -> None:
    """Measure localisation or segmentation against annotated data."""
    options = {
        "landmarks": landmarks,
        "manifest": manifest,
        "model": model,
        "split": split,
        "seed": seed,
        "variant": variant,
    }
    with exit_on_value_error():  # missing files, bad CSV/manifest, unusable checkpoint
        report = RUNNERS[task](options)
    emit(report, as_json, _render)
