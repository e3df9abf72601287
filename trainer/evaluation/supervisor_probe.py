"""Can the supervisor still tell this generator's layers from true ones? D trained alone.

    python -m trainer.evaluation.supervisor_probe --model runs/x/best.pt --steps 300

The AUC a run logs every epoch (``val_supervisor_auc``) is D's in the middle of the game:
the generator has just been updated to fool it, so a value near 0.5 cannot say whether
the layers are as good as true ones or the judge has fallen behind. Here the generator
and the reconstructor stay frozen and a copy of the checkpoint's own D goes on training
alone, with the run's own loss and learning rate (Eq. 5 on synthetic overlaps of the
training joints), and its AUC on the run's held-out synthetic overlaps (true against
generated layers, D's "real" channel over the overlap, as every epoch measures it) is
reported every ``--every`` updates. An AUC that rises says the layers are still
distinguishable from true ones by this D, and so that the game, not the architecture,
kept the logged AUC near 0.5.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import torch

from blsgan_core.checkpoint import Checkpoint, load_checkpoint
from blsgan_core.model import BLSGANConfig, BLSGANModel
from trainer.blsgan_epochs import epoch_loader
from trainer.config import TrainConfig, config_from_dict
from trainer.datasets import SampleStore, prepare_data
from trainer.evaluation.cli_options import DEFAULT_JOINT_MANIFEST
from trainer.evaluation.separation import model_separator, run_separator
from trainer.loop import make_optimizers
from trainer.separation_measures import supervisor_measures
from trainer.state import load_network_states
from trainer.steps import Batch, StepSettings, supervisor_of, supervisor_update
from trainer.validation import Validation


def training_config(checkpoint: Checkpoint) -> TrainConfig:
    """The training config a BLS-GAN checkpoint was trained with (its metadata keeps it)."""
    stored = checkpoint.metadata.get("training", {}).get("config")
    if not stored:
        raise ValueError(f"{checkpoint.version} does not say how it was trained")
    return config_from_dict(stored)


def probe(
    checkpoint: Checkpoint,
    manifests: list[Path],
    steps: int,
    every: int,
    max_images: int,
) -> dict[str, Any]:
    """D's held-out AUC before and every ``every`` of ``steps`` updates with G frozen."""
    if "supervisor" not in checkpoint.state:
        raise ValueError(f"{checkpoint.version} has no supervisor (an export without D?)")
    config = training_config(checkpoint)
    # On the CPU, in-process loading (a GPU preset's loader workers only compete for cores;
    # the draws do not depend on them).
    config = replace(
        config, num_workers=0, validation=replace(config.validation, max_images=max_images)
    )
    data = prepare_data(manifests, config.data)
    store = SampleStore(harmonise=config.data.harmonise)
    store.load([*data.train, *data.validation])
    validation = Validation.build(data, store, config)
    device = torch.device("cpu")
    model = BLSGANModel(BLSGANConfig.from_dict(checkpoint.config), with_supervisor=True)
    load_network_states(model, checkpoint.state)
    model.eval()
    separator = model_separator(model, device)
    synthetic = run_separator(separator, validation.synthetic)
    real = run_separator(separator, validation.real)
    supervisor = supervisor_of(model)

    def measured(updates: int, seconds: float) -> dict[str, Any]:
        supervisor.eval()
        row = supervisor_measures(
            supervisor, validation.synthetic, synthetic, validation.real, real, device
        )
        return {"updates": updates, "seconds": round(seconds, 1), **row}

    # The run's own D optimiser (lr and betas); G's, also made, stays unused.
    optimizer = make_optimizers(model, config)["supervisor"]
    settings = StepSettings(config.optim.weights(), True, nullcontext())
    start = time.perf_counter()
    rows = [measured(0, 0.0)]
    updates, epoch = 0, 0
    while updates < steps:
        for loaded in epoch_loader(config, data, store, 1, epoch, device):
            batch = Batch.from_loader(loaded, device)
            with torch.no_grad():
                layers = model.generator(batch.image, batch.masks)
            supervisor.train()
            supervisor_update(model, batch, layers, 1, settings, optimizer)
            updates += 1
            if updates % every == 0 or updates == steps:
                rows.append(measured(updates, time.perf_counter() - start))
            if updates == steps:
                break
        epoch += 1
    return {
        "model": checkpoint.version,
        "held_out_synthetic_joints": len(validation.synthetic),
        "supervisor_lr": config.optim.lr * config.optim.supervisor_lr_factor,
        "rows": rows,
    }


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--manifest",
    "manifests",
    multiple=True,
    type=click.Path(path_type=Path),
    default=[DEFAULT_JOINT_MANIFEST],
    show_default=True,
)
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--every", type=click.IntRange(1), default=50, show_default=True)
@click.option(
    "--max-images",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Held-out synthetic overlaps the AUC is measured on.",
)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
def main(
    model_path: Path,
    manifests: tuple[Path, ...],
    steps: int,
    every: int,
    max_images: int,
    threads: int,
) -> None:
    """Print the probe's JSON report."""
    torch.set_num_threads(threads)
    checkpoint = load_checkpoint(model_path, expected_kind="blsgan")
    try:
        report = probe(checkpoint, list(manifests), steps, every, max_images)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
