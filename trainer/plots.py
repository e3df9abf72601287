"""PNG figures of a run: loss curves, metrics against overlap size, example joints.

Matplotlib's Agg backend is selected through ``matplotlib.use`` before pyplot is loaded,
so plotting works on servers without a display; every figure is closed after saving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

# pyplot and what imports it come after the backend choice, on purpose.
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from trainer.evaluation.realism import TuringResult
from trainer.evaluation.separation import (
    EvalJoint,
    SeparationScores,
    Separator,
    completed_reconstruction,
    run_separator,
)

LOSS_KEYS = (
    ("loss_g", "generator + reconstructor (Eq. 2/4)"),
    ("loss_d", "supervisor (Eq. 3/5)"),
    ("reconstruction", "Lr(R, J)"),
    ("reconstruction_overlap", "Lr(R, J) in the overlap"),
    ("ground_truth_layers", "Lr(L, Lg)"),
    ("supervisor_input", "Lb(D(J*M)) (Eq. 3 real sample)"),
    ("supervisor_generated", "Lb(D(G(J))) (Eq. 3 fake sample)"),
    ("supervisor_true_layers", "Lb(D(Lg)) (Eq. 5)"),
    ("k_truth", "Lr(k, k_true) (departure)"),
    ("seam_prior", "seam prior on real joints (departure)"),
)
VALIDATION_KEYS = (
    ("val_real_overlap_psnr", "real: reconstruction PSNR in the overlap (dB)"),
    ("val_synthetic_layer_psnr", "synthetic: layer PSNR in the overlap (dB)"),
    ("val_wide_layer_psnr", "wide shifts: layer PSNR in the overlap (dB)"),
    ("val_synthetic_detail_psnr", "synthetic: detail PSNR in the overlap (dB)"),
)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def loss_curves(
    history: Sequence[dict[str, Any]], path: Path, baseline: dict[str, Any] | None = None
) -> Path:
    """Training losses (left) and validation PSNRs (right) per epoch; phase 2 shaded.

    ``baseline`` (a validation row of the identity layers) is drawn as dashed lines in
    the colour of each validation metric.
    """
    if not history:
        raise ValueError("no epochs to plot")
    epochs = [row["epoch"] for row in history]
    figure, (losses, validation) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in LOSS_KEYS:
        values = [row.get(key) for row in history]
        if any(isinstance(v, (int, float)) for v in values):
            losses.plot(epochs, [np.nan if v is None else v for v in values], label=label)
    for key, label in VALIDATION_KEYS:
        values = [row.get(key) for row in history]
        (line,) = validation.plot(
            epochs, [np.nan if v is None else v for v in values], "o-", label=label
        )
        reference = (baseline or {}).get(key)
        if isinstance(reference, (int, float)):
            validation.axhline(
                reference, color=line.get_color(), linestyle="--", label="identity layers"
            )
    phase2 = [row["epoch"] for row in history if row.get("phase") == 2]
    for axis in (losses, validation):
        if phase2:
            axis.axvspan(min(phase2) - 0.5, max(phase2) + 0.5, color="0.9", label="phase 2")
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    losses.set_yscale("log")
    losses.set_title("training losses")
    validation.set_title("validation")
    return _save(figure, path)


def metrics_by_overlap(
    scores: SeparationScores, path: Path, baseline: SeparationScores | None = None
) -> Path:
    """MSE, SSIM, PSNR (real joints) and layer PSNR (synthetic) against overlap size.

    The paper's Fig. 3/5 style: one point per joint, the identity baseline in grey when
    given, so that the gap between them is what the model adds.
    """
    panels = (
        ("real", "mse", "real: MSE of R vs J"),
        ("real", "ssim", "real: SSIM of R vs J"),
        ("real", "psnr", "real: PSNR of R vs J (dB)"),
        ("synthetic", "layer_psnr", "synthetic: layer PSNR in overlap (dB)"),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 3.8))
    for axis, (protocol, key, title) in zip(axes, panels, strict=True):
        runs = [("model", scores, "tab:blue")]
        if baseline is not None:
            runs.append(("identity baseline", baseline, "0.6"))
        for label, run, colour in runs:
            values = run.real if protocol == "real" else run.synthetic
            overlaps = run.real_overlaps if protocol == "real" else run.synthetic_overlaps
            axis.scatter(
                overlaps, [v[key] for v in values], s=10, color=colour, alpha=0.7, label=label
            )
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())  # 2x10^2, 3x10^2... clutter
        if key.endswith("mse"):
            axis.set_yscale("log")
        axis.set_xlabel("overlap (px)")
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=7)
    return _save(figure, path)


def example_panel(joints: Sequence[EvalJoint], separator: Separator, path: Path) -> Path:
    """Rows of joints: input, upper layer, lower layer, reconstruction, |R - J| error map."""
    if not joints:
        raise ValueError("no joints to show")
    outputs = run_separator(separator, joints)
    titles = ("input J", "upper layer L1", "lower layer L2", "reconstruction R", "|R - J|")
    figure, axes = plt.subplots(
        len(joints), len(titles), figsize=(2.4 * len(titles), 2.4 * len(joints)), squeeze=False
    )
    for row, (joint, output) in enumerate(zip(joints, outputs, strict=True)):
        reconstruction = completed_reconstruction(joint, output)
        error = np.abs(reconstruction - joint.image)
        pictures = (joint.image, output.layers[0].numpy(), output.layers[1].numpy())
        for column, picture in enumerate((*pictures, reconstruction)):
            axes[row, column].imshow(picture, cmap="gray", vmin=0, vmax=1)
        shown = axes[row, 4].imshow(error, cmap="magma", vmin=0, vmax=max(float(error.max()), 1e-3))
        figure.colorbar(shown, ax=axes[row, 4], fraction=0.046)
        kind = "synthetic" if joint.true_layers is not None else "real"
        axes[row, 0].set_ylabel(
            f"{kind}\n{joint.overlap_px} px, k={float(output.k):.2f}", fontsize=8
        )
        for column, title in enumerate(titles):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(title, fontsize=9)
    return _save(figure, path)


def separation_by_overlap(report: dict[str, Any], path: Path) -> Path:
    """Means per overlap-size bin of each separator, from a separation report.

    Real joints: reconstruction PSNR inside the overlap; each synthetic set: layer PSNR,
    detail PSNR and seam ratio in the overlap. Bin labels carry their joint counts.
    """
    panels: list[tuple[str, dict[str, Any], str]] = []
    if report.get("real") is not None:
        panels.append(("real: R vs J in the overlap (dB)", report["real"], "overlap_psnr"))
    for label, part in report["synthetic"].items():
        panels += [
            (f"synthetic {label}: layer PSNR (dB)", part, "layer_psnr"),
            (f"synthetic {label}: detail PSNR (dB)", part, "detail_psnr"),
            (f"synthetic {label}: seam ratio (1 = none)", part, "seam_ratio"),
        ]
    if not panels:
        raise ValueError("the report has nothing to plot")
    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for axis, (title, part, key) in zip(axes[0], panels, strict=True):
        rows = part["by_overlap"]
        positions = np.arange(len(rows))
        for name in report["separators"]:
            means = [row[name][key]["mean"] for row in rows]
            axis.plot(positions, [np.nan if m is None else m for m in means], "o-", label=name)
        axis.set_xticks(positions, [f"{row['bin']}\nn={row['n_images']}" for row in rows])
        axis.set_xlabel("overlap (px)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_title(title, fontsize=8)
        axis.legend(fontsize=7)
    return _save(figure, path)


def realism_panel(results: Mapping[str, TuringResult], path: Path, count: int = 8) -> Path:
    """Held-out patches: real bone (first row), then each separator's generated patches.

    Under each patch the classifier's probability that it is generated; each row's title
    gives that classifier's AUC.
    """
    if not results:
        raise ValueError("no Turing test results to show")
    first = next(iter(results.values()))
    rows = [("real bone (true layers)", first.test_real, first.scores_real)]
    rows += [
        (f"{name} (AUC {result.auc:.2f})", result.test_generated, result.scores_generated)
        for name, result in results.items()
    ]
    columns = min(count, min(len(patches) for _, patches, _ in rows))
    if columns == 0:
        raise ValueError("no patches to show")
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.3 * columns, 1.55 * len(rows)), squeeze=False
    )
    for row, (title, patches, scores) in enumerate(rows):
        # Evenly spaced picks, so the row is not only the first joint's patches.
        picks = np.linspace(0, len(patches) - 1, columns).round().astype(int)
        for column, index in enumerate(picks):
            axis = axes[row, column]
            axis.imshow(patches[index], cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_xlabel(f"p={scores[index]:.2f}", fontsize=7)
        axes[row, 0].set_ylabel(title, fontsize=7)
    figure.suptitle("held-out patches; p = classifier's probability of 'generated'", fontsize=8)
    return _save(figure, path)
