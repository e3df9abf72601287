"""A BLS-GAN run, top to bottom: state, data, networks, then the epochs of both phases.

The epochs go through the loop every trainer shares (:func:`trainer.epochs.run_epochs`);
what a BLS-GAN epoch does is :class:`trainer.blsgan_epochs.BLSGANEpochs`.

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
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from blsgan_core.checkpoint import Checkpoint
from blsgan_core.model import BLSGANConfig, BLSGANModel
from trainer.blsgan_epochs import SELECTION, BLSGANEpochs
from trainer.config import ModelSection, TrainConfig, config_from_dict
from trainer.datasets import SampleStore, prepare_data
from trainer.epochs import epoch_plan, run_epochs
from trainer.run_files import BEST, LAST
from trainer.state import (
    STATE_FILE,
    TrainingState,
    load_network_states,
    load_training_state,
    resumed_provenance,
)
from trainer.steps import StepSettings, supervisor_of
from trainer.validation import Validation

logger = logging.getLogger(__name__)

REJECTED = "rejected.json"


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
    config, state = _start(config, manifests, out, resume, initial, provenance)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)

    data = prepare_data([Path(path) for path in state.manifests], config.data)
    (out / REJECTED).write_text(
        json.dumps([r.__dict__ for r in data.rejected], default=str, indent=1), encoding="utf-8"
    )
    for rejection in data.rejected:
        logger.warning("left out %s (%s): %s", rejection.image, rejection.case, rejection.reason)
    store = SampleStore(harmonise=config.data.harmonise)
    store.load([*data.train, *data.validation])
    validation = Validation.build(data, store, config)
    baseline = validation.baseline_row()

    networks = BLSGANModel(config.blsgan_config(), with_supervisor=True)
    if initial is not None:
        load_network_states(networks, initial.state)
    networks.to(target)  # before a resume loads the optimiser states: they follow the weights
    epochs = BLSGANEpochs(
        model=networks,
        optimizers=make_optimizers(networks, config),
        config=config,
        data=data,
        store=store,
        validation=validation,
        baseline=baseline,
        phases=state.phases,
        device=target,
        settings=StepSettings(
            weights=config.optim.weights(),
            phase2_ground_truth=config.optim.phase2_ground_truth,
            autocast=autocast_for(target, config.amp),
            supervisor_steps=config.optim.supervisor_steps,
        ),
        out=out,
        show_progress=show_progress,
        on_epoch=on_epoch,
    )
    run_epochs(out, state, epochs, SELECTION, stop_after=stop_after_epochs)
    return RunResult(
        out=out,
        completed_epochs=state.completed_epochs,
        total_epochs=len(epoch_plan(state.phases)),
        history=state.history,
        best=state.best,
        data_digest=data.digest,
        rejected=len(data.rejected),
    )


def _start(
    config: TrainConfig,
    manifests: Sequence[Path],
    out: Path,
    resume: bool,
    initial: Checkpoint | None,
    provenance: dict[str, Any] | None,
) -> tuple[TrainConfig, TrainingState]:
    """The run's config and its state: read from ``out`` to resume, else a fresh one."""
    if resume:
        state = load_training_state(out / STATE_FILE)
        if provenance:
            state.extra = resumed_provenance(state.extra, provenance.get("command"))
        return config_from_dict(state.config), state
    if (out / STATE_FILE).exists():
        raise ValueError(f"{out} already holds a run: resume it or choose another --out")
    extra = dict(provenance or {})
    if initial is not None:
        correction = bool(initial.config.get("correction", True))
        kept = model_section_of(initial)
        ignored = model_differences(config.model, kept)
        if ignored:
            logger.warning(
                "fine-tuning keeps the networks of %s; the preset's [model] %s not used",
                initial.version,
                ", ".join(ignored) + (" is" if len(ignored) == 1 else " are"),
            )
        config = replace(
            config,
            model=kept,
            ablation=replace(config.ablation, correction=correction),
        )
        phases = [(2, config.optim.finetune_epochs)]
        extra["initialised_from"] = initial.version
    else:
        phases = list(config.phases)
    # Spell out every backbone option now, so that resuming this run later rebuilds
    # the same networks even if a registry default changes in between.
    config = replace(config, model=ModelSection.from_blsgan_config(config.model.blsgan_config()))
    state = TrainingState(
        config=config.to_dict(),
        manifests=[str(Path(path).resolve()) for path in manifests],
        phases=phases,
        completed_epochs=0,
        networks={},
        optimizers={},
        extra=extra,
    )
    return config, state


def model_section_of(checkpoint: Checkpoint) -> ModelSection:
    """The model section of a config that rebuilds ``checkpoint``'s networks."""
    return ModelSection.from_blsgan_config(BLSGANConfig.from_dict(checkpoint.config))


def model_differences(asked: ModelSection, kept: ModelSection) -> list[str]:
    """``name = value (checkpoint: value)`` per [model] setting of ``asked`` that ``kept``
    does not have, both spelled out: a fine-tune cannot change its networks, and a
    preset's other supervisor scale was once dropped without a word (session 13)."""
    asked_values = asdict(ModelSection.from_blsgan_config(asked.blsgan_config()))
    kept_values = asdict(kept)
    return [
        f"{name} = {value!r} (checkpoint: {kept_values[name]!r})"
        for name, value in asked_values.items()
        if value != kept_values[name]
    ]
