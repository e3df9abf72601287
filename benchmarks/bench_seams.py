"""Time of the Poisson seam blend per joint, beside the forward pass that makes the layers.

For the real joints of the manifest whose masks overlap (every ``--step``-th), and for
synthetic overlaps with shifts of 9-16 px per bone (the largest overlaps the blend
meets), one joint at a time on one thread: the model's forward pass
(:func:`blsgan_core.inference.separate` without the blend) and the blend of both layers
(:func:`blsgan_core.seams.blend_batch`). Prints median and maximum of each, and their
ratio; on a loaded machine only the ratio is meaningful.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_seams.py [--manifest PATH] [--step 5] \\
        [--model blsgan_core/weights/blsgan-cpu.pt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from blsgan_core.data import load_sample, read_manifests
from blsgan_core.inference import separate
from blsgan_core.model import load_model
from blsgan_core.seams import blend_batch
from blsgan_core.shipped import shipped_weights
from blsgan_core.synthetic import SyntheticConfig, synthesize_overlap

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)
WIDE = SyntheticConfig(min_shift=9, max_shift=16)


def joints(manifest: Path, step: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(kind, image, masks)`` of the overlapping real joints and wide synthetic overlaps."""
    chosen = []
    for index, record in enumerate(read_manifests(manifest).records[::step]):
        sample = load_sample(record)
        if record.overlap_px > 0:
            chosen.append(("real", sample.image, sample.masks))
            continue
        made = synthesize_overlap(
            sample.image, sample.upper, sample.lower, np.random.default_rng(index), config=WIDE
        )
        if made.overlap_px:
            chosen.append(("wide", made.image, made.masks))
    return chosen


def main() -> None:
    """Time forward pass and blend per joint; print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--model", type=Path, default=shipped_weights("blsgan-cpu.pt"))
    options = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(options.model)
    rows: dict[str, dict[str, list[float]]] = {}
    for kind, image, masks in joints(options.manifest, options.step):
        images = torch.from_numpy(image)[None, None].float()
        mask_tensor = torch.from_numpy(masks)[None].float()
        start = time.perf_counter()
        result = separate(images, mask_tensor, model, boundary_blend="off")
        middle = time.perf_counter()
        blend_batch(result.layers, images, mask_tensor)
        end = time.perf_counter()
        row = rows.setdefault(kind, {"overlap_px": [], "forward_s": [], "blend_s": []})
        row["overlap_px"].append(float((masks.sum(axis=0) >= 2).sum()))
        row["forward_s"].append(middle - start)
        row["blend_s"].append(end - middle)
    summary = {
        kind: {
            "n": len(row["blend_s"]),
            **{
                f"{key}_{name}": round(function(row[key]), 4)
                for key in ("overlap_px", "forward_s", "blend_s")
                for name, function in (("median", statistics.median), ("max", max))
            },
            "blend_over_forward": round(sum(row["blend_s"]) / sum(row["forward_s"]), 3),
        }
        for kind, row in rows.items()
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
