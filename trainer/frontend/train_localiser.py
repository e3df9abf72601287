"""Train the MCP localiser (hand detector + landmark network) on the hand radiographs.

Run in the background, e.g.::

    nice -n 10 python -m trainer.frontend.train_localiser --out runs/localiser

Every epoch the state is saved (``state.pt``) and a run resumes from it; every
``--eval-every`` epochs the full inference path (``blsgan_core.joints.locate``) runs on
the validation images and the best model so far is written as ``best.pt``. ``--export``
writes the shipped fp16 weights from ``best.pt`` with their provenance.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click
import numpy as np
import torch

from blsgan_core.checkpoint import load_checkpoint, save_checkpoint
from blsgan_core.joints.model import KIND, Localiser, LocaliserConfig, load_localiser
from blsgan_core.networks.unet import UNetConfig
from trainer.evaluation.localization import VARIANTS, evaluate_localization
from trainer.frontend.hand_data import (
    N_VALIDATION,
    SPLIT_SEED,
    LandmarkRecord,
    load_hand_image,
    read_landmarks_csv,
    split_records,
)
from trainer.frontend.localiser_samples import detector_sample, landmark_sample, refiner_sample
from trainer.frontend.loop import (
    TrainingState,
    command_line,
    configure_torch,
    cosine_lr,
    epoch_rng,
    files_digest,
    git_commit,
    heatmap_loss,
    load_training_state,
    log,
    save_training_state,
)
from trainer.frontend.model_card import render_model_card

TINY = LocaliserConfig(
    detector=UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2, max_channels=8),
    landmarks=UNetConfig(in_channels=1, out_channels=10, base_channels=8, depth=2, max_channels=8),
    refiner=UNetConfig(in_channels=1, out_channels=1, base_channels=8, depth=2, max_channels=8),
    detector_size=64,
    landmark_size=64,
    patch_size=32,
    centre_sigma=2.0,
    landmark_sigma=1.5,
)


def validation_score(report: dict) -> float:
    """Lower is better: a missed joint costs more than any error of a found one."""
    missed = report["n_joints"] - report["n_detected"]
    return missed + (report["mre_rel"] if report["mre_rel"] is not None else 1.0)


def batch(samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (input, target) pairs into tensors ``(N, 1, S, S)`` and ``(N, C, S, S)``."""
    inputs = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
    targets = torch.from_numpy(np.stack([s[1] for s in samples]))
    return inputs, targets


