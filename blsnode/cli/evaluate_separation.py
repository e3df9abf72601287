"""``blsnode evaluate --task separation``: the runner, its options and its text report.

:func:`run_separation_evaluation` has the signature of the runners of
``blsnode/cli/evaluate.py`` (``options -> report``); :data:`SEPARATION_OPTIONS` are the
click options it reads beyond the shared ``--manifest``, ``--model``, ``--split`` and
``--seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from trainer.splits import pick_split

DEFAULT_VALIDATION_FRACTION = 0.2  # the presets' split
DEFAULT_SYNTHETIC_SEED = 1234  # the presets' validation.synthetic_seed


def _manifests(value: Path | Sequence[Path] | None) -> list[Path]:
    if not value:
        raise click.UsageError("--task separation needs --manifest PATH")
    return [value] if isinstance(value, Path) else list(value)


def run_separation_evaluation(options: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a BLS-GAN checkpoint on a manifest's joints.

    ``options``: ``manifest`` (path or paths), ``model`` (the checkpoint, as the command chose it),
    ``split`` (all/train/val) and ``seed`` of the joint-disjoint split, and optionally
    ``validation_fraction``, ``baseline``, ``synthetic_seed``, ``max_images``,
    ``device`` and ``plots`` (folder for PNG figures).
    """
    import torch

    from blsgan_core.data import read_manifests, split_by_case
    from blsgan_core.model import load_model
    from trainer import plots
    from trainer.datasets import SampleStore
    from trainer.evaluation.separation import (
        evaluate_separation,
        identity_separator,
        model_separator,
        real_joints,
        score_separator,
        synthetic_joints,
    )
    from trainer.validation import extremes

    manifests = _manifests(options.get("manifest"))
    split = options.get("split", "all")
    fraction = options.get("validation_fraction") or DEFAULT_VALIDATION_FRACTION
    contents = read_manifests(manifests)
    records = pick_split(
        list(contents.records),
        split,
        lambda r: split_by_case(r, validation_fraction=fraction, seed=options.get("seed", 0)),
    )
    model_path = options["model"]
    device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(Path(model_path), device=device)

    store = SampleStore()
    cap = options.get("max_images")
    real = real_joints(records, store)[:cap]
    synthetic_seed = options.get("synthetic_seed", DEFAULT_SYNTHETIC_SEED)
    synthetic = synthetic_joints(records, store, seed=synthetic_seed)[:cap]
    separator = model_separator(model, device)
    report = evaluate_separation(real, synthetic, separator, baseline=bool(options.get("baseline")))
    if options.get("plots") is not None:
        folder = Path(options["plots"])
        scores = score_separator(separator, real, synthetic)
        baseline = score_separator(identity_separator, real, synthetic)
        plots.metrics_by_overlap(scores, folder / "metrics_by_overlap.png", baseline)
        examples = extremes(synthetic) + extremes(real)
        if examples:
            plots.example_panel(examples, separator, folder / "examples.png")
    return {
        **report,
        "model": {"path": str(model_path), "version": model.version},
        "split": split,
        "seed": options.get("seed", 0),
        "synthetic_seed": synthetic_seed,
        "manifests": [str(path) for path in manifests],
        "n_rejected": len(contents.rejected),
    }


def render_separation(data: dict[str, Any]) -> str:
    """The report as four lines: model, identity baseline (if measured), the paper."""

    def line(name: str, part: dict[str, Any]) -> str:
        real, synthetic = part["real"], part["synthetic"]
        values = (
            real["mse"]["mean"], real["ssim"]["mean"], real["psnr"]["mean"],
            synthetic["layer_psnr"]["mean"],
        )  # fmt: skip
        shown = ["-" if v is None else f"{v:.4g}" for v in values]
        return f"{name:<10} mse {shown[0]}  ssim {shown[1]}  psnr {shown[2]} dB  " + (
            f"synthetic layer psnr {shown[3]} dB"
        )

    lines = [
        f"model {data['model']['version']}, split {data['split']}, "
        f"{data['real']['n_images']} real + {data['synthetic']['n_images']} synthetic joints",
        line("model", data),
    ]
    if "baseline" in data:
        lines.append(line("identity", data["baseline"]))
    paper = data["paper_table2"]
    lines.append(
        f"paper      mse {paper['mse']:.4g}  ssim {paper['ssim']}  psnr {paper['psnr']} dB"
    )
    return "\n".join(lines)


SEPARATION_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option(
        "--validation-fraction",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=DEFAULT_VALIDATION_FRACTION,
        show_default=True,
        help="Separation: fraction of joints in the validation split (as in training).",
    ),
    click.option("--baseline", is_flag=True, help="Separation: also report the identity layers."),
    click.option(
        "--synthetic-seed",
        type=int,
        default=DEFAULT_SYNTHETIC_SEED,
        show_default=True,
        help="Separation: seed of the synthetic overlaps.",
    ),
    click.option("--max-images", type=click.IntRange(min=1), help="Separation: cap per protocol."),
    click.option("--device", help="Separation: torch device (default cuda if present)."),
    click.option(
        "--plots",
        type=click.Path(file_okay=False, path_type=Path),
        help="Separation: write metrics-by-overlap and example PNGs here.",
    ),
]


def separation_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with :data:`SEPARATION_OPTIONS`."""
    for option in reversed(SEPARATION_OPTIONS):
        function = option(function)
    return function
