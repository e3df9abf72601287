"""Model cards: a Markdown page next to each shipped weights file, from its checkpoint."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import file_digest, load_checkpoint
from trainer.provenance import module_command

# Metadata some runs record, shown in the card's table when present.
OPTIONAL_ROWS = (
    ("initialised_from", "initialised from"),
    ("selection", "checkpoint selected on"),
)


def render_model_card(
    weights: Path,
    title: str,
    summary: str,
    shipped_validation: dict[str, Any],
    export_command: str,
    note: str = "",
) -> str:
    """The card of ``weights``: what it is, how it was trained, on what, how well."""
    checkpoint = load_checkpoint(weights)
    meta = checkpoint.metadata
    command = str(meta.get("command", "?"))
    if command.startswith("python /"):  # older runs recorded the script's path
        command = module_command(shlex.split(command)[1:])
    lines = [
        f"# {title}",
        "",
        summary,
        "",
        "| | |",
        "| --- | --- |",
        f"| file | `{weights.name}` ({weights.stat().st_size / 1e6:.2f} MB, fp16) |",
        f"| sha256 | `{file_digest(weights)}` |",
        f"| kind / version | `{checkpoint.kind}` / `{checkpoint.version}` |",
        f"| exported | {time.strftime('%Y-%m-%d')} |",
        f"| git commit of the training code | `{meta.get('commit') or 'unknown'}` |",
        f"| training data | `{meta.get('data', '?')}` |",
        f"| data digest (sha256 over paths and file digests) | `{meta.get('data_digest', '?')}` |",
        f"| seed | {meta.get('seed', '?')} |",
        f"| best epoch | {meta.get('epoch', '?')} |",
        *[f"| {label} | {meta[key]} |" for key, label in OPTIONAL_ROWS if key in meta],
        "",
        "## Training command",
        "",
        "```",
        f"PYTHONPATH=. nice -n 10 {command}",
        "```",
        "",
        "Exported (fp16) and measured with:",
        "",
        "```",
        f"PYTHONPATH=. {export_command}",
        "```",
        "",
        "## Validation split",
        "",
        "```json",
        json.dumps(meta.get("split", {}), indent=1),
        "```",
        "",
        "## Validation metrics of the shipped (fp16) weights",
        "",
        "```json",
        json.dumps(shipped_validation, indent=1),
        "```",
        "",
        "## Architecture",
        "",
        "```json",
        json.dumps(checkpoint.config, indent=1),
        "```",
        "",
    ]
    if note:
        lines += ["## Provenance note", "", note, ""]
    excluded = meta.get("excluded_invalid")
    if excluded:
        lines += ["## Records excluded as annotation errors", ""]
        lines += [f"- {item}" for item in excluded] + [""]
    return "\n".join(lines)
