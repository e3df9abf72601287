"""Training throughput (images/s) and peak memory per preset, beside the published sizes.

One training step is what :func:`trainer.steps.training_step` does in phase 1: the
generator + reconstructor update (Eq. 4) and the supervisor update (Eq. 5). Each
configuration runs in its own child process so that its peak memory is its own:

- every preset (``paper``, ``cpu``, ``tiny``) with its networks, crop size and batch;
- ``baseline``: the published implementation's sizes (TransUNet ~67 M, VGG11 with a
  ~34 M MLP head, a full-resolution 64-channel U-Net supervisor; see
  ``baseline_models.py``) at 256 x 256, at a batch that fits (default 2 on the CPU:
  about 2 GB per image, batch 12 does not fit in 24 GB).

The inputs are random joint-like tensors (the data pipeline is not timed; the training
log's images/s includes it). Ratios are ours / baseline for throughput and baseline /
ours for memory per image. The projected time of a schedule is its images (both phases,
from the manifest's joint-disjoint split) divided by the throughput; the baseline's is
the paper's 250 + 50 epochs.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_training.py [--threads 2] [--steps 3] [--json]
        [--device cuda] [--manifest ../shared/data/mcp_joints/manifest.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_models import BaselineSeparator, baseline_supervisor

from blsgan_core.losses import LossWeights
from blsgan_core.model import BLSGANModel
from trainer.config import PRESETS, TrainConfig, load_preset
from trainer.steps import Batch, StepSettings, training_step

BASELINE = "baseline"
PAPER_EPOCHS = (250, 50)
DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent.parent / "shared/data/mcp_joints"


class BaselineTrainingModel(nn.Module):
    """The published sizes behind the interface ``training_step`` uses (G, k, D)."""

    def __init__(self) -> None:
        super().__init__()
        separator = BaselineSeparator()
        self.backbone = separator.generator
        self.reconstructor = separator.reconstructor
        self.supervisor = baseline_supervisor()
        self.generator = self._generate

    def _generate(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.backbone(torch.cat([image, masks], dim=1))) * masks

    def correction(self, image: torch.Tensor) -> torch.Tensor:
        return 1 - 0.95 * self.reconstructor(image)


def build(name: str) -> tuple[nn.Module, int]:
    """The model of configuration ``name`` and its training crop size."""
    if name == BASELINE:
        return BaselineTrainingModel(), 256
    config = load_preset(name)
    model = BLSGANModel(config.model.blsgan_config(), with_supervisor=True)
    return model, config.data.crop_size


def joint_batch(batch: int, size: int, device: torch.device) -> Batch:
    """Random joint-like tensors: two bones overlapping by 8 rows around the middle."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 1, size, size, generator=generator)
    masks = torch.zeros(batch, 2, size, size)
    middle = size // 2
    masks[:, 0, : middle + 4, size // 4 : 3 * size // 4] = 1
    masks[:, 1, middle - 4 :, size // 5 : 4 * size // 5] = 1
    layers = torch.rand(batch, 2, size, size, generator=generator) * masks
    return Batch(
        image.to(device), masks.to(device), layers.to(device),
        torch.ones(batch, dtype=torch.bool, device=device),
    )  # fmt: skip


def measure(name: str, batch: int, threads: int, steps: int, device_name: str) -> dict[str, Any]:
    """Child process: build, one warm-up step, time ``steps`` steps, report."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model, size = build(name)
    model.to(device).train()
    generator_parameters = [
        p for n, p in model.named_parameters() if not n.startswith("supervisor.")
    ]
    optimizers: dict[str, torch.optim.Optimizer] = {
        "generator": torch.optim.Adam(generator_parameters, lr=1e-5),
        "supervisor": torch.optim.Adam(model.supervisor.parameters(), lr=1e-5),
    }
    settings = StepSettings(LossWeights(), False, torch.autocast("cpu", enabled=False))
    data = joint_batch(batch, size, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        training_step(model, data, 1, settings, optimizers)  # type: ignore[arg-type]
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    parameters = {
        part: sum(p.numel() for p in getattr(model, part).parameters()) / 1e6
        for part in ("reconstructor", "supervisor")
    }
    parameters["generator"] = sum(p.numel() for p in model.parameters()) / 1e6 - sum(
        parameters.values()
    )
    return {
        "name": name,
        "device": device_name,
        "batch": batch,
        "crop": size,
        "threads": threads,
        "seconds_per_step": seconds,
        "images_per_s": batch / seconds,
        "peak_mib": peak_mib,
        "mib_per_image": peak_mib / batch,
        "parameters_m": parameters,
    }


def run_child(name: str, batch: int, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Measure one configuration in a fresh interpreter."""
    spec = json.dumps(
        {"name": name, "batch": batch, "threads": args.threads, "steps": args.steps,
         "device_name": device}
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def schedule_images(config: TrainConfig, manifest: Path | None) -> tuple[int, int]:
    """Images per epoch of phase 1 and phase 2 on ``manifest`` (its training side)."""
    from trainer.datasets import phase_items, prepare_data

    if manifest is None or not manifest.is_file():
        return (0, 0)
    data = prepare_data([manifest], config.data)
    return (
        len(phase_items(data, 1, config.data.min_real_overlap_px)),
        len(phase_items(data, 2, config.data.min_real_overlap_px)),
    )


def main() -> None:
    """Measure every configuration and print the table (or one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--baseline-batch", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST / "manifest.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return
    baseline = run_child(BASELINE, args.baseline_batch, args, args.device)
    rows = []
    for name in args.presets:
        config = load_preset(name)
        row = run_child(name, config.optim.batch_size, args, args.device)
        phase1, phase2 = schedule_images(config, args.manifest)
        images = phase1 * config.optim.pretrain_epochs + phase2 * config.optim.finetune_epochs
        row["schedule_images"] = images
        row["schedule_hours"] = images / row["images_per_s"] / 3600
        row["speed_ratio"] = row["images_per_s"] / baseline["images_per_s"]
        row["memory_per_image_ratio"] = baseline["mib_per_image"] / row["mib_per_image"]
        if name == "paper":
            paper_images = phase1 * PAPER_EPOCHS[0] + phase2 * PAPER_EPOCHS[1]
            baseline["schedule_images"] = paper_images
            baseline["schedule_hours"] = paper_images / baseline["images_per_s"] / 3600
        rows.append(row)
    if args.json:
        print(json.dumps({"device": args.device, "baseline": baseline, "presets": rows}))
        return
    header = (
        f"{'config':<9}{'crop':>5}{'batch':>6}{'G/R/D M params':>17}{'img/s':>8}"
        f"{'peak MiB':>10}{'MiB/img':>9}{'speed x':>9}{'mem/img x':>10}{'schedule h':>11}"
    )
    print(f"training step (phase 1, G+R then D) on {args.device}, {args.threads} thread(s)")
    print(header)
    for row in [*rows, baseline]:
        p = row["parameters_m"]
        params = f"{p['generator']:.1f}/{p['reconstructor']:.1f}/{p['supervisor']:.1f}"
        hours = row.get("schedule_hours")
        print(
            f"{row['name']:<9}{row['crop']:>5}{row['batch']:>6}{params:>17}"
            f"{row['images_per_s']:>8.2f}{row['peak_mib']:>10.0f}{row['mib_per_image']:>9.0f}"
            f"{row.get('speed_ratio', 1.0):>9.1f}{row.get('memory_per_image_ratio', 1.0):>10.1f}"
            f"{hours if hours is not None else float('nan'):>11.2f}"
        )
    print("speed x = ours / baseline images/s; mem/img x = baseline / ours MiB per image;")
    print("schedule h = the preset's epochs (baseline: the paper's 250 + 50) at that speed")


if __name__ == "__main__":
    main()
