"""The one epoch loop every trainer runs: BLS-GAN, the localiser and the segmenter.

Where a run resumes, what an epoch's row holds, when to validate, which epoch is the
best and in which order an epoch's files are written are the same decisions for every
network, so they are made here once. A trainer supplies only what differs
(:class:`Trainer`): how to train one epoch, how to validate, its checkpoint, and what to
do once an epoch's files are written (plots, callbacks).

An epoch's row starts with ``epoch`` (counted over all phases), ``time`` (when its
training ended) and ``seconds`` (its training time, validation excluded); the trainer's
columns follow, then, on validated epochs, the validation's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint
from trainer.run_files import finish_epoch, flatten
from trainer.state import TrainingState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validated:
    """One validation: the columns it adds to the epoch's row, and the score ranked."""

    columns: dict[str, Any]
    score: float | None


@dataclass(frozen=True)
class Selection:
    """How a trainer ranks its validated epochs.

    The best epoch is kept in the run's state as ``{"epoch", *context, key: score}``,
    ``context`` being columns of its row (BLS-GAN: the phase).
    """

    key: str
    higher_is_better: bool
    context: tuple[str, ...] = ()

    def improves(self, score: float | None, best: dict[str, Any]) -> bool:
        """The first validated epoch wins; later a score wins over none (or NaN) or a worse one.

        So a model whose validation could not be scored never displaces a scored one.
        """
        if not best:
            return True
        if score is None or math.isnan(score):
            return False
        previous = best.get(self.key)
        if previous is None or math.isnan(previous):
            return True
        return score > previous if self.higher_is_better else score < previous

    def record(self, row: dict[str, Any], score: float | None) -> dict[str, Any]:
        """What the run's state keeps of its best epoch."""
        context = {name: row[name] for name in self.context}
        return {"epoch": row["epoch"], **context, self.key: score}


class Trainer(Protocol):
    """What a trainer does differently from the others, for :func:`run_epochs`."""

    @property
    def networks(self) -> Mapping[str, nn.Module]:
        """The networks whose weights ``state.pt`` keeps, by name."""
        ...

    @property
    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """The optimisers whose states ``state.pt`` keeps, by name."""
        ...

    @property
    def log_keys(self) -> tuple[str, ...] | None:
        """The columns of the epoch's log line (None: every number of the row)."""
        ...

    def train_epoch(self, phase: int, phase_epoch: int) -> dict[str, Any]:
        """Train epoch ``phase_epoch`` (from 0) of ``phase``; its columns of the row.

        Every random choice must follow from the seed, the phase and the epoch, so that
        a resumed run repeats exactly what an uninterrupted one does.
        """
        ...

    def validate(self) -> Validated:
        """Measure the networks as they are now."""
        ...

    def checkpoint(self, state: TrainingState) -> Checkpoint:
        """The model checkpoint after the epoch ``state`` has just recorded."""
        ...

    def after_epoch(self, state: TrainingState, final: bool) -> None:
        """Anything after the epoch's files are written (``final``: the run's last epoch)."""
        ...


def epoch_plan(phases: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(phase, epoch within phase)`` for every epoch of the run, in order."""
    return [(phase, epoch) for phase, epochs in phases for epoch in range(epochs)]


def run_epochs(
    out: Path,
    state: TrainingState,
    trainer: Trainer,
    selection: Selection,
    *,
    eval_every: int = 1,
    stop_after: int | None = None,
) -> TrainingState:
    """Train from the epoch after ``state``'s last to the end of its phases, into ``out``.

    A state with finished epochs is a resume: the trainer's networks and optimisers are
    loaded from it first. Validation runs every ``eval_every`` epochs and after the last;
    the files of :mod:`trainer.run_files` are written after every epoch. ``stop_after``
    ends the run after that many epochs in all (a later call goes on from there).
    """
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if state.completed_epochs:
        _restore(state, trainer)
    plan = epoch_plan(state.phases)
    end = len(plan) if stop_after is None else min(len(plan), stop_after)
    for index in range(state.completed_epochs, end):
        epoch = index + 1
        started = time.time()
        trained = trainer.train_epoch(*plan[index])
        row: dict[str, Any] = {
            "epoch": epoch,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.time() - started, 1),
            **trained,
        }
        improved = False
        if epoch % eval_every == 0 or epoch == len(plan):
            validated = trainer.validate()
            row.update(validated.columns)
            improved = selection.improves(validated.score, state.best)
            if improved:
                state.best = selection.record(row, validated.score)
        state.history.append(row)
        state.completed_epochs = epoch
        state.networks = {name: net.state_dict() for name, net in trainer.networks.items()}
        state.optimizers = {name: opt.state_dict() for name, opt in trainer.optimizers.items()}
        finish_epoch(out, state, trainer.checkpoint(state), improved)
        logger.info("epoch %d: %s", epoch, summary_line(row, trainer.log_keys))
        trainer.after_epoch(state, final=epoch == len(plan))
    return state


def summary_line(row: dict[str, Any], keys: tuple[str, ...] | None) -> str:
    """``key=value`` for the numbers of ``row`` named in ``keys`` (all but the epoch if None)."""
    flat = flatten(row)
    names = keys if keys is not None else [key for key in flat if key != "epoch"]
    return ", ".join(
        f"{key}={flat[key]:.4g}"
        for key in names
        if isinstance(flat.get(key), int | float) and not isinstance(flat[key], bool)
    )


def _restore(state: TrainingState, trainer: Trainer) -> None:
    """Load the weights and optimiser states a resumed run left in ``state``.

    Optimiser states follow their parameters' device, so a run may resume on another.
    """
    for name, network in trainer.networks.items():
        if name not in state.networks:
            raise ValueError(f"the run's state has no weights for the {name}")
        network.load_state_dict(state.networks[name])
    for name, optimizer in trainer.optimizers.items():
        optimizer.load_state_dict(state.optimizers[name])
