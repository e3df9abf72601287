"""``blsnode evaluate --task jsn``: follow-up registration with and without separation.

:func:`run_jsn_evaluation` has the signature of the runners of ``blsnode/cli/evaluate.py``
(``options -> report``); it reads ``--manifest``, ``--model``, ``--split``, ``--seed``,
``--validation-fraction`` (the BLS-GAN's joint split, as for ``--task separation``) and
``--limit`` (pairs) and ``--resume-file`` (per-pair results, resumable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
from numpy.typing import NDArray

from trainer.splits import pick_split


def run_jsn_evaluation(options: dict[str, Any]) -> dict[str, Any]:
    """Register the follow-up pairs of one manifest with the BLS-GAN model in ``options``."""
    import torch

    from blsgan_core.data import read_manifests, split_by_case
    from blsgan_core.inference import separate
    from blsgan_core.model import load_model
    from trainer.evaluation.jsn import evaluate_jsn

    manifests = options.get("manifest") or []
    if len(manifests) != 1:
        raise click.UsageError("--task jsn needs exactly one --manifest PATH")
    contents = read_manifests(Path(manifests[0]))
    split = options.get("split", "all")
    records = pick_split(
        list(contents.records),
        split,
        lambda r: split_by_case(
            r,
            validation_fraction=options.get("validation_fraction") or 0.2,
            seed=options.get("seed", 0),
        ),
    )
    model_path = options["model"]  # resolved by the command: --model, else the registry's
    device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(Path(model_path), device=device)

    def separator(images: NDArray[np.float32], masks: NDArray[np.bool_]) -> NDArray[np.float32]:
        layers = separate(images, masks, model, device=device).layers
        return np.clip(layers.numpy(), 0.0, 1.0)

    report = evaluate_jsn(
        records, separator, limit=options.get("limit"), resume_file=options.get("resume_file")
    )
    return {
        **report,
        "model": {"path": str(model_path), "version": model.version},
        "device": str(device),
        "split": split,
        "manifest": str(manifests[0]),
        "n_rejected_records": len(contents.rejected),
    }


def render_jsn(data: dict[str, Any]) -> str:
    """Both errors of every condition, the p-values, and the same per overlap bin."""

    def mean(part: dict[str, Any], kind: str) -> str:
        value = part[kind]["mean"]
        return "-" if value is None else f"{value:.5f}"

    def p(test: dict[str, Any]) -> str:
        return "-" if test["p_value"] is None else f"{test['p_value']:.2g}"

    def line(name: str, part: dict[str, Any]) -> str:
        sep, raw = part["with_separation"], part["without_separation"]
        smooth = part["controls"]["smoothed"]
        both = part["with_separation_smoothed"]
        bone = part["bone_mse_tests"]
        return (
            f"{name:<12} n {part['n_pairs']:>4}  mse with {mean(sep, 'mse')} without "
            f"{mean(raw, 'mse')} smoothed {mean(smooth, 'mse')} p {p(part)} | bone_mse with "
            f"{mean(sep, 'bone_mse')} without {mean(raw, 'bone_mse')} smoothed "
            f"{mean(smooth, 'bone_mse')} p {p(bone['separated_vs_raw'])} | smoothed "
            f"separated {mean(both, 'bone_mse')} p {p(bone['separated_smoothed_vs_smoothed'])}"
        )

    lines = [
        f"model {data['model']['version']}, {data['runtime_s']['total']:.0f} s",
        line("all", data),
    ]
    lines += [line(f"{b['overlap_px']} px", b) for b in data["by_overlap"]]
    return "\n".join(lines)
