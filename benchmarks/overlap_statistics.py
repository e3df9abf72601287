"""Real overlapping joints against the synthetic overlaps made from non-overlapping ones.

    nice -n 10 .venv/bin/python benchmarks/overlap_statistics.py \\
        [--manifest ../shared/data/mcp_joints/manifest.json] [--step 1] [--png FILE]

On each side of the joint-disjoint split (seed 0, fraction 0.2, as training and
``blsnode evaluate --split val``) it measures, per joint, on the annotated masks:

- ``step``: the input on the overlap's inner 2 px minus the input on the 2 px of the
  bone just outside it, per side of the boundary (``upper side``: where the overlap
  meets the upper bone alone, i.e. along the lower bone's outline; ``lower side``
  the other way round), and the same 2-5 px away from the boundary (``deep step``);
- the overlap's mean grey, its Laplace k (1 - mean soft-tissue background over it;
  for synthetic overlaps the k they were composed with);
- ``implied k``: the k with which layers continued *as constants* across the boundary
  reproduce the overlap with Eq. 1, ``(1 - a_u)(1 - a_l) / (1 - j)``, with ``a_u``, ``a_l``
  the input's means on each bone's 2 px outside the overlap and ``j`` its mean over the
  overlap; on synthetic overlaps, where Eq. 1 holds exactly, its distance from the true
  k is the estimator's own bias;
- ``rim-profile k``: the same with each layer predicted inside the overlap from its
  own bone's profile: the background plus the bone's mean contrast (input minus
  background) at the same depth from its outline on its free part (> 6 px from the
  overlap); ``mean((1 - L_u)(1 - L_l)) / mean(1 - J)`` over the overlap;
- the depth of the overlap inside each bone (distance from that bone's outline) and
  each bone's contrast at 0-2 px and 5-12 px depth on its free part (are the
  overlapped parts rims?);
- overlap size, thickness along the bone axis (pixels per column it spans) and
  half-width of the thickest part (largest distance to its outline).

Synthetic overlaps: one per non-overlapping joint of the same side, drawn with a
seeded generator, by :func:`blsgan_core.synthetic.synthesize_overlap` with the default
settings (``default``), with shifts 9-16 px (``wide``) and with any named
configuration given by ``--variant NAME=key=value,...`` (e.g.
``--variant rim=rim_attenuation=0.3``).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from blsgan_core.data import JointRecord, load_sample, read_manifests, split_by_case
from blsgan_core.synthetic import SyntheticConfig
from trainer.frontend.synthetic_joints import moved_joints

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)
MIN_OVERLAP_PX = 20
BAND_PX = 2.0
DEEP_PX = 5.0
FREE_PX = 6.0
DEPTH_BINS = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0])
PROFILE_EDGES = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Overlap:
    """One overlapping joint: input, masks, background, and the k of its overlap."""

    image: NDArray[np.float32]
    upper: NDArray[np.bool_]
    lower: NDArray[np.bool_]
    background: NDArray[np.float32]
    k: float


def band_mean(image: NDArray[np.float32], region: NDArray[np.bool_]) -> float:
    """Mean of ``image`` over ``region``; NaN if it is empty."""
    return float(image[region].mean()) if region.any() else float("nan")


def distance_to(region: NDArray[np.bool_]) -> Floats:
    """Euclidean distance of every pixel to the nearest pixel of ``region``."""
    return np.asarray(ndimage.distance_transform_edt(~region), dtype=np.float64)


def contrast_profile(joint: Overlap, mask: NDArray[np.bool_], free: NDArray[np.bool_]) -> Floats:
    """Mean input minus background per depth bin (distance from ``mask``'s outline) on ``free``."""
    depth = np.asarray(ndimage.distance_transform_edt(mask), dtype=np.float64)
    contrast = joint.image - joint.background
    index = np.digitize(depth, DEPTH_BINS[1:], right=True)
    profile = np.full(len(DEPTH_BINS), np.nan)
    for i in range(len(DEPTH_BINS)):
        chosen = free & (index == i)
        if chosen.any():
            profile[i] = contrast[chosen].mean()
    # Depths beyond the free part's deepest bin keep the deepest measured contrast.
    known = np.flatnonzero(~np.isnan(profile))
    if known.size:
        profile = np.interp(np.arange(len(profile)), known, profile[known])
    return profile


def predicted_layer(joint: Overlap, mask: NDArray[np.bool_], free: NDArray[np.bool_]) -> Floats:
    """The layer its own rim profile predicts: background + contrast at each pixel's depth."""
    depth = np.asarray(ndimage.distance_transform_edt(mask), dtype=np.float64)
    profile = contrast_profile(joint, mask, free)
    index = np.minimum(np.digitize(depth, DEPTH_BINS[1:], right=True), len(DEPTH_BINS) - 1)
    return np.clip(joint.background + profile[index], 0.0, 1.0)


def steepest_rise(image: NDArray[np.float32], signed: Floats, region: NDArray[np.bool_]) -> float:
    """Where across the boundary the input rises most, in px (+ inside the overlap).

    The input's mean per 1-px shell of signed distance, -6..-1 and 1..6 (shells of fewer
    than 3 px left out); the midpoint between the two neighbouring shells with the largest
    increase (0: between the last pixel outside and the first inside).
    """
    shells = [d for d in range(-6, 7) if d]
    means = []
    for d in shells:
        chosen = region & (np.ceil(np.abs(signed)) * np.sign(signed) == d)
        means.append(float(image[chosen].mean()) if chosen.sum() >= 3 else np.nan)
    rises = np.diff(np.asarray(means))
    if np.all(np.isnan(rises)):
        return float("nan")
    best = int(np.nanargmax(rises))
    return (shells[best] + shells[best + 1]) / 2


def measure(joint: Overlap) -> dict[str, float]:
    """Every per-joint statistic of the module docstring."""
    image, upper, lower = joint.image, joint.upper, joint.lower
    overlap = upper & lower
    only = {"upper": upper & ~lower, "lower": lower & ~upper}
    to_overlap = distance_to(overlap)
    row: dict[str, float] = {
        "overlap px": float(overlap.sum()),
        "overlap grey": band_mean(image, overlap),
        "Laplace k": joint.k,
    }
    columns = np.flatnonzero(overlap.any(axis=0))
    row["thickness px (px per column)"] = float(overlap.sum()) / max(len(columns), 1)
    row["half-width px (max depth)"] = float(np.max(ndimage.distance_transform_edt(overlap)))
    outer_means = {}
    for side, alone in only.items():
        to_alone = distance_to(alone)
        near_in = overlap & (to_alone <= BAND_PX)
        near_out = alone & (to_overlap <= BAND_PX)
        deep_in = overlap & (to_alone > BAND_PX) & (to_alone <= DEEP_PX)
        deep_out = alone & (to_overlap > BAND_PX) & (to_overlap <= DEEP_PX)
        outer_means[side] = band_mean(image, near_out)
        row[f"step, {side} side"] = band_mean(image, near_in) - outer_means[side]
        row[f"deep step, {side} side"] = band_mean(image, deep_in) - band_mean(image, deep_out)
        row[f"steepest rise at, {side} side (px)"] = steepest_rise(
            image, np.where(overlap, to_alone, -to_overlap), overlap | alone
        )
    j = row["overlap grey"]
    row["implied k (constant layers)"] = (
        (1 - outer_means["upper"]) * (1 - outer_means["lower"]) / (1 - j)
    )
    free = {
        name: mask & (to_overlap > FREE_PX) for name, mask in (("upper", upper), ("lower", lower))
    }
    layer_u = predicted_layer(joint, upper, free["upper"])
    layer_l = predicted_layer(joint, lower, free["lower"])
    product = (1 - layer_u) * (1 - layer_l)
    row["rim-profile k"] = float(product[overlap].mean() / (1 - image[overlap]).mean())
    for name, mask in (("upper", upper), ("lower", lower)):
        depth = np.asarray(ndimage.distance_transform_edt(mask), dtype=np.float64)
        row[f"overlap depth in {name} px"] = float(depth[overlap].mean())
        contrast = image - joint.background
        rim = free[name] & (depth <= BAND_PX)
        inner = free[name] & (depth > DEEP_PX) & (depth <= 12.0)
        row[f"{name} contrast, rim 0-2 px"] = band_mean(contrast.astype(np.float32), rim)
        row[f"{name} contrast, 5-12 px"] = band_mean(contrast.astype(np.float32), inner)
    return row


def boundary_profile(joint: Overlap) -> Floats:
    """Input minus the bone's mean just outside, by signed distance across the boundary.

    Both sides together: negative distances are in one bone alone (distance to the
    overlap), positive ones inside the overlap (distance to that bone alone).
    """
    overlap = joint.upper & joint.lower
    to_overlap = distance_to(overlap)
    values = np.full(len(PROFILE_EDGES) - 1, np.nan)
    sums = np.zeros(len(values))
    counts = np.zeros(len(values))
    for alone in (joint.upper & ~joint.lower, joint.lower & ~joint.upper):
        signed = np.where(overlap, distance_to(alone), -to_overlap)
        region = overlap | alone
        reference = band_mean(joint.image, alone & (to_overlap <= BAND_PX))
        for i, (low, high) in enumerate(itertools.pairwise(PROFILE_EDGES)):
            chosen = (
                region & (signed > low) & (signed <= high)
                if low >= 0
                else (region & (signed >= low) & (signed < high))
            )
            if chosen.any() and not np.isnan(reference):
                sums[i] += float((joint.image[chosen] - reference).sum())
                counts[i] += int(chosen.sum())
    valid = counts > 0
    values[valid] = sums[valid] / counts[valid]
    return values


def real_overlaps(records: Iterable[JointRecord]) -> Iterable[Overlap]:
    """The annotated overlapping joints (>= 20 px) with the published backgrounds."""
    for record in records:
        if record.overlap_px < MIN_OVERLAP_PX:
            continue
        sample = load_sample(record)
        if sample.background is None:
            raise ValueError(f"{record.image}: the manifest names no background")
        overlap = sample.upper & sample.lower
        k = 1 - float(sample.background[overlap].mean())
        yield Overlap(sample.image, sample.upper, sample.lower, sample.background, k)


def synthetic_overlaps(
    records: Iterable[JointRecord], config: SyntheticConfig, seed: int
) -> Iterable[Overlap]:
    """One synthetic overlap (>= 20 px) per non-overlapping joint, seeded."""
    for sample, made in moved_joints(records, np.random.default_rng(seed), config):
        if sample.background is None:
            raise ValueError("the manifest names no background for a joint without overlap")
        if made.overlap_px >= MIN_OVERLAP_PX:
            yield Overlap(made.image, made.upper, made.lower, sample.background, made.k)


@dataclass
class Summary:
    """Per-joint rows and boundary profiles of one set, and a few joints to show."""

    rows: list[dict[str, float]]
    profiles: list[Floats]
    examples: list[Overlap]

    def column(self, key: str) -> Floats:
        return np.array([row[key] for row in self.rows], dtype=np.float64)


def summarise(joints: Iterable[Overlap], examples: int = 4) -> Summary:
    """Measure every joint of a set; keep the first ``examples`` of 100-1500 px for the figure."""
    summary = Summary([], [], [])
    for joint in joints:
        summary.rows.append(measure(joint))
        summary.profiles.append(boundary_profile(joint))
        px = int((joint.upper & joint.lower).sum())
        if len(summary.examples) < examples and 100 <= px <= 1500:
            summary.examples.append(joint)
    return summary


def cell(values: Floats) -> str:
    """``mean ± sd (median)`` of the finite values."""
    values = values[np.isfinite(values)]
    if not values.size:
        return "-"
    return f"{values.mean():.3f} ± {values.std():.3f} ({np.median(values):.3f})"


def table(sets: dict[str, Summary]) -> str:
    """A markdown table: one row per statistic, one column per set."""
    keys = list(next(iter(sets.values())).rows[0])
    lines = [
        "| statistic | "
        + " | ".join(f"{name} (n={len(s.rows)})" for name, s in sets.items())
        + " |",
        "| --- |" + " --- |" * len(sets),
    ]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(cell(s.column(key)) for s in sets.values()) + " |")
    lines.append("")
    labels = [f"{low:+.0f}..{high:+.0f}" for low, high in itertools.pairwise(PROFILE_EDGES)]
    lines.append(
        "Input minus the bone's 2 px just outside, by signed distance (px; + inside the overlap):"
    )
    lines.append("")
    lines.append("| set | " + " | ".join(labels) + " |")
    lines.append("| --- |" + " --- |" * len(labels))
    for name, summary in sets.items():
        mean = np.nanmean(np.stack(summary.profiles), axis=0)
        lines.append(f"| {name} | " + " | ".join(f"{v:+.3f}" for v in mean) + " |")
    return "\n".join(lines)


