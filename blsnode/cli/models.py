"""``blsnode models``: list, inspect, register and promote models of the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from blsgan_core.seam_modes import BLEND_MODES
from blsnode.cli.context import emit, exit_on_value_error, json_option, pass_settings
from dicom_node.settings import Settings


def _render_list(data: dict[str, Any]) -> str:
    lines = ["in use:"]
    for kind, use in data["in_use"].items():
        lines.append(f"  {kind:<10} {use['name'] or '(none)':<32} {use['reason']}")
    if not data["models"]:
        return "\n".join([*lines, f"no models in {data['registry']}"])
    lines.append("available:")
    for model in data["models"]:
        flags = ("*" if model["promoted"] else " ") + ("s" if model["shipped"] else " ")
        lines.append(f"{flags} {model['name']:<32} {model['kind']:<10} {model['version']}")
    return "\n".join([*lines, "(* promoted, s shipped with the package)"])


def _render_card(data: dict[str, Any]) -> str:
    return str(data.get("markdown") or json.dumps(data, indent=2, default=str))


def _render_promoted(data: dict[str, Any]) -> str:
    return f"promoted {data['name']} ({data['kind']}, version {data['version']})"


@click.group()
def models() -> None:
    """List, inspect and promote trained models (the registry in models.registry_dir)."""


@models.command("list")
@click.option("--kind", help="Only models of this kind (blsgan, segmenter, localiser).")
@json_option
@pass_settings
def list_models(settings: Settings, kind: str | None, as_json: bool) -> None:
    """The model each kind uses and why, then every registered and shipped model."""
    from trainer.model_registry import entry_summary, promoted_names
    from worker.models import KINDS, registry_for

    registry = registry_for(settings)
    with exit_on_value_error():
        entries = registry.list_models(kind)
        promoted = promoted_names(registry, entries)
        choices = [registry.choose(k) for k in KINDS if kind is None or k == kind]
    data = {
        "registry": str(registry.directory),
        "in_use": {
            c.kind: {"name": c.entry.name if c.entry else None, "reason": c.reason} for c in choices
        },
        "models": [entry_summary(e, e.name in promoted) for e in entries],
    }
    emit(data, as_json, _render_list)


@models.command("show")
@click.argument("name")
@json_option
@pass_settings
def show(settings: Settings, name: str, as_json: bool) -> None:
    """The model card of NAME (training command, data digest, commit, metrics, date)."""
    from trainer.model_card import card_markdown
    from trainer.model_registry import promoted_names
    from worker.models import registry_for

    registry = registry_for(settings)
    with exit_on_value_error():
        entry = registry.get(name)
        registry.verify(entry)
        promoted = entry.name in promoted_names(registry, [entry])
    markdown_path = entry.path.with_suffix(".md")
    data = {
        **entry.card,
        "path": str(entry.path),
        "shipped": entry.shipped,
        "promoted": promoted,
        "markdown": markdown_path.read_text(encoding="utf-8")
        if markdown_path.is_file()
        else card_markdown(entry.card),
    }
    emit(data, as_json, _render_card)


@models.command("promote")
@click.argument("name")
@json_option
@pass_settings
def promote(settings: Settings, name: str, as_json: bool) -> None:
    """Make NAME the model its kind uses; workers load it for their next jobs."""
    from trainer.model_registry import entry_summary
    from worker.models import registry_for

    registry = registry_for(settings)
    with exit_on_value_error():
        entry = registry.get(name)
        registry.verify(entry)
        entry = registry.promote(name)
    emit(entry_summary(entry, promoted=True), as_json, _render_promoted)


@models.command("register")
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("name")
@json_option
@pass_settings
def register(settings: Settings, checkpoint: Path, name: str, as_json: bool) -> None:
    """Copy CHECKPOINT (e.g. a run's best.pt) into the registry as NAME, with its card."""
    from trainer.model_registry import entry_summary, register_checkpoint
    from worker.models import registry_for

    with exit_on_value_error():
        entry = register_checkpoint(registry_for(settings), checkpoint, name)
    emit(entry_summary(entry), as_json, lambda d: f"registered {d['name']} ({d['version']})")


@models.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("name")
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Target folder (default: the package's shipped weights, blsgan_core/weights).",
)
@click.option("--no-promote", is_flag=True, help="Do not make it the shipped default.")
@click.option(
    "--evaluation",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A separation report (evaluate --json output) to put into the card.",
)
@click.option(
    "--boundary-blend",
    type=click.Choice(BLEND_MODES),
    default=None,
    help="The seam step of the layers (not the paper's) in the exported config, one of "
    "the choices above (default: as in CHECKPOINT).",
)
@click.option(
    "--offset-bias",
    type=float,
    default=None,
    help="Calibration of the eq1-offset step (log transmittance; python -m "
    "trainer.evaluation.offset_calibration fits it; default: as in CHECKPOINT, 0).",
)
@click.option(
    "--reconstructor-window",
    type=click.IntRange(min=0),
    default=None,
    help="Read k from this square (px) around the joint space, 0 = the whole joint "
    "(default: as in CHECKPOINT; the trainer sets its crop size).",
)
@click.option("--note", help="A provenance note for the card (why this checkpoint ships).")
@json_option
def export(
    checkpoint: Path,
    name: str,
    directory: Path | None,
    no_promote: bool,
    evaluation: Path | None,
    boundary_blend: str | None,
    reconstructor_window: int | None,
    offset_bias: float | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Write CHECKPOINT as fp16 NAME with its model cards, for shipping with the package."""
    from blsgan_core.registry import SHIPPED_WEIGHTS_DIR
    from blsnode.cli.train import invocation
    from trainer.export import export_half
    from trainer.model_registry import entry_summary

    with exit_on_value_error():  # includes json.JSONDecodeError
        report = None
        if evaluation is not None:
            report = json.loads(evaluation.read_text(encoding="utf-8"))
            if not isinstance(report, dict) or report.get("task") != "separation":
                raise ValueError(f"{evaluation} is not a separation report")
        entry = export_half(
            checkpoint,
            name,
            directory or SHIPPED_WEIGHTS_DIR,
            promote=not no_promote,
            evaluation=report,
            boundary_blend=boundary_blend,
            reconstructor_window=reconstructor_window,
            offset_bias=offset_bias,
            note=note,
            command=invocation(click.get_current_context()),
        )
    summary = {**entry_summary(entry, promoted=not no_promote), "bytes": entry.path.stat().st_size}
    emit(summary, as_json, lambda d: f"exported {d['name']} ({d['bytes'] / 2**20:.1f} MiB)")
