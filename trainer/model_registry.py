"""The trainer's side of the model registry: register a finished run with its model card.

The registry itself (layout, promotions, shipped fallback) is
:class:`blsgan_core.registry.ModelRegistry`; this module adds what only the trainer
knows: the human-readable card of a training run (command, data digest, source commit,
validation metrics, date) and the registry's summary of an entry for ``blsnode models``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blsgan_core.registry import ModelEntry, ModelRegistry


def card_markdown(card: dict[str, Any]) -> str:
    """A readable model card from a checkpoint's metadata (as :func:`trainer.loop` writes it)."""
    metadata = card.get("metadata", {})
    training = metadata.get("training", {})
    data = metadata.get("data", {})
    lines = [
        f"# {card.get('name', '?')} ({card.get('kind', '?')}, version {card.get('version', '?')})",
        "",
        f"- trained: {metadata.get('date', 'unknown')}",
        f"- command: `{training.get('command') or 'unknown'}`",
        f"- source commit: {training.get('commit') or 'unknown (not a git checkout)'}",
        f"- preset: {training.get('preset', '?')}, epochs: {training.get('epochs', '?')}",
        f"- phase {training.get('phase', '?')}, epoch {training.get('phase_epoch', '?')} of "
        f"that phase; chosen by: {training.get('selection', 'the last epoch')}",
        f"- initialised from: {training.get('initialised_from', 'random initialisation')}",
        f"- data digest (sha256 of images and masks): {data.get('digest', '?')}",
        f"- manifests: {', '.join(data.get('manifests', [])) or '?'}",
        f"- joints: {data.get('n_train_images', '?')} training images, "
        f"{data.get('n_validation_images', '?')} validation images (split by joint), "
        f"{data.get('n_rejected', '?')} records rejected",
        f"- checkpoint sha256: {card.get('sha256', '?')}",
        "",
        "## Validation (held-out joints)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key, value in sorted(metadata.get("metrics", {}).items()):
        lines.append(
            f"| {key} | {value:.6g} |" if isinstance(value, float) else f"| {key} | {value} |"
        )
    baseline = metadata.get("metrics_identity_baseline")
    if baseline:
        lines.append(
            "| identity layers on the same joints | "
            + ", ".join(f"{k} {v:.4g}" for k, v in sorted(baseline.items()) if v is not None)
            + " |"
        )
    evaluation = metadata.get("evaluation")
    if evaluation:
        lines += ["", *evaluation_table(evaluation)]
    return "\n".join(lines) + "\n"


def _cell(summary: dict[str, Any], key: str, scale: float = 1.0) -> str:
    part = summary.get(key, {})
    mean, std = part.get("mean"), part.get("std")
    if mean is None:
        return "-"
    return f"{mean * scale:.4g} ± {std * scale:.2g}" if std is not None else f"{mean * scale:.4g}"


def evaluation_table(report: dict[str, Any]) -> list[str]:
    """Markdown rows of a separation report: model, identity baseline, the paper."""
    rows = [
        f"## Evaluation (split {report.get('split', '?')}, seed {report.get('seed', '?')}: "
        f"{report['real']['n_images']} real overlapping joints, "
        f"{report['synthetic']['n_images']} synthetic overlaps)",
        "",
        "| | real MSE (1e-4) | real SSIM | real PSNR (dB) | synthetic layer PSNR (dB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    parts = [("this model", report)]
    if "baseline" in report:
        parts.append(("identity layers", report["baseline"]))
    for label, part in parts:
        real, synthetic = part["real"], part["synthetic"]
        rows.append(
            f"| {label} | {_cell(real, 'mse', 1e4)} | {_cell(real, 'ssim')} | "
            f"{_cell(real, 'psnr')} | {_cell(synthetic, 'layer_psnr')} |"
        )
    paper = report.get("paper_table2")
    if paper:
        rows.append(
            f"| paper, Table 2 | {paper['mse'] * 1e4:.2f} ± {paper['mse_std'] * 1e4:.2f} | "
            f"{paper['ssim']} | {paper['psnr']} | not reported |"
        )
    return rows


def register_checkpoint(registry: ModelRegistry, checkpoint: Path, name: str) -> ModelEntry:
    """Copy ``checkpoint`` into the registry as ``name`` with its JSON and Markdown cards."""
    entry = registry.register(checkpoint, name)
    markdown = card_markdown(entry.card)
    entry.path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return entry


def entry_summary(entry: ModelEntry, promoted: bool = False) -> dict[str, Any]:
    """What ``blsnode models list`` shows of an entry."""
    metadata = entry.card.get("metadata", {})
    return {
        "name": entry.name,
        "kind": entry.kind,
        "version": entry.version,
        "path": str(entry.path),
        "shipped": entry.shipped,
        "promoted": promoted,
        "date": metadata.get("date"),
        "metrics": metadata.get("metrics", {}),
    }


def promoted_names(registry: ModelRegistry, entries: list[ModelEntry]) -> set[str]:
    """Names of the entries that are the promoted model of their kind."""
    names = set()
    for kind in {entry.kind for entry in entries}:
        chosen = registry.promoted(kind)
        if chosen is not None:
            names.add(chosen.name)
    return names
