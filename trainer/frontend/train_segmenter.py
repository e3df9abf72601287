"""Train the bone segmenter on the MCP joint crops (invalid records excluded).

Run in the background, e.g.::

    nice -n 10 python -m trainer.frontend.train_segmenter --out runs/segmenter

Split by joint (``case``), seeded. Each epoch saves a resumable state; every
``--eval-every`` epochs the validation Dice is measured with the inference path
(``blsgan_core.segment``) and the best model is kept as ``best.pt``; ``--export``
writes the shipped fp16 weights.

The masks are amodal (each bone's whole outline, also where it runs behind the other),
and what BLS-GAN separates is their intersection, a thin sliver: a per-bone loss barely
notices it. The loss therefore adds a soft Dice of the predicted overlap (the product of
the two bone probabilities, or with ``--head regions`` the overlap region's own) against
the annotated one, and the checkpoint is selected on the mean of the lower per-bone Dice
and the overlap Dice (``selection_score``).

``--synthetic-overlaps N`` adds N synthetic overlaps of every training joint without
overlap (``trainer.frontend.synthetic_joints``), whose hidden outlines are exact where
the annotated ones are a guess; the shipped segmenter is trained with N = 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from torch import nn

from blsgan_core.checkpoint import load_checkpoint
from blsgan_core.networks.unet import UNetConfig
from blsgan_core.segment.model import (
    HEADS,
    KIND,
    Segmenter,
    SegmenterConfig,
    default_unet,
    head_channels,
    load_segmenter,
)
from blsgan_core.segment.predict import prepare
from blsgan_core.synthetic import SyntheticConfig
from trainer.evaluation.segmentation import evaluate_segmentation, segmentation_table
from trainer.frontend import run
from trainer.frontend.joint_data import (
    SPLIT_SEED,
    VAL_FRACTION,
    JointRecord,
    load_joint,
    read_manifest,
    valid_split,
)
from trainer.frontend.losses import soft_dice_loss
from trainer.frontend.run import RunOptions, configure_process
from trainer.frontend.synthetic_joints import synthetic_overlaps

MAX_TURN_DEG = 20.0
OVERLAP_MIN_PX = 20  # the authors' "overlapping" image

TINY = SegmenterConfig(
    unet=UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2, max_channels=16),
    input_size=32,
)


def augment(
    rng: np.random.Generator, images: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random similarity (turn, scale, shift, mirror) and exposure changes, per sample.

    Turns up to 20 degrees cover a localiser that misjudges the finger axis; scales stay
    small because crops are sized by the hand; mirroring makes left and right hands
    alike. The grey changes are mild: ``harmonise`` already undid the source's window.
    """
    count = images.shape[0]
    angle = np.radians(rng.uniform(-MAX_TURN_DEG, MAX_TURN_DEG, count))
    scale = rng.uniform(0.9, 1.12, count)
    flip = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    shift = rng.uniform(-0.06, 0.06, (count, 2))
    theta = np.zeros((count, 2, 3), np.float32)
    theta[:, 0, 0] = scale * np.cos(angle) * flip
    theta[:, 0, 1] = -scale * np.sin(angle)
    theta[:, 1, 0] = scale * np.sin(angle) * flip
    theta[:, 1, 1] = scale * np.cos(angle)
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(
        torch.from_numpy(theta), list(images.shape), align_corners=False
    )
    images = nn.functional.grid_sample(images, grid, padding_mode="border", align_corners=False)
    masks = nn.functional.grid_sample(masks, grid, padding_mode="border", align_corners=False)
    gamma = torch.from_numpy(rng.uniform(0.8, 1.25, (count, 1, 1, 1)).astype(np.float32))
    images = images.clamp(0, 1) ** gamma
    noise = torch.from_numpy(rng.uniform(0, 0.03, (count, 1, 1, 1)).astype(np.float32))
    images = images + noise * torch.randn_like(images)
    return images, masks


def export(options: RunOptions, val_records: list[JointRecord]) -> None:
    """Ship ``best.pt`` as fp16 weights, measured on the validation joints, with its card."""

    def summary(model: Segmenter) -> str:
        return (
            "Bone segmenter of blsgan-node: amodal upper (proximal phalanx base) and lower "
            "(metacarpal head) masks of a 256x256 MCP joint crop (each bone's whole outline, "
            "also behind the other; their intersection is the overlap BLS-GAN separates), "
            f"two sigmoid channels, U-Net run at {model.config.input_size} px, input "
            "harmonised by blsgan_core.harmonise. See docs/frontend.md. Measured on the "
            "validation joints (never trained on):"
        )

    run.export(
        options,
        KIND,
        load_segmenter,
        lambda model: evaluate_segmentation(val_records, model),
        "Segmenter weights",
        summary,
        segmentation_table,
    )


