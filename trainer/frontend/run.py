"""One training run of a front-end network, as both front-end trainers drive it.

The trainers differ only in their data, their loss terms and their validation score;
resuming, the learning-rate schedule, the per-epoch log, keeping the best checkpoint,
exporting the shipped fp16 weights with their card, and the options of the command
line are the same, and live here once.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import click
import numpy as np
import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from trainer.frontend.loop import cosine_lr, epoch_rng
from trainer.frontend.model_card import render_model_card
from trainer.provenance import command_line, files_digest, source_commit
from trainer.run_files import finish_epoch
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
    options: RunOptions, data_files: list[Path], split: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """What a checkpoint records of its run: command, code, data and its digest, split, seed."""
    return {
        "command": command_line(),
        "commit": source_commit(),
        "data": str(options.data_dir),
        "data_digest": files_digest(options.data_dir, data_files),
        **extra,
        "split": split,
        "seed": options.seed,
    }


NETWORK, OPTIMIZER = "model", "adam"  # their names in the run's state


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

    The run folder holds the files every trainer writes (:mod:`trainer.run_files`).

    Parameters
    ----------
    name
        Checkpoint versions are ``{name}-e{epoch}``.
    steps_per_epoch
        How many items ``epoch_losses`` yields per epoch (it sets the cosine schedule).
    epoch_losses
        Given the epoch's generator, yields one dict of loss terms per optimiser step;
        their sum is minimised and each term's epoch mean is logged under its key.
    validate
        Measures the model in eval mode: the report to log and a score, lower is better;
        the best-scoring model is written as ``best.pt``.
    metadata
        The run's provenance (:func:`run_metadata`), kept in its checkpoints; a resume
        keeps the first run's and lists its own command.
    """
    if not isinstance(model, SelfDescribing):
        raise TypeError(f"model must have to_checkpoint(), got {type(model).__name__}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if options.eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {options.eval_every}")
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    state = _start_or_resume(options, model, optimizer, metadata)
    step = int(state.history[-1]["step"]) if state.history else 0
    total_steps = options.epochs * steps_per_epoch
    while state.completed_epochs < options.epochs:
        epoch = state.completed_epochs + 1
        rng = epoch_rng(options.seed, epoch - 1)
        model.train()
        started, losses = time.time(), []
        for terms in epoch_losses(rng):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(options.lr, step, total_steps)
            loss = torch.stack(list(terms.values())).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            losses.append({key: term.item() for key, term in terms.items()})
        record: dict[str, Any] = {
            "epoch": epoch,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.time() - started, 1),
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            **{key: float(np.mean([item[key] for item in losses])) for key in losses[0]},
        }
        improved = False
        card = {**state.extra, "epoch": epoch}
        if epoch % options.eval_every == 0 or epoch == options.epochs:
            model.eval()
            report, score = validate()
            record["val"] = card["validation"] = report
            best = state.best.get("score", math.inf)
            improved = score < best or not math.isfinite(best)
            if improved:
                state.best = {"epoch": epoch, "score": score}
        state.history.append(record)
        state.completed_epochs = epoch
        state.networks = {NETWORK: model.state_dict()}
        state.optimizers = {OPTIMIZER: optimizer.state_dict()}
        checkpoint = model.to_checkpoint(f"{name}-e{epoch}", card)
        finish_epoch(options.out_dir, state, checkpoint, improved)
        print(json.dumps(record), flush=True)


def _start_or_resume(
    options: RunOptions,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    metadata: dict[str, Any],
) -> TrainingState:
    """The state in ``options.out_dir`` with model and optimiser restored, or a fresh one."""
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
    model.load_state_dict(state.networks[NETWORK])
    optimizer.load_state_dict(state.optimizers[OPTIMIZER])
    extra = state.extra or metadata  # a run started before the shared format has none
    state.extra = resumed_provenance(extra, metadata.get("command"))
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

    The card's metrics come from the fp16 file as shipped, loaded the way the node
    loads it, not from the float32 training checkpoint; ``highlights`` renders the
    report's main numbers as Markdown below the summary.
    """
    if options.export_path is None:
        raise ValueError("export needs options.export_path, got None")
    export_path = options.export_path
    best = load_checkpoint(options.out_dir / "best.pt", expected_kind=kind)
    save_checkpoint(export_path, best, half=True)
    model = load(export_path)
    report = measure(model)
    text = summary(model) + ("\n\n" + highlights(report) if highlights else "")
    card = render_model_card(export_path, title, text, report, command_line(), options.note)
    export_path.with_suffix(".md").write_text(card)
    click.echo(f"wrote {export_path} ({export_path.stat().st_size / 1e6:.1f} MB) and its card")
