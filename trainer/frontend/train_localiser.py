"""Train the MCP localiser (hand detector + landmark network) on the hand radiographs.

Run in the background, e.g.::

    nice -n 10 python -m trainer.frontend.train_localiser --out runs/localiser

Every epoch the state is saved (``state.pt``) and a run resumes from it; every
``--eval-every`` epochs the full inference path (``blsgan_core.joints.locate``) runs on
the validation images and the best model so far is written as ``best.pt``. ``--export``
writes the shipped fp16 weights from ``best.pt`` with their provenance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import numpy as np
import torch

from blsgan_core.joints.model import KIND, Localiser, LocaliserConfig, load_localiser
from blsgan_core.networks.unet import UNetConfig
from trainer.evaluation.localization import VARIANTS, evaluate_localization, evaluate_rejection
from trainer.frontend import run
from trainer.frontend.hand_data import (
    N_VALIDATION,
    SPLIT_SEED,
    HandImage,
    LandmarkRecord,
    load_hand_image,
    read_landmarks_csv,
    split_records,
)
from trainer.frontend.localiser_samples import detector_sample, landmark_sample, refiner_sample
from trainer.frontend.losses import heatmap_loss, spatial_cross_entropy
from trainer.frontend.run import RunOptions, configure_process

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


SELECTION = "fewest missed joints, then the mean radial error, on the validation images"


def validation_score(report: dict) -> float:
    """Lower is better: a missed joint costs more than any error of a found one."""
    missed = report["n_joints"] - report["n_detected"]
    return missed + (report["mre_rel"] if report["mre_rel"] is not None else 1.0)


def batch(
    samples: list[tuple[np.ndarray, np.ndarray]], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (input, target) pairs into tensors ``(N, 1, S, S)`` and ``(N, C, S, S)`` on
    ``device``."""
    inputs = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
    targets = torch.from_numpy(np.stack([s[1] for s in samples]))
    return inputs.to(device), targets.to(device)


def export(options: RunOptions, val_records: list[LandmarkRecord]) -> None:
    """Ship ``best.pt`` as fp16 weights, measured on the validation images, with its card."""

    def measure(model: Localiser) -> dict[str, Any]:
        report: dict[str, Any] = {v: evaluate_localization(val_records, model, v) for v in VARIANTS}
        report["no-hand"] = evaluate_rejection(model)
        return report

    def summary(model: Localiser) -> str:
        return (
            "MCP joint localiser of blsgan-node: a hand detector (whole image, long side "
            f"{model.config.detector_size} px), a landmark network (one hand, "
            f"{model.config.landmark_size} px, spatial softmax) and a joint refiner "
            f"({model.config.patch_size} px patches). See docs/frontend.md."
        )

    run.export(options, KIND, load_localiser, measure, "Localiser weights", summary)


def epoch_losses(
    rng: np.random.Generator,
    model: Localiser,
    pool: list[HandImage],
    steps: int,
    batch_sizes: tuple[int, int, int],
) -> Iterator[dict[str, torch.Tensor]]:
    """The loss terms of each of ``steps`` steps: detector, landmarks and refiner together,
    sampled on the CPU and computed on the model's device."""
    config = model.config
    device = next(model.parameters()).device
    detector_batch, landmark_batch, refiner_batch = batch_sizes
    for _ in range(steps):
        det_x, det_y = batch(
            [detector_sample(rng, pool, config) for _ in range(detector_batch)], device
        )
        lm_x, lm_y = batch(
            [landmark_sample(rng, pool, config) for _ in range(landmark_batch)], device
        )
        det_logits = model.detector(det_x)
        loss_centre = heatmap_loss(det_logits[:, :1], det_y[:, :1])
        loss_region = torch.nn.functional.binary_cross_entropy_with_logits(
            det_logits[:, 1:], det_y[:, 1:]
        )
        loss_landmarks = spatial_cross_entropy(model.landmarks(lm_x), lm_y)
        rf_x, rf_y = batch(
            [refiner_sample(rng, pool, config) for _ in range(refiner_batch)], device
        )
        loss_refiner = heatmap_loss(model.refiner(rf_x), rf_y)
        yield {
            "loss_centre": loss_centre,
            "loss_region": loss_region,
            "loss_landmarks": loss_landmarks,
            "loss_refiner": loss_refiner,
        }


@click.command()
@run.run_options(
    data="../shared/data/hand_radiographs",
    out="runs/localiser",
    epochs=60,
    lr=2e-3,
    split_seed=SPLIT_SEED,
    limit_help="Use only this many training images.",
)
@click.option("--steps-per-epoch", type=int, default=32, show_default=True)
@click.option("--detector-batch", type=int, default=16, show_default=True)
@click.option("--landmark-batch", type=int, default=16, show_default=True)
@click.option("--refiner-batch", type=int, default=32, show_default=True)
@click.option("--n-val", type=int, default=N_VALIDATION, show_default=True)
@click.option(
    "--long-side",
    type=int,
    default=640,
    show_default=True,
    help="Training images are held at this long side.",
)
def main(
    options: RunOptions,
    steps_per_epoch: int,
    detector_batch: int,
    landmark_batch: int,
    refiner_batch: int,
    n_val: int,
    long_side: int,
) -> None:
    """Train (or resume, or export) the localiser."""
    configure_process(options.threads, options.seed)
    records = read_landmarks_csv(options.data_dir / "landmarks.csv")
    train_records, val_records = split_records(records, n_val, options.split_seed)
    if options.limit_images:
        train_records, val_records = train_records[: options.limit_images], val_records[:2]
    if options.export_path is not None:
        export(options, val_records)
        return
    pool = [load_hand_image(r, long_side) for r in train_records]
    model = Localiser(TINY if options.tiny else LocaliserConfig())
    metadata = run.run_metadata(
        options,
        [options.data_dir / "landmarks.csv", *(r.file for r in records)],
        {
            "by": "image",
            "n_val": n_val,
            "seed": options.split_seed,
            "val_ids": sorted(r.id for r in val_records),
        },
        manifest=options.data_dir / "landmarks.csv",
        n_train=len(train_records),
        n_validation=len(val_records),
        selection=SELECTION,
    )

    def validate() -> tuple[dict[str, Any], float]:
        report = evaluate_localization(val_records, model)
        return report, validation_score(report)

    batch_sizes = (detector_batch, landmark_batch, refiner_batch)
    run.train(
        options,
        "localiser",
        model,
        steps_per_epoch,
        lambda rng: epoch_losses(rng, model, pool, steps_per_epoch, batch_sizes),
        validate,
        metadata,
    )


if __name__ == "__main__":
    main()