def initialise(model: Segmenter, start: Segmenter) -> None:
    """Copy ``start``'s weights into ``model``: all of them, or its U-Net into a refined one.

    A refiner added to a trained U-Net starts as the identity (its last convolution is
    zero), so the refined model begins exactly where ``start`` stopped.
    """
    same_unet = replace(start.config, refine_channels=0) == replace(model.config, refine_channels=0)
    if start.config == model.config:
        model.load_state_dict(start.state_dict())
    elif same_unet and start.refiner is None:
        model.unet.load_state_dict(start.unet.state_dict())
    else:
        raise click.UsageError(f"--init {start.version} has another architecture")


def overlap_dice_loss(
    overlap: torch.Tensor, target: torch.Tensor, eps: float = 1.0
) -> torch.Tensor:
    """1 - soft Dice of the predicted overlap probability ``(N, H, W)`` on overlapping samples.

    Zero when no sample of the batch overlaps; samples without an overlap are held to
    an empty intersection by the per-pixel term.
    """
    true = target[:, 0] * target[:, 1]
    overlapping = true.sum((1, 2)) >= OVERLAP_MIN_PX
    if not bool(overlapping.any()):
        return overlap.sum() * 0.0
    predicted, true = overlap[overlapping], true[overlapping]
    intersection = (predicted * true).sum((1, 2))
    total = predicted.sum((1, 2)) + true.sum((1, 2))
    return (1.0 - (2.0 * intersection + eps) / (total + eps)).mean()


def mask_losses(
    model: Segmenter, logits: torch.Tensor, target: torch.Tensor, overlap_weight: float
) -> dict[str, torch.Tensor]:
    """The head's per-pixel term (the two sigmoids' BCE, or the four regions' cross-entropy)
    plus both amodal masks' soft Dice, and the overlap's soft Dice (the product of the two
    bone probabilities, or the overlap region's own)."""
    bones, overlap = model.probabilities(logits)
    if model.config.head == "sigmoid":
        pixel = nn.functional.binary_cross_entropy_with_logits(logits, target)
    else:
        # Augmentation resamples the masks bilinearly: a region is where a mask is >= 0.5.
        solid = (target >= 0.5).long()
        pixel = nn.functional.cross_entropy(logits, solid[:, 0] + 2 * solid[:, 1])
    return {
        "loss": pixel + soft_dice_loss(bones, target),
        "overlap": overlap_weight * overlap_dice_loss(overlap, target),
    }


def selection_score(report: dict[str, Any]) -> float:
    """Lower is better: minus the mean of the lower per-bone Dice and the overlap Dice."""
    per_bone = min(report["dice_upper"], report["dice_lower"])
    overlap = report["dice_overlap"] if report["dice_overlap"] is not None else 0.0
    return -0.5 * (per_bone + overlap)


def epoch_losses(
    rng: np.random.Generator,
    model: Segmenter,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int,
    overlap_weight: float = 1.0,
) -> Iterator[dict[str, torch.Tensor]]:
    """One pass over the shuffled crops, augmented on the CPU, and their ``mask_losses``
    computed on the model's device."""
    device = next(model.parameters()).device
    order = rng.permutation(len(images))
    for start in range(0, len(order), batch_size):
        index = torch.from_numpy(order[start : start + batch_size])
        x, y = augment(rng, images[index], masks[index])
        yield mask_losses(model, model(x.to(device)), y.to(device), overlap_weight)


