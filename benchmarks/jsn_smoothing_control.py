"""Control for the JSN validation: do merely smoothed identity layers register better too?

``blsnode evaluate --task jsn`` finds separated layers register with a lower MSE than
the raw bone images, also for pairs without overlap. This script runs the same pairs
and registration with a separator that separates nothing but smooths: each layer is
the raw joint inside its mask, Gaussian-filtered (``--sigma`` px) and masked again. If
it wins as much as BLS-GAN, the gain is smoothing, not separation.

Usage (from the repository root)::

    .venv/bin/python benchmarks/jsn_smoothing_control.py --limit 150 --sigma 1.0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from blsgan_core.data import read_manifests
from trainer.evaluation.jsn import evaluate_jsn

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)


def smoothed_identity(sigma: float):  # type: ignore[no-untyped-def]
    """Layers = Gaussian(J * M_i) * M_i: no separation, only smoothing."""

    def separate(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        layers = images[:, None] * masks
        smooth = ndimage.gaussian_filter(layers, sigma=(0, 0, sigma, sigma))
        return (smooth * masks).astype(np.float32)

    return separate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--sigma", type=float, default=1.0)
    args = parser.parse_args()
    records = read_manifests(args.manifest).records
    report = evaluate_jsn(records, smoothed_identity(args.sigma), limit=args.limit)
    report.pop("pairs")
    report["control"] = f"identity layers smoothed with a Gaussian of sigma {args.sigma} px"
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
