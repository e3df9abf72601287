"""``blsnode evaluate --task jsn``: follow-up registration with and without separation.

:func:`run_jsn_evaluation` has the signature of the runners of ``blsnode/cli/evaluate.py``
(``options -> report``); it reads ``--manifest``, ``--model``, ``--split``, ``--seed``,
``--validation-fraction`` (the BLS-GAN's joint split, as for ``--task separation``) and
``--limit`` (pairs).
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

    report = evaluate_jsn(records, separator, limit=options.get("limit"))
    return {
        **report,
        "model": {"path": str(model_path), "version": model.version},
        "device": str(device),
        "split": split,
        "manifest": str(manifests[0]),
        "n_rejected_records": len(contents.rejected),
    }


def render_jsn(data: dict[str, Any]) -> str:
    """Means with and without separation, the p-value, and the same per overlap bin."""

    def line(name: str, part: dict[str, Any]) -> str:
        mean_with = part["with_separation"]["mse"]["mean"]
        mean_without = part["without_separation"]["mse"]["mean"]
        shown = ["-" if v is None else f"{v:.5f}" for v in (mean_with, mean_without)]
        p = "-" if part["p_value"] is None else f"{part['p_value']:.2g}"
        return f"{name:<12} n {part['n_pairs']:>4}  mse with {shown[0]}  without {shown[1]}  p {p}"

    lines = [
        f"model {data['model']['version']}, {data['runtime_s']['total']:.0f} s",
        line("all", data),
    ]
    lines += [line(f"{b['overlap_px']} px", b) for b in data["by_overlap"]]
    return "\n".join(lines)