def export(
    best: Path, export_path: Path, val_records: list[LandmarkRecord], note: str = ""
) -> None:
    """Write ``best`` as fp16 weights, measure them on the validation images, write the card."""
    save_checkpoint(export_path, load_checkpoint(best, expected_kind=KIND), half=True)
    model = load_localiser(export_path)
    report = {v: evaluate_localization(val_records, model, v) for v in VARIANTS}
    summary = (
        "MCP joint localiser of blsgan-node: a hand detector (whole image, long side "
        f"{model.config.detector_size}) and a landmark network (one hand, "
        f"{model.config.landmark_size} px). See docs/frontend.md."
    )
    card = render_model_card(
        export_path, "Localiser weights", summary, report, command_line(), note
    )
    export_path.with_suffix(".md").write_text(card)
    click.echo(f"wrote {export_path} ({export_path.stat().st_size / 1e6:.1f} MB) and its card")


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/hand_radiographs"),
    show_default=True,
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/localiser"),
    show_default=True,
)
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--steps-per-epoch", type=int, default=32, show_default=True)
@click.option("--detector-batch", type=int, default=16, show_default=True)
@click.option("--landmark-batch", type=int, default=16, show_default=True)
@click.option("--refiner-batch", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--split-seed", type=int, default=SPLIT_SEED, show_default=True)
@click.option("--n-val", type=int, default=N_VALIDATION, show_default=True)
@click.option("--eval-every", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option(
    "--long-side",
    type=int,
    default=640,
    show_default=True,
    help="Training images are held at this long side.",
)
@click.option("--tiny", is_flag=True, help="A tiny network for tests.")
@click.option("--limit-images", type=int, default=0, help="Use only this many training images.")
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
    steps_per_epoch: int,
    detector_batch: int,
    landmark_batch: int,
    refiner_batch: int,
    lr: float,
    seed: int,
    split_seed: int,
    n_val: int,
    eval_every: int,
    threads: int,
    long_side: int,
    tiny: bool,
    limit_images: int,
    note: str,
    export_path: Path | None,
) -> None:
    """Train (or resume, or export) the localiser."""
    configure_torch(threads, seed)
    records = read_landmarks_csv(data_dir / "landmarks.csv")
    train_records, val_records = split_records(records, n_val, split_seed)
    if limit_images:
        train_records, val_records = train_records[:limit_images], val_records[:2]
    if export_path is not None:
        export(out_dir / "best.pt", export_path, val_records, note)
        return
    pool = [load_hand_image(r, long_side) for r in train_records]
    config = TINY if tiny else LocaliserConfig()
    model = Localiser(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = out_dir / "state.pt", out_dir / "log.jsonl"
    state = (
        load_training_state(state_path, model, optimizer)
        if state_path.is_file()
        else TrainingState()
    )
    data_files = [data_dir / "landmarks.csv", *(r.file for r in records)]
    metadata = {
        "command": command_line(),
        "commit": git_commit(),
        "data": str(data_dir),
        "data_digest": files_digest(data_dir, data_files),
        "split": {
            "by": "image",
            "n_val": n_val,
            "seed": split_seed,
            "val_ids": sorted(r.id for r in val_records),
        },
        "seed": seed,
    }
    total_steps = epochs * steps_per_epoch
    while state.epoch < epochs:
        rng = epoch_rng(seed, state.epoch)
        model.train()
        started, losses = time.time(), []
        for _ in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(lr, state.step, total_steps)
            det_x, det_y = batch(
                [detector_sample(rng, pool, config) for _ in range(detector_batch)]
            )
            lm_x, lm_y = batch([landmark_sample(rng, pool, config) for _ in range(landmark_batch)])
            det_logits = model.detector(det_x)
            loss_centre = heatmap_loss(det_logits[:, :1], det_y[:, :1])
            loss_region = torch.nn.functional.binary_cross_entropy_with_logits(
                det_logits[:, 1:], det_y[:, 1:]
            )
            loss_landmarks = heatmap_loss(model.landmarks(lm_x), lm_y)
            rf_x, rf_y = batch([refiner_sample(rng, pool, config) for _ in range(refiner_batch)])
            loss_refiner = heatmap_loss(model.refiner(rf_x), rf_y)
            loss = loss_centre + loss_region + loss_landmarks + loss_refiner
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state.step += 1
            losses.append(
                [loss_centre.item(), loss_region.item(), loss_landmarks.item(), loss_refiner.item()]
            )
        state.epoch += 1
        record: dict = {
            "epoch": state.epoch,
            "seconds": round(time.time() - started, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "loss_centre": float(np.mean([x[0] for x in losses])),
            "loss_region": float(np.mean([x[1] for x in losses])),
            "loss_landmarks": float(np.mean([x[2] for x in losses])),
            "loss_refiner": float(np.mean([x[3] for x in losses])),
        }
        if state.epoch % eval_every == 0 or state.epoch == epochs:
            model.eval()
            report = evaluate_localization(val_records, model)
            record["val"] = report
            score = validation_score(report)
            if score < state.best or not math.isfinite(state.best):
                state.best, state.best_epoch = score, state.epoch
                metadata_now = {**metadata, "epoch": state.epoch, "validation": report}
                save_checkpoint(
                    out_dir / "best.pt",
                    model.to_checkpoint(f"localiser-e{state.epoch}", metadata_now),
                )
        state.history.append(record)
        save_training_state(state_path, model, optimizer, state)
        log(log_path, record)


if __name__ == "__main__":
    main()
