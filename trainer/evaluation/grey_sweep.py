"""Does a crop's grey scale change the masks or the layers? A sweep of source transforms.

Each real joint crop is passed through what a source can do to grey values (windows
narrow, wide and offset, gammas 0.6-1.6, inversion, 6-bit quantisation) and then through
the node's path: ``harmonise``, the segmenter, BLS-GAN with the predicted masks. Reported
per transform, against the same crop unmodified:

- Dice of the masks against the annotation, per bone and in the overlap;
- ``mask_agreement``: Dice of the masks with those of the unmodified crop;
- ``layer_mad``: mean absolute difference of the BLS-GAN layers inside the bones, with
  the unmodified crop's masks given to both runs, so only the grey values differ.

Baseline in the same run: the path without harmonisation (the segmenter's former
per-crop percentile stretch, the raw crop to BLS-GAN), and what harmonising changes on
the unmodified crops (``unmodified_harmonised_vs_raw_layer_mad``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from blsgan_core.harmonise import harmonise_batch
from blsgan_core.inference import separate
from blsgan_core.intensity import normalise_intensity
from blsgan_core.model import BLSGANModel, load_model
from blsgan_core.registry import SHIPPED_WEIGHTS_DIR, ModelRegistry
from blsgan_core.segment import Segmenter, load_segmenter
from blsgan_core.segment.predict import largest_component
from trainer.evaluation.cli_options import manifest_option
from trainer.evaluation.segmentation import dice
from trainer.frontend.joint_data import load_joint, read_manifest, valid_split

Transform = Callable[[np.ndarray], np.ndarray]


def window(centre: float, width: float) -> Transform:
    """A linear display window on [0, 1] grey values, clipped."""
    return lambda x: np.clip((x - centre) / width + 0.5, 0.0, 1.0)


def gamma(power: float) -> Transform:
    """A power-law display curve."""
    return lambda x: np.clip(x, 0.0, 1.0) ** power


def quantise(bits: int) -> Transform:
    """Grey values of a source with ``bits`` bits."""
    levels = 2**bits - 1
    return lambda x: np.round(np.clip(x, 0.0, 1.0) * levels) / levels


TRANSFORMS: dict[str, Transform] = {
    "window narrow (c 0.5, w 0.6)": window(0.5, 0.6),
    "window wide (c 0.5, w 2)": window(0.5, 2.0),
    "window offset (c 0.35, w 1)": window(0.35, 1.0),
    "gamma 0.6": gamma(0.6),
    "gamma 0.8": gamma(0.8),
    "gamma 1.25": gamma(1.25),
    "gamma 1.6": gamma(1.6),
    "inverted": lambda x: 1.0 - x,
    "6-bit": quantise(6),
}


def _masks(probabilities: np.ndarray) -> np.ndarray:
    masks = probabilities >= 0.5
    for index in np.ndindex(masks.shape[:2]):
        masks[index] = largest_component(masks[index])
    return masks


def _segment(crops: np.ndarray, model: Segmenter, harmonised: bool) -> np.ndarray:
    if harmonised:
        batch = harmonise_batch(crops)
    else:
        batch = np.stack([normalise_intensity(c) for c in crops])
    with torch.inference_mode():
        return _masks(torch.sigmoid(model(torch.from_numpy(batch)[:, None])).numpy())


def _layers(crops: np.ndarray, masks: np.ndarray, model: BLSGANModel, harmonised: bool) -> Any:
    images = harmonise_batch(crops) if harmonised else np.clip(crops, 0, 1).astype(np.float32)
    return separate(images, masks, model).layers.numpy()


def _mask_scores(masks: np.ndarray, truth: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    overlap = [
        dice(m[0] & m[1], t[0] & t[1])
        for m, t in zip(masks, truth, strict=True)
        if (t[0] & t[1]).sum() >= 20
    ]
    return {
        "dice_upper": float(np.mean([dice(m[0], t[0]) for m, t in zip(masks, truth, strict=True)])),
        "dice_lower": float(np.mean([dice(m[1], t[1]) for m, t in zip(masks, truth, strict=True)])),
        "dice_overlap": float(np.mean(overlap)) if overlap else float("nan"),
        "mask_agreement": float(
            np.mean(
                [dice(m[c], r[c]) for m, r in zip(masks, reference, strict=True) for c in range(2)]
            )
        ),
    }


def grey_sweep(
    crops: np.ndarray,
    truth: np.ndarray,
    segmenter: Segmenter,
    blsgan: BLSGANModel,
    with_baseline: bool = True,
) -> dict[str, Any]:
    """The sweep on ``crops`` ``(N, H, W)`` in [0, 1] with annotated ``truth`` ``(N, 2, H, W)``.

    ``report["transforms"]["harmonised"][name]`` holds the scores of one transform;
    ``with_baseline`` adds the path without harmonisation beside it.
    """
    if crops.ndim != 3 or truth.shape != (crops.shape[0], 2, *crops.shape[1:]):
        raise ValueError(f"crops {crops.shape} and masks {truth.shape} do not match")
    report: dict[str, Any] = {"n_crops": len(crops), "transforms": {}}
    for harmonised in (True, False) if with_baseline else (True,):
        path = "harmonised" if harmonised else "without harmonisation (baseline)"
        reference_masks = _segment(crops, segmenter, harmonised)
        bones = (reference_masks[:, 0] | reference_masks[:, 1])[:, None]
        reference_layers = _layers(crops, reference_masks, blsgan, harmonised)
        rows = {"unmodified": {**_mask_scores(reference_masks, truth, reference_masks)}}
        for name, transform in TRANSFORMS.items():
            changed = np.stack([transform(c) for c in crops]).astype(np.float32)
            masks = _segment(changed, segmenter, harmonised)
            layers = _layers(changed, reference_masks, blsgan, harmonised)
            difference = np.abs(layers - reference_layers)
            rows[name] = {
                **_mask_scores(masks, truth, reference_masks),
                "layer_mad": float(difference[np.broadcast_to(bones, difference.shape)].mean()),
            }
        report["transforms"][path] = rows
        if harmonised and with_baseline:
            # What harmonising costs on crops that already look like the training data:
            # BLS-GAN's layers of the harmonised against the raw crops, same masks.
            raw_layers = _layers(crops, reference_masks, blsgan, harmonised=False)
            difference = np.abs(raw_layers - reference_layers)
            report["unmodified_harmonised_vs_raw_layer_mad"] = float(
                difference[np.broadcast_to(bones, difference.shape)].mean()
            )
    return report


@click.command()
@manifest_option
@click.option("--limit", type=int, default=0, help="Only the first N validation images.")
@click.option("--threads", type=int, default=1, show_default=True)
def main(manifest: Path, limit: int, threads: int) -> None:
    """Print the sweep on the validation joints of the segmenter's split as JSON.

    Shipped segmenter and the shipped promoted BLS-GAN.
    """
    torch.set_num_threads(threads)
    records = valid_split(read_manifest(manifest))[1]
    records = records[:limit] if limit else records
    loaded = [load_joint(r) for r in records]
    crops = np.stack([image for image, _ in loaded])
    truth = np.stack([masks for _, masks in loaded])
    shipped = ModelRegistry(SHIPPED_WEIGHTS_DIR, None).promoted("blsgan")
    if shipped is None:
        raise click.UsageError("no BLS-GAN model is shipped")
    blsgan = load_model(shipped.path)
    report = grey_sweep(crops, truth, load_segmenter(), blsgan)
    click.echo(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
