"""The training loop, top to bottom: data, networks, epochs of both phases, files.

A run lives in one folder (``out``)::

    state.pt       everything --resume needs (trainer.state), rewritten every epoch
    last.pt        the model after the last finished epoch (blsgan_core checkpoint)
    best.pt        the model with the best selection score (trainer.separation_measures)
    log.csv        one row per epoch: losses, throughput, validation metrics
    log.jsonl      the same rows as JSON lines
    rejected.json  manifest records that failed validation, with the reason
    plots/         loss curves, metrics against overlap size, example joints (PNG)

The first five are written as every trainer writes them (:mod:`trainer.run_files`).

Everything random comes from the config's seeds: network initialisation from
``torch.manual_seed(seed)``, the data from ``(seed, phase, epoch, index)``. So a run is
reproducible on the CPU, and a resumed run gives the same weights as one never stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from blsgan_core.checkpoint import Checkpoint
from blsgan_core.model import BLSGANConfig, BLSGANModel, model_checkpoint
from blsgan_core.synthetic import SyntheticConfig
from trainer import plots
from trainer.config import ModelSection, TrainConfig, config_from_dict
from trainer.datasets import (
    JointDataset,
    SampleStore,
    TrainingData,
    epoch_order,
    phase_items,
    prepare_data,
)
from trainer.run_files import BEST, LAST, finish_epoch
from trainer.run_records import model_metadata, model_version
from trainer.state import (
    STATE_FILE,
    TrainingState,
    load_network_states,
    load_training_state,
    network_states,
    resumed_provenance,
)
from trainer.steps import Batch, StepSettings, supervisor_of, training_step
from trainer.validation import BEST_METRIC, Validation

logger = logging.getLogger(__name__)

REJECTED, PLOTS = "rejected.json", "plots"


@dataclass(frozen=True)
class RunResult:
    """Where a finished (or stopped) run left its files, and its last validation."""

    out: Path
    completed_epochs: int
    total_epochs: int
    history: list[dict[str, Any]]
    best: dict[str, Any]
    data_digest: str
    rejected: int

    @property
    def last_checkpoint(self) -> Path:
        """The model after the last finished epoch."""
        return self.out / LAST

    @property
    def best_checkpoint(self) -> Path:
        """The model with the best selection score (either phase)."""
        return self.out / BEST


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when present, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device, amp: bool) -> AbstractContextManager[object]:
    """bf16 autocast on CUDA when AMP is on (no loss scaler needed); otherwise a no-op."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizers(networks: BLSGANModel, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """Adam for G + R (Eq. 2/4) and Adam for D (Eq. 3/5), the paper's lr and betas.

    D's lr is scaled by ``optim.supervisor_lr_factor`` (1, the paper's, unless a preset
    departs; see :class:`trainer.config.OptimSection`).
    """
    betas = (float(config.optim.betas[0]), float(config.optim.betas[1]))
    generator_parameters = [
        *networks.generator.parameters(),
        *networks.reconstructor.parameters(),
    ]
    return {
        "generator": torch.optim.Adam(generator_parameters, lr=config.optim.lr, betas=betas),
        "supervisor": torch.optim.Adam(
            supervisor_of(networks).parameters(),
            lr=config.optim.lr * config.optim.supervisor_lr_factor,
            betas=betas,
        ),
    }


def epoch_plan(phases: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(phase, epoch within phase)`` for every epoch of the run, in order."""
    return [(phase, epoch) for phase, epochs in phases for epoch in range(epochs)]


