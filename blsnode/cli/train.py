"""``blsnode train``: the two-phase BLS-GAN training, resumable, from the command line."""

from __future__ import annotations

import logging
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from blsnode.cli.context import emit, json_option, pass_settings
from blsnode.cli.options import model_for
from dicom_node.settings import Settings
from trainer import provenance
from trainer.config import PRESETS

logger = logging.getLogger(__name__)


def invocation(ctx: click.Context) -> str:
    """The ``blsnode`` command running in ``ctx`` as a shell line (for the model card)."""
    path = ctx.command_path.split()[1:] or [ctx.info_name or "train"]
    return provenance.invocation(ctx, shlex.join(["blsnode", *path]))


def _render(data: dict[str, Any]) -> str:
    lines = [
        f"run: {data['out']} ({data['completed_epochs']}/{data['total_epochs']} epochs)",
        f"best model: {data['best_checkpoint']} (epoch {data['best'].get('epoch')})",
        f"throughput: {data['images_per_s']:.1f} images/s" if data["images_per_s"] else "",
    ]
    lines += [f"{key}: {value:.4g}" for key, value in data["validation"].items() if value]
    if "registered" in data:
        lines.append(f"registered as {data['registered']['name']}")
    return "\n".join(line for line in lines if line)


@click.command()
@click.option(
    "--preset",
    default="cpu-skip",  # the shipped model's recipe (gpu-skip) at 128 px, for a CPU
    show_default=True,
    help=f"Training preset: one of {', '.join(PRESETS)}, or a TOML file.",
)
@click.option(
    "--manifest",
    "manifests",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Joint manifest (repeatable). Default: the settings' training.manifests.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder. Default: <training.runs_dir>/<preset>-<UTC time>.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out after its last epoch.")
@click.option("--from-promoted", is_flag=True, help="Fine-tune the promoted model (phase 2 only).")
@click.option(
    "--init",
    "initial",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Fine-tune this checkpoint (phase 2 only).",
)
@click.option("--no-pretrain", is_flag=True, help="Ablation: skip phase 1 (pre-training).")
@click.option("--no-correction", is_flag=True, help="Ablation: no correction parameter (k = 1).")
@click.option("--pretrain-epochs", type=click.IntRange(min=0), help="Override phase 1 epochs.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), help="Override phase 2 epochs.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Override Adam's lr.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override the batch size.")
@click.option("--seed", type=int, help="Override the seed.")
@click.option("--device", help="torch device (default: cuda if present, else cpu).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@click.option(
    "--stop-after", type=click.IntRange(min=1), help="Stop after this many epochs in total."
)
@click.option("--register", "register_name", help="Put the best model into the registry.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
@json_option
@pass_settings
def train(
    settings: Settings,
    preset: str,
    manifests: tuple[Path, ...],
    out: Path | None,
    resume: bool,
    from_promoted: bool,
    initial: Path | None,
    no_pretrain: bool,
    no_correction: bool,
    pretrain_epochs: int | None,
    finetune_epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    seed: int | None,
    device: str | None,
    threads: int | None,
    stop_after: int | None,
    register_name: str | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Train BLS-GAN in two phases (pre-training on synthetic overlaps, then fine-tuning).

    A run folder holds checkpoints (last.pt, best.pt), state.pt for --resume, log.csv
    and plots/. --from-promoted fine-tunes the promoted model on the given manifests.
    """
    from trainer.retrain import TrainRequest, run_training

    if resume and out is None:
        raise click.UsageError("--resume needs the --out folder of the run to continue")
    if from_promoted and initial is not None:
        raise click.UsageError("use either --from-promoted or --init, not both")
    registrar = None
    if from_promoted or register_name is not None:
        # Imported only when used: training itself does not need the registry.
        from trainer.model_registry import entry_summary, register_checkpoint
        from worker.models import registry_for

        registry = registry_for(settings)

        def registrar(checkpoint: Path, name: str) -> dict[str, Any]:
            return entry_summary(register_checkpoint(registry, checkpoint, name))

        if from_promoted:
            from blsgan_core.model import MODEL_KIND

            initial = model_for(settings, MODEL_KIND)
    optim = {
        key: value
        for key, value in (
            ("pretrain_epochs", pretrain_epochs),
            ("finetune_epochs", finetune_epochs),
            ("lr", lr),
            ("batch_size", batch_size),
        )
        if value is not None
    }
    overrides: dict[str, Any] = {"optim": optim} if optim else {}
    if seed is not None:
        overrides["seed"] = seed
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        out = settings.training_runs_dir / f"{Path(preset).stem}-{stamp}"
    request = TrainRequest(
        preset=preset,
        manifests=manifests or tuple(settings.training.manifests),
        out=out,
        resume=resume,
        initial=initial,
        no_pretrain=no_pretrain,
        no_correction=no_correction,
        overrides=overrides,
        device=device,
        threads=threads,
        stop_after_epochs=stop_after,
        show_progress=not (no_progress or as_json),
        command=invocation(click.get_current_context()),
        register=register_name,
    )
    try:
        summary = run_training(request, registrar)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    emit(summary, as_json, _render)
