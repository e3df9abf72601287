"""Variants of the Poisson seam blend, and the input's step across the overlap boundary.

    .venv/bin/python benchmarks/seam_variants.py \\
        --manifest ../shared/data/mcp_joints/manifest.json \\
        --model blsgan_core/weights/blsgan-cpu.pt --max-images 24

On the validation joints of :mod:`benchmarks.separation_measures` (same split, same
synthetic overlaps), the measures of the run's ``log.csv`` for: the model as it is; each
layer blended on its own (:mod:`blsgan_core.seams`, ``boundary_blend = "poisson"``); the
upper layer blended and the lower one derived from Eq. 1 with the model's k inside the
overlap (``1 - L2 = k (1 - J) / (1 - L1)``, so the reconstruction is the input there);
and both blended with k refitted to them (the mean of ``(1 - L1)(1 - L2) / (1 - J)``
over the overlap). It also prints, per set, how much brighter the input is on the
overlap's inner 2 px than on the bones' 2 px just outside it: the step Eq. 1 predicts
for layers that are continuous across the boundary.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from blsgan_core.inference import SeparationResult, separate
from blsgan_core.model import BLSGANModel, load_model
from blsgan_core.reconstruction import reconstruct
from trainer.config import load_preset
from trainer.datasets import SampleStore, prepare_data
from trainer.evaluation.separation import EvalJoint, Separator
from trainer.validation import Validation

BAND_PX = 2
Variant = Callable[[SeparationResult, torch.Tensor, torch.Tensor], SeparationResult]


def derived_lower(
    blended: SeparationResult, images: torch.Tensor, masks: torch.Tensor
) -> SeparationResult:
    """Upper layer blended; lower layer from Eq. 1 with k inside the overlap."""
    overlap = masks[:, :1] * masks[:, 1:2] > 0
    k = blended.k.view(-1, 1, 1, 1)
    upper = blended.layers[:, :1]
    lower = (1 - k * (1 - images) / (1 - upper).clamp(min=1e-3)).clamp(0, 1)
    layers = torch.cat([upper, torch.where(overlap, lower, blended.layers[:, 1:2])], dim=1)
    return SeparationResult(layers, blended.k, reconstruct(layers, masks, blended.k))


def refitted_k(
    blended: SeparationResult, images: torch.Tensor, masks: torch.Tensor
) -> SeparationResult:
    """Both layers blended; k the mean over the overlap of the k that makes Eq. 1 exact."""
    overlap = masks[:, 0] * masks[:, 1] > 0
    ratio = (
        (1 - blended.layers[:, 0]) * (1 - blended.layers[:, 1]) / (1 - images[:, 0]).clamp(min=1e-3)
    )
    k = torch.stack(
        [
            r[o].mean() if o.any() else old
            for r, o, old in zip(ratio, overlap, blended.k, strict=True)
        ]
    ).clamp(1e-3, 1)
    return SeparationResult(blended.layers, k, reconstruct(blended.layers, masks, k))


def exchanged(model: BLSGANModel) -> Separator:
    """The model with its seams exchanged (``boundary_blend = "exchange"``)."""

    def run(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        return separate(images, masks, model, boundary_blend="exchange")

    return run


def variant_separator(model: BLSGANModel, variant: Variant) -> Separator:
    """The model with the blend on, then ``variant`` applied to its output."""

    def run(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        return variant(
            separate(images, masks, model, boundary_blend="poisson"), images, masks.float()
        )

    return run


def boundary_step(joints: list[EvalJoint]) -> dict[str, float]:
    """Mean and std over joints of J on the overlap's inner band minus J on the outer band."""
    steps = []
    for joint in joints:
        overlap = joint.masks.sum(axis=0) >= 2
        inner = overlap & ~ndimage.binary_erosion(overlap, iterations=BAND_PX)
        outer = (
            ndimage.binary_dilation(overlap, iterations=BAND_PX)
            & ~overlap
            & joint.masks.any(axis=0)
        )
        steps.append(float(joint.image[inner].mean() - joint.image[outer].mean()))
    return {"mean": round(float(np.mean(steps)), 4), "std": round(float(np.std(steps)), 4)}


def main() -> None:
    """Measure every variant and the boundary steps; print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--preset", default="cpu-skip", help="split and synthetic settings")
    parser.add_argument("--max-images", type=int, default=24, help="joints per set")
    options = parser.parse_args()
    torch.set_num_threads(1)
    config = load_preset(options.preset)
    config = replace(config, validation=replace(config.validation, max_images=options.max_images))
    data = prepare_data([options.manifest.resolve()], config.data)
    store = SampleStore()
    store.load(list(data.validation))
    validation = Validation.build(data, store, config)
    model = load_model(options.model)
    separators: dict[str, Separator] = {
        "model": lambda images, masks, _: separate(images, masks, model, boundary_blend="off"),
        "both blended": variant_separator(model, lambda result, images, masks: result),
        "upper blended, lower from Eq. 1": variant_separator(model, derived_lower),
        "both blended, k refitted": variant_separator(model, refitted_k),
        "seams exchanged, reconstruction kept": exchanged(model),
    }
    results: dict[str, object] = {
        "input step across the overlap boundary": {
            "real": boundary_step(validation.real),
            "synthetic": boundary_step(validation.synthetic),
            "wide": boundary_step(validation.wide),
        }
    }
    for name, separator in separators.items():
        row = validation.measures(separator)
        results[name] = {
            key: round(value, 3) if isinstance(value, float) else value
            for key, value in row.items()
        }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
