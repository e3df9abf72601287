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
        *_standing_lines(training.get("selection_standing", {})),
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


def _standing_lines(standing: dict[str, dict[str, Any]]) -> list[str]:
    """One line per phase: its best epoch up to this checkpoint and what it scored."""
    lines = []
    for phase, best in sorted(standing.items()):
        parts = ", ".join(
            f"{key.removeprefix('val_')} {value:.3g}"
            for key, value in best.items()
            if key.startswith("val_") and isinstance(value, int | float)
        )
        lines.append(
            f"- best of {phase} up to this checkpoint: epoch {best.get('phase_epoch')} of "
            f"that phase, selection score {best['score']:.2f} dB ({parts})"
        )
    return lines


def _cell(summary: dict[str, Any], key: str, scale: float = 1.0) -> str:
    part = summary.get(key, {})
    mean, std = part.get("mean"), part.get("std")
    if mean is None:
        return "-"
    return f"{mean * scale:.4g} ± {std * scale:.2g}" if std is not None else f"{mean * scale:.4g}"


def evaluation_table(report: dict[str, Any]) -> list[str]:
    """Markdown of a separation report: each separator beside the baselines, the Turing test.

    The realism figure, if the report names one, is shown by its file name: export puts
    a copy next to the card (:func:`trainer.export.export_half`).
    """
    separators = report["separators"]
    rows = [
        f"## Evaluation (split {report.get('split', '?')}, seed {report.get('seed', '?')}, "
        f"{report.get('masks', 'annotated')} masks)",
        "",
        report["split_note"].capitalize() + ".",
    ]
    real = report.get("real")
    if real is not None:
        rows += [
            "",
            f"Real overlapping joints ({real['n_images']}): reconstruction vs input.",
            "",
            "| | overlap PSNR (dB) | bones PSNR (dB) | whole crop PSNR (dB, paper's protocol) "
            "| k | r(k, Laplace k) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name in separators:
            part = real[name]
            rows.append(
                f"| {name} | {_cell(part, 'overlap_psnr')} | {_cell(part, 'bones_psnr')} | "
                f"{_cell(part, 'whole_crop_psnr')} | {_cell(part, 'k')} | "
                f"{_r(part.get('k_pearson_r'))} |"
            )
    for label, part_set in report["synthetic"].items():
        rows += [
            "",
            f"Synthetic overlaps, {label} ({part_set['n_images']}): layers vs the true layers "
            "in the overlap.",
            "",
            "| | layer PSNR (dB) | detail PSNR (dB) | seam ratio | k abs. error | r(k, true k) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name in separators:
            part = part_set[name]
            rows.append(
                f"| {name} | {_cell(part, 'layer_psnr')} | {_cell(part, 'detail_psnr')} | "
                f"{_cell(part, 'seam_ratio')} | {_cell(part, 'k_abs_error')} | "
                f"{_r(part.get('k_pearson_r'))} |"
            )
    realism = report.get("realism") or {}
    if "skipped" not in realism and realism:
        aucs = ", ".join(f"{name} {realism[name]['auc']:.3f}" for name in separators)
        rows += ["", f"Realism classifier AUC on held-out joints (goal <= 0.65): {aucs}."]
        if realism.get("figure"):
            rows += ["", f"![held-out real and generated patches]({Path(realism['figure']).name})"]
    return rows


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


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
