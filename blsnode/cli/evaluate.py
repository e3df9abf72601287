"""``blsnode evaluate --task ...``: measure a model against annotated data, one JSON report.

Each task is a plain function in ``trainer.evaluation``; this command parses options,
loads the data and the model, calls that function and prints its report. To add a task,
add a runner (``options -> report``) to ``RUNNERS`` and, if its report is nested, a
renderer to ``RENDERERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from blsnode.cli.evaluate_jsn import render_jsn, run_jsn_evaluation
from blsnode.cli.evaluate_separation import (
    render_separation,
    run_separation_evaluation,
    separation_options,
)
from blsnode.cli.options import model_for
from dicom_node.settings import Settings
from trainer.splits import SPLITS


def _one_manifest(options: dict[str, Any], task: str) -> Path:
    manifests = options["manifest"]
    if len(manifests) != 1:
        raise click.UsageError(f"--task {task} needs exactly one --manifest PATH")
    path: Path = manifests[0]
    return path


def _run_localization(options: dict[str, Any]) -> dict[str, Any]:
    from blsgan_core.joints import load_localiser
    from trainer.evaluation.localization import (
        NO_HAND,
        MeanHand,
        evaluate_localization,
        evaluate_rejection,
    )
    from trainer.frontend.hand_data import N_VALIDATION, read_landmarks_csv, select_split

    if options["variant"] == NO_HAND:
        model = load_localiser(options["model"])
        return {**evaluate_rejection(model, seed=options["seed"]), "model": model.version}
    if options["landmarks"] is None:
        raise click.UsageError("--task localization needs --landmarks CSV")
    every = read_landmarks_csv(options["landmarks"])
    records = select_split(every, options["split"], seed=options["seed"])
    # The do-nothing baseline learns its mean hand where the localiser learned (from all
    # rows of a CSV too small for the seeded split).
    enough = len(every) > N_VALIDATION
    baseline = MeanHand.fit(select_split(every, "train", seed=options["seed"]) if enough else every)
    model = load_localiser(options["model"])
    report = evaluate_localization(records, model, options["variant"], baseline)
    return {**report, "model": model.version, "split": options["split"]}


def _run_segmentation(options: dict[str, Any]) -> dict[str, Any]:
    from blsgan_core.segment import load_segmenter
    from trainer.evaluation.segmentation import evaluate_segmentation
    from trainer.frontend.joint_data import read_manifest, select_split

    manifest = _one_manifest(options, "segmentation")
    records = select_split(read_manifest(manifest), options["split"], seed=options["seed"])
    model = load_segmenter(options["model"])
    report = evaluate_segmentation(records, model)
    return {**report, "model": model.version, "split": options["split"]}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "separation": run_separation_evaluation,
    "localization": _run_localization,
    "segmentation": _run_segmentation,
    "jsn": run_jsn_evaluation,
}
TASKS = tuple(RUNNERS)
# The model kind each task measures (names as in the checkpoints and the registry).
MODEL_KINDS = {
    "separation": "blsgan",
    "localization": "localiser",
    "segmentation": "segmenter",
    "jsn": "blsgan",
}


def _render_flat(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}"
        for key, value in data.items()
        if not isinstance(value, list)
    )


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "separation": render_separation,
    "jsn": render_jsn,
}


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True, help="What to measure.")
@click.option(
    "--landmarks",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Localization: a CSV in the format of hand_radiographs/landmarks.csv.",
)
@click.option(
    "--manifest",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Separation (repeatable), segmentation and jsn: a manifest.json in the format of "
    "mcp_joints.",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint to measure (default: the model in use, see blsnode models list).",
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
    default="as-is",
    show_default=True,
    help="Localization: the images as given (as-is) or changed by comma-separated parts: "
    "mirrored, two-hands, scale=S, rotation=DEGREES (clockwise), e.g. scale=0.5,rotation=90; "
    "or no-hand: 40 generated images without a hand, which must all be refused.",
)
@click.option("--limit", type=click.IntRange(min=1), help="JSN: only the first N follow-up pairs.")
@click.option(
    "--resume-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSN: append each pair's result to this JSON-lines file and skip pairs already in it.",
)
@separation_options
@json_option
@pass_settings
def evaluate(
    settings: Settings,
    task: str,
    landmarks: Path | None,
    manifest: tuple[Path, ...],
    model: Path | None,
    as_json: bool,
    **task_options: Any,
) -> None:
    """Measure separation, localisation, segmentation or follow-up registration (jsn)."""
    options = {
        **task_options,
        "landmarks": landmarks,
        "manifest": list(manifest),
        "model": model_for(settings, MODEL_KINDS[task], model),
    }
    if task_options.get("masks") == "predicted":  # the node's path: the segmenter in use
        options["segmenter"] = model_for(settings, MODEL_KINDS["segmentation"])
    with exit_on_value_error():  # missing files, bad CSV/manifest, unusable checkpoint
        report = RUNNERS[task](options)
    emit(report, as_json, RENDERERS.get(task, _render_flat))
