"""Synthetic overlaps against real ones: overlap size and k.

Draws one synthetic overlap (seeded) from every ``--step``-th valid record without any
mask intersection, and compares its overlap size and k with the real overlapping records
(>= 20 px) of the same manifest, whose k is 1 - mean(published background over the
overlap).

Usage (from the repository root)::

    .venv/bin/python benchmarks/synthetic_stats.py [--manifest PATH] [--step 5] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from blsgan_core.data import load_sample, read_manifests
from blsgan_core.synthetic import synthesize_overlap

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)


def describe(name: str, values: list[float]) -> str:
    array = np.asarray(values, dtype=np.float64)
    low, median, high = np.percentile(array, [10, 50, 90])
    return (
        f"{name:<28} n={len(array):<4} mean {array.mean():8.3f}  sd {array.std():7.3f}  "
        f"p10 {low:8.3f}  median {median:8.3f}  p90 {high:8.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = read_manifests(args.manifest).records
    rng = np.random.default_rng(args.seed)
    synthetic_px, synthetic_k = [], []
    for record in [r for r in records if r.overlap_px == 0][:: args.step]:
        sample = load_sample(record)
        made = synthesize_overlap(
            sample.image, sample.upper, sample.lower, rng, background=sample.background
        )
        synthetic_px.append(made.overlap_px)
        if made.overlap_px >= 20:
            synthetic_k.append(made.k)
    real_px, real_k = [], []
    for record in [r for r in records if r.overlap_px >= 20][:: args.step]:
        sample = load_sample(record)
        assert sample.background is not None  # the authors' manifest names one per record
        overlap = sample.upper & sample.lower
        real_px.append(record.overlap_px)
        real_k.append(1 - float(sample.background[overlap].mean()))
    print(describe("synthetic overlap px", synthetic_px))
    print(f"{'':<28} {np.mean(np.asarray(synthetic_px) < 20):.0%} below 20 px")
    print(describe("real overlap px (>= 20)", real_px))
    print(describe("synthetic k (>= 20 px)", synthetic_k))
    print(describe("real k (>= 20 px)", real_k))


if __name__ == "__main__":
    main()
