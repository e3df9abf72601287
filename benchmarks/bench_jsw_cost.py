"""What the joint space measurement adds to the worker pipeline, measured in one run.

    .venv/bin/python benchmarks/bench_jsw_cost.py --runs 3 --threads 1

Runs ``worker.pipeline.run_pipeline`` (shipped or promoted models) on the one-hand and
two-hand DX of ``bench_pipeline.py`` and times, inside the same runs, every call of the
JSW step (``worker.pipeline.joint_space``: mask clean-up, per-column widths, mm scale).
Prints the median pipeline CPU time, the JSW part of it, and the ratio of the pipeline
with JSW to the pipeline without it (total minus the JSW time): one process on a shared
machine, so load affects both numbers alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import REPO_ROOT, sources

import worker.pipeline as pipeline
from blsgan_core.registry import ModelRegistry
from dicom_node.settings import OutputSettings
from worker.models import ModelCache


def timed_joint_space(spent: list[float]) -> Any:
    """``worker.pipeline.joint_space`` that adds each call's CPU seconds to ``spent``."""
    original = pipeline.joint_space

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.process_time() - started)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=REPO_ROOT.parent / "shared/data/hand_radiographs"
    )
    parser.add_argument("--atlas-id", default="3149")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spent: list[float] = []
    pipeline.joint_space = timed_joint_space(spent)
    with tempfile.TemporaryDirectory(prefix="bench-jsw-") as temporary:
        folder = Path(temporary)
        models = ModelCache(ModelRegistry(folder / "registry"), "cpu", {}).models()
        for name, path in sources(args.data, args.atlas_id, folder).items():
            pipeline.run_pipeline(path, models, OutputSettings(), folder / "out")  # warm-up
            totals, jsw = [], []
            for _ in range(args.runs):
                spent.clear()
                result = pipeline.run_pipeline(path, models, OutputSettings(), folder / "out")
                totals.append(result.cpu_s["total"])
                jsw.append(sum(spent))
            total, part = statistics.median(totals), statistics.median(jsw)
            print(
                f"{name}: pipeline CPU {total:.3f} s (median of {args.runs}), JSW "
                f"{1000 * part:.1f} ms for {len(spent)} joints, with/without JSW "
                f"{total / (total - part):.3f}x"
            )


if __name__ == "__main__":
    main()
