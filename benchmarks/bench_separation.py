"""Forward time and memory of generator + reconstructor (+ Eq. 1) on the CPU, per backbone.

Every backbone of the registry (default options, with the default reconstructor) is timed
at batch 1 and 5 (one joint; the five MCP joints of a hand) at 256 x 256, side by side
with the baseline built at the published implementation's sizes (TransUNet ~67 M + VGG11
with a ~34 M MLP head, see baseline_models.py); ratios are baseline / ours.

- Time: all models live in one process and are run round-robin, ``--repeats`` rounds, so
  that load from other processes hits every model alike; the minimum over rounds is the
  least disturbed run (the median is printed too).
- FLOPs (torch's flop counter): a load-independent measure of the work per joint.
- Memory: each model runs again in its own child process, so its peak resident set is
  its own; "model MiB" is the growth of the peak over the bare interpreter with torch.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_separation.py [--threads 2] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_models import BaselineSeparator

from blsgan_core.model import BLSGANConfig, BLSGANModel
from blsgan_core.networks.backbones import BACKBONES
from blsgan_core.networks.generator import GeneratorConfig

SIZE = 256
BASELINE = "baseline"


def build(name: str) -> torch.nn.Module:
    """The separator called ``name``: the baseline or BLSGANModel with that backbone."""
    if name == BASELINE:
        return BaselineSeparator()
    return BLSGANModel(BLSGANConfig(generator=GeneratorConfig(backbone=name)))


def inputs(batch: int, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and two masks shaped like an MCP joint (overlap of 1/32 of the height)."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 1, size, size, generator=generator)
    masks = torch.zeros(batch, 2, size, size)
    upper_end, lower_start = (size * 134) // 256, (size * 126) // 256
    masks[:, 0, :upper_end, (size * 60) // 256 : (size * 190) // 256] = 1
    masks[:, 1, lower_start:, (size * 50) // 256 : (size * 200) // 256] = 1
    return image, masks


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM) in MiB.

    Not ``getrusage(...).ru_maxrss``: Linux carries that over ``exec`` from the parent, so
    a child would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def time_round_robin(names: list[str], batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Seconds per forward of every model, interleaved over ``repeats`` rounds."""
    models = {name: build(name).eval() for name in names}
    image, masks = inputs(batch)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for model in models.values():
            model(image, masks)  # warm-up: allocator, oneDNN primitives
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(image, masks)
                times[name].append(time.perf_counter() - start)
    return {
        name: {"seconds": min(values), "median_seconds": statistics.median(values)}
        for name, values in times.items()
    }


def static_facts(name: str) -> dict[str, float]:
    """Parameter counts and FLOPs of one joint's forward."""
    model = build(name).eval()
    image, masks = inputs(1)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(image, masks)
    return {
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "generator_parameters_m": sum(p.numel() for p in model.generator.parameters()) / 1e6,
        "gflop_per_joint": counter.get_total_flops() / 1e9,
    }


def peak_memory(name: str, batch: int) -> dict[str, float]:
    """Run in a child process: peak resident memory of building and running one model."""
    before = peak_rss_mib()
    model = build(name).eval()
    image, masks = inputs(batch)
    with torch.inference_mode():
        model(image, masks)
    peak = peak_rss_mib()
    return {"peak_rss_mib": peak, "model_rss_mib": peak - before}


def run_child(name: str, batch: int, threads: int) -> dict[str, float]:
    """:func:`peak_memory` in a fresh interpreter."""
    spec = json.dumps({"name": name, "batch": batch, "threads": threads})
    completed = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory run of {name} at batch {batch} failed:\n{completed.stderr}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--models", nargs="+", default=[BASELINE, *BACKBONES])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        torch.set_num_threads(spec["threads"])
        print(json.dumps(peak_memory(spec["name"], spec["batch"])))
        return
    torch.set_num_threads(args.threads)
    facts = {name: static_facts(name) for name in args.models}
    rows = []
    for batch in args.batches:
        timings = time_round_robin(args.models, batch, args.repeats)
        for name in args.models:
            memory = run_child(name, batch, args.threads)
            rows.append({"model": name, "batch": batch, **facts[name], **timings[name], **memory})
    baseline = {row["batch"]: row for row in rows if row["model"] == BASELINE}
    for row in rows:
        reference = baseline.get(row["batch"])
        if reference is not None:
            row["speedup"] = reference["seconds"] / row["seconds"]
            row["flop_ratio"] = reference["gflop_per_joint"] / row["gflop_per_joint"]
            row["memory_ratio"] = reference["model_rss_mib"] / max(row["model_rss_mib"], 1e-9)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"CPU forward, generator + reconstructor + Eq. 1, 256x256, {args.threads} threads, "
        f"min (median) of {args.repeats} interleaved rounds"
    )
    print(
        f"{'model':<11}{'batch':>6}{'seconds':>17}{'s/joint':>9}{'params M':>10}{'(gen M)':>9}"
        f"{'GFLOP/j':>9}{'peak MiB':>10}{'model MiB':>11}{'speedup':>9}{'FLOP ratio':>11}"
        f"{'mem ratio':>10}"
    )
    for row in rows:
        timing = f"{row['seconds']:.3f} ({row['median_seconds']:.3f})"
        print(
            f"{row['model']:<11}{row['batch']:>6}{timing:>17}"
            f"{row['seconds'] / row['batch']:>9.3f}{row['parameters_m']:>10.1f}"
            f"{row['generator_parameters_m']:>9.1f}{row['gflop_per_joint']:>9.2f}"
            f"{row['peak_rss_mib']:>10.0f}{row['model_rss_mib']:>11.0f}"
            f"{row.get('speedup', float('nan')):>9.2f}{row.get('flop_ratio', float('nan')):>11.1f}"
            f"{row.get('memory_ratio', float('nan')):>10.2f}"
        )


if __name__ == "__main__":
    main()
