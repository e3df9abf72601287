"""Train the bone segmenter on the MCP joint crops (invalid records excluded).

Run in the background, e.g.::

    nice -n 10 python -m trainer.frontend.train_segmenter --out runs/segmenter

Split by joint (``case``), seeded. Each epoch saves a resumable state; every
``--eval-every`` epochs the validation Dice is measured with the inference path
(``blsgan_core.segment``) and the best model is kept as ``best.pt``; ``--export``
writes the shipped fp16 weights.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click
import numpy as np
import torch
from torch import nn

from blsgan_core.checkpoint import load_checkpoint, save_checkpoint
from blsgan_core.networks.unet import UNetConfig
from blsgan_core.segment.model import KIND, Segmenter, SegmenterConfig, load_segmenter
from blsgan_core.segment.predict import prepare
from trainer.evaluation.segmentation import evaluate_segmentation
from trainer.frontend.joint_data import (
    SPLIT_SEED,
    VAL_FRACTION,
    JointRecord,
    load_joint,
    partition_valid,
    read_manifest,
    split_by_case,
)
from trainer.frontend.loop import (
    TrainingState,
    command_line,
    configure_torch,
    cosine_lr,
    epoch_rng,
    files_digest,
    git_commit,
    load_training_state,
    log,
    save_training_state,
    soft_dice_loss,
)
from trainer.frontend.model_card import render_model_card

TINY = SegmenterConfig(
    unet=UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2, max_channels=16),
    input_size=32,
)


def augment(
    rng: np.random.Generator, images: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random similarity (turn, scale, shift, mirror) and exposure changes, per sample.

    The turns and scales stay small because crops from the localiser are already
    upright and scaled by hand size; mirroring makes left and right hands alike.
    """
    count = images.shape[0]
    angle = np.radians(rng.uniform(-12, 12, count))
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
    gamma = torch.from_numpy(rng.uniform(0.7, 1.4, (count, 1, 1, 1)).astype(np.float32))
    images = images.clamp(0, 1) ** gamma
    noise = torch.from_numpy(rng.uniform(0, 0.03, (count, 1, 1, 1)).astype(np.float32))
    images = images + noise * torch.randn_like(images)
    return images, masks


def export(best: Path, export_path: Path, val_records: list[JointRecord], note: str = "") -> None:
    """Write ``best`` as fp16 weights, measure them on the validation joints, write the card."""
    save_checkpoint(export_path, load_checkpoint(best, expected_kind=KIND), half=True)
    model = load_segmenter(export_path)
    report = evaluate_segmentation(val_records, model)
    summary = (
        "Bone segmenter of blsgan-node: upper (proximal phalanx base) and lower "
        "(metacarpal head) masks of a 256x256 MCP joint crop, two sigmoid channels, "
        f"U-Net run at {model.config.input_size} px. See docs/frontend.md."
    )
    card = render_model_card(
        export_path, "Segmenter weights", summary, report, command_line(), note
    )
    export_path.with_suffix(".md").write_text(card)
    click.echo(f"wrote {export_path} ({export_path.stat().st_size / 1e6:.1f} MB) and its card")


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/mcp_joints"),
    show_default=True,
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/segmenter"),
    show_default=True,
)
@click.option("--epochs", type=int, default=40, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--split-seed", type=int, default=SPLIT_SEED, show_default=True)
@click.option("--val-fraction", type=float, default=VAL_FRACTION, show_default=True)
@click.option("--eval-every", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--tiny", is_flag=True, help="A tiny network for tests.")
@click.option("--limit-images", type=int, default=0, help="Use only this many images per split.")
@click.option("--note", default="", help="With --export: a provenance note for the card.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only write best.pt of --out as shipped fp16 weights to this path.",
)
def main(
    data_dir: Path,
    out_dir: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    split_seed: int,
    val_fraction: float,
    eval_every: int,
    threads: int,
    tiny: bool,
    limit_images: int,
    note: str,
    export_path: Path | None,
) -> None:
    """Train (or resume, or export) the segmenter."""
    configure_torch(threads, seed)
    manifest = data_dir / "manifest.json"
    records = read_manifest(manifest)
    # Split the cases of the whole manifest, then drop invalid records: the split is the
    # same whatever the validity check finds, and `evaluate --split` rebuilds it.
    valid, invalid = partition_valid(records)
    train_all, val_all = split_by_case(records, val_fraction, split_seed)
    kept = {r.image for r in valid}
    train_records = [r for r in train_all if r.image in kept]
    val_records = [r for r in val_all if r.image in kept]
    if limit_images:
        train_records, val_records = train_records[:limit_images], val_records[:limit_images]
    if export_path is not None:
        export(out_dir / "best.pt", export_path, val_records, note)
        return
    loaded = [load_joint(r) for r in train_records]
    images = prepare(np.stack([image for image, _ in loaded]))
    masks = torch.from_numpy(np.stack([m for _, m in loaded]).astype(np.float32))
    del loaded
    config = TINY if tiny else SegmenterConfig()
    model = Segmenter(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = out_dir / "state.pt", out_dir / "log.jsonl"
    state = (
        load_training_state(state_path, model, optimizer)
        if state_path.is_file()
        else TrainingState()
    )
    data_files = [manifest] + [p for r in records for p in (r.image, r.upper, r.lower)]
    metadata = {
        "command": command_line(),
        "commit": git_commit(),
        "data": str(data_dir),
        "data_digest": files_digest(data_dir, data_files),
        "excluded_invalid": sorted(
            f"{r.case}/{r.image.name} (IoU {iou:.2f})" for r, iou in invalid
        ),
        "split": {
            "by": "case",
            "val_fraction": val_fraction,
            "seed": split_seed,
            "n_train_images": len(train_records),
            "n_val_images": len(val_records),
            "val_cases": sorted({r.case for r in val_records}),
        },
        "seed": seed,
    }
    steps_per_epoch = math.ceil(len(images) / batch_size)
    total_steps = epochs * steps_per_epoch
    while state.epoch < epochs:
        rng = epoch_rng(seed, state.epoch)
        model.train()
        started, losses = time.time(), []
        order = rng.permutation(len(images))
        for start in range(0, len(order), batch_size):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(lr, state.step, total_steps)
            index = torch.from_numpy(order[start : start + batch_size])
            x, y = augment(rng, images[index], masks[index])
            logits = model(x)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y) + soft_dice_loss(
                logits, y
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state.step += 1
            losses.append(loss.item())
        state.epoch += 1
        record: dict = {
            "epoch": state.epoch,
            "seconds": round(time.time() - started, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "loss": float(np.mean(losses)),
        }
        if state.epoch % eval_every == 0 or state.epoch == epochs:
            model.eval()
            report = evaluate_segmentation(val_records, model)
            report.pop("excluded")
            record["val"] = report
            score = -min(report["dice_upper"], report["dice_lower"])
            if score < state.best:
                state.best, state.best_epoch = score, state.epoch
                save_checkpoint(
                    out_dir / "best.pt",
                    model.to_checkpoint(
                        f"segmenter-e{state.epoch}",
                        {**metadata, "epoch": state.epoch, "validation": report},
                    ),
                )
        state.history.append(record)
        save_training_state(state_path, model, optimizer, state)
        log(log_path, record)


if __name__ == "__main__":
    main()
