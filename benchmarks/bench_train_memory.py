"""Peak memory of one phase-2 training step on the CPU: ours at batch 12 against the baseline.

A phase-2 step is what the paper's second phase does per batch: generator and
reconstructor forward, Eq. 2 through the supervisor, backward and an Adam step for
generator + reconstructor (supervisor weights frozen for that pass), then Eq. 3 on real
and detached generated layers, backward and an Adam step for the supervisor. Two steps
run, so Adam's moment buffers are included in the peak.

Each configuration runs in its own child process and reports its peak resident set
(VmHWM). The baseline (published sizes: TransUNet ~67 M, VGG11 + 34 M MLP, full-resolution
U-Net supervisor ~15 M, see baseline_models.py) needs about 2 GB per image, so batch 12
does not fit in this machine; it runs at ``--baseline-batch`` (default 2) and the table
compares memory per image and the extrapolation to batch 12.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_train_memory.py [--batch 12] [--baseline-batch 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_models import BaselineSeparator, baseline_supervisor
from bench_separation import inputs, peak_rss_mib

from blsgan_core.losses import generator_loss, supervisor_loss
from blsgan_core.model import BLSGANConfig, BLSGANModel

TARGET_MIB = 8 * 1024
LEARNING_RATE = 1e-5


def networks(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(separator with forward(image, masks) -> layers, k, R; supervisor) for ``name``."""
    if name == "baseline":
        return BaselineSeparator(), baseline_supervisor()
    model = BLSGANModel(BLSGANConfig(), with_supervisor=True)
    assert model.supervisor is not None  # built with_supervisor just above
    return model, model.supervisor


def training_steps(name: str, batch: int, steps: int = 2, size: int = 256) -> dict[str, Any]:
    """Run in a child process: ``steps`` phase-2 steps; report peak memory and time."""
    torch.manual_seed(0)
    before = peak_rss_mib()
    separator, supervisor = networks(name)
    supervisor_ids = {id(p) for p in supervisor.parameters()}
    generator_parameters = [p for p in separator.parameters() if id(p) not in supervisor_ids]
    optimise_g = torch.optim.Adam(generator_parameters, lr=LEARNING_RATE)
    optimise_d = torch.optim.Adam(supervisor.parameters(), lr=LEARNING_RATE)
    image, masks = inputs(batch, size)
    real_layers = image * masks  # Eq. 3's real sample J * M
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        supervisor.requires_grad_(False)
        layers, _, reconstruction = separator(image, masks)
        loss_g = generator_loss(supervisor(layers), masks, reconstruction, image)
        optimise_g.zero_grad(set_to_none=True)
        loss_g.total.backward()
        optimise_g.step()
        supervisor.requires_grad_(True)
        loss_d = supervisor_loss(supervisor(real_layers), supervisor(layers.detach()), masks)
        optimise_d.zero_grad(set_to_none=True)
        loss_d.total.backward()
        optimise_d.step()
        seconds.append(time.perf_counter() - start)
    peak = peak_rss_mib()
    return {
        "model": name,
        "batch": batch,
        "peak_rss_mib": peak,
        "training_mib": peak - before,
        "seconds_per_step": min(seconds),
        "parameters_m": (
            sum(p.numel() for p in generator_parameters)
            + sum(p.numel() for p in supervisor.parameters())
        )
        / 1e6,
    }


def run_child(name: str, batch: int, threads: int) -> dict[str, Any]:
    """:func:`training_steps` in a fresh interpreter."""
    spec = json.dumps({"name": name, "batch": batch, "threads": threads})
    completed = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"training step of {name} at batch {batch} failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--baseline-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        torch.set_num_threads(spec["threads"])
        print(json.dumps(training_steps(spec["name"], spec["batch"])))
        return
    ours = run_child("ours", args.batch, args.threads)
    baseline = run_child("baseline", args.baseline_batch, args.threads)
    for row in (ours, baseline):
        row["mib_per_image"] = row["training_mib"] / row["batch"]
        row["extrapolated_batch12_mib"] = row["peak_rss_mib"] + row["mib_per_image"] * (
            12 - row["batch"]
        )
    ours["per_image_ratio"] = baseline["mib_per_image"] / ours["mib_per_image"]
    ours["within_target"] = ours["peak_rss_mib"] <= TARGET_MIB
    if args.json:
        print(json.dumps([ours, baseline], indent=2))
        return
    print(f"Phase-2 training step (Eq. 2 + Eq. 3, backward, Adam), 256x256, {args.threads} threads")
    print(
        f"{'model':<10}{'batch':>6}{'params M':>10}{'peak MiB':>10}{'MiB/image':>11}"
        f"{'batch-12 MiB':>14}{'s/step':>8}{'s/image':>9}"
    )
    for row in (ours, baseline):
        print(
            f"{row['model']:<10}{row['batch']:>6}{row['parameters_m']:>10.1f}"
            f"{row['peak_rss_mib']:>10.0f}{row['mib_per_image']:>11.0f}"
            f"{row['extrapolated_batch12_mib']:>14.0f}{row['seconds_per_step']:>8.2f}"
            f"{row['seconds_per_step'] / row['batch']:>9.2f}"
        )
    print(
        f"memory per image: baseline / ours = {ours['per_image_ratio']:.1f}; ours at batch "
        f"{ours['batch']}: {ours['peak_rss_mib'] / 1024:.2f} GiB "
        f"({'within' if ours['within_target'] else 'OVER'} the 8 GiB target)"
    )


if __name__ == "__main__":
    main()