def figure(sets: dict[str, Summary], path: Path) -> None:
    """Zoomed crops around the overlap, overlap outline in red, one row per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(s.examples) for s in sets.values())
    fig, axes = plt.subplots(
        len(sets), columns, figsize=(2.4 * columns, 2.5 * len(sets)), squeeze=False
    )
    for row, (name, summary) in enumerate(sets.items()):
        for col in range(columns):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(summary.examples):
                continue
            joint = summary.examples[col]
            overlap = joint.upper & joint.lower
            ys, xs = np.nonzero(overlap)
            cy, cx = int(ys.mean()), int(xs.mean())
            half = 40
            y0 = int(np.clip(cy - half, 0, joint.image.shape[0] - 2 * half))
            x0 = int(np.clip(cx - half, 0, joint.image.shape[1] - 2 * half))
            window = (slice(y0, y0 + 2 * half), slice(x0, x0 + 2 * half))
            ax.imshow(joint.image[window], cmap="gray", vmin=0, vmax=1)
            ax.contour(overlap[window], levels=[0.5], colors="red", linewidths=0.6)
            ax.contour(joint.upper[window], levels=[0.5], colors="cyan", linewidths=0.4)
            ax.contour(joint.lower[window], levels=[0.5], colors="yellow", linewidths=0.4)
            step = measure(joint)
            ax.set_title(
                f"{name}: {int(overlap.sum())} px\nstep {step['step, upper side']:+.2f}/"
                f"{step['step, lower side']:+.2f}",
                fontsize=7,
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_variant(text: str) -> tuple[str, SyntheticConfig]:
    """``NAME=key=value,key=value`` -> (NAME, SyntheticConfig(key=value, ...))."""
    name, _, settings = text.partition("=")
    options: dict[str, float] = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        options[key] = float(value) if "." in value else int(value)
    return name, SyntheticConfig(**options)  # type: ignore[arg-type]


def main() -> None:
    """Print the table per side of the split; write the figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--step", type=int, default=1, help="every STEP-th record")
    parser.add_argument("--seed", type=int, default=0, help="synthetic shifts")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--variant", action="append", default=[], help="NAME=key=value,...")
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--sides", default="train,validation")
    options = parser.parse_args()
    train, validation = split_by_case(
        read_manifests(options.manifest).records, validation_fraction=0.2, seed=options.split_seed
    )
    configs: dict[str, SyntheticConfig] = {
        "synthetic": SyntheticConfig(),
        "wide": SyntheticConfig(min_shift=9, max_shift=16),
    }
    configs.update(parse_variant(text) for text in options.variant)
    sides = {"train": train, "validation": validation}
    figure_sets: dict[str, Summary] = {}
    for side in options.sides.split(","):
        records = sides[side][:: options.step]
        sets: dict[str, Summary] = {"real": summarise(real_overlaps(records))}
        for name, config in configs.items():
            sets[name] = summarise(synthetic_overlaps(records, config, options.seed))
        print(f"\n## {side} side (split seed {options.split_seed}), every {options.step}. record\n")
        print(table(sets))
        figure_sets = figure_sets or sets
    if options.png is not None:
        figure(figure_sets, options.png)
        print(f"\nfigure: {options.png}")


if __name__ == "__main__":
    main()
