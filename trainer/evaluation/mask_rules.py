"""Mask rules of the segmenter chosen on the training joints, reported on validation ones.

    python -m trainer.evaluation.mask_rules --model runs/segmenter-amodal/best.pt

The overlap BLS-GAN separates is the intersection of two thresholded bone masks, and
small overlaps (a sliver one or two pixels wide) come out about twice too large: a
higher mask threshold, or averaging the probabilities with those of the mirrored crop
(test-time augmentation), might fit them better. Each candidate rule is measured on the
training side of the segmenter's split and on the validation side in one run, from one
pass of the network per crop and mirror; the rule is **chosen on the training side
only**, by the trainer's checkpoint score (mean of the lower per-bone Dice and the
overlap Dice), so that the validation numbers stay held out. The masks are made exactly
as the node makes them (``masks_from_probabilities``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from blsgan_core.segment import Segmenter, load_segmenter, segment
from blsgan_core.segment.predict import masks_from_probabilities
from trainer.evaluation.cli_options import manifest_option
from trainer.evaluation.segmentation import (
    BATCH,
    Tally,
    constant_baseline,
    dice_cells,
    number,
)
from trainer.frontend.joint_data import JointRecord, load_joint, read_manifest, valid_split
from trainer.frontend.train_segmenter import selection_score

THRESHOLDS = (0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class MaskRule:
    """Masks at ``threshold`` of the probabilities, mirror-averaged if ``mirror``."""

    mirror: bool
    threshold: float

    @property
    def name(self) -> str:
        return f"{'mirror-averaged' if self.mirror else 'plain'}, threshold {self.threshold}"


RULES = tuple(MaskRule(mirror, threshold) for mirror in (False, True) for threshold in THRESHOLDS)
NODE_RULE = MaskRule(mirror=False, threshold=0.5)  # what segment_masks does


def measure_rules(
    records: list[JointRecord], model: Segmenter, rules: tuple[MaskRule, ...] = RULES
) -> dict[str, Any]:
    """The segmentation summary (``Tally``) of every rule on ``records``, and the baseline."""
    tallies = {rule: Tally() for rule in rules}
    truths: list[np.ndarray] = []
    for start in range(0, len(records), BATCH):
        loaded = [load_joint(r) for r in records[start : start + BATCH]]
        crops = np.stack([image for image, _ in loaded])
        plain = segment(crops, model)
        mirrored = None
        if any(rule.mirror for rule in rules):
            mirrored = (plain + segment(crops[:, :, ::-1].copy(), model)[..., ::-1]) / 2
        for rule in rules:
            probabilities = mirrored if rule.mirror and mirrored is not None else plain
            masks = masks_from_probabilities(probabilities, rule.threshold)
            for (_, truth), mask in zip(loaded, masks, strict=True):
                tallies[rule].add(mask, truth)
        truths.extend(truth for _, truth in loaded)
    return {
        "n_images": len(records),
        "rules": {rule.name: tally.summary() for rule, tally in tallies.items()},
        "baseline_constant_mask": constant_baseline(truths),
    }


def choose_rule(
    model: Segmenter, train: list[JointRecord], val: list[JointRecord]
) -> dict[str, Any]:
    """Every rule on both sides of the split; the rule with the best training score."""
    sides = {"train": measure_rules(train, model), "val": measure_rules(val, model)}
    scores = {name: selection_score(r) for name, r in sides["train"]["rules"].items()}
    return {
        "model": model.version,
        "node_rule": NODE_RULE.name,
        "chosen_on_train": min(scores, key=lambda name: scores[name]),
        **sides,
    }


def rules_table(report: dict[str, Any]) -> str:
    """Markdown: per rule, training score and validation per-bone and overlap numbers."""
    lines = [
        "| rule | train: overlap Dice | val: Dice upper | val: Dice lower | val: overlap Dice "
        "| val: pooled | val: area ratio | val: overlap Dice by size (20-100, 100-400, "
        "400-1000, >=1000 px) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, val in report["val"]["rules"].items():
        train = report["train"]["rules"][name]
        bins = ", ".join(number(b["dice_overlap"]) for b in val["by_overlap_size"])
        marks = " (node)" * (name == report["node_rule"])
        marks += " (chosen on train)" * (name == report["chosen_on_train"])
        lines.append(
            f"| {name}{marks} | {number(train['dice_overlap'])} | {dice_cells(val)} | {bins} |"
        )
    return "\n".join(lines)


@click.command()
@manifest_option
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--limit", type=int, default=0, help="Only the first N images of each side.")
@click.option("--threads", type=int, default=1, show_default=True)
def main(manifest: Path, model: Path | None, limit: int, threads: int) -> None:
    """Print every rule's numbers on both sides of the split as JSON, then a table."""
    torch.set_num_threads(threads)
    train, val, _ = valid_split(read_manifest(manifest))
    if limit:
        train, val = train[:limit], val[:limit]
    report = choose_rule(load_segmenter(model), train, val)
    click.echo(json.dumps(report))
    click.echo(rules_table(report))


if __name__ == "__main__":
    main()
