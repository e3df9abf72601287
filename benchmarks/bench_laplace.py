"""Laplace background: agreement with the published backgrounds, and time per image.

For every ``--step``-th valid record of the manifest, solve the background with several
region growths and both border modes, and compare with the authors' ``background/`` image:
mean absolute difference inside the bones, and the error of the overlap mean (what
becomes k = 1 - mean). Times are per image on one thread.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_laplace.py [--manifest PATH] [--step 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from blsgan_core.data import load_sample, read_manifests
from blsgan_core.laplace import soft_tissue_background

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)
SETTINGS = [(1.0, "reflect"), (1.0, "zero"), (8.0, "zero"), (13.0, "zero"), (13.0, "reflect")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--step", type=int, default=20)
    args = parser.parse_args()
    records = read_manifests(args.manifest).records[:: args.step]
    samples = [load_sample(record) for record in records]
    print(f"{len(samples)} images (every {args.step}th valid record of {args.manifest})")
    print(
        f"{'growth px':>10}{'border':>9}{'MAD bones':>11}{'max MAD':>9}{'|dk| mean':>11}"
        f"{'|dk| max':>10}{'s/image':>9}{'max s':>8}"
    )
    for dilation, border in SETTINGS:
        mads, dks, seconds = [], [], []
        for sample in samples:
            assert sample.background is not None  # the authors' manifest names one per record
            start = time.perf_counter()
            ours = soft_tissue_background(sample.image, sample.masks, dilation, border)
            seconds.append(time.perf_counter() - start)
            bones = sample.upper | sample.lower
            mads.append(float(np.abs(ours - sample.background)[bones].mean()))
            overlap = sample.upper & sample.lower
            if overlap.sum() >= 20:
                dks.append(abs(float(ours[overlap].mean() - sample.background[overlap].mean())))
        print(
            f"{dilation:>10.0f}{border:>9}{statistics.mean(mads):>11.4f}{max(mads):>9.4f}"
            f"{statistics.mean(dks):>11.4f}{max(dks):>10.4f}{statistics.mean(seconds):>9.3f}"
            f"{max(seconds):>8.3f}"
        )


if __name__ == "__main__":
    main()
