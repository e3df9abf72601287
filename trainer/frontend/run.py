"""One training run of a front-end network, as both front-end trainers drive it.

The two front-end trainers differ only in their data, their loss terms and their
validation score; the learning-rate schedule and the options of the command line are
the same, and live here once. What every trainer shares, BLS-GAN included, comes from
the training stack: the resume state (:mod:`trainer.state`), the run folder's files
(:mod:`trainer.run_files`), provenance (:mod:`trainer.provenance`), the checkpoint
metadata and model card (:mod:`trainer.model_card`) and the fp16 export
(:func:`trainer.export.fp16_copy`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import click
import numpy as np
import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from trainer.epochs import Selection, Validated, run_epochs
from trainer.export import fp16_copy
from trainer.loop import pick_device
from trainer.model_card import checkpoint_metadata, write_card
from trainer.provenance import files_digest, module_invocation, source_commit
from trainer.run_files import BEST
from trainer.state import STATE_FILE, TrainingState, load_training_state, resumed_provenance


@runtime_checkable
class SelfDescribing(Protocol):
    """A network that writes its own checkpoint (config included), as the node loads it."""

    def to_checkpoint(self, version: str, metadata: dict[str, Any]) -> Checkpoint:
        """The checkpoint of the network under ``version`` with ``metadata``."""
        ...


Network = TypeVar("Network")


@dataclass(frozen=True)
class RunOptions:
    """The command-line options every front-end trainer has (see ``run_options``)."""

    data_dir: Path
    out_dir: Path
    epochs: int
    lr: float
    seed: int
    split_seed: int
    eval_every: int
    threads: int
    tiny: bool
    limit_images: int
    note: str
    export_path: Path | None
    device: str | None
    name: str | None


def run_options(
    *,
    data: str,
    out: str,
    epochs: int,
    lr: float,
    split_seed: int,
    limit_help: str,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add the shared options to a click command; they arrive as one ``RunOptions``.

    The decorated function takes the ``RunOptions`` as its first argument and its own
    options as keywords; the defaults that differ between trainers are the arguments.
    """
    options = [
        click.option(
            "--data",
            "data_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path(data),
            show_default=True,
        ),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path(out),
            show_default=True,
        ),
        click.option("--epochs", type=int, default=epochs, show_default=True),
        click.option("--lr", type=float, default=lr, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--split-seed", type=int, default=split_seed, show_default=True),
        click.option("--eval-every", type=int, default=2, show_default=True),
        click.option("--threads", type=int, default=1, show_default=True),
        click.option("--tiny", is_flag=True, help="A tiny network for tests."),
        click.option("--limit-images", type=int, default=0, help=limit_help),
        click.option("--note", default="", help="With --export: a provenance note for the card."),
        click.option(
            "--export",
            "export_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Only write best.pt of --out as shipped fp16 weights to this path.",
        ),
        click.option(
            "--device",
            default=None,
            help="Train on this torch device (default: cuda if available, else cpu); "
            "validation runs on the CPU, as the node does.",
        ),
        click.option(
            "--name",
            default=None,
            help="Checkpoint versions are NAME-eEPOCH (default: the network's kind); "
            "name a recipe so that its weights never share a version with another's.",
        ),
    ]
    names = [f.name for f in fields(RunOptions)]

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(function)
        def wrapper(**kwargs: Any) -> None:
            shared = RunOptions(**{name: kwargs.pop(name) for name in names})
            function(shared, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def run_metadata(
    options: RunOptions,
    data_files: list[Path],
    split: dict[str, Any],
    *,
    manifest: Path,
    n_train: int,
    n_validation: int,
    selection: str,
    rejected: list[str] | None = None,
    initialised_from: str | None = None,
) -> dict[str, Any]:
    """The provenance a run's checkpoints keep, in every trainer's layout (trainer.model_card).

    ``training``: command, code, seed, preset, what selection optimises, the starting
    weights; ``data``: the digest of ``data_files``, the manifest, the split and its
    sizes, the records left out as annotation errors.
    """
    training: dict[str, Any] = {
        "command": module_invocation(click.get_current_context()),
        "commit": source_commit(),
        "preset": "tiny" if options.tiny else "default",
        "seed": options.seed,
        "selection": selection,
    }
    if initialised_from is not None:
        training["initialised_from"] = initialised_from
    data = {
        "digest": files_digest(options.data_dir, data_files),
        "manifests": [str(manifest)],
        "n_train_images": n_train,
        "n_validation_images": n_validation,
        "n_rejected": len(rejected or []),
        "split": split,
        "rejected": rejected or [],
    }
    return {"training": training, "data": data}


NETWORK, OPTIMIZER = "model", "adam"  # their names in the run's state
# The best model has the lowest validation score (each trainer's ``validate`` says how).
SELECTION = Selection("score", higher_is_better=False)


def configure_process(threads: int, seed: int) -> None:
    """Threads, seed and logging, set first by every front-end command.

    Few threads, because the training machine is shared; INFO on stderr, so the epoch
    lines of the loop (:mod:`trainer.epochs`) show.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The sample generator of one epoch: resuming at epoch e replays exactly epoch e."""
    torch.manual_seed(seed * 100_003 + epoch)
    return np.random.default_rng([seed, epoch])


def cosine_lr(base: float, step: int, total: int, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to 2 % of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    options: RunOptions,
    name: str,
    model: nn.Module,
    steps_per_epoch: int,
    epoch_losses: Callable[[np.random.Generator], Iterable[dict[str, torch.Tensor]]],
    validate: Callable[[], tuple[dict[str, Any], float]],
    metadata: dict[str, Any],
) -> None:
    """Train ``model`` with Adam until ``options.epochs``, resuming from ``state.pt``.

    The epochs go through the loop every trainer shares (:func:`trainer.epochs.run_epochs`).

    Parameters
    ----------
    name
        Checkpoint versions are ``{name}-e{epoch}``, unless ``options.name`` says
        otherwise.
    steps_per_epoch
        How many items ``epoch_losses`` yields per epoch (it sets the cosine schedule).
    epoch_losses
        Given the epoch's generator, yields one dict of loss terms per optimiser step;
        their sum is minimised and each term's epoch mean is logged under its key.
    validate
        Measures the model in eval mode: the report to log and a score, lower is better;
        the best-scoring model is written as ``best.pt``.
    metadata
        The run's provenance (:func:`run_metadata`), kept in its checkpoints with the
        epoch and its validation report; a resume keeps the first run's and lists its
        own command.
    """
    if not isinstance(model, SelfDescribing):
        raise TypeError(f"model must have to_checkpoint(), got {type(model).__name__}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    state = _start(options, metadata)
    model.to(pick_device(options.device))
    epochs = FrontEndEpochs(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=options.lr),
        name=options.name or name,
        seed=options.seed,
        lr=options.lr,
        total_steps=options.epochs * steps_per_epoch,
        epoch_losses=epoch_losses,
        measure=validate,
        step=int(state.history[-1]["step"]) if state.history else 0,
    )
    run_epochs(options.out_dir, state, epochs, SELECTION, eval_every=options.eval_every)


@dataclass
class FrontEndEpochs:
    """A front-end network's :class:`trainer.epochs.Trainer`: Adam on a cosine schedule."""

    model: nn.Module  # and SelfDescribing, as train checks
    optimizer: torch.optim.Optimizer
    name: str
    seed: int
    lr: float
    total_steps: int
    epoch_losses: Callable[[np.random.Generator], Iterable[dict[str, torch.Tensor]]]
    measure: Callable[[], tuple[dict[str, Any], float]]
    step: int  # optimiser steps so far: the schedule's position, kept in the history
    log_keys: tuple[str, ...] | None = None

    @property
    def networks(self) -> dict[str, nn.Module]:
        """The one network, as ``model``."""
        return {NETWORK: self.model}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Its Adam, as ``adam``."""
        return {OPTIMIZER: self.optimizer}

    def train_epoch(self, phase: int, phase_epoch: int) -> dict[str, Any]:
        """Minimise the sum of the epoch's loss terms; the schedule and each term's mean."""
        rng = epoch_rng(self.seed, phase_epoch)  # one phase: its epochs are the run's
        self.model.train()
        losses = []
        for terms in self.epoch_losses(rng):
            for group in self.optimizer.param_groups:
                group["lr"] = cosine_lr(self.lr, self.step, self.total_steps)
            loss = torch.stack(list(terms.values())).sum()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1
            losses.append({key: term.item() for key, term in terms.items()})
        return {
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            **{key: float(np.mean([item[key] for item in losses])) for key in losses[0]},
        }

    def validate(self) -> Validated:
        """The report under ``val``, and its score, measured on the CPU as the node runs.

        ``to`` moves the parameters in place, so the optimiser keeps them (and its state
        stays on the training device).
        """
        self.model.eval()
        device = next(self.model.parameters()).device
        self.model.cpu()
        try:
            report, score = self.measure()
        finally:
            self.model.to(device)
        return Validated({"val": report}, score)

    def checkpoint(self, state: TrainingState) -> Checkpoint:
        """The network with the run's provenance and the epoch's validation report."""
        epoch = state.completed_epochs
        training = {**state.extra["training"], "epochs": epoch}
        report = state.history[-1].get("val", {})
        metadata = checkpoint_metadata(training, state.extra["data"], report)
        return cast(SelfDescribing, self.model).to_checkpoint(f"{self.name}-e{epoch}", metadata)

    def after_epoch(self, state: TrainingState, final: bool) -> None:
        """Nothing: a front-end run has no plots."""


def _start(options: RunOptions, metadata: dict[str, Any]) -> TrainingState:
    """The state in ``options.out_dir`` (its provenance and length updated), or a fresh one."""
    path = options.out_dir / STATE_FILE
    config = {key: str(value) if isinstance(value, Path) else value
              for key, value in asdict(options).items()}  # fmt: skip
    if not path.is_file():
        return TrainingState(
            config=config,
            manifests=[str(options.data_dir)],
            phases=[(1, options.epochs)],
            completed_epochs=0,
            networks={},
            optimizers={},
            extra=metadata,
        )
    state = load_training_state(path)
    extra = state.extra or metadata  # a run started before the shared format has none
    command = metadata["training"].get("command")
    state.extra = {**extra, "training": resumed_provenance(extra["training"], command)}
    state.config, state.manifests = config, [str(options.data_dir)]
    state.phases = [(1, options.epochs)]  # --epochs may lengthen a run
    return state


def export(
    options: RunOptions,
    kind: str,
    load: Callable[[Path], Network],
    measure: Callable[[Network], dict[str, Any]],
    title: str,
    summary: Callable[[Network], str],
    highlights: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """Write ``best.pt`` of the run as fp16 weights, measure them, write their card.

    The card (:mod:`trainer.model_card`, as for every kind) shows the validation of the
    training checkpoint and, as its evaluation, what ``measure`` finds on the fp16 file
    as shipped, loaded the way the node loads it; ``highlights`` renders the report's
    main numbers as Markdown below the summary.
    """
    if options.export_path is None:
        raise ValueError("export needs options.export_path, got None")
    export_path, best_path = options.export_path, options.out_dir / BEST
    best = load_checkpoint(best_path, expected_kind=kind)
    save_checkpoint(export_path, fp16_copy(best, best_path))
    model = load(export_path)
    report = measure(model)
    text = f"**{title}.** " + summary(model) + ("\n\n" + highlights(report) if highlights else "")
    shipped = fp16_copy(
        best,
        best_path,
        export_command=module_invocation(click.get_current_context()),
        summary=text,
        evaluation=report,
        **({"note": options.note} if options.note else {}),
    )
    save_checkpoint(export_path, shipped)
    write_card(export_path, shipped)
    click.echo(f"wrote {export_path} ({export_path.stat().st_size / 1e6:.1f} MB) and its card")