def run_epoch(
    networks: BLSGANModel,
    loader: DataLoader[dict[str, torch.Tensor]],
    phase: int,
    settings: StepSettings,
    optimizers: dict[str, torch.optim.Optimizer],
    device: torch.device,
    description: str,
    show_progress: bool,
) -> dict[str, float]:
    """Train one epoch; mean of every logged loss, images and images/s."""
    networks.train()
    sums: dict[str, float] = {}
    images = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=description, unit="batch", disable=not show_progress, leave=False)
    for data in bar:
        batch = Batch.from_loader(data, device)
        logged = training_step(networks, batch, phase, settings, optimizers)
        for key, value in logged.items():
            sums[key] = sums.get(key, 0.0) + value * batch.size
        images += batch.size
        rate = images / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(
            loss_g=f"{logged['loss_g']:.4f}", loss_d=f"{logged['loss_d']:.4f}", img_s=f"{rate:.1f}"
        )
    seconds = time.perf_counter() - start
    means = {key: value / max(images, 1) for key, value in sums.items()}
    return {**means, "images": images, "seconds": seconds, "images_per_s": images / seconds}


def _loader(
    data: TrainingData,
    store: SampleStore,
    config: TrainConfig,
    phase: int,
    epoch_index: int,
    device: torch.device,
) -> DataLoader[dict[str, torch.Tensor]]:
    dataset = JointDataset(
        store,
        phase_items(data, phase, config.data.min_real_overlap_px),
        seed=config.seed,
        phase=phase,
        epoch=epoch_index,
        crop_size=config.data.crop_size,
        hflip=config.data.hflip,
        synthetic=SyntheticConfig(**config.data.synthetic),
    )
    order = list(epoch_order(len(dataset), seed=config.seed, phase=phase, epoch=epoch_index))
    return DataLoader(
        dataset,
        batch_size=config.optim.batch_size,
        sampler=order,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def train(
    config: TrainConfig,
    manifests: Sequence[Path],
    out: Path,
    *,
    resume: bool = False,
    initial: Checkpoint | None = None,
    device: str | None = None,
    show_progress: bool = True,
    stop_after_epochs: int | None = None,
    provenance: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Run (or resume) the two-phase training described by ``config`` into ``out``.

    Parameters
    ----------
    config, manifests
        What to train on. With ``resume`` both come from ``out/state.pt`` instead and
        the arguments must be equal to them (or the preset's, which are then ignored).
    initial
        A ``"blsgan"`` checkpoint to fine-tune: its architecture replaces the preset's
        and phase 1 is skipped (the model is pre-trained already).
    stop_after_epochs
        Stop after this many epochs in total (for tests and time-boxed runs); a later
        ``resume`` continues from there.
    provenance
        Extra model-card facts (training command, git commit) stored in checkpoints.
    """
    target = pick_device(device)
    state: TrainingState | None = None
    if resume:
        state = load_training_state(out / STATE_FILE)
        config = config_from_dict(state.config)
        manifests = [Path(path) for path in state.manifests]
        phases = list(state.phases)
    else:
        manifests = [Path(path).resolve() for path in manifests]
        if (out / STATE_FILE).exists():
            raise ValueError(f"{out} already holds a run: resume it or choose another --out")
        if initial is not None:
            correction = bool(initial.config.get("correction", True))
            config = replace(
                config,
                model=model_section_of(initial),
                ablation=replace(config.ablation, correction=correction),
            )
            phases = [(2, config.optim.finetune_epochs)]
        else:
            phases = list(config.phases)
        # Spell out every backbone option now, so that resuming this run later rebuilds
        # the same networks even if a registry default changes in between.
        config = replace(
            config, model=ModelSection.from_blsgan_config(config.model.blsgan_config())
        )
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)

    data = prepare_data(manifests, config.data)
    (out / REJECTED).write_text(
        json.dumps([r.__dict__ for r in data.rejected], default=str, indent=1), encoding="utf-8"
    )
    for rejection in data.rejected:
        logger.warning("left out %s (%s): %s", rejection.image, rejection.case, rejection.reason)
    store = SampleStore()
    store.load([*data.train, *data.validation])
    validation = Validation.build(data, store, config)
    baseline = validation.baseline_row()

    networks = BLSGANModel(
        config.model.blsgan_config(config.ablation.correction), with_supervisor=True
    )
    if initial is not None:
        load_network_states(networks, initial.state, strict_supervisor=False)
    optimizers = make_optimizers(networks, config)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    extra = dict(provenance or {})
    if initial is not None:
        extra["initialised_from"] = initial.version
    if state is not None:
        load_network_states(networks, state.networks, strict_supervisor=True)
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state.optimizers[name])
        history, best, extra = list(state.history), dict(state.best), dict(state.extra)
        if provenance:
            extra = resumed_provenance(extra, provenance.get("command"))
    networks.to(target)
    for optimizer in optimizers.values():
        _optimizer_to(optimizer, target)

    settings = StepSettings(
        weights=config.optim.weights(),
        phase2_ground_truth=config.optim.phase2_ground_truth,
        autocast=autocast_for(target, config.amp),
    )
    plan = epoch_plan(phases)
    first = len(history)
    last_index = len(plan) if stop_after_epochs is None else min(len(plan), stop_after_epochs)
    for index in range(first, last_index):
        phase, epoch = plan[index]
        loader = _loader(data, store, config, phase, epoch, target)
        description = f"phase {phase} epoch {epoch + 1}/{dict(phases)[phase]}"
        row: dict[str, Any] = {"epoch": index + 1, "phase": phase, "phase_epoch": epoch + 1}
        row.update(
            run_epoch(
                networks, loader, phase, settings, optimizers, target, description, show_progress
            )
        )
        scores, measured = validation.row(networks, target)
        row.update(measured)
        history.append(row)
        improved = _improved(row, best)
        if improved:
            best = {"epoch": row["epoch"], "phase": phase, BEST_METRIC: row[BEST_METRIC]}
        checkpoint = model_checkpoint(
            networks,
            model_version(config, data, index + 1),
            model_metadata(config, data, history, extra, baseline),
            include_supervisor=True,
        )
        finish_epoch(
            out,
            TrainingState(
                config=config.to_dict(),
                manifests=[str(path) for path in manifests],
                phases=phases,
                completed_epochs=index + 1,
                networks=network_states(networks),
                optimizers={name: opt.state_dict() for name, opt in optimizers.items()},
                history=history,
                best=best,
                extra=extra,
            ),
            checkpoint,
            improved,
        )
        plots.loss_curves(history, out / PLOTS / "losses.png", baseline)
        logger.info("epoch %d: %s", index + 1, _summary_line(row))
        if on_epoch is not None:
            on_epoch(row)
        if index + 1 == len(plan):
            validation.final_plots(networks, target, scores, out / PLOTS)
    return RunResult(
        out=out,
        completed_epochs=len(history),
        total_epochs=len(plan),
        history=history,
        best=best,
        data_digest=data.digest,
        rejected=len(data.rejected),
    )


def _improved(row: dict[str, Any], best: dict[str, Any]) -> bool:
    value = row.get(BEST_METRIC)
    if value is None:
        return not best
    return not best or best.get(BEST_METRIC) is None or value > best[BEST_METRIC]


def _summary_line(row: dict[str, Any]) -> str:
    keys = (
        "loss_g",
        "loss_d",
        "images_per_s",
        "val_synthetic_layer_psnr",
        "val_synthetic_seam_ratio",
        "val_synthetic_k_r",
        "val_supervisor_auc",
        BEST_METRIC,
    )
    return ", ".join(
        f"{key}={row[key]:.4g}" for key in keys if isinstance(row.get(key), (int, float))
    )


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a loaded optimizer state to ``device`` (load_state_dict keeps it on the CPU)."""
    for values in optimizer.state.values():
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and key != "step":
                values[key] = value.to(device)


def model_section_of(checkpoint: Checkpoint) -> ModelSection:
    """The model section of a config that rebuilds ``checkpoint``'s networks."""
    return ModelSection.from_blsgan_config(BLSGANConfig.from_dict(checkpoint.config))