@click.command()
@run.run_options(
    data="../shared/data/mcp_joints",
    out="runs/segmenter",
    epochs=40,
    lr=1e-3,
    split_seed=SPLIT_SEED,
    limit_help="Use only this many images per split.",
)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=VAL_FRACTION,
    show_default=True,
)
@click.option(
    "--init",
    "init_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start from this segmenter checkpoint (same architecture, or its U-Net alone).",
)
@click.option(
    "--refine-channels",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Channels of the full-resolution refiner (0: none, the U-Net's logits resized).",
)
@click.option(
    "--input-size",
    type=click.IntRange(min=16),
    default=SegmenterConfig.input_size,
    show_default=True,
    help="Size the U-Net runs at (the crop is 256 px; 128 trains at a quarter of the cost).",
)
@click.option(
    "--base-channels",
    type=click.IntRange(min=8),
    default=default_unet().base_channels,
    show_default=True,
    help="Channels of the U-Net's first level (they double per level).",
)
@click.option(
    "--head",
    type=click.Choice(HEADS),
    default=SegmenterConfig.head,
    show_default=True,
    help="Two sigmoids (upper, lower), or a softmax over four regions with the overlap its own.",
)
@click.option(
    "--overlap-weight",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight of the overlap soft-Dice term against BCE + per-bone soft Dice.",
)
@click.option(
    "--synthetic-overlaps",
    "synthetic_overlaps_per_joint",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Synthetic overlaps (exact amodal masks) added per training joint without overlap, "
    "drawn once from --seed (trainer/frontend/synthetic_joints.py).",
)
@click.option(
    "--synthetic-hidden-edge-sigma",
    type=click.FloatRange(0, 8),
    default=0.0,
    show_default=True,
    help="SyntheticConfig.hidden_edge_sigma of those overlaps (px; 0: Eq. 1's hard edge).",
)
def main(
    options: RunOptions,
    batch_size: int,
    val_fraction: float,
    init_path: Path | None,
    refine_channels: int,
    input_size: int,
    base_channels: int,
    head: str,
    overlap_weight: float,
    synthetic_overlaps_per_joint: int,
    synthetic_hidden_edge_sigma: float,
) -> None:
    """Train (or resume, or export) the segmenter."""
    configure_process(options.threads, options.seed)
    manifest = options.data_dir / "manifest.json"
    records = read_manifest(manifest)
    train_records, val_records, invalid = valid_split(records, val_fraction, options.split_seed)
    if options.limit_images:
        limit = options.limit_images
        train_records, val_records = train_records[:limit], val_records[:limit]
    if options.export_path is not None:
        export(options, val_records)
        return
    loaded = [load_joint(r) for r in train_records]
    loaded += synthetic_overlaps(
        train_records,
        synthetic_overlaps_per_joint,
        np.random.default_rng(options.seed),
        SyntheticConfig(hidden_edge_sigma=synthetic_hidden_edge_sigma),
    )
    images = prepare(np.stack([image for image, _ in loaded]))
    masks = torch.from_numpy(np.stack([m for _, m in loaded]).astype(np.float32))
    del loaded
    unet, size = (
        (TINY.unet, TINY.input_size)
        if options.tiny
        else (replace(default_unet(), base_channels=base_channels), input_size)
    )
    model = Segmenter(
        SegmenterConfig(
            unet=replace(unet, out_channels=head_channels(head)),
            input_size=size,
            refine_channels=refine_channels,
            head=head,
        )
    )
    if init_path is not None:
        initialise(model, Segmenter.from_checkpoint(load_checkpoint(init_path, expected_kind=KIND)))
    metadata = run.run_metadata(
        options,
        [manifest] + [p for r in records for p in (r.image, r.upper, r.lower)],
        {
            "by": "case",
            "val_fraction": val_fraction,
            "seed": options.split_seed,
            "n_train_images": len(train_records),
            "n_val_images": len(val_records),
            "val_cases": sorted({r.case for r in val_records}),
        },
        manifest=manifest,
        n_train=len(train_records),
        n_validation=len(val_records),
        rejected=sorted(f"{r.case}/{r.image.name} (IoU {iou:.2f})" for r, iou in invalid),
        initialised_from=(
            f"{init_path} ({load_checkpoint(init_path).version})" if init_path else None
        ),
        selection="mean of min(per-bone Dice) and overlap Dice on the validation joints",
    )
    metadata["data"]["n_synthetic_overlaps"] = len(images) - len(train_records)

    def validate() -> tuple[dict[str, Any], float]:
        report = evaluate_segmentation(val_records, model)
        report.pop("excluded")
        return report, selection_score(report)

    run.train(
        options,
        "segmenter",
        model,
        math.ceil(len(images) / batch_size),
        lambda rng: epoch_losses(rng, model, images, masks, batch_size, overlap_weight),
        validate,
        metadata,
    )


if __name__ == "__main__":
    main()
