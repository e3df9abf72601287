"""The GPU check of the trainer: the ``paper`` preset's speed, and a BLS-GAN run sized to a budget.

CI has no GPU; a site (or a session lent one) runs this once on a CUDA machine, with the
project installed in its Python environment::

    python benchmarks/gpu_training_check.py paper-speed --manifest M --out runs/paper-speed
    python benchmarks/gpu_training_check.py budget --preset cpu-skip --manifest M \\
        --out runs/gpu-skip --budget-s 420 --weight k_truth=10

``paper-speed`` trains the ``paper`` preset (256 x 256, full U-Nets, batch 12) for a few
epochs and prints seconds per epoch (training and validation apart), peak GPU memory and
the projected time of the preset's 250 + 50 epochs: the "about 45 minutes" of the
preset's description is a target until this prints otherwise.

``budget`` trains a preset from scratch so that both phases fit in ``--budget-s``
seconds: a two-epoch probe measures the time of an epoch, then the run keeps the
preset's ratio of phase-1 to phase-2 epochs with as many epochs as fit. What it changes
(epochs, loss weights, workers) is written into the run's config, so the card of its
checkpoint says what was trained; nothing here is a preset of its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from trainer.config import TrainConfig, load_preset
from trainer.loop import train
from trainer.state import STATE_FILE, load_training_state

logger = logging.getLogger("gpu_training_check")


class BudgetSpentError(Exception):
    """Raised after an epoch once a run's time is up; its files are written by then."""


def provenance(args: argparse.Namespace) -> dict[str, Any]:
    """The card's command and commit: the machine that runs this may hold no git checkout,
    so the commit comes from ``BLSNODE_SOURCE_COMMIT`` when set."""
    command = shlex.join(["python", "benchmarks/gpu_training_check.py", *sys.argv[1:]])
    return {"command": command, "commit": os.environ.get("BLSNODE_SOURCE_COMMIT")}


def epoch_clock(deadline: float | None) -> tuple[list[float], Any]:
    """Times at which epochs ended, and the ``on_epoch`` callback that records them."""
    ends: list[float] = []

    def on_epoch(row: dict[str, Any]) -> None:
        ends.append(time.time())
        logger.info("epoch %s done: %s", row.get("epoch"), json.dumps(row, default=str)[:400])
        if deadline is not None and time.time() > deadline:
            raise BudgetSpentError(f"budget spent after epoch {row.get('epoch')}")

    return ends, on_epoch


def paper_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per epoch of the ``paper`` preset, and its whole schedule projected."""
    config = load_preset("paper")
    config = config.with_overrides(num_workers=args.num_workers)
    started = time.time()
    ends, on_epoch = epoch_clock(None)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train(
        config,
        args.manifest,
        args.out,
        show_progress=False,
        stop_after_epochs=args.epochs,
        provenance=provenance(args),
        on_epoch=on_epoch,
    )
    rows = result.history
    per_epoch = [b - a for a, b in itertools.pairwise(ends)]
    seconds = per_epoch[-1] if per_epoch else ends[0] - started
    return {
        "preset": "paper",
        "epochs_run": len(rows),
        "setup_s": round(ends[0] - started - rows[0]["seconds"], 1),
        "train_s_per_epoch": [row["seconds"] for row in rows],
        "epoch_s_with_validation": round(seconds, 1),
        "projected_total_min": round(seconds * config.total_epochs / 60, 1),
        "peak_gpu_mib": peak_gpu_mib(),
        "images_per_s": [row.get("images_per_s") for row in rows],
    }


def budget_run(args: argparse.Namespace) -> dict[str, Any]:
    """Probe two epochs, then train both phases in what is left of ``--budget-s``."""
    started = time.time()
    base = configured(load_preset(args.preset), args)
    ends, on_epoch = epoch_clock(None)
    probe = base.with_overrides(optim={"pretrain_epochs": 2, "finetune_epochs": 1})
    train(
        probe,
        args.manifest,
        args.out / "probe",
        show_progress=False,
        stop_after_epochs=2,
        provenance=provenance(args),
        on_epoch=on_epoch,
    )
    epoch_s = ends[1] - ends[0]
    setup_s = ends[0] - started - epoch_s
    left = args.budget_s - (time.time() - started) - setup_s
    total = max(2, int(left / (epoch_s * 1.1)))
    share = base.optim.pretrain_epochs / base.total_epochs
    pretrain = max(1, round(total * share))
    config = base.with_overrides(
        optim={"pretrain_epochs": pretrain, "finetune_epochs": max(1, total - pretrain)}
    )
    logger.info("epoch %.1f s, setup %.1f s: %d + %d epochs", epoch_s, setup_s, pretrain, total)
    _, guard = epoch_clock(started + args.budget_s + args.grace_s)
    stopped = None
    try:
        result = train(
            config,
            args.manifest,
            args.out / "run",
            show_progress=False,
            provenance=provenance(args),
            on_epoch=guard,
        )
        history, best = result.history, result.best
    except BudgetSpentError as error:
        stopped = str(error)
        state = load_training_state(args.out / "run" / STATE_FILE)
        history, best = state.history, state.best
    return {
        "preset": args.preset,
        "probe_epoch_s": round(epoch_s, 1),
        "setup_s": round(setup_s, 1),
        "epochs": [config.optim.pretrain_epochs, config.optim.finetune_epochs],
        "completed": len(history),
        "stopped": stopped,
        "best": best,
        "last": history[-1] if history else None,
        "peak_gpu_mib": peak_gpu_mib(),
        "wall_s": round(time.time() - started, 1),
    }


def configured(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``config`` with the command line's loss weights and data-loader workers."""
    weights = dict(config.optim.loss_weights)
    for item in args.weight:
        name, _, value = item.partition("=")
        weights[name] = float(value)
    return config.with_overrides(num_workers=args.num_workers, optim={"loss_weights": weights})


def peak_gpu_mib() -> float | None:
    """Peak memory the CUDA allocator handed out, MiB (None without a GPU)."""
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("paper-speed", "budget"))
    parser.add_argument("--manifest", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2, help="paper-speed: epochs to time")
    parser.add_argument("--preset", default="cpu-skip", help="budget: the preset to train")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--grace-s", type=float, default=30.0, help="budget: overrun allowed")
    parser.add_argument("--weight", action="append", default=[], help="budget: NAME=VALUE")
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logger.info("torch %s, cuda %s", torch.__version__, torch.cuda.is_available())
    if torch.cuda.is_available():
        logger.info("device %s", torch.cuda.get_device_name(0))
    result = paper_speed(args) if args.task == "paper-speed" else budget_run(args)
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json is not None:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
