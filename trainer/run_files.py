"""The files of a run folder, written the same way by every trainer after every epoch.

    state.pt    everything a resume needs (:mod:`trainer.state`)
    last.pt     the model after the last finished epoch
    best.pt     the model with the best selection score so far
    log.csv     one row per epoch; nested values (a validation report) as ``key.sub``
    log.jsonl   the same rows as JSON lines, nested values kept

The models and logs are written before the state: a kill in between leaves the state
of the epoch before, so a resume repeats that epoch (same seeds, same result) rather
than skipping one whose model was never written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import Checkpoint, atomic_file, save_checkpoint
from trainer.state import STATE_FILE, TrainingState, save_training_state

LAST, BEST, LOG_CSV, LOG_JSONL = "last.pt", "best.pt", "log.csv", "log.jsonl"


def finish_epoch(out: Path, state: TrainingState, checkpoint: Checkpoint, improved: bool) -> None:
    """Write the epoch's model (``last.pt``, and ``best.pt`` if ``improved``), logs, state."""
    save_checkpoint(out / LAST, checkpoint)
    if improved:
        save_checkpoint(out / BEST, checkpoint)
    write_csv(out / LOG_CSV, state.history)
    with atomic_file(out / LOG_JSONL, text=True) as handle:
        handle.writelines(json.dumps(row) + "\n" for row in state.history)
    save_training_state(out / STATE_FILE, state)


def write_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """The per-epoch log, rewritten whole from the history (so it matches the state)."""
    rows = [
        {key: json.dumps(value) if isinstance(value, list) else value for key, value in row.items()}
        for row in map(flatten, history)
    ]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with atomic_file(path, text=True, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested report as one level, keys joined by dots (``val.dice_upper``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
