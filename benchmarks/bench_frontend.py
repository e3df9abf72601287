"""Front-end time per radiograph on CPU: decode, localise, crop, segment, masks, un-crop.

    .venv/bin/python benchmarks/bench_frontend.py --images 5 --threads 1

Prints the mean wall-clock and CPU time per stage over the first ``--images`` validation
radiographs (CPU time is the steadier number on a shared machine), then the baseline
comparison: segmenting a radiograph's joints one crop at a time against
one batched forward pass (what the worker does), and what the masks BLS-GAN gets
(widened towards the other bone, ``separation_masks``) add to the outlines alone. Times
depend on the machine and its load; compare ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from blsgan_core.crops import CropGeometry, crop_joints, crop_side, uncrop_mask
from blsgan_core.joints import load_localiser
from blsgan_core.joints.locate import detect_hands, drop_duplicates, locate_in_boxes
from blsgan_core.joints.preprocess import normalise_intensity
from blsgan_core.segment import Segmenter, load_segmenter, segment
from blsgan_core.segment.predict import masks_from_probabilities, separation_masks
from trainer.frontend.hand_data import read_landmarks_csv, select_split
from worker.frontend import read_image

T = TypeVar("T")


def segment_one_by_one(crops: np.ndarray, model: Segmenter) -> list[np.ndarray]:
    """The baseline: one forward pass per joint crop."""
    return [segment(crop, model) for crop in crops]


def uncrop_all(
    probabilities: np.ndarray, geometries: list[CropGeometry], shape: tuple[int, int]
) -> list[np.ndarray]:
    """Every mask of every joint on the source grid (what the SEG object needs)."""
    return [
        uncrop_mask(mask, geometry, shape)
        for pair, geometry in zip(probabilities, geometries, strict=True)
        for mask in pair
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hand_radiographs"))
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = select_split(read_landmarks_csv(args.data / "landmarks.csv"), "val")[: args.images]
    localiser, segmenter = load_localiser(), load_segmenter()
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    joints_total = 0

    def timed(stage: str, function: Callable[..., T], *a: Any) -> T:
        started, started_cpu = time.perf_counter(), time.process_time()
        result = function(*a)
        times[stage].append(time.perf_counter() - started)
        cpu[stage].append(time.process_time() - started_cpu)
        return result

    segment(np.zeros((1, 256, 256), np.float32), segmenter)  # warm-up, not timed
    for record in records:
        source = timed("decode", read_image, record.file)
        image = timed("normalise", normalise_intensity, source.pixels)
        boxes = timed("detect hands", detect_hands, image, localiser)
        hands = drop_duplicates(timed("locate joints", locate_in_boxes, image, boxes, localiser))
        crops, geometries = [], []
        for hand in hands:
            c, g = timed(
                "crop", crop_joints, source.pixels, hand.joints, crop_side(hand.mcp2_mcp3_px)
            )
            crops.append(c)
            geometries += g
        batch = np.concatenate(crops)
        joints_total += len(batch)
        probabilities = timed("segment (batched)", segment, batch, segmenter)
        timed("segment (one by one)", segment_one_by_one, batch, segmenter)
        outlines = timed("outline masks", masks_from_probabilities, probabilities)
        timed("separation masks", separation_masks, probabilities, outlines)
        timed("un-crop masks", uncrop_all, probabilities, geometries, source.pixels.shape)
    print(f"{len(records)} radiographs, {joints_total} joints, torch threads {args.threads}")
    pipeline = [s for s in times if s != "segment (one by one)"]
    print(f"  {'stage':<22} {'wall ms':>9} {'CPU ms':>9}  (per radiograph)")
    for stage in pipeline:
        print(f"  {stage:<22} {np.mean(times[stage]) * 1e3:9.1f} {np.mean(cpu[stage]) * 1e3:9.1f}")
    total = sum(np.mean(times[s]) for s in pipeline)
    total_cpu = sum(np.mean(cpu[s]) for s in pipeline)
    print(f"  {'total':<22} {total * 1e3:9.1f} {total_cpu * 1e3:9.1f}")
    ratio = np.mean(times["segment (one by one)"]) / np.mean(times["segment (batched)"])
    print(f"baseline: segmenting one crop at a time takes {ratio:.2f}x the batched pass")
    widening = np.mean(times["separation masks"]) / np.mean(times["outline masks"])
    share = np.mean(times["separation masks"]) / total
    print(
        f"the masks for BLS-GAN take {widening:.2f}x the outlines' time, "
        f"{100 * share:.1f} % of the front end"
    )


if __name__ == "__main__":
    main()
