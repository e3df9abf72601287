"""Separation measures of BLS-GAN models and the identity layers on the same held-out joints.

    .venv/bin/python benchmarks/separation_measures.py \\
        --manifest ../shared/data/mcp_joints/manifest.json \\
        --model shipped=blsgan_core/weights/blsgan-cpu.pt --model new=runs/gan-ft/best.pt \\
        --max-images 48 --png runs/compare

The joints are the validation side of the preset's joint-disjoint split (real overlapping
joints, synthetic overlaps with the training shifts, and with shifts beyond them), built
exactly as a training run validates (:class:`trainer.validation.Validation`). Prints one
JSON object: per separator (``identity`` first) the columns of the run's ``log.csv``
(:mod:`trainer.separation_measures`). With ``--png`` it writes, per model, crops around
the overlap of a few synthetic and wide-shift joints: input, true and generated layers.
With ``--blend-compare`` every model is measured with each seam step
(:mod:`blsgan_core.seams`, not the paper's): none as NAME, NAME+poisson, NAME+exchange.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

from blsgan_core.checkpoint import load_checkpoint
from blsgan_core.model import MODEL_KIND, model_from_checkpoint
from blsgan_core.seam_modes import BLEND_MODES
from trainer.config import load_preset
from trainer.datasets import SampleStore, prepare_data
from trainer.evaluation.separation import EvalJoint, model_separator, run_separator
from trainer.separation_measures import selection_score
from trainer.validation import BEST_METRIC, Validation

PANEL_JOINTS = 4
MARGIN_PX = 24


def overlap_crop(joint: EvalJoint) -> tuple[slice, slice]:
    """Rows and columns around the overlap, ``MARGIN_PX`` on each side."""
    rows, cols = np.nonzero(joint.masks.sum(axis=0) >= 2)
    height, width = joint.image.shape
    return (
        slice(max(rows.min() - MARGIN_PX, 0), min(rows.max() + MARGIN_PX + 1, height)),
        slice(max(cols.min() - MARGIN_PX, 0), min(cols.max() + MARGIN_PX + 1, width)),
    )


def panel(joints: list[EvalJoint], layers: list[np.ndarray], path: Path) -> None:
    """Per joint: input, true upper, generated upper, true lower, generated lower."""
    titles = ("input", "true upper", "generated upper", "true lower", "generated lower")
    figure, axes = plt.subplots(len(joints), 5, figsize=(12, 2.6 * len(joints)), squeeze=False)
    for row, (joint, generated) in enumerate(zip(joints, layers, strict=True)):
        rows, cols = overlap_crop(joint)
        assert joint.true_layers is not None
        images = (
            joint.image,
            joint.true_layers[0],
            generated[0],
            joint.true_layers[1],
            generated[1],
        )
        for column, (image, title) in enumerate(zip(images, titles, strict=True)):
            axes[row, column].imshow(image[rows, cols], cmap="gray", vmin=0, vmax=1)
            axes[row, column].set_title(f"{title}" if row == 0 else "", fontsize=9)
            axes[row, column].axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def main() -> None:
    """Parse the arguments, measure every separator, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--preset", default="cpu-skip", help="split and synthetic settings")
    parser.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT")
    parser.add_argument("--max-images", type=int, default=None, help="joints per set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--png", type=Path, help="folder for the layer panels")
    parser.add_argument(
        "--blend-compare", action="store_true", help="each model with every seam step"
    )
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    config = load_preset(options.preset)
    if options.max_images is not None:
        config = replace(
            config, validation=replace(config.validation, max_images=options.max_images)
        )
    data = prepare_data([options.manifest.resolve()], config.data)
    store = SampleStore(harmonise=config.data.harmonise)
    store.load(list(data.validation))
    validation = Validation.build(data, store, config)
    results: dict[str, object] = {
        "joints": {
            "real": len(validation.real),
            "synthetic": len(validation.synthetic),
            "wide": len(validation.wide),
        },
        "identity": validation.baseline_row(),
    }
    device = torch.device("cpu")
    for spec in options.model:
        name, _, path = spec.partition("=")
        checkpoint = load_checkpoint(Path(path), expected_kind=MODEL_KIND)
        model = model_from_checkpoint(
            checkpoint, with_supervisor="supervisor" in checkpoint.state
        ).float()
        blends: tuple[tuple[str, str | None], ...] = (
            tuple((name if m == "off" else f"{name}+{m}", m) for m in BLEND_MODES)
            if options.blend_compare
            else ((name, None),)
        )
        for label, blend in blends:
            separator = model_separator(model, device, boundary_blend=blend)
            row = validation.measures(separator, model.supervisor, device)
            row[BEST_METRIC] = selection_score(row)
            results[label] = {
                "checkpoint": path,
                "version": checkpoint.version,
                "phase": checkpoint.metadata.get("training", {}).get("phase"),
                "epochs": checkpoint.metadata.get("training", {}).get("epochs"),
                "boundary_blend": model.config.boundary_blend if blend is None else blend,
                **row,
            }
            if options.png:
                for kind, joints in (
                    ("synthetic", validation.synthetic),
                    ("wide", validation.wide),
                ):
                    chosen = joints[:PANEL_JOINTS]
                    outputs = run_separator(separator, chosen)
                    layers = [output.layers.numpy() for output in outputs]
                    panel(chosen, layers, options.png / f"{label}_{kind}.png")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
