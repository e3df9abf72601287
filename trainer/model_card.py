"""Model cards: one Markdown page per model, the same for every kind, from its metadata alone.

Every trainer (BLS-GAN, localiser, segmenter) stores one metadata layout in its
checkpoints, so that a card can be rendered from the file alone (``blsnode models show``,
export) and cards of different kinds list the same facts in the same order::

    training   command, commit, seed, epochs (and phase), selection, initialised_from,
               resumed_by, preset, config
    data       digest, manifests, n_train_images, n_validation_images, n_rejected,
               split, rejected
    metrics    the validation of the checkpoint's epoch
    date       when the checkpoint was written

An exported (shipped) model adds ``precision``, ``exported_from``, ``export_command``,
``summary``, ``note`` and ``evaluation`` (a separation report of ``blsnode evaluate``,
or what the front-end trainers measured on the exported file).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import Checkpoint, file_digest
from blsgan_core.registry import model_card
from trainer.run_files import flatten

SEPARATION_TASK = "separation"


def checkpoint_metadata(
    training: dict[str, Any], data: dict[str, Any], metrics: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A checkpoint's metadata in the layout every trainer writes (see the module doc)."""
    return {
        "training": training,
        "data": data,
        "metrics": metrics,
        **extra,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def recorded_split(metadata: dict[str, Any]) -> dict[str, Any]:
    """The validation split a front-end checkpoint records (``{}`` if none).

    Weights exported before every trainer shared one layout keep it at the top level
    (and ``data`` there is the data folder, a string).
    """
    data = metadata.get("data")
    split = data.get("split") if isinstance(data, dict) else None
    return dict(split or metadata.get("split", {}))


def write_card(weights: Path, checkpoint: Checkpoint) -> Path:
    """Write the Markdown card of the model file ``weights`` beside it; return its path."""
    card = model_card(checkpoint, weights.stem, file_digest(weights))
    path = weights.with_suffix(".md")
    path.write_text(card_markdown(card), encoding="utf-8")
    return path


def card_markdown(card: dict[str, Any]) -> str:
    """A readable model card from a registry card (:func:`blsgan_core.registry.model_card`)."""
    metadata = card.get("metadata", {})
    training = metadata.get("training", {})
    data = metadata.get("data", {})
    phase = (
        f" (phase {training['phase']}, epoch {training.get('phase_epoch', '?')} of that phase)"
        if training.get("phase") is not None
        else ""
    )
    resumes = ", ".join(f"`{command}`" for command in training.get("resumed_by", []))
    exported = (
        f"{metadata['precision']}, exported from {metadata.get('exported_from', '?')}"
        if "precision" in metadata
        else "fp32 (training checkpoint)"
    )
    lines = [
        f"# {card.get('name', '?')} ({card.get('kind', '?')}, version {card.get('version', '?')})",
        "",
        *([metadata["summary"], ""] if metadata.get("summary") else []),
        f"- trained: {metadata.get('date', 'unknown')}",
        f"- command: `{training.get('command') or 'unknown'}`",
        f"- resumed by: {resumes or 'not resumed'}",
        f"- source commit: {training.get('commit') or 'unknown (not a git checkout)'}",
        f"- preset: {training.get('preset', 'none (the trainer defaults)')}, "
        f"seed: {training.get('seed', '?')}",
        f"- epochs: {training.get('epochs', '?')}{phase}; "
        f"chosen by: {training.get('selection', 'the last epoch')}"
        f"{_standing(training.get('selection_standing', {}))}",
        f"- initialised from: {training.get('initialised_from', 'random initialisation')}",
        f"- data digest (sha256 of the training data): {data.get('digest', '?')}",
        f"- data: {', '.join(data.get('manifests', [])) or '?'}",
        f"- images: {data.get('n_train_images', '?')} training, "
        f"{data.get('n_validation_images', '?')} validation, "
        f"{data.get('n_rejected', '?')} records rejected",
        f"- checkpoint sha256: {card.get('sha256', '?')}",
        f"- precision: {exported}",
        f"- exported with: `{metadata.get('export_command') or 'not exported'}`",
        "",
        "## Validation (held-out data, at the chosen epoch)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    metrics = flatten(metadata.get("metrics", {}))
    for key, value in sorted((k, v) for k, v in metrics.items() if not isinstance(v, list)):
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
    if evaluation and evaluation.get("task") == SEPARATION_TASK:
        lines += ["", *evaluation_table(evaluation)]
    elif evaluation:
        lines += ["", "## Measured on the exported weights", "", *_json(evaluation)]
    if data.get("split"):
        lines += ["", "## Validation split", "", *_json(data["split"])]
    if data.get("rejected"):
        lines += ["", "## Records rejected", "", *[f"- {item}" for item in data["rejected"]]]
    lines += ["", "## Architecture", "", *_json(card.get("config", {}))]
    if metadata.get("note"):
        lines += ["", "## Provenance note", "", metadata["note"]]
    return "\n".join(lines) + "\n"


def _standing(standing: dict[str, dict[str, Any]]) -> str:
    """Each phase's best epoch up to this checkpoint and what it scored, or nothing."""
    parts = []
    for phase, best in sorted(standing.items()):
        scores = ", ".join(
            f"{key.removeprefix('val_')} {value:.3g}"
            for key, value in best.items()
            if key.startswith("val_") and isinstance(value, int | float)
        )
        parts.append(
            f"best of {phase} up to this checkpoint: epoch {best.get('phase_epoch')} of that "
            f"phase, selection score {best['score']:.2f} dB ({scores})"
        )
    return "; " + "; ".join(parts) if parts else ""


def _json(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=1), "```"]


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
            "| | layer PSNR (dB) | detail PSNR (dB) | seam ratio | other-bone leak "
            "| k abs. error | r(k, true k) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in separators:
            part = part_set[name]
            rows.append(
                f"| {name} | {_cell(part, 'layer_psnr')} | {_cell(part, 'detail_psnr')} | "
                f"{_cell(part, 'seam_ratio')} | {_cell(part, 'other_bone_leak')} | "
                f"{_cell(part, 'k_abs_error')} | "
                f"{_r(part.get('k_pearson_r'))} |"
            )
    realism = report.get("realism") or {}
    if "skipped" not in realism and realism:
        aucs = ", ".join(f"{name} {realism[name]['auc']:.3f}" for name in separators)
        rows += ["", f"Realism classifier AUC on held-out joints (goal <= 0.65): {aucs}."]
        floor = realism.get("population_floor")
        if floor is not None:
            rows[-1] += (
                f" Untouched bone of both kinds of joint (the population floor, what a perfect"
                f" separator would still score): {floor['auc']:.3f}."
            )
        on_synthetic = realism.get("on_synthetic")
        if on_synthetic:
            aucs = ", ".join(f"{name} {on_synthetic[name]['auc']:.3f}" for name in on_synthetic)
            rows[-1] += (
                " On synthetic overlaps of held-out joints, the layers against the true layers"
                " of the same overlaps (no population difference; a perfect separator"
                f" scores 0.5): {aucs}."
            )
        if realism.get("figure"):
            rows += ["", f"![held-out real and generated patches]({Path(realism['figure']).name})"]
    return rows


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
